//! Volumes: block devices or image files drydock protects apart from any droplet.

use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};
use serde_json::Value;

use crate::droplets::{SET_BACKUPS, id_list, json_params, limit};
use crate::error::{Context, Error, Result};
use crate::model::{Disk, NewVolume, TeamId, Volume, json_column, string_list, to_json};
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
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM volumes WHERE team_id = ?1 AND region = ?2 AND name = ?3)",
                    params![team, new.region, new.name],
                    |r| r.get(0),
                )
                .context("checking volume names")?;
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
        let mut values: Vec<Value> = vec![team.into()];
        if let Some(name) = name {
            condition.push_str(" AND v.name = ?");
            values.push(name.into());
        }
        if let Some(region) = region {
            condition.push_str(" AND v.region = ?");
            values.push(region.into());
        }
        self.read(|tx| {
            let total: i64 = tx
                .query_row(
                    &format!("SELECT count(*) FROM volumes v WHERE {condition}"),
                    params_from_iter(json_params(&values)),
                    |r| r.get(0),
                )
                .context("counting volumes")?;
            let sql = format!("{SELECT} WHERE {condition} ORDER BY v.seq LIMIT {} OFFSET {}", limit(page), page.offset);
            let mut statement = tx.prepare(&sql).context("listing volumes")?;
            let rows =
                statement.query_map(params_from_iter(json_params(&values)), volume_row).context("listing volumes")?;
            let volumes = rows.collect::<rusqlite::Result<Vec<_>>>().context("listing volumes")?;
            Ok((volumes.into_iter().collect::<Result<Vec<_>>>()?, total as u64))
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
            tx.execute("DELETE FROM volumes WHERE id = ?1", [id]).context("deleting a volume")?;
            Ok(())
        })
    }
}

fn volume_in(tx: &Transaction, team: TeamId, id: &str) -> Result<Volume> {
    tx.query_row(&format!("{SELECT} WHERE v.id = ?1 AND v.team_id = ?2"), params![id, team], volume_row)
        .optional()
        .context("reading a volume")?
        .ok_or_else(|| Error::not_found(format!("volume {id}")))?
}

fn volume_row(row: &Row) -> rusqlite::Result<Result<Volume>> {
    let id: String = row.get("id")?;
    let tags: String = row.get("tags")?;
    let policy: Option<String> = row.get("backup_policy")?;
    let mut backup_ids: Vec<i64> = id_list(row.get("backup_ids")?);
    backup_ids.sort_unstable();
    let volume = Volume {
        team_id: row.get("team_id")?,
        name: row.get("name")?,
        region: row.get("region")?,
        description: row.get("description")?,
        disk: Disk {
            path: row.get("disk_path")?,
            format: row.get("disk_format")?,
            size_bytes: row.get::<_, i64>("disk_bytes")? as u64,
        },
        filesystem_type: row.get("filesystem_type")?,
        filesystem_label: row.get("filesystem_label")?,
        droplet_id: row.get("droplet_id")?,
        tags: Vec::new(),
        backups_enabled: row.get("backups_enabled")?,
        backup_policy: None,
        backups_since: row.get("backups_since")?,
        created_at: row.get("created_at")?,
        locked: row.get("locked")?,
        backup_ids,
        id: id.clone(),
    };
    Ok((|| {
        let what = |field: &str| format!("{field} of volume {id}");
        Ok(Volume {
            tags: string_list(&tags, &what("tags"))?,
            backup_policy: policy.map(|p| json_column(&p, &what("backup policy"))).transpose()?,
            ..volume
        })
    })())
}
