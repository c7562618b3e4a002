//! One backup attempt of the scheduler, from start to finish: the planner's view of a run, the
//! backup action that takes it (tagged when taken), and what follows its success — statistics,
//! retention, and the events that become webhooks.

use drydock_catalog::{
    ActionStatus, BackupRun, BackupTarget, ImageId, ImageType, NewAction, NewImage, ResourceType, RunStatus, StartError,
};
use drydock_schedule::tick::{self, RunState};
use drydock_schedule::{Policy, Window, tags};
use jiff::{SignedDuration, Timestamp};

use crate::clock::rfc3339;
use crate::error::Result;
use crate::events::{BackupEvent, BackupEventKind};
use crate::scheduler::Scheduler;

/// A run that was claimed but whose action never started is considered interrupted after this
/// long (the daemon that claimed it died between the two steps).
const UNSTARTED_RUN_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

impl Scheduler {
    /// The planner's view of a run, with the outcome of its action.
    pub(crate) fn run_state(&self, run: &BackupRun, now: Timestamp) -> RunState {
        let window = window_of(run);
        let outcome = match (run.status, run.action_status) {
            (RunStatus::Running, Some(ActionStatus::Completed)) => Some(Ok(())),
            (RunStatus::Running, Some(ActionStatus::Errored)) => {
                Some(Err(run.action_error.clone().unwrap_or_else(|| "the backup action errored".into())))
            }
            (RunStatus::Running, None) => {
                let claimed = run.claimed_at.and_then(|s| Timestamp::from_second(s).ok()).unwrap_or(now);
                (now.duration_since(claimed) > UNSTARTED_RUN_TIMEOUT)
                    .then(|| Err("interrupted: the daemon stopped before the backup started".to_string()))
            }
            _ => None,
        };
        RunState {
            window,
            status: schedule_status(run.status),
            attempts: run.attempts,
            next_attempt_at: run.next_attempt_at.and_then(|s| Timestamp::from_second(s).ok()),
            outcome,
        }
    }

    /// Records the backup action of one attempt and hands it to the workers.
    pub(crate) fn start_attempt(
        &self,
        target: &BackupTarget,
        policy: &Policy,
        run: &BackupRun,
        window: Window,
        now: Timestamp,
    ) -> Result<()> {
        let catalog = self.jobs.catalog();
        let previous = catalog
            .backup_stats_of(target.resource_type, &target.resource_id)?
            .and_then(|s| s.last_success_at)
            .and_then(|s| Timestamp::from_second(s).ok());
        let tags: Vec<String> = tags::tags_for(policy, now, previous).iter().map(|t| t.as_str().to_string()).collect();
        let local = now.to_zoned(policy.tz.clone());
        let image = NewImage {
            name: format!("{} {}", target.name, local.strftime("%Y-%m-%d %H:%M %Z")),
            kind: ImageType::Backup,
            resource_type: target.resource_type,
            resource_id: target.resource_id.clone(),
            size_bytes: 0,
            tags,
            created_at: Some(rfc3339(now.as_second())),
        };
        let action = NewAction {
            kind: "backup".into(),
            resource_type: target.resource_type,
            resource_id: target.resource_id.clone(),
            region: target.region.clone(),
            params: serde_json::json!({
                "run_id": run.id,
                "attempt": run.attempts,
                "window_start": rfc3339(window.start.as_second()),
                "window_end": rfc3339(window.end.as_second()),
            }),
        };
        match catalog.start_action(target.team_id, &action, Some(&image)) {
            Ok((action, image)) => {
                catalog.run_action_started(run.id, action.id, image.map(|i| i.id))?;
                self.jobs.spawn(action);
                Ok(())
            }
            Err(StartError::Locked { action_id, kind, .. }) => {
                // Busy with another action (a manual snapshot, a restore): try again shortly.
                let reason = format!(
                    "{} {} was busy with action {action_id} ({kind})",
                    target.resource_type, target.resource_id
                );
                let retry = tick::retry_at(run.attempts, now, window);
                catalog.run_attempt_failed(
                    run.id,
                    run.attempts,
                    &reason,
                    retry.map(|t| t.as_second()),
                    now.as_second(),
                )?;
                Ok(())
            }
            Err(StartError::Catalog(e)) => Err(e.into()),
        }
    }

    /// Finishes a run whose backup completed: records it, applies retention, tells the world.
    /// False if another daemon recorded it first.
    pub(crate) fn complete(
        &self,
        target: &BackupTarget,
        policy: &Policy,
        run: &BackupRun,
        window: Window,
        now: Timestamp,
    ) -> Result<bool> {
        let catalog = self.jobs.catalog();
        let image = match run.image_id {
            Some(id) => Some(catalog.image(target.team_id, id)?),
            None => None,
        };
        let action = match run.action_id {
            Some(id) => Some(catalog.action(target.team_id, id)?),
            None => None,
        };
        let taken_at = image.as_ref().and_then(|i| i.created_at.parse::<Timestamp>().ok()).unwrap_or(now);
        let duration = action
            .as_ref()
            .and_then(|a| {
                Some((a.started_at.parse::<Timestamp>().ok()?, a.completed_at.as_ref()?.parse::<Timestamp>().ok()?))
            })
            .map(|(start, end)| end.duration_since(start).as_secs_f64())
            .unwrap_or(0.0);
        let (size, stored) = image.as_ref().map(|i| (i.size_bytes, i.stored_bytes)).unwrap_or((0, 0));
        if !catalog.run_succeeded(
            run.id,
            run.attempts,
            taken_at.as_second(),
            now.as_second(),
            duration,
            size,
            stored,
        )? {
            return Ok(false);
        }
        let mut done = run.clone();
        done.status = RunStatus::Succeeded;
        let mut event = self.event(BackupEventKind::Succeeded, target, window, now, &done, None);
        event.size_bytes = Some(size);
        event.duration_secs = Some(duration);
        event.tags = image.as_ref().map(|i| i.tags.clone()).unwrap_or_default();
        self.events.send(event);
        if let Some(image) = &image {
            self.replicate(target, policy, image.id);
        }
        if let Err(e) =
            self.pruner.prune_resource(target.team_id, target.resource_type, &target.resource_id, Some(policy))
        {
            tracing::warn!("applying retention to {} {}: {e}", target.resource_type, target.resource_id);
        }
        Ok(true)
    }

    /// Copies a new backup to the policy's replication regions: one `transfer` action for all
    /// of them, which sends each region only the chunks it lacks.
    fn replicate(&self, target: &BackupTarget, policy: &Policy, image: ImageId) {
        let regions: Vec<&String> = policy.replication_regions.iter().filter(|r| **r != target.region).collect();
        let Some(first) = regions.first() else { return };
        let unknown: Vec<&&String> = regions.iter().filter(|r| self.jobs.regions().spec(r).is_none()).collect();
        if !unknown.is_empty() {
            tracing::warn!(
                "{} {}: not replicating backup image {image}: regions {unknown:?} are not configured",
                target.resource_type,
                target.resource_id
            );
            return;
        }
        let action = NewAction {
            kind: "transfer".into(),
            resource_type: ResourceType::Image,
            resource_id: image.to_string(),
            region: (*first).clone(),
            params: serde_json::json!({"regions": regions}),
        };
        match self.jobs.catalog().start_action(target.team_id, &action, None) {
            Ok((action, _)) => self.jobs.spawn(action),
            Err(e) => {
                tracing::warn!("{} {}: replicating backup image {image}: {e}", target.resource_type, target.resource_id)
            }
        }
    }

    pub(crate) fn emit(
        &self,
        kind: BackupEventKind,
        target: &BackupTarget,
        window: Window,
        now: Timestamp,
        run: &BackupRun,
        error: Option<String>,
    ) {
        self.events.send(self.event(kind, target, window, now, run, error));
    }

    fn event(
        &self,
        kind: BackupEventKind,
        target: &BackupTarget,
        window: Window,
        now: Timestamp,
        run: &BackupRun,
        error: Option<String>,
    ) -> BackupEvent {
        BackupEvent {
            kind,
            team_id: target.team_id,
            resource_type: target.resource_type,
            resource_id: target.resource_id.clone(),
            resource_name: target.name.clone(),
            window_start: rfc3339(window.start.as_second()),
            window_end: rfc3339(window.end.as_second()),
            at: rfc3339(now.as_second()),
            attempts: run.attempts,
            action_id: run.action_id,
            // A failed attempt's pending image was discarded: only a success names its backup.
            image_id: if kind == BackupEventKind::Succeeded { run.image_id } else { None },
            size_bytes: None,
            duration_secs: None,
            tags: Vec::new(),
            error,
        }
    }
}

fn window_of(run: &BackupRun) -> Window {
    let at = |s: i64| Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH);
    Window { start: at(run.window_start), end: at(run.window_end) }
}

fn schedule_status(status: RunStatus) -> tick::RunStatus {
    match status {
        RunStatus::Running => tick::RunStatus::Running,
        RunStatus::Retrying => tick::RunStatus::Retrying,
        RunStatus::Succeeded => tick::RunStatus::Succeeded,
        RunStatus::Failed => tick::RunStatus::Failed,
        RunStatus::Missed => tick::RunStatus::Missed,
    }
}
