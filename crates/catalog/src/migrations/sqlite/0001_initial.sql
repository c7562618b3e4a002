-- The catalog's first schema. Ids are integers where DigitalOcean's are (droplets, images,
-- actions) and UUIDs where DigitalOcean's are (volumes, volume snapshots).

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);

-- Tokens are stored as the SHA-256 of the secret: a stolen catalog does not grant access.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    name        TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,           -- space-separated
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);

CREATE TABLE droplets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id         INTEGER NOT NULL REFERENCES teams(id),
    name            TEXT NOT NULL,
    region          TEXT NOT NULL,
    disk_path       TEXT NOT NULL,
    disk_format     TEXT NOT NULL,
    disk_bytes      INTEGER NOT NULL,
    power           TEXT NOT NULL,       -- JSON: the power driver's configuration
    status          TEXT NOT NULL,       -- new | active | off | archive
    size_slug       TEXT NOT NULL,
    memory_mb       INTEGER NOT NULL,
    vcpus           INTEGER NOT NULL,
    tags            TEXT NOT NULL DEFAULT '[]',
    backups_enabled INTEGER NOT NULL DEFAULT 0,
    backup_policy   TEXT,                -- JSON, kept when backups are disabled
    image_id        INTEGER,             -- the image it was created from, if any
    created_at      TEXT NOT NULL
);
CREATE INDEX droplets_team ON droplets(team_id, id);

CREATE TABLE droplet_tags (
    droplet_id  INTEGER NOT NULL REFERENCES droplets(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    PRIMARY KEY (droplet_id, tag)
);
CREATE INDEX droplet_tags_tag ON droplet_tags(tag);

CREATE TABLE volumes (
    id              TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE, -- listing order
    team_id         INTEGER NOT NULL REFERENCES teams(id),
    name            TEXT NOT NULL,
    region          TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    disk_path       TEXT NOT NULL,
    disk_format     TEXT NOT NULL,
    disk_bytes      INTEGER NOT NULL,
    filesystem_type  TEXT NOT NULL DEFAULT '',
    filesystem_label TEXT NOT NULL DEFAULT '',
    droplet_id      INTEGER REFERENCES droplets(id) ON DELETE SET NULL,
    tags            TEXT NOT NULL DEFAULT '[]',
    created_at      TEXT NOT NULL,
    UNIQUE (team_id, region, name)
);

-- Snapshots and backups of droplets and volumes. `status` is `pending` while the action that
-- makes it runs: pending images are never listed by the API.
CREATE TABLE images (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid            TEXT NOT NULL UNIQUE,
    team_id         INTEGER NOT NULL REFERENCES teams(id),
    name            TEXT NOT NULL,
    type            TEXT NOT NULL,       -- snapshot | backup
    resource_type   TEXT NOT NULL,       -- droplet | volume
    resource_id     TEXT NOT NULL,
    status          TEXT NOT NULL,       -- pending | available
    description     TEXT NOT NULL DEFAULT '',
    distribution    TEXT NOT NULL DEFAULT 'Unknown',
    size_bytes      INTEGER NOT NULL DEFAULT 0,
    stored_bytes    INTEGER NOT NULL DEFAULT 0,
    tags            TEXT NOT NULL DEFAULT '[]',
    created_at      TEXT NOT NULL
);
CREATE INDEX images_team ON images(team_id, status, id);
CREATE INDEX images_resource ON images(resource_type, resource_id, type, id);

-- Where a complete copy of an image exists: one repository snapshot per region.
CREATE TABLE image_copies (
    image_id        INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    region          TEXT NOT NULL,
    snapshot_id     TEXT NOT NULL,       -- the repository's snapshot id (hex)
    PRIMARY KEY (image_id, region)
);

CREATE TABLE actions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id         INTEGER NOT NULL REFERENCES teams(id),
    type            TEXT NOT NULL,
    status          TEXT NOT NULL,       -- in-progress | completed | errored
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    region          TEXT NOT NULL,
    params          TEXT NOT NULL DEFAULT '{}',
    bytes_done      INTEGER NOT NULL DEFAULT 0,
    bytes_total     INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    started_at      TEXT NOT NULL,
    completed_at    TEXT
);
CREATE INDEX actions_team ON actions(team_id, id);
CREATE INDEX actions_resource ON actions(resource_type, resource_id, id);
-- The lock: at most one running action per resource, enforced by the database itself.
CREATE UNIQUE INDEX actions_one_running ON actions(resource_type, resource_id) WHERE status = 'in-progress';
