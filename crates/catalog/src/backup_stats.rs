//! Backup statistics: per resource, what its backups have done. Updated in the same
//! transaction as the run whose outcome they count, and kept when old runs are pruned and when
//! the resource is deleted, so metrics and alerts never forget a failure.

use crate::Catalog;
use crate::error::{Context, Result};
use crate::model::{BackupRun, BackupStats, ResourceType, TeamId};
use crate::sql::{Row, Tx, params};

const SELECT: &str = "SELECT team_id, resource_type, resource_id, name, last_success_at, last_window_start,
    last_duration_secs, last_size_bytes, last_stored_bytes, successes, failures, missed, last_error, last_failure_at
    FROM backup_stats";

impl Catalog {
    /// The statistics of every resource of `team`, or of every team; by resource.
    pub fn backup_stats(&self, team: Option<TeamId>) -> Result<Vec<BackupStats>> {
        self.read(|tx| {
            let rows = tx
                .query(
                    &format!(
                        "{SELECT} WHERE CAST(?1 AS BIGINT) IS NULL OR team_id = ?1
                         ORDER BY team_id, resource_type, resource_id"
                    ),
                    params![team],
                )
                .context("listing backup statistics")?;
            rows.iter().map(stats_row).collect()
        })
    }

    /// The statistics of one resource, if its backups ever ran (or missed a window).
    pub fn backup_stats_of(&self, resource_type: ResourceType, resource_id: &str) -> Result<Option<BackupStats>> {
        self.read(|tx| {
            tx.query_opt(
                &format!("{SELECT} WHERE resource_type = ?1 AND resource_id = ?2"),
                params![resource_type, resource_id],
            )
            .context("reading backup statistics")?
            .as_ref()
            .map(stats_row)
            .transpose()
        })
    }
}

pub(crate) fn count_missed(
    tx: &Tx,
    team: TeamId,
    resource_type: ResourceType,
    resource_id: &str,
    name: &str,
) -> Result<()> {
    ensure_row(tx, team, resource_type, resource_id, Some(name))?;
    tx.execute(
        "UPDATE backup_stats SET missed = missed + 1 WHERE resource_type = ?1 AND resource_id = ?2",
        params![resource_type, resource_id],
    )
    .context("counting a missed backup")?;
    Ok(())
}

pub(crate) fn count_failure(tx: &Tx, run: &BackupRun, error: &str, now: i64) -> Result<()> {
    ensure_row(tx, run.team_id, run.resource_type, &run.resource_id, None)?;
    tx.execute(
        "UPDATE backup_stats SET failures = failures + 1, last_error = ?3, last_failure_at = ?4
         WHERE resource_type = ?1 AND resource_id = ?2",
        params![run.resource_type, run.resource_id, error, now],
    )
    .context("counting a failed backup")?;
    Ok(())
}

/// Counts a run that has just succeeded (its row holds the backup's figures).
pub(crate) fn count_success(tx: &Tx, run: &BackupRun) -> Result<()> {
    ensure_row(tx, run.team_id, run.resource_type, &run.resource_id, None)?;
    tx.execute(
        "UPDATE backup_stats SET successes = successes + 1, last_success_at = ?3, last_window_start = ?4,
            last_duration_secs = ?5, last_size_bytes = ?6, last_stored_bytes = ?7
         WHERE resource_type = ?1 AND resource_id = ?2",
        params![
            run.resource_type,
            run.resource_id,
            run.taken_at,
            run.window_start,
            run.duration_secs,
            run.size_bytes.map(|b| b as i64),
            run.stored_bytes.map(|b| b as i64),
        ],
    )
    .context("counting a successful backup")?;
    Ok(())
}

/// Creates the resource's row if needed and refreshes its name: `name` if given, else the
/// resource's current name, else (a deleted resource) the one already stored.
fn ensure_row(tx: &Tx, team: TeamId, resource_type: ResourceType, resource_id: &str, name: Option<&str>) -> Result<()> {
    let name = match name {
        Some(name) => Some(name.to_string()),
        None => resource_name(tx, resource_type, resource_id)?,
    };
    tx.execute(
        "INSERT INTO backup_stats (team_id, resource_type, resource_id, name)
            VALUES (?1, ?2, ?3, COALESCE(CAST(?4 AS TEXT), ''))
         ON CONFLICT (resource_type, resource_id) DO UPDATE SET name = COALESCE(CAST(?4 AS TEXT), backup_stats.name)",
        params![team, resource_type, resource_id, name],
    )
    .context("recording backup statistics")?;
    Ok(())
}

fn resource_name(tx: &Tx, resource_type: ResourceType, resource_id: &str) -> Result<Option<String>> {
    let name = match resource_type {
        // Droplet ids are integers; "017" is not droplet 17.
        ResourceType::Droplet => match resource_id.parse::<i64>() {
            Ok(id) if id.to_string() == resource_id => {
                tx.query_opt("SELECT name FROM droplets WHERE id = ?1", params![id])
            }
            _ => Ok(None),
        },
        ResourceType::Volume => tx.query_opt("SELECT name FROM volumes WHERE id = ?1", params![resource_id]),
        ResourceType::Image => Ok(None),
    };
    name.context("reading a resource's name")?.map(|row| row.get(0)).transpose()
}

fn stats_row(row: &Row) -> Result<BackupStats> {
    Ok(BackupStats {
        team_id: row.get(0)?,
        resource_type: row.get(1)?,
        resource_id: row.get(2)?,
        name: row.get(3)?,
        last_success_at: row.get(4)?,
        last_window_start: row.get(5)?,
        last_duration_secs: row.get(6)?,
        last_size_bytes: row.get(7)?,
        last_stored_bytes: row.get(8)?,
        successes: row.get(9)?,
        failures: row.get(10)?,
        missed: row.get(11)?,
        last_error: row.get(12)?,
        last_failure_at: row.get(13)?,
    })
}
