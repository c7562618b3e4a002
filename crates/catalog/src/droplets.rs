//! Droplets: the machines drydock protects.

use serde_json::Value;

use crate::error::{Context, Error, Result};
use crate::model::{Disk, Droplet, DropletId, DropletStatus, NewDroplet, TeamId, json_column, string_list, to_json};
use crate::sql::{self, Row, ToValue, Tx, params};
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
            let id: DropletId = tx
                .query_one(
                    "INSERT INTO droplets (team_id, name, region, disk_path, disk_format, disk_bytes, power, status,
                        size_slug, memory_mb, vcpus, tags, backups_enabled, backup_policy, backups_since, image_id,
                        created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) RETURNING id",
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
                .context("registering a droplet")?
                .get(0)?;
            set_tags(tx, id, &new.tags)?;
            droplet_in(tx, team, id)
        })
    }

    pub fn droplet(&self, team: TeamId, id: DropletId) -> Result<Droplet> {
        self.read(|tx| droplet_in(tx, team, id))
    }

    pub fn droplets(&self, team: TeamId, filter: &DropletFilter, page: Page) -> Result<(Vec<Droplet>, u64)> {
        let mut conditions = vec!["d.team_id = ?".to_string()];
        let mut values = vec![team.to_value()];
        if let Some(tag) = &filter.tag {
            conditions.push("d.id IN (SELECT droplet_id FROM droplet_tags WHERE tag = ?)".into());
            values.push(tag.to_value());
        }
        if let Some(name) = &filter.name {
            conditions.push("lower(d.name) = lower(?)".into());
            values.push(name.to_value());
        }
        let condition = conditions.join(" AND ");
        self.read(|tx| {
            let total: u64 = tx
                .query_one(&format!("SELECT count(*) FROM droplets d WHERE {condition}"), &sql::dynamic(&values))
                .context("counting droplets")?
                .get(0)?;
            let sql = format!("{SELECT} WHERE {condition} ORDER BY d.id LIMIT {} OFFSET {}", limit(page), page.offset);
            let rows = tx.query(&sql, &sql::dynamic(&values)).context("listing droplets")?;
            Ok((rows.iter().map(droplet_row).collect::<Result<Vec<_>>>()?, total))
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
            tx.execute("DELETE FROM droplets WHERE id = ?1", params![id]).context("deleting a droplet")?;
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

    fn update_droplet(&self, team: TeamId, id: DropletId, set: &str, values: &[&dyn ToValue]) -> Result<()> {
        self.write(|tx| {
            let n = values.len();
            let sql = format!("UPDATE droplets SET {set} WHERE id = ?{} AND team_id = ?{}", n + 1, n + 2);
            let mut all: Vec<&dyn ToValue> = values.to_vec();
            all.push(&id);
            all.push(&team);
            let changed = tx.execute(&sql, all.as_slice()).context("updating a droplet")?;
            if changed == 0 { Err(Error::not_found(format!("droplet {id}"))) } else { Ok(()) }
        })
    }
}

pub(crate) fn droplet_in(tx: &Tx, team: TeamId, id: DropletId) -> Result<Droplet> {
    let row = tx
        .query_opt(&format!("{SELECT} WHERE d.id = ?1 AND d.team_id = ?2"), params![id, team])
        .context("reading a droplet")?
        .ok_or_else(|| Error::not_found(format!("droplet {id}")))?;
    droplet_row(&row)
}

fn set_tags(tx: &Tx, id: DropletId, tags: &[String]) -> Result<()> {
    tx.execute("DELETE FROM droplet_tags WHERE droplet_id = ?1", params![id]).context("tagging a droplet")?;
    for tag in tags {
        tx.execute(
            "INSERT INTO droplet_tags (droplet_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![id, tag],
        )
        .context("tagging a droplet")?;
    }
    Ok(())
}

pub(crate) fn limit(page: Page) -> i64 {
    page.limit.min(i64::MAX as u64) as i64
}

pub(crate) fn id_list<T: std::str::FromStr>(text: Option<String>) -> Vec<T> {
    text.map(|t| t.split(',').filter_map(|s| s.parse().ok()).collect()).unwrap_or_default()
}

fn droplet_row(row: &Row) -> Result<Droplet> {
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
    let what = |field: &str| format!("{field} of droplet {id}");
    Ok(Droplet {
        id,
        team_id: row.get("team_id")?,
        name: row.get("name")?,
        region: row.get("region")?,
        disk: Disk { path: row.get("disk_path")?, format: row.get("disk_format")?, size_bytes: row.get("disk_bytes")? },
        power: json_column(&power, &what("power driver"))?,
        status: row.get("status")?,
        size_slug: row.get("size_slug")?,
        memory_mb: row.get("memory_mb")?,
        vcpus: row.get("vcpus")?,
        tags: string_list(&tags, &what("tags"))?,
        backups_enabled: row.get("backups_enabled")?,
        backup_policy: policy.map(|p| json_column(&p, &what("backup policy"))).transpose()?,
        backups_since: row.get("backups_since")?,
        image_id: row.get("image_id")?,
        created_at: row.get("created_at")?,
        locked: row.get("locked")?,
        snapshot_ids,
        backup_ids,
        volume_ids,
    })
}
