//! Volumes: block devices or image files drydock protects apart from any droplet.

use serde_json::Value;

use crate::droplets::{SET_BACKUPS, id_list, limit};
use crate::error::{Context, Error, Result};
use crate::model::{Disk, NewVolume, TeamId, Volume, json_column, string_list, to_json};
use crate::sql::{self, Row, ToValue, Tx, params};
use crate::{Catalog, Page, now};

const SELECT: &str = "SELECT v.*,
    EXISTS (SELECT 1 FROM actions a WHERE a.resource_type = 'volume' AND a.resource_id = v.id
            AND a.status = 'in-progress') AS locked,
    (SELECT group_concat(i.id) FROM images i WHERE i.resource_type = 'volume' AND i.resource_id = v.id
            AND i.type = 'backup' AND i.status = 'available') AS backup_ids
    FROM volumes v";

impl Catalog {
    pub fn insert_volume(&self, team: TeamId, new: &NewVolume) -> Result<Volume> {
        let id = uuid::Uuid::new_v4().to_string();
        self.write(|tx| {
            let taken: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM volumes WHERE team_id = ?1 AND region = ?2 AND name = ?3)",
                    params![team, new.region, new.name],
                )
                .context("checking volume names")?
                .get(0)?;
            if taken {
                return Err(Error::Conflict(format!(
                    "a volume named {} already exists in region {}",
                    new.name, new.region
                )));
            }
            tx.execute(
                "INSERT INTO volumes (id, seq, team_id, name, region, description, disk_path, disk_format, disk_bytes,
                    filesystem_type, filesystem_label, tags, backups_enabled, backup_policy, backups_since, created_at)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM volumes), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
                    ?12, ?13, ?14, ?15)",
                params![
                    id,
                    team,
                    new.name,
                    new.region,
                    new.description,
                    new.disk.path,
                    new.disk.format,
                    new.disk.size_bytes as i64,
                    new.filesystem_type,
                    new.filesystem_label,
                    to_json(&new.tags),
                    new.backups_enabled,
                    new.backup_policy.as_ref().map(to_json),
                    new.backups_since.filter(|_| new.backups_enabled),
                    now()
                ],
            )
            .context("registering a volume")?;
            volume_in(tx, team, &id)
        })
    }

    pub fn volume(&self, team: TeamId, id: &str) -> Result<Volume> {
        self.read(|tx| volume_in(tx, team, id))
    }

    pub fn volumes(
        &self,
        team: TeamId,
        name: Option<&str>,
        region: Option<&str>,
        page: Page,
    ) -> Result<(Vec<Volume>, u64)> {
        let mut condition = "v.team_id = ?".to_string();
        let mut values = vec![team.to_value()];
        if let Some(name) = name {
            condition.push_str(" AND v.name = ?");
            values.push(name.to_value());
        }
        if let Some(region) = region {
            condition.push_str(" AND v.region = ?");
            values.push(region.to_value());
        }
        self.read(|tx| {
            let total: u64 = tx
                .query_one(&format!("SELECT count(*) FROM volumes v WHERE {condition}"), &sql::dynamic(&values))
                .context("counting volumes")?
                .get(0)?;
            let sql = format!("{SELECT} WHERE {condition} ORDER BY v.seq LIMIT {} OFFSET {}", limit(page), page.offset);
            let rows = tx.query(&sql, &sql::dynamic(&values)).context("listing volumes")?;
            Ok((rows.iter().map(volume_row).collect::<Result<Vec<_>>>()?, total))
        })
    }

    /// Turns backups on or off; the policy is kept when `policy` is `None`. `now` (unix seconds,
    /// on the scheduler's clock) becomes `backups_since` when backups go from off to on.
    pub fn set_volume_backups(
        &self,
        team: TeamId,
        id: &str,
        enabled: bool,
        policy: Option<&Value>,
        now: i64,
    ) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    &format!("UPDATE volumes SET {SET_BACKUPS} WHERE id = ?4 AND team_id = ?5"),
                    params![enabled, policy.map(to_json), now, id, team],
                )
                .context("updating a volume's backups")?;
            if changed == 0 { Err(Error::not_found(format!("volume {id}"))) } else { Ok(()) }
        })
    }

    /// Removes a volume from the catalog (its snapshots stay). Refused while an action runs on it.
    pub fn delete_volume(&self, team: TeamId, id: &str) -> Result<()> {
        self.write(|tx| {
            let volume = volume_in(tx, team, id)?;
            if volume.locked {
                return Err(Error::Conflict(format!("volume {id} is locked by a running action")));
            }
            tx.execute("DELETE FROM volumes WHERE id = ?1", params![id]).context("deleting a volume")?;
            Ok(())
        })
    }
}

fn volume_in(tx: &Tx, team: TeamId, id: &str) -> Result<Volume> {
    let row = tx
        .query_opt(&format!("{SELECT} WHERE v.id = ?1 AND v.team_id = ?2"), params![id, team])
        .context("reading a volume")?
        .ok_or_else(|| Error::not_found(format!("volume {id}")))?;
    volume_row(&row)
}

fn volume_row(row: &Row) -> Result<Volume> {
    let id: String = row.get("id")?;
    let tags: String = row.get("tags")?;
    let policy: Option<String> = row.get("backup_policy")?;
    let mut backup_ids: Vec<i64> = id_list(row.get("backup_ids")?);
    backup_ids.sort_unstable();
    let what = |field: &str| format!("{field} of volume {id}");
    Ok(Volume {
        team_id: row.get("team_id")?,
        name: row.get("name")?,
        region: row.get("region")?,
        description: row.get("description")?,
        disk: Disk { path: row.get("disk_path")?, format: row.get("disk_format")?, size_bytes: row.get("disk_bytes")? },
        filesystem_type: row.get("filesystem_type")?,
        filesystem_label: row.get("filesystem_label")?,
        droplet_id: row.get("droplet_id")?,
        tags: string_list(&tags, &what("tags"))?,
        backups_enabled: row.get("backups_enabled")?,
        backup_policy: policy.map(|p| json_column(&p, &what("backup policy"))).transpose()?,
        backups_since: row.get("backups_since")?,
        created_at: row.get("created_at")?,
        locked: row.get("locked")?,
        backup_ids,
        id,
    })
}
