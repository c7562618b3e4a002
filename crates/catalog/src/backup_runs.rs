//! Backup runs: one row per resource per backup window, claimed by inserting it under a unique
//! key. Every later change is a compare-and-set on the run's status and attempt count, so of
//! two daemons acting on the same run exactly one wins; the other gets `false` and leaves the
//! run alone. Times are unix seconds on the scheduler's clock, never read here.

use crate::Catalog;
use crate::backup_stats::{count_failure, count_missed, count_success};
use crate::error::{Context, Error, Result};
use crate::model::{ActionId, BackupRun, ImageId, NewRun, ResourceType, RunId, RunStatus, TeamId};
use crate::sql::{Row, ToValue, Tx, params};

/// A run's columns and its action's outcome, in the order `run_at` reads them, for a query
/// that joins `backup_runs r` and `actions a`.
pub(crate) const RUN_COLUMNS: &str = "r.id, r.team_id, r.resource_type, r.resource_id, r.window_start, r.window_end,
    r.status, r.attempts, r.failed_attempts, r.action_id, r.image_id, r.claimed_by, r.claimed_at, r.next_attempt_at,
    r.error, r.taken_at, r.finished_at, r.duration_secs, r.size_bytes, r.stored_bytes, a.status, a.error";

const FROM_RUNS: &str = "FROM backup_runs r LEFT JOIN actions a ON a.id = r.action_id";

/// Where a window's row conflicts: it is already claimed (or recorded missed).
const ON_CLAIMED: &str = "ON CONFLICT (resource_type, resource_id, window_start) DO NOTHING";

impl Catalog {
    /// Claims a backup window and starts its first attempt. `None` if the window already has a
    /// run: another daemon (or an earlier tick) took it.
    pub fn claim_run(&self, new: &NewRun) -> Result<Option<BackupRun>> {
        self.write(|tx| {
            let inserted = tx
                .query_opt(
                    &format!(
                        "INSERT INTO backup_runs (team_id, resource_type, resource_id, window_start, window_end, status,
                            attempts, claimed_by, claimed_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'running', 1, ?6, ?7) {ON_CLAIMED} RETURNING id"
                    ),
                    params![
                        new.team_id,
                        new.resource_type,
                        new.resource_id,
                        new.window_start,
                        new.window_end,
                        new.claimed_by,
                        new.now
                    ],
                )
                .context("claiming a backup window")?;
            // No row back: the window was already claimed.
            let Some(inserted) = inserted else { return Ok(None) };
            run_in(tx, inserted.get(0)?).map(Some)
        })
    }

    /// Records that a window closed with no backup taken. False if the window already has a
    /// run (then it was not missed, or is already recorded).
    #[allow(clippy::too_many_arguments, reason = "one value per column of the missed run")]
    pub fn record_missed(
        &self,
        team: TeamId,
        resource_type: ResourceType,
        resource_id: &str,
        name: &str,
        window_start: i64,
        window_end: i64,
        now: i64,
    ) -> Result<bool> {
        self.write(|tx| {
            let inserted = tx
                .execute(
                    &format!(
                        "INSERT INTO backup_runs (team_id, resource_type, resource_id, window_start, window_end, status,
                            finished_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'missed', ?6) {ON_CLAIMED}"
                    ),
                    params![team, resource_type, resource_id, window_start, window_end, now],
                )
                .context("recording a missed backup window")?;
            if inserted == 0 {
                return Ok(false);
            }
            count_missed(tx, team, resource_type, resource_id, name)?;
            Ok(true)
        })
    }

    /// Records the action (and the pending image) of a running run's current attempt.
    pub fn run_action_started(&self, run_id: RunId, action_id: ActionId, image_id: Option<ImageId>) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE backup_runs SET action_id = ?2, image_id = ?3 WHERE id = ?1 AND status = 'running'",
                    params![run_id, action_id, image_id],
                )
                .context("recording a backup run's action")?;
            if changed == 0 {
                let run = run_in(tx, run_id)?;
                return Err(Error::Conflict(format!("backup run {run_id} is {}, not running", run.status)));
            }
            Ok(())
        })
    }

    /// Starts the next attempt of a run waiting to retry. False if the run is no longer
    /// retrying with `expected_attempts` attempts: another daemon started it.
    pub fn retry_run(&self, run_id: RunId, expected_attempts: u32, claimed_by: &str, now: i64) -> Result<bool> {
        self.write(|tx| {
            transition(
                tx,
                run_id,
                (RunStatus::Retrying, expected_attempts),
                "status = 'running', attempts = attempts + 1, action_id = NULL, image_id = NULL, claimed_by = ?4,
                    claimed_at = ?5, next_attempt_at = NULL",
                &[&claimed_by, &now],
            )
        })
    }

    /// Ends a running attempt that failed: the run waits to retry at `next_attempt_at`, or, if
    /// `None`, fails for good; the attempt's pending image, discarded by its action, is forgotten.
    /// False if the run is no longer running that attempt.
    pub fn run_attempt_failed(
        &self,
        run_id: RunId,
        expected_attempts: u32,
        error: &str,
        next_attempt_at: Option<i64>,
        now: i64,
    ) -> Result<bool> {
        self.write(|tx| {
            let moved = transition(
                tx,
                run_id,
                (RunStatus::Running, expected_attempts),
                "status = CASE WHEN CAST(?4 AS BIGINT) IS NULL THEN 'failed' ELSE 'retrying' END, next_attempt_at = ?4,
                    failed_attempts = failed_attempts + 1, error = ?5, image_id = NULL,
                    finished_at = CASE WHEN CAST(?4 AS BIGINT) IS NULL THEN CAST(?6 AS BIGINT) END",
                &[&next_attempt_at, &error, &now],
            )?;
            if moved {
                let run = run_in(tx, run_id)?;
                count_failure(tx, &run, error, now)?;
            }
            Ok(moved)
        })
    }

    /// Ends a running attempt that took its backup at `taken_at`. False if the run is no
    /// longer running that attempt.
    #[allow(clippy::too_many_arguments, reason = "one value per column of the successful run")]
    pub fn run_succeeded(
        &self,
        run_id: RunId,
        expected_attempts: u32,
        taken_at: i64,
        now: i64,
        duration_secs: f64,
        size_bytes: u64,
        stored_bytes: u64,
    ) -> Result<bool> {
        self.write(|tx| {
            let moved = transition(
                tx,
                run_id,
                (RunStatus::Running, expected_attempts),
                "status = 'succeeded', next_attempt_at = NULL, taken_at = ?4, finished_at = ?5, duration_secs = ?6,
                    size_bytes = ?7, stored_bytes = ?8",
                &[&taken_at, &now, &duration_secs, &(size_bytes as i64), &(stored_bytes as i64)],
            )?;
            if moved {
                count_success(tx, &run_in(tx, run_id)?)?;
            }
            Ok(moved)
        })
    }

    /// Fails a run that was waiting to retry when its window closed. False if the run is no
    /// longer retrying with `expected_attempts` attempts.
    pub fn give_up_run(&self, run_id: RunId, expected_attempts: u32, now: i64) -> Result<bool> {
        self.write(|tx| {
            transition(
                tx,
                run_id,
                (RunStatus::Retrying, expected_attempts),
                "status = 'failed', next_attempt_at = NULL, finished_at = ?4",
                &[&now],
            )
        })
    }

    /// A resource's runs, newest window first, at most `limit`.
    pub fn backup_runs(
        &self,
        team: TeamId,
        resource_type: ResourceType,
        resource_id: &str,
        limit: u32,
    ) -> Result<Vec<BackupRun>> {
        self.read(|tx| {
            let rows = tx
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} {FROM_RUNS}
                         WHERE r.team_id = ?1 AND r.resource_type = ?2 AND r.resource_id = ?3
                         ORDER BY r.window_start DESC LIMIT ?4"
                    ),
                    params![team, resource_type, resource_id, limit],
                )
                .context("listing backup runs")?;
            Ok(rows.iter().map(|row| run_at(row, 0)).collect::<Result<Vec<_>>>()?.into_iter().flatten().collect())
        })
    }

    /// Deletes the finished runs whose window ended before `before`, and returns how many.
    /// Running and retrying runs stay, and so does each resource's latest run: the scheduler
    /// reads what it owes from it. The statistics stay too.
    pub fn prune_runs(&self, before: i64) -> Result<usize> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM backup_runs
                 WHERE window_end < ?1 AND status IN ('succeeded', 'failed', 'missed')
                   AND window_start < (SELECT MAX(l.window_start) FROM backup_runs l
                                       WHERE l.resource_type = backup_runs.resource_type
                                         AND l.resource_id = backup_runs.resource_id)",
                params![before],
            )
            .context("pruning backup runs")
            .map(|n| n as usize)
        })
    }
}

/// Applies `set` (whose parameters start at `?4`) to run `id` if it is still `from`: in that
/// status with that many attempts. False if it has moved on; an error if it does not exist.
fn transition(tx: &Tx, id: RunId, from: (RunStatus, u32), set: &str, values: &[&dyn ToValue]) -> Result<bool> {
    let (status, attempts) = from;
    let mut all: Vec<&dyn ToValue> = vec![&id, &status, &attempts];
    all.extend_from_slice(values);
    let changed = tx
        .execute(
            &format!("UPDATE backup_runs SET {set} WHERE id = ?1 AND status = ?2 AND attempts = ?3"),
            all.as_slice(),
        )
        .context("updating a backup run")?;
    if changed == 0 {
        run_in(tx, id)?;
    }
    Ok(changed == 1)
}

fn run_in(tx: &Tx, id: RunId) -> Result<BackupRun> {
    let row = tx
        .query_opt(&format!("SELECT {RUN_COLUMNS} {FROM_RUNS} WHERE r.id = ?1"), params![id])
        .context("reading a backup run")?;
    row.as_ref()
        .map(|row| run_at(row, 0))
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::not_found(format!("backup run {id}")))
}

/// Reads the run whose `RUN_COLUMNS` start at column `first`; `None` when its id is NULL (a
/// resource without runs, through a left join).
pub(crate) fn run_at(row: &Row, first: usize) -> Result<Option<BackupRun>> {
    let at = |n: usize| first + n;
    let Some(id) = row.get::<Option<RunId>>(at(0))? else { return Ok(None) };
    Ok(Some(BackupRun {
        id,
        team_id: row.get(at(1))?,
        resource_type: row.get(at(2))?,
        resource_id: row.get(at(3))?,
        window_start: row.get(at(4))?,
        window_end: row.get(at(5))?,
        status: row.get(at(6))?,
        attempts: row.get(at(7))?,
        failed_attempts: row.get(at(8))?,
        action_id: row.get(at(9))?,
        image_id: row.get(at(10))?,
        claimed_by: row.get(at(11))?,
        claimed_at: row.get(at(12))?,
        next_attempt_at: row.get(at(13))?,
        error: row.get(at(14))?,
        taken_at: row.get(at(15))?,
        finished_at: row.get(at(16))?,
        duration_secs: row.get(at(17))?,
        size_bytes: row.get(at(18))?,
        stored_bytes: row.get(at(19))?,
        action_status: row.get(at(20))?,
        action_error: row.get(at(21))?,
    }))
}
