-- Several daemons on one catalog: see sqlite/0004_worker_leases.sql.
ALTER TABLE actions ADD COLUMN worker TEXT;
ALTER TABLE actions ADD COLUMN lease_until BIGINT;
CREATE INDEX actions_leases ON actions(lease_until) WHERE status = 'in-progress';
-- SQLite's unixepoch(): now, in whole unix seconds, on the server's clock (not the
-- transaction's start: a lease is measured from when it is written).
CREATE FUNCTION unixepoch() RETURNS BIGINT LANGUAGE SQL VOLATILE
    AS $$ SELECT CAST(floor(extract(epoch FROM clock_timestamp())) AS BIGINT) $$;
