//! The scheduler: takes every backup its policy asks for, on time, once.
//!
//! Each tick reads every resource with backups on and asks the pure planner
//! (`drydock_schedule::tick::step`) what to do next; this file only carries the answer out
//! against the catalog and the worker pool. Every state change is a compare-and-set in the
//! catalog, and a window is claimed by inserting its row under a unique key, so two daemons
//! sharing a catalog can never take the same backup twice: the loser of the race simply sees
//! the window taken. After a crash nothing special happens: recovery ends the interrupted
//! action `errored`, and the next tick sees a failed attempt and retries inside the window.

use std::sync::Arc;
use std::time::Duration;

use drydock_catalog::{ActionStatus, BackupRun, BackupTarget, NewRun};
use drydock_schedule::Policy;
use drydock_schedule::tick::{self, Step, Target};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::error::Result;
use crate::events::{BackupEventKind, EventSink};
use crate::prune::Pruner;
use crate::runner::Jobs;

#[derive(Clone, Debug)]
pub struct SchedulerSettings {
    /// How often the scheduler looks at every policy, in real time. It also wakes when a
    /// backup ends.
    pub tick: Duration,
    /// Scheduled backups running at once; the rest wait for the next tick (their windows stay
    /// open). Manual actions are not counted.
    pub max_concurrent_backups: usize,
    /// Who claims runs: the host name and pid, shown in the catalog for operators.
    pub node: String,
    /// How often unreferenced data is garbage-collected, on the scheduler's clock.
    pub gc_interval: SignedDuration,
    /// How often every resource's retention is applied, besides after each backup.
    pub prune_interval: SignedDuration,
}

/// Steps one resource may take in one tick (missed windows recorded, then a start).
const STEPS_PER_TICK: usize = 64;

pub struct Scheduler {
    pub(crate) jobs: Arc<Jobs>,
    pub(crate) clock: Clock,
    pub(crate) events: Arc<dyn EventSink>,
    settings: SchedulerSettings,
    pub(crate) pruner: Pruner,
    wake: Notify,
}

/// What one tick did, for tests and logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub started: usize,
    pub completed: usize,
    pub failed_attempts: usize,
    pub given_up: usize,
    pub missed: usize,
    pub deferred: usize,
}

impl Scheduler {
    pub fn new(
        jobs: Arc<Jobs>,
        clock: Clock,
        events: Arc<dyn EventSink>,
        settings: SchedulerSettings,
    ) -> Arc<Scheduler> {
        let pruner = Pruner::new(jobs.clone(), clock.clone());
        Arc::new(Scheduler { jobs, clock, events, settings, pruner, wake: Notify::new() })
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn pruner(&self) -> &Pruner {
        &self.pruner
    }

    /// Asks for a tick now rather than at the next interval.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs ticks, pruning and gc until the task is aborted. Must be called inside a tokio
    /// runtime; the blocking work runs on blocking threads.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let scheduler = self.clone();
        tokio::spawn(async move {
            let mut last_prune = scheduler.clock.now();
            let mut last_gc = scheduler.clock.now();
            loop {
                let worker = scheduler.clone();
                match tokio::task::spawn_blocking(move || worker.tick()).await {
                    Ok(Ok(report)) if report != TickReport::default() => tracing::info!(?report, "scheduler tick"),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!("scheduler tick: {e}"),
                    Err(e) => tracing::error!("scheduler tick panicked: {e}"),
                }
                let now = scheduler.clock.now();
                if now.duration_since(last_prune) >= scheduler.settings.prune_interval {
                    last_prune = now;
                    let worker = scheduler.clone();
                    match tokio::task::spawn_blocking(move || worker.pruner.prune_all()).await {
                        Ok(Ok(pruned)) if pruned > 0 => tracing::info!(pruned, "expired backups pruned"),
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::error!("pruning expired backups: {e}"),
                        Err(e) => tracing::error!("pruning panicked: {e}"),
                    }
                }
                if now.duration_since(last_gc) >= scheduler.settings.gc_interval {
                    last_gc = now;
                    // In the background: a long gc must not hold back the next tick's backups.
                    scheduler.jobs.start_gc();
                }
                let sleep = tokio::time::sleep(scheduler.settings.tick);
                tokio::select! {
                    () = sleep => {}
                    () = scheduler.wake.notified() => {}
                    () = scheduler.jobs.action_ended() => {}
                }
            }
        })
    }

    /// One pass over every resource with backups on.
    pub fn tick(&self) -> Result<TickReport> {
        let targets = self.jobs.catalog().backup_targets()?;
        let mut report = TickReport::default();
        let mut running = targets
            .iter()
            .filter(|t| t.last_run.as_ref().is_some_and(|r| r.action_status == Some(ActionStatus::InProgress)))
            .count();
        for target in &targets {
            if let Err(e) = self.advance(target, &mut running, &mut report) {
                tracing::warn!("scheduling backups of {} {}: {e}", target.resource_type, target.resource_id);
            }
        }
        Ok(report)
    }

    /// Takes one resource as far as it can go now: records what ended or was missed, then
    /// starts (or retries) at most one backup.
    fn advance(&self, target: &BackupTarget, running: &mut usize, report: &mut TickReport) -> Result<()> {
        let policy = match Policy::from_json(target.policy.as_ref().unwrap_or(&Value::Null)) {
            Ok(policy) => policy,
            Err(e) => {
                tracing::warn!("{} {} has an unusable backup policy: {e}", target.resource_type, target.resource_id);
                return Ok(());
            }
        };
        let key = format!("{}:{}", target.resource_type, target.resource_id);
        let now = self.clock.now();
        let enabled_since = target.backups_since.and_then(|s| Timestamp::from_second(s).ok()).unwrap_or(now);
        let mut last: Option<BackupRun> = target.last_run.clone();
        for _ in 0..STEPS_PER_TICK {
            let state = last.as_ref().map(|run| self.run_state(run, now));
            let step = tick::step(&Target { key: &key, policy: &policy, enabled_since, last_run: state.as_ref() }, now);
            let run = last.as_ref();
            match step {
                Step::Wait { .. } | Step::Watch => return Ok(()),
                Step::Start { .. } | Step::Retry { .. } if *running >= self.settings.max_concurrent_backups => {
                    report.deferred += 1;
                    return Ok(());
                }
                Step::Start { window } => {
                    let new = NewRun {
                        team_id: target.team_id,
                        resource_type: target.resource_type,
                        resource_id: target.resource_id.clone(),
                        window_start: window.start.as_second(),
                        window_end: window.end.as_second(),
                        claimed_by: self.settings.node.clone(),
                        now: now.as_second(),
                    };
                    // None: another daemon claimed this window first, and takes the backup.
                    if let Some(run) = self.jobs.catalog().claim_run(&new)? {
                        self.start_attempt(target, &policy, &run, window, now)?;
                        *running += 1;
                        report.started += 1;
                    }
                    return Ok(());
                }
                Step::Retry { window } => {
                    let mut run = run.expect("a retry follows a run").clone();
                    // False: another daemon is retrying it.
                    if self.jobs.catalog().retry_run(run.id, run.attempts, &self.settings.node, now.as_second())? {
                        run.attempts += 1;
                        self.start_attempt(target, &policy, &run, window, now)?;
                        *running += 1;
                        report.started += 1;
                    }
                    return Ok(());
                }
                Step::Completed { window } => {
                    let run = run.expect("a completion follows a run");
                    if self.complete(target, &policy, run, window, now)? {
                        report.completed += 1;
                    }
                }
                Step::AttemptFailed { window, reason, retry_at } => {
                    let run = run.expect("a failed attempt follows a run");
                    let next = retry_at.map(|t| t.as_second());
                    if self.jobs.catalog().run_attempt_failed(run.id, run.attempts, &reason, next, now.as_second())? {
                        report.failed_attempts += 1;
                        tracing::warn!(
                            "backup of {} {} failed (attempt {}){}: {reason}",
                            target.resource_type,
                            target.resource_id,
                            run.attempts,
                            if retry_at.is_some() { ", retrying" } else { ", giving up" }
                        );
                        if retry_at.is_none() {
                            report.given_up += 1;
                            self.emit(BackupEventKind::Failed, target, window, now, run, Some(reason));
                        }
                    }
                }
                Step::GiveUp { window } => {
                    let run = run.expect("giving up follows a run");
                    if self.jobs.catalog().give_up_run(run.id, run.attempts, now.as_second())? {
                        report.given_up += 1;
                        let reason = run.error.clone().unwrap_or_else(|| "the backup window closed".into());
                        self.emit(BackupEventKind::Failed, target, window, now, run, Some(reason));
                    }
                }
                Step::Missed { window } => {
                    let recorded = self.jobs.catalog().record_missed(
                        target.team_id,
                        target.resource_type,
                        &target.resource_id,
                        &target.name,
                        window.start.as_second(),
                        window.end.as_second(),
                        now.as_second(),
                    )?;
                    if recorded {
                        report.missed += 1;
                        let missed = self.latest_run(target)?.expect("the missed run was just recorded");
                        let reason = "no backup was started during the window: the daemon was not running".to_string();
                        self.emit(BackupEventKind::Missed, target, window, now, &missed, Some(reason));
                    }
                }
            }
            // The step changed the run (or another daemon did): read where it stands.
            last = self.latest_run(target)?;
        }
        Ok(())
    }

    fn latest_run(&self, target: &BackupTarget) -> Result<Option<BackupRun>> {
        let runs = self.jobs.catalog().backup_runs(target.team_id, target.resource_type, &target.resource_id, 1)?;
        Ok(runs.into_iter().next())
    }
}
