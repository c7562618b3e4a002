//! What the scheduler reads every tick: each droplet and volume with backups on, with its
//! latest run and how that run's action stands. One query per resource kind, whatever the
//! number of resources (each latest run is found through the runs' unique key).

use crate::Catalog;
use crate::backup_runs::{RUN_COLUMNS, run_at};
use crate::error::{Context, Result};
use crate::model::{BackupTarget, ResourceType, json_column};
use crate::sql::{Row, params};

/// The target's own columns, before the run's.
const TARGET_COLUMNS: usize = 6;

impl Catalog {
    /// Every droplet, then every volume, with backups on, of every team.
    pub fn backup_targets(&self) -> Result<Vec<BackupTarget>> {
        let kinds = [
            (ResourceType::Droplet, targets_sql("droplets", "CAST(t.id AS TEXT)", "t.id")),
            (ResourceType::Volume, targets_sql("volumes", "t.id", "t.seq")),
        ];
        self.read(|tx| {
            let mut targets = Vec::new();
            for (resource_type, sql) in &kinds {
                let rows = tx
                    .query(sql, params![resource_type])
                    .context(&format!("listing {resource_type}s with backups on"))?;
                for row in &rows {
                    targets.push(target_row(row, *resource_type)?);
                }
            }
            Ok(targets)
        })
    }
}

/// The query for one kind of resource (`?1`): `table` aliased `t`, whose id reads as the runs
/// store it through `id`.
fn targets_sql(table: &str, id: &str, order: &str) -> String {
    format!(
        "SELECT t.team_id, {id}, t.name, t.region, t.backup_policy, t.backups_since, {RUN_COLUMNS}
         FROM {table} t
         LEFT JOIN backup_runs r ON r.id = (SELECT l.id FROM backup_runs l WHERE l.resource_type = ?1
             AND l.resource_id = {id} ORDER BY l.window_start DESC LIMIT 1)
         LEFT JOIN actions a ON a.id = r.action_id
         WHERE t.backups_enabled
         ORDER BY {order}"
    )
}

fn target_row(row: &Row, resource_type: ResourceType) -> Result<BackupTarget> {
    let resource_id: String = row.get(1)?;
    let policy: Option<String> = row.get(4)?;
    let what = format!("backup policy of {resource_type} {resource_id}");
    Ok(BackupTarget {
        team_id: row.get(0)?,
        resource_type,
        resource_id,
        name: row.get(2)?,
        region: row.get(3)?,
        policy: policy.map(|p| json_column(&p, &what)).transpose()?,
        backups_since: row.get(5)?,
        last_run: run_at(row, TARGET_COLUMNS)?,
    })
}
