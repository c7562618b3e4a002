//! What the scheduler reads every tick: each droplet and volume with backups on, with its
//! latest run and how that run's action stands. One query per resource kind, whatever the
//! number of resources (each latest run is found through the runs' unique key).

use rusqlite::Row;

use crate::Catalog;
use crate::backup_runs::{RUN_COLUMNS, run_at};
use crate::error::{Context, Result};
use crate::model::{BackupTarget, ResourceType, json_column};

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
                let what = format!("listing {resource_type}s with backups on");
                let mut statement = tx.prepare_cached(sql).context(&what)?;
                let rows =
                    statement.query_map([resource_type], |row| target_row(row, *resource_type)).context(&what)?;
                for target in rows {
                    targets.push(target.context(&what)??);
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

/// Reads a row; the policy's JSON is checked after the row is read, so a damaged one is
/// reported as such instead of as a SQLite type error.
fn target_row(row: &Row, resource_type: ResourceType) -> rusqlite::Result<Result<BackupTarget>> {
    let policy: Option<String> = row.get(4)?;
    let target = BackupTarget {
        team_id: row.get(0)?,
        resource_type,
        resource_id: row.get(1)?,
        name: row.get(2)?,
        region: row.get(3)?,
        policy: None,
        backups_since: row.get(5)?,
        last_run: run_at(row, TARGET_COLUMNS)?,
    };
    Ok(policy
        .map(|p| json_column(&p, &format!("backup policy of {resource_type} {}", target.resource_id)))
        .transpose()
        .map(|policy| BackupTarget { policy, ..target }))
}
