-- Several daemons on one catalog: the daemon running an action and until when its lease holds
-- (unix seconds, on the database's clock). A lease that ran out means the daemon died: another
-- one takes the action over. Both stay NULL on a catalog that only one daemon uses.
ALTER TABLE actions ADD COLUMN worker TEXT;
ALTER TABLE actions ADD COLUMN lease_until INTEGER;
-- Finding expired leases reads only running actions.
CREATE INDEX actions_leases ON actions(lease_until) WHERE status = 'in-progress';
