//! Droplets: the machines drydock protects.

use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};
use serde_json::Value;

use crate::error::{Context, Error, Result};
use crate::model::{Disk, Droplet, DropletId, DropletStatus, NewDroplet, TeamId, json_column, string_list, to_json};
use crate::{Catalog, Page, now};

const SELECT: &str = "SELECT d.*,
    EXISTS (SELECT 1 FROM actions a WHERE a.resource_type = 'droplet' AND a.resource_id = CAST(d.id AS TEXT)
            AND a.status = 'in-progress') AS locked,
    (SELECT group_concat(i.id) FROM images i WHERE i.resource_type = 'droplet' AND i.resource_id = CAST(d.id AS TEXT)
            AND i.type = 'snapshot' AND i.status = 'available') AS snapshot_ids,
    (SELECT group_concat(i.id) FROM images i WHERE i.resource_type = 'droplet' AND i.resource_id = CAST(d.id AS TEXT)
            AND i.type = 'backup' AND i.status = 'available') AS backup_ids,
    (SELECT group_concat(v.id) FROM volumes v WHERE v.droplet_id = d.id) AS volume_ids
    FROM droplets d";

/// Turns a droplet's or volume's backups on or off: `?1` on, `?2` the policy's JSON (NULL keeps
/// the stored one), `?3` now. Turning them on from off starts `backups_since` now; turning them
/// on again keeps it, so re-sending a policy does not forgive a missed window.
pub(crate) const SET_BACKUPS: &str = "backup_policy = COALESCE(?2, backup_policy),
    backups_since = CASE WHEN NOT ?1 THEN NULL WHEN backups_enabled THEN COALESCE(backups_since, ?3) ELSE ?3 END,
    backups_enabled = ?1";

/// Which droplets a listing returns.
#[derive(Clone, Debug, Default)]
pub struct DropletFilter {
    pub tag: Option<String>,
    /// Exact name, compared case-insensitively (as DigitalOcean does).
    pub name: Option<String>,
}

impl Catalog {
    pub fn insert_droplet(&self, team: TeamId, new: &NewDroplet) -> Result<Droplet> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO droplets (team_id, name, region, disk_path, disk_format, disk_bytes, power, status,
                    size_slug, memory_mb, vcpus, tags, backups_enabled, backup_policy, backups_since, image_id,
                    created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                params![
                    team,
                    new.name,
                    new.region,
                    new.disk.path,
                    new.disk.format,
                    new.disk.size_bytes as i64,
                    to_json(&new.power),
                    new.status,
                    new.size_slug,
                    new.memory_mb,
                    new.vcpus,
                    to_json(&new.tags),
                    new.backups_enabled,
                    new.backup_policy.as_ref().map(to_json),
                    new.backups_since.filter(|_| new.backups_enabled),
                    new.image_id,
                    now()
                ],
            )
            .context("registering a droplet")?;
            let id = tx.last_insert_rowid();
            set_tags(tx, id, &new.tags)?;
            droplet_in(tx, team, id)
        })
    }

    pub fn droplet(&self, team: TeamId, id: DropletId) -> Result<Droplet> {
        self.read(|tx| droplet_in(tx, team, id))
    }

    pub fn droplets(&self, team: TeamId, filter: &DropletFilter, page: Page) -> Result<(Vec<Droplet>, u64)> {
        let mut conditions = vec!["d.team_id = ?".to_string()];
        let mut values: Vec<Value> = vec![team.into()];
        if let Some(tag) = &filter.tag {
            conditions.push("d.id IN (SELECT droplet_id FROM droplet_tags WHERE tag = ?)".into());
            values.push(tag.as_str().into());
        }
        if let Some(name) = &filter.name {
            conditions.push("lower(d.name) = lower(?)".into());
            values.push(name.as_str().into());
        }
        let condition = conditions.join(" AND ");
        self.read(|tx| {
            let total: i64 = tx
                .query_row(
                    &format!("SELECT count(*) FROM droplets d WHERE {condition}"),
                    params_from_iter(json_params(&values)),
                    |r| r.get(0),
                )
                .context("counting droplets")?;
            let sql = format!("{SELECT} WHERE {condition} ORDER BY d.id LIMIT {} OFFSET {}", limit(page), page.offset);
            let mut statement = tx.prepare(&sql).context("listing droplets")?;
            let rows =
                statement.query_map(params_from_iter(json_params(&values)), droplet_row).context("listing droplets")?;
            let droplets = rows.collect::<rusqlite::Result<Vec<_>>>().context("listing droplets")?;
            Ok((droplets.into_iter().collect::<Result<Vec<_>>>()?, total as u64))
        })
    }

    /// Removes a droplet from the catalog (its snapshots and backups stay). Refused while an
    /// action runs on it.
    pub fn delete_droplet(&self, team: TeamId, id: DropletId) -> Result<()> {
        self.write(|tx| {
            let droplet = droplet_in(tx, team, id)?;
            if droplet.locked {
                return Err(Error::Conflict(format!("droplet {id} is locked by a running action")));
            }
            tx.execute("DELETE FROM droplets WHERE id = ?1", [id]).context("deleting a droplet")?;
            Ok(())
        })
    }

    pub fn rename_droplet(&self, team: TeamId, id: DropletId, name: &str) -> Result<()> {
        self.update_droplet(team, id, "name = ?1", params![name])
    }

    pub fn set_droplet_status(&self, team: TeamId, id: DropletId, status: DropletStatus) -> Result<()> {
        self.update_droplet(team, id, "status = ?1", params![status])
    }

    pub fn set_droplet_disk_bytes(&self, team: TeamId, id: DropletId, size_bytes: u64) -> Result<()> {
        self.update_droplet(team, id, "disk_bytes = ?1", params![size_bytes as i64])
    }

    /// Turns backups on or off; the policy is kept when `policy` is `None`. `now` (unix seconds,
    /// on the scheduler's clock) becomes `backups_since` when backups go from off to on.
    pub fn set_droplet_backups(
        &self,
        team: TeamId,
        id: DropletId,
        enabled: bool,
        policy: Option<&Value>,
        now: i64,
    ) -> Result<()> {
        self.update_droplet(team, id, SET_BACKUPS, params![enabled, policy.map(to_json), now])
    }

    fn update_droplet(&self, team: TeamId, id: DropletId, set: &str, values: &[&dyn rusqlite::ToSql]) -> Result<()> {
        self.write(|tx| {
            let n = values.len();
            let sql = format!("UPDATE droplets SET {set} WHERE id = ?{} AND team_id = ?{}", n + 1, n + 2);
            let mut all: Vec<&dyn rusqlite::ToSql> = values.to_vec();
            all.push(&id);
            all.push(&team);
            let changed = tx.execute(&sql, all.as_slice()).context("updating a droplet")?;
            if changed == 0 { Err(Error::not_found(format!("droplet {id}"))) } else { Ok(()) }
        })
    }
}

pub(crate) fn droplet_in(tx: &Transaction, team: TeamId, id: DropletId) -> Result<Droplet> {
    tx.query_row(&format!("{SELECT} WHERE d.id = ?1 AND d.team_id = ?2"), params![id, team], droplet_row)
        .optional()
        .context("reading a droplet")?
        .ok_or_else(|| Error::not_found(format!("droplet {id}")))?
}

fn set_tags(tx: &Transaction, id: DropletId, tags: &[String]) -> Result<()> {
    tx.execute("DELETE FROM droplet_tags WHERE droplet_id = ?1", [id]).context("tagging a droplet")?;
    for tag in tags {
        tx.execute("INSERT OR IGNORE INTO droplet_tags (droplet_id, tag) VALUES (?1, ?2)", params![id, tag])
            .context("tagging a droplet")?;
    }
    Ok(())
}

pub(crate) fn limit(page: Page) -> i64 {
    page.limit.min(i64::MAX as u64) as i64
}

pub(crate) fn json_params(values: &[Value]) -> Vec<rusqlite::types::Value> {
    values
        .iter()
        .map(|v| match v {
            Value::Number(n) => rusqlite::types::Value::Integer(n.as_i64().unwrap_or_default()),
            Value::String(s) => rusqlite::types::Value::Text(s.clone()),
            other => rusqlite::types::Value::Text(other.to_string()),
        })
        .collect()
}

pub(crate) fn id_list<T: std::str::FromStr>(text: Option<String>) -> Vec<T> {
    text.map(|t| t.split(',').filter_map(|s| s.parse().ok()).collect()).unwrap_or_default()
}

/// Reads a row; JSON columns are checked after the row is read, so a damaged value is reported
/// as such instead of as a SQLite type error.
fn droplet_row(row: &Row) -> rusqlite::Result<Result<Droplet>> {
    let id: DropletId = row.get("id")?;
    let power: String = row.get("power")?;
    let tags: String = row.get("tags")?;
    let policy: Option<String> = row.get("backup_policy")?;
    let mut snapshot_ids: Vec<i64> = id_list(row.get("snapshot_ids")?);
    let mut backup_ids: Vec<i64> = id_list(row.get("backup_ids")?);
    let mut volume_ids: Vec<String> = id_list(row.get("volume_ids")?);
    snapshot_ids.sort_unstable();
    backup_ids.sort_unstable();
    volume_ids.sort_unstable();
    let disk = Disk {
        path: row.get("disk_path")?,
        format: row.get("disk_format")?,
        size_bytes: row.get::<_, i64>("disk_bytes")? as u64,
    };
    let partial = Droplet {
        id,
        team_id: row.get("team_id")?,
        name: row.get("name")?,
        region: row.get("region")?,
        disk,
        power: Value::Null,
        status: row.get("status")?,
        size_slug: row.get("size_slug")?,
        memory_mb: row.get("memory_mb")?,
        vcpus: row.get("vcpus")?,
        tags: Vec::new(),
        backups_enabled: row.get("backups_enabled")?,
        backup_policy: None,
        backups_since: row.get("backups_since")?,
        image_id: row.get("image_id")?,
        created_at: row.get("created_at")?,
        locked: row.get("locked")?,
        snapshot_ids,
        backup_ids,
        volume_ids,
    };
    Ok((|| {
        let what = |field: &str| format!("{field} of droplet {id}");
        Ok(Droplet {
            power: json_column(&power, &what("power driver"))?,
            tags: string_list(&tags, &what("tags"))?,
            backup_policy: policy.map(|p| json_column(&p, &what("backup policy"))).transpose()?,
            ..partial
        })
    })())
}
