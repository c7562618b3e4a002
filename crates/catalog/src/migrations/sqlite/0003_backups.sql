-- Scheduled backups: policies on volumes too, when backups were turned on, expiry of the
-- backups of deleted resources, one row per backup window, and statistics that outlive both.

ALTER TABLE volumes ADD COLUMN backups_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE volumes ADD COLUMN backup_policy TEXT;              -- JSON, kept when backups are disabled
-- Unix seconds when backups were last turned on, NULL while they are off: no window that
-- closed before it is owed.
ALTER TABLE volumes ADD COLUMN backups_since INTEGER;
ALTER TABLE droplets ADD COLUMN backups_since INTEGER;
-- Droplets whose backups were already on are owed windows from the upgrade on, not from the
-- beginning of time (the only place the catalog reads the clock for scheduling).
UPDATE droplets SET backups_since = CAST(strftime('%s', 'now') AS INTEGER) WHERE backups_enabled;

-- Unix seconds after which a backup of a deleted droplet or volume is pruned.
ALTER TABLE images ADD COLUMN expires_at INTEGER;

-- One row per resource per backup window. The unique key is the claim: whichever daemon
-- inserts a window's row takes that window's backup, the other sees it taken. It is also the
-- index that finds a resource's latest run.
CREATE TABLE backup_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id         INTEGER NOT NULL REFERENCES teams(id),
    resource_type   TEXT NOT NULL,       -- droplet | volume
    resource_id     TEXT NOT NULL,
    window_start    INTEGER NOT NULL,    -- unix seconds
    window_end      INTEGER NOT NULL,
    status          TEXT NOT NULL,       -- running | retrying | succeeded | failed | missed
    attempts        INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    action_id       INTEGER,             -- the current (or last) attempt's backup action
    image_id        INTEGER,             -- the image that attempt makes
    claimed_by      TEXT,                -- the daemon that started the current attempt
    claimed_at      INTEGER,
    next_attempt_at INTEGER,             -- while retrying
    error           TEXT,                -- the last failed attempt's reason
    taken_at        INTEGER,             -- when the successful backup was taken
    finished_at     INTEGER,
    duration_secs   REAL,
    size_bytes      INTEGER,
    stored_bytes    INTEGER,
    UNIQUE (resource_type, resource_id, window_start)
);
-- Pruning old runs reads them by the end of their window.
CREATE INDEX backup_runs_window_end ON backup_runs(window_end);

-- Per resource, what its backups have done so far; kept when old runs are pruned and after
-- the resource is deleted (its backups may still be there).
CREATE TABLE backup_stats (
    team_id            INTEGER NOT NULL REFERENCES teams(id),
    resource_type      TEXT NOT NULL,
    resource_id        TEXT NOT NULL,
    name               TEXT NOT NULL DEFAULT '',
    last_success_at    INTEGER,          -- taken_at of the last successful backup
    last_window_start  INTEGER,
    last_duration_secs REAL,
    last_size_bytes    INTEGER,
    last_stored_bytes  INTEGER,
    successes          INTEGER NOT NULL DEFAULT 0,
    failures           INTEGER NOT NULL DEFAULT 0, -- failed attempts
    missed             INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    last_failure_at    INTEGER,
    PRIMARY KEY (resource_type, resource_id)
);
CREATE INDEX backup_stats_team ON backup_stats(team_id);
