-- Listings of a team's available images by type (`/v2/snapshots`, `/v2/images?private=true`):
-- counted and skipped through from the index alone.
CREATE INDEX images_listing ON images(team_id, status, type, id, resource_type);
