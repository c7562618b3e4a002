//! The catalog's contract for scheduled backups: policies and their start, the targets the
//! scheduler reads, runs claimed once and changed only by compare-and-set, statistics, and
//! what retention reads. Part of `suite`: every backend runs it.

use std::sync::Barrier;

use drydock_catalog::{
    ActionId, ActionStatus, BackupRun, Catalog, Error, ImageFilter, ImageId, ImageType, NewDroplet, NewImage, NewRun,
    NewVolume, Page, RecoveredImage, ResourceType, RetentionSubject, RunStatus, StartError, TeamId,
};
use serde_json::json;

use super::{
    action_on, assert_conflict, assert_not_found, available_snapshot, copy, droplet, new_droplet, new_volume, two_teams,
};

/// 2026-01-01T00:00:00Z: the scheduler's clock, not the wall clock.
const T0: i64 = 1_767_225_600;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
/// Daemons racing for one run.
const RACERS: usize = 8;

fn new_run(team: TeamId, resource_type: ResourceType, resource_id: &str, window_start: i64) -> NewRun {
    NewRun {
        team_id: team,
        resource_type,
        resource_id: resource_id.to_string(),
        window_start,
        window_end: window_start + 4 * HOUR,
        claimed_by: "node-a".into(),
        now: window_start + 60,
    }
}

fn claim(catalog: &Catalog, team: TeamId, resource_id: &str, window_start: i64) -> BackupRun {
    catalog
        .claim_run(&new_run(team, ResourceType::Droplet, resource_id, window_start))
        .expect("claiming a window")
        .expect("a free window")
}

fn latest_run(catalog: &Catalog, team: TeamId, resource_type: ResourceType, resource_id: &str) -> BackupRun {
    let mut runs = catalog.backup_runs(team, resource_type, resource_id, 1).expect("listing runs");
    runs.pop().expect("a run")
}

fn backup_image(resource_type: ResourceType, resource_id: &str, created_at: Option<&str>) -> NewImage {
    NewImage {
        name: format!("backup of {resource_id}"),
        kind: ImageType::Backup,
        resource_type,
        resource_id: resource_id.to_string(),
        size_bytes: 1 << 30,
        tags: vec!["daily".into()],
        created_at: created_at.map(String::from),
    }
}

/// An available backup of a resource, taken at `created_at` by a completed action.
fn backup(
    catalog: &Catalog,
    team: TeamId,
    resource_type: ResourceType,
    resource_id: &str,
    created_at: &str,
) -> ImageId {
    let (action, image) = catalog
        .start_action(
            team,
            &action_on("backup", resource_type, resource_id),
            Some(&backup_image(resource_type, resource_id, Some(created_at))),
        )
        .expect("starting a backup");
    let image = image.expect("the pending backup");
    catalog.finish_image(image.id, &copy("local-1", 'b'), 1 << 30, 1 << 20).expect("finishing the backup");
    catalog.finish_action(action.id, Ok(())).expect("finishing the action");
    image.id
}

/// Starts the backup action of a run's current attempt and records it: (action, pending image).
fn start_attempt(catalog: &Catalog, team: TeamId, run: &BackupRun) -> (ActionId, ImageId) {
    let (action, image) = catalog
        .start_action(
            team,
            &action_on("backup", run.resource_type, &run.resource_id),
            Some(&backup_image(run.resource_type, &run.resource_id, None)),
        )
        .expect("starting the attempt's action");
    let image = image.expect("the pending backup").id;
    catalog.run_action_started(run.id, action.id, Some(image)).expect("recording the action");
    (action.id, image)
}

/// Runs `race(n)` on `RACERS` threads at once and returns what each got.
fn race<T: Send>(race: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(RACERS);
    std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|n| {
                let (barrier, race) = (&barrier, &race);
                scope.spawn(move || {
                    barrier.wait();
                    race(n)
                })
            })
            .collect();
        racers.into_iter().map(|racer| racer.join().expect("a racer panicked")).collect()
    })
}

pub fn backups_are_owed_from_when_they_are_turned_on(catalog: &Catalog) {
    let (a, b) = two_teams(catalog);
    let daily = json!({"plan": "daily", "hour": 4});
    let weekly = json!({"plan": "weekly", "weekday": "THU"});

    let id = droplet(catalog, a, "web-1");
    let state = |id| {
        let d = catalog.droplet(a, id).expect("the droplet");
        (d.backups_enabled, d.backup_policy, d.backups_since)
    };
    assert_eq!(state(id), (false, None, None));
    catalog.set_droplet_backups(a, id, true, Some(&daily), T0).expect("turning backups on");
    assert_eq!(state(id), (true, Some(daily.clone()), Some(T0)));
    // On again with a new policy: still owed from the first moment.
    catalog.set_droplet_backups(a, id, true, Some(&weekly), T0 + HOUR).expect("changing the policy");
    assert_eq!(state(id), (true, Some(weekly.clone()), Some(T0)));
    catalog.set_droplet_backups(a, id, false, None, T0 + 2 * HOUR).expect("turning backups off");
    assert_eq!(state(id), (false, Some(weekly.clone()), None), "the policy is kept, the start is not");
    catalog.set_droplet_backups(a, id, true, None, T0 + 3 * HOUR).expect("turning backups on again");
    assert_eq!(state(id), (true, Some(weekly.clone()), Some(T0 + 3 * HOUR)));
    assert_not_found(catalog.set_droplet_backups(b, id, false, None, T0), "another team's droplet");
    assert_eq!(state(id), (true, Some(weekly.clone()), Some(T0 + 3 * HOUR)));

    let volume = catalog.insert_volume(a, &new_volume("data", "local-1")).expect("a volume");
    assert_eq!((volume.backups_enabled, volume.backup_policy, volume.backups_since), (false, None, None));
    assert!(volume.backup_ids.is_empty());
    let state = |id: &str| {
        let v = catalog.volume(a, id).expect("the volume");
        (v.backups_enabled, v.backup_policy, v.backups_since)
    };
    catalog.set_volume_backups(a, &volume.id, true, Some(&daily), T0).expect("turning backups on");
    assert_eq!(state(&volume.id), (true, Some(daily.clone()), Some(T0)));
    catalog.set_volume_backups(a, &volume.id, true, Some(&weekly), T0 + HOUR).expect("changing the policy");
    assert_eq!(state(&volume.id), (true, Some(weekly.clone()), Some(T0)));
    catalog.set_volume_backups(a, &volume.id, false, None, T0 + 2 * HOUR).expect("turning backups off");
    assert_eq!(state(&volume.id), (false, Some(weekly.clone()), None));
    catalog.set_volume_backups(a, &volume.id, true, None, T0 + 3 * HOUR).expect("turning backups on again");
    assert_eq!(state(&volume.id), (true, Some(weekly.clone()), Some(T0 + 3 * HOUR)));
    assert_not_found(catalog.set_volume_backups(b, &volume.id, false, None, T0), "another team's volume");
    assert_not_found(catalog.set_volume_backups(a, "no-such-volume", true, None, T0), "an unknown volume");

    // Registered with backups on, from the given moment; with them off there is no start.
    let on = NewDroplet {
        backups_enabled: true,
        backup_policy: Some(daily.clone()),
        backups_since: Some(T0 + 5),
        ..new_droplet("web-2", &[])
    };
    let seen = catalog.insert_droplet(a, &on).expect("registering with backups");
    assert_eq!(
        (seen.backups_enabled, seen.backup_policy, seen.backups_since),
        (true, Some(daily.clone()), Some(T0 + 5))
    );
    let off = NewDroplet { backups_since: Some(T0), ..new_droplet("web-3", &[]) };
    assert_eq!(catalog.insert_droplet(a, &off).expect("registering").backups_since, None);
    let on = NewVolume {
        backups_enabled: true,
        backup_policy: Some(weekly.clone()),
        backups_since: Some(T0 + 7),
        ..new_volume("logs", "local-1")
    };
    let seen = catalog.insert_volume(a, &on).expect("registering with backups");
    assert_eq!((seen.backups_enabled, seen.backup_policy, seen.backups_since), (true, Some(weekly), Some(T0 + 7)));
    let off = NewVolume { backups_since: Some(T0), ..new_volume("tmp", "local-1") };
    assert_eq!(catalog.insert_volume(a, &off).expect("registering").backups_since, None);
}

pub fn backup_targets_are_the_resources_with_backups_on(catalog: &Catalog) {
    let (a, b) = two_teams(catalog);
    let policy = json!({"plan": "daily"});
    let on = droplet(catalog, a, "on");
    catalog.set_droplet_backups(a, on, true, Some(&policy), T0).expect("backups on");
    droplet(catalog, a, "never-on");
    let was_on = droplet(catalog, a, "was-on");
    catalog.set_droplet_backups(a, was_on, true, Some(&policy), T0).expect("backups on");
    catalog.set_droplet_backups(a, was_on, false, None, T0 + 1).expect("backups off");
    let theirs = droplet(catalog, b, "theirs");
    catalog.set_droplet_backups(b, theirs, true, None, T0 + 2).expect("backups on without a policy");
    let volume = catalog.insert_volume(a, &new_volume("data", "local-1")).expect("a volume");
    catalog.set_volume_backups(a, &volume.id, true, Some(&policy), T0 + 3).expect("backups on");
    catalog.insert_volume(a, &new_volume("quiet", "local-1")).expect("a volume without backups");

    let targets = catalog.backup_targets().expect("reading the targets");
    let keys: Vec<_> = targets.iter().map(|t| (t.team_id, t.resource_type, t.resource_id.clone())).collect();
    assert_eq!(
        keys,
        [
            (a, ResourceType::Droplet, on.to_string()),
            (b, ResourceType::Droplet, theirs.to_string()),
            (a, ResourceType::Volume, volume.id.clone())
        ]
    );
    let first = &targets[0];
    assert_eq!((first.name.as_str(), first.region.as_str()), ("on", "local-1"));
    assert_eq!(
        (first.policy.clone(), first.backups_since, first.last_run.clone()),
        (Some(policy.clone()), Some(T0), None)
    );
    assert_eq!((targets[1].policy.clone(), targets[1].backups_since), (None, Some(T0 + 2)));
    assert_eq!((targets[2].name.as_str(), targets[2].backups_since), ("data", Some(T0 + 3)));

    // The latest run is the latest window, not the latest claimed, with its action's outcome.
    let on_id = on.to_string();
    let late = claim(catalog, a, &on_id, T0 + DAY);
    let (action, image) = start_attempt(catalog, a, &late);
    catalog.finish_action(action, Err("disk unreadable".into())).expect("the attempt's action errors");
    claim(catalog, a, &on_id, T0);
    assert!(
        catalog
            .record_missed(a, ResourceType::Volume, &volume.id, "data", T0, T0 + 4 * HOUR, T0 + 5 * HOUR)
            .expect("a miss")
    );

    let targets = catalog.backup_targets().expect("reading the targets");
    let run = targets[0].last_run.clone().expect("the droplet's latest run");
    assert_eq!((run.id, run.window_start, run.status), (late.id, T0 + DAY, RunStatus::Running));
    assert_eq!((run.action_id, run.image_id), (Some(action), Some(image)));
    assert_eq!(
        (run.action_status, run.action_error.as_deref()),
        (Some(ActionStatus::Errored), Some("disk unreadable"))
    );
    assert_eq!(targets[1].last_run, None);
    let missed = targets[2].last_run.clone().expect("the volume's latest run");
    assert_eq!((missed.status, missed.action_status, missed.window_start), (RunStatus::Missed, None, T0));
}

pub fn a_window_is_claimed_once(catalog: &Catalog) {
    let team = catalog.ensure_team("t").expect("a team").id;
    let id = droplet(catalog, team, "web-1").to_string();
    let new = new_run(team, ResourceType::Droplet, &id, T0);
    let run = catalog.claim_run(&new).expect("claiming").expect("a free window");
    assert_eq!(
        (run.team_id, run.resource_type, run.resource_id.as_str(), run.window_start, run.window_end),
        (team, ResourceType::Droplet, id.as_str(), T0, T0 + 4 * HOUR)
    );
    assert_eq!((run.status, run.attempts, run.failed_attempts), (RunStatus::Running, 1, 0));
    assert_eq!((run.claimed_by.as_deref(), run.claimed_at), (Some("node-a"), Some(T0 + 60)));
    assert_eq!((run.action_id, run.image_id, run.action_status, run.error.clone()), (None, None, None, None));
    assert_eq!((run.next_attempt_at, run.taken_at, run.finished_at), (None, None, None));
    assert_eq!((run.duration_secs, run.size_bytes, run.stored_bytes), (None, None, None));
    assert_eq!(latest_run(catalog, team, ResourceType::Droplet, &id), run);

    let again = NewRun { claimed_by: "node-b".into(), now: T0 + 61, ..new.clone() };
    assert_eq!(catalog.claim_run(&again).expect("claiming again"), None, "a window claimed twice");
    assert!(!catalog.record_missed(team, ResourceType::Droplet, &id, "web-1", T0, T0 + 1, T0 + 2).expect("a miss"));
    assert_eq!(catalog.backup_runs(team, ResourceType::Droplet, &id, 10).expect("runs"), [run]);
    // The same window of a volume with the same id text is another window.
    let volume = new_run(team, ResourceType::Volume, &id, T0);
    assert!(catalog.claim_run(&volume).expect("claiming").is_some());

    // Daemons racing for the next window: exactly one takes it.
    let next = new_run(team, ResourceType::Droplet, &id, T0 + DAY);
    let claims = race(|n| {
        let mine = NewRun { claimed_by: format!("node-{n}"), ..next.clone() };
        catalog.claim_run(&mine).expect("claiming")
    });
    let winners: Vec<BackupRun> = claims.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(latest_run(catalog, team, ResourceType::Droplet, &id), winners[0]);
    assert_eq!(catalog.backup_runs(team, ResourceType::Droplet, &id, 10).expect("runs").len(), 2);
}

pub fn a_missed_window_is_recorded_once(catalog: &Catalog) {
    let team = catalog.ensure_team("t").expect("a team").id;
    let id = droplet(catalog, team, "web-1").to_string();
    let end = T0 + 4 * HOUR;
    assert!(catalog.record_missed(team, ResourceType::Droplet, &id, "web-1", T0, end, end + 60).expect("a miss"));
    assert!(!catalog.record_missed(team, ResourceType::Droplet, &id, "web-1", T0, end, end + 90).expect("again"));
    let run = latest_run(catalog, team, ResourceType::Droplet, &id);
    assert_eq!((run.status, run.attempts, run.window_start, run.window_end), (RunStatus::Missed, 0, T0, end));
    assert_eq!((run.claimed_by, run.finished_at, run.action_id), (None, Some(end + 60), None));
    assert_eq!(catalog.claim_run(&new_run(team, ResourceType::Droplet, &id, T0)).expect("claiming"), None);

    let stats = catalog.backup_stats_of(ResourceType::Droplet, &id).expect("stats").expect("stats of the droplet");
    assert_eq!((stats.team_id, stats.name.as_str()), (team, "web-1"));
    assert_eq!((stats.missed, stats.successes, stats.failures, stats.last_success_at), (1, 0, 0, None));
    assert!(
        catalog.record_missed(team, ResourceType::Droplet, &id, "web-1", T0 + DAY, end + DAY, end + DAY).expect("miss")
    );
    assert_eq!(catalog.backup_stats_of(ResourceType::Droplet, &id).expect("stats").expect("stats").missed, 2);
}

pub fn a_failed_attempt_is_retried_until_the_backup_is_taken(catalog: &Catalog) {
    let team = catalog.ensure_team("t").expect("a team").id;
    let id = droplet(catalog, team, "web-1").to_string();
    let stats = || catalog.backup_stats_of(ResourceType::Droplet, &id).expect("stats");
    let run = claim(catalog, team, &id, T0);
    assert_eq!(stats(), None, "claiming is not an outcome");

    // Attempt 1: its action errors.
    let (action, image) = start_attempt(catalog, team, &run);
    catalog.finish_action(action, Err("power command failed".into())).expect("the action errors");
    catalog.discard_pending_image(image).expect("discarding its image");
    let seen = latest_run(catalog, team, ResourceType::Droplet, &id);
    assert_eq!(
        (seen.action_id, seen.image_id, seen.action_status),
        (Some(action), Some(image), Some(ActionStatus::Errored))
    );
    assert_eq!(seen.action_error.as_deref(), Some("power command failed"));
    assert!(catalog.run_attempt_failed(run.id, 1, "power command failed", Some(T0 + 180), T0 + 120).expect("failing"));
    assert!(!catalog.run_attempt_failed(run.id, 1, "again", Some(T0 + 180), T0 + 121).expect("failing twice"));
    assert!(!catalog.run_succeeded(run.id, 1, T0, T0 + 121, 1.0, 1, 1).expect("succeeding after failing"));
    let seen = latest_run(catalog, team, ResourceType::Droplet, &id);
    assert_eq!((seen.status, seen.attempts, seen.failed_attempts), (RunStatus::Retrying, 1, 1));
    assert_eq!(
        (seen.next_attempt_at, seen.error.as_deref(), seen.finished_at),
        (Some(T0 + 180), Some("power command failed"), None)
    );
    assert_eq!((seen.action_id, seen.image_id), (Some(action), None), "the discarded image is forgotten");
    let counted = stats().expect("stats after a failure");
    assert_eq!((counted.failures, counted.successes, counted.name.as_str()), (1, 0, "web-1"));
    assert_eq!(
        (counted.last_error.as_deref(), counted.last_failure_at),
        (Some("power command failed"), Some(T0 + 120))
    );

    // Attempt 2, started by another daemon: it succeeds.
    assert!(!catalog.retry_run(run.id, 2, "node-b", T0 + 180).expect("retrying with the wrong count"));
    assert!(catalog.retry_run(run.id, 1, "node-b", T0 + 180).expect("retrying"));
    assert!(!catalog.retry_run(run.id, 1, "node-c", T0 + 181).expect("retrying twice"));
    let seen = latest_run(catalog, team, ResourceType::Droplet, &id);
    assert_eq!((seen.status, seen.attempts, seen.failed_attempts), (RunStatus::Running, 2, 1));
    assert_eq!((seen.action_id, seen.image_id, seen.action_status, seen.next_attempt_at), (None, None, None, None));
    assert_eq!((seen.claimed_by.as_deref(), seen.claimed_at), (Some("node-b"), Some(T0 + 180)));
    assert_eq!(seen.error.as_deref(), Some("power command failed"), "the last failure's reason stays");
    let (action, image) = start_attempt(catalog, team, &seen);
    catalog.finish_image(image, &copy("local-1", 'c'), 10 << 30, 1 << 30).expect("finishing the image");
    catalog.finish_action(action, Ok(())).expect("the action completes");
    assert_eq!(latest_run(catalog, team, ResourceType::Droplet, &id).action_status, Some(ActionStatus::Completed));
    assert!(!catalog.run_succeeded(run.id, 1, T0 + 190, T0 + 400, 1.0, 1, 1).expect("a stale attempt"));
    assert!(catalog.run_succeeded(run.id, 2, T0 + 190, T0 + 460, 270.5, 10 << 30, 1 << 30).expect("succeeding"));
    assert!(!catalog.run_succeeded(run.id, 2, T0 + 190, T0 + 461, 270.5, 10 << 30, 1 << 30).expect("again"));
    assert!(!catalog.run_attempt_failed(run.id, 2, "late", None, T0 + 461).expect("failing a success"));

    let seen = latest_run(catalog, team, ResourceType::Droplet, &id);
    assert_eq!((seen.status, seen.attempts, seen.failed_attempts), (RunStatus::Succeeded, 2, 1));
    assert_eq!((seen.taken_at, seen.finished_at, seen.duration_secs), (Some(T0 + 190), Some(T0 + 460), Some(270.5)));
    assert_eq!((seen.size_bytes, seen.stored_bytes, seen.next_attempt_at), (Some(10 << 30), Some(1 << 30), None));
    assert_eq!((seen.action_id, seen.image_id), (Some(action), Some(image)));
    let counted = stats().expect("stats after a success");
    assert_eq!((counted.successes, counted.failures, counted.missed), (1, 1, 0));
    assert_eq!((counted.last_success_at, counted.last_window_start), (Some(T0 + 190), Some(T0)));
    assert_eq!(
        (counted.last_duration_secs, counted.last_size_bytes, counted.last_stored_bytes),
        (Some(270.5), Some(10 << 30), Some(1 << 30))
    );
    assert_eq!(counted.last_error.as_deref(), Some("power command failed"));
}

pub fn a_retry_is_started_by_one_daemon(catalog: &Catalog) {
    let team = catalog.ensure_team("t").expect("a team").id;
    let id = droplet(catalog, team, "web-1").to_string();
    let run = claim(catalog, team, &id, T0);
    assert!(catalog.run_attempt_failed(run.id, 1, "busy", Some(T0 + 60), T0 + 1).expect("failing"));

    let retried = race(|n| catalog.retry_run(run.id, 1, &format!("node-{n}"), T0 + 60).expect("retrying"));
    assert_eq!(retried.iter().filter(|won| **won).count(), 1, "{retried:?}");
    let winner = retried.iter().position(|won| *won).expect("a winner");
    let seen = latest_run(catalog, team, ResourceType::Droplet, &id);
    assert_eq!((seen.status, seen.attempts), (RunStatus::Running, 2));
    assert_eq!(seen.claimed_by, Some(format!("node-{winner}")));

    // Ending one attempt from several daemons at once, some as a success, some as a failure:
    // one outcome is recorded.
    let ended = race(|n| {
        if n % 2 == 0 {
            catalog.run_succeeded(run.id, 2, T0 + 70, T0 + 90, 20.0, 1, 1).expect("succeeding")
        } else {
            catalog.run_attempt_failed(run.id, 2, "lost", None, T0 + 90).expect("failing")
        }
    });
    assert_eq!(ended.iter().filter(|won| **won).count(), 1, "{ended:?}");
    let stats = catalog.backup_stats_of(ResourceType::Droplet, &id).expect("stats").expect("stats");
    assert_eq!(stats.successes + stats.failures, 2, "one failure before, one outcome now");
}

pub fn a_run_fails_for_good_out_of_attempts_or_time(catalog: &Catalog) {
    let team = catalog.ensure_team("t").expect("a team").id;
    let id = droplet(catalog, team, "web-1").to_string();

    // No retry time: the run fails at once.
    let out_of_attempts = claim(catalog, team, &id, T0);
    assert!(catalog.run_attempt_failed(out_of_attempts.id, 1, "disk unreadable", None, T0 + 60).expect("failing"));
    let seen = latest_run(catalog, team, ResourceType::Droplet, &id);
    assert_eq!((seen.status, seen.finished_at, seen.next_attempt_at), (RunStatus::Failed, Some(T0 + 60), None));
    assert!(!catalog.retry_run(out_of_attempts.id, 1, "node-a", T0 + 61).expect("retrying a failed run"));
    assert!(!catalog.give_up_run(out_of_attempts.id, 1, T0 + 61).expect("giving up a failed run"));
    assert_conflict(catalog.run_action_started(out_of_attempts.id, 1, None), "an action for a failed run");

    // Waiting to retry when the window closes.
    let closed = claim(catalog, team, &id, T0 + DAY);
    assert!(catalog.run_attempt_failed(closed.id, 1, "busy", Some(T0 + DAY + 60), T0 + DAY + 1).expect("failing"));
    assert!(!catalog.give_up_run(closed.id, 2, T0 + DAY + 4 * HOUR).expect("giving up with the wrong count"));
    assert!(catalog.give_up_run(closed.id, 1, T0 + DAY + 4 * HOUR).expect("giving up"));
    assert!(!catalog.give_up_run(closed.id, 1, T0 + DAY + 4 * HOUR).expect("giving up twice"));
    let seen = latest_run(catalog, team, ResourceType::Droplet, &id);
    assert_eq!(
        (seen.status, seen.finished_at, seen.next_attempt_at),
        (RunStatus::Failed, Some(T0 + DAY + 4 * HOUR), None)
    );
    assert_eq!((seen.error.as_deref(), seen.failed_attempts), (Some("busy"), 1));

    // A running attempt is not given up: its action decides.
    let running = claim(catalog, team, &id, T0 + 2 * DAY);
    assert!(!catalog.give_up_run(running.id, 1, T0 + 3 * DAY).expect("giving up a running attempt"));
    assert_eq!(latest_run(catalog, team, ResourceType::Droplet, &id).status, RunStatus::Running);

    let stats = catalog.backup_stats_of(ResourceType::Droplet, &id).expect("stats").expect("stats");
    assert_eq!((stats.failures, stats.successes, stats.last_error.as_deref()), (2, 0, Some("busy")));
    assert_eq!(stats.last_failure_at, Some(T0 + DAY + 1));

    // Unknown runs are errors, not lost races.
    let unknown = running.id + 1000;
    assert_not_found(catalog.retry_run(unknown, 1, "node-a", T0), "retrying an unknown run");
    assert_not_found(catalog.run_attempt_failed(unknown, 1, "x", None, T0), "failing an unknown run");
    assert_not_found(catalog.run_succeeded(unknown, 1, T0, T0, 1.0, 1, 1), "an unknown run succeeding");
    assert_not_found(catalog.give_up_run(unknown, 1, T0), "giving up an unknown run");
    assert_not_found(catalog.run_action_started(unknown, 1, None), "an action for an unknown run");
}

pub fn finished_runs_are_pruned_but_each_resource_keeps_its_latest(catalog: &Catalog) {
    let team = catalog.ensure_team("t").expect("a team").id;
    let id = droplet(catalog, team, "web-1").to_string();
    let succeeded = claim(catalog, team, &id, T0);
    assert!(catalog.run_succeeded(succeeded.id, 1, T0 + 60, T0 + 120, 60.0, 1, 1).expect("succeeding"));
    catalog
        .record_missed(team, ResourceType::Droplet, &id, "web-1", T0 + DAY, T0 + DAY + 4 * HOUR, T0 + 2 * DAY)
        .expect("a miss");
    let failed = claim(catalog, team, &id, T0 + 2 * DAY);
    assert!(catalog.run_attempt_failed(failed.id, 1, "broken", None, T0 + 2 * DAY + 60).expect("failing"));
    let retrying = claim(catalog, team, &id, T0 + 3 * DAY);
    assert!(
        catalog.run_attempt_failed(retrying.id, 1, "busy", Some(T0 + 3 * DAY + 60), T0 + 3 * DAY).expect("failing")
    );
    claim(catalog, team, &id, T0 + 4 * DAY);
    let other = droplet(catalog, team, "web-2").to_string();
    let alone = claim(catalog, team, &other, T0);
    assert!(catalog.run_succeeded(alone.id, 1, T0 + 60, T0 + 120, 60.0, 1, 1).expect("succeeding"));

    let windows = |id: &str| -> Vec<i64> {
        let runs = catalog.backup_runs(team, ResourceType::Droplet, id, 100).expect("runs");
        runs.iter().map(|r| r.window_start - T0).collect()
    };
    assert_eq!(windows(&id), [4 * DAY, 3 * DAY, 2 * DAY, DAY, 0], "newest first");
    assert_eq!(catalog.backup_runs(team, ResourceType::Droplet, &id, 2).expect("runs").len(), 2);
    assert_eq!(catalog.prune_runs(T0).expect("pruning nothing"), 0);
    // Windows that ended before the moment, not at it.
    assert_eq!(catalog.prune_runs(T0 + 2 * DAY + 4 * HOUR).expect("pruning"), 2);
    assert_eq!(windows(&id), [4 * DAY, 3 * DAY, 2 * DAY]);
    assert_eq!(catalog.prune_runs(T0 + 100 * DAY).expect("pruning"), 1);
    assert_eq!(windows(&id), [4 * DAY, 3 * DAY], "running and retrying runs stay");
    assert_eq!(windows(&other), [0], "a resource's latest run stays");

    let stats = catalog.backup_stats_of(ResourceType::Droplet, &id).expect("stats").expect("stats");
    assert_eq!((stats.successes, stats.missed, stats.failures), (1, 1, 2), "statistics outlive the runs");
}

pub fn backup_statistics_outlive_their_resource(catalog: &Catalog) {
    let (a, b) = two_teams(catalog);
    let web = droplet(catalog, a, "web-1");
    let db = droplet(catalog, b, "db-1").to_string();
    let volume = catalog.insert_volume(a, &new_volume("data", "local-1")).expect("a volume");
    let web_run = claim(catalog, a, &web.to_string(), T0);
    assert!(catalog.run_succeeded(web_run.id, 1, T0 + 60, T0 + 90, 30.0, 5, 2).expect("succeeding"));
    catalog.record_missed(a, ResourceType::Volume, &volume.id, "data", T0, T0 + 1, T0 + 2).expect("a miss");
    let db_run = claim(catalog, b, &db, T0);
    assert!(catalog.run_attempt_failed(db_run.id, 1, "broken", None, T0 + 60).expect("failing"));

    let keys = |team| -> Vec<(ResourceType, String)> {
        let stats = catalog.backup_stats(team).expect("stats");
        stats.into_iter().map(|s| (s.resource_type, s.resource_id)).collect()
    };
    assert_eq!(keys(Some(a)), [(ResourceType::Droplet, web.to_string()), (ResourceType::Volume, volume.id.clone())]);
    assert_eq!(keys(Some(b)), [(ResourceType::Droplet, db.clone())]);
    assert_eq!(keys(None).len(), 3);
    let all = catalog.backup_stats(None).expect("stats");
    let web_stats = all.iter().find(|s| s.resource_id == web.to_string()).expect("the droplet's stats");
    assert_eq!((web_stats.team_id, web_stats.name.as_str(), web_stats.successes), (a, "web-1", 1));
    let db_stats = all.iter().find(|s| s.resource_id == db).expect("the other team's stats");
    assert_eq!((db_stats.team_id, db_stats.name.as_str(), db_stats.failures), (b, "db-1", 1));

    // The name follows a rename, and stays once the resource is gone.
    catalog.rename_droplet(a, web, "web-renamed").expect("renaming");
    let next = claim(catalog, a, &web.to_string(), T0 + DAY);
    assert!(catalog.run_attempt_failed(next.id, 1, "busy", Some(T0 + DAY + 60), T0 + DAY).expect("failing"));
    catalog.delete_droplet(a, web).expect("deleting the droplet");
    assert!(catalog.give_up_run(next.id, 1, T0 + DAY + 4 * HOUR).expect("giving up"));
    let last = claim(catalog, a, &web.to_string(), T0 + 2 * DAY);
    assert!(catalog.run_attempt_failed(last.id, 1, "gone", None, T0 + 2 * DAY).expect("failing"));
    let stats = catalog.backup_stats_of(ResourceType::Droplet, &web.to_string()).expect("stats").expect("kept");
    assert_eq!((stats.name.as_str(), stats.successes, stats.failures), ("web-renamed", 1, 2));
    assert_eq!(catalog.backup_stats_of(ResourceType::Droplet, "424242").expect("stats"), None);
}

pub fn backups_of_a_deleted_resource_expire(catalog: &Catalog) {
    let (a, b) = two_teams(catalog);
    let id = droplet(catalog, a, "web-1");
    let rid = id.to_string();
    let backups = [
        backup(catalog, a, ResourceType::Droplet, &rid, "2026-01-01T04:10:00Z"),
        backup(catalog, a, ResourceType::Droplet, &rid, "2026-01-02T04:10:00Z"),
    ];
    let (snapshot, _) = available_snapshot(catalog, a, id, "kept until deleted");
    let (action, pending) = catalog
        .start_action(
            a,
            &action_on("backup", ResourceType::Droplet, id),
            Some(&backup_image(ResourceType::Droplet, &rid, None)),
        )
        .expect("starting a backup");
    let pending = pending.expect("the pending backup").id;
    catalog.finish_action(action.id, Err("interrupted".into())).expect("ending it");
    catalog.delete_droplet(a, id).expect("deleting the droplet");

    assert_eq!(catalog.expire_backups(b, ResourceType::Droplet, &rid, T0).expect("another team's"), 0);
    assert_eq!(catalog.expire_backups(a, ResourceType::Volume, &rid, T0).expect("another kind"), 0);
    assert_eq!(catalog.expire_backups(a, ResourceType::Droplet, &rid, T0 + 28 * DAY).expect("expiring"), 2);
    assert_eq!(
        catalog.expire_backups(a, ResourceType::Droplet, &rid, T0 + 99 * DAY).expect("again"),
        0,
        "a date is set once"
    );
    let expiry = |image| catalog.image(a, image).expect("the image").expires_at;
    assert_eq!(backups.map(expiry), [Some(T0 + 28 * DAY); 2]);
    assert_eq!((expiry(snapshot), expiry(pending)), (None, None));
    assert_eq!(
        catalog
            .backup_images(a, ResourceType::Droplet, &rid)
            .expect("backups")
            .iter()
            .map(|i| i.expires_at)
            .collect::<Vec<_>>(),
        [Some(T0 + 28 * DAY); 2]
    );

    let subjects = catalog.retention_subjects().expect("subjects");
    let subject = RetentionSubject {
        team_id: a,
        resource_type: ResourceType::Droplet,
        resource_id: rid,
        policy: None,
        exists: false,
    };
    assert_eq!(subjects, [subject]);
}

pub fn retention_applies_to_every_resource_with_backups(catalog: &Catalog) {
    let (a, b) = two_teams(catalog);
    let (daily, weekly, monthly) = (json!({"plan": "daily"}), json!({"plan": "weekly"}), json!({"plan": "monthly"}));
    let at = "2026-01-01T04:00:00Z";
    let on = droplet(catalog, a, "on");
    catalog.set_droplet_backups(a, on, true, Some(&daily), T0).expect("backups on");
    backup(catalog, a, ResourceType::Droplet, &on.to_string(), at);
    let off = droplet(catalog, a, "off");
    catalog.set_droplet_backups(a, off, true, Some(&weekly), T0).expect("backups on");
    catalog.set_droplet_backups(a, off, false, None, T0 + 1).expect("backups off");
    backup(catalog, a, ResourceType::Droplet, &off.to_string(), at);
    let snapshots_only = droplet(catalog, a, "snapshots-only");
    available_snapshot(catalog, a, snapshots_only, "manual");
    let no_backups_yet = droplet(catalog, a, "no-backups-yet");
    catalog.set_droplet_backups(a, no_backups_yet, true, Some(&daily), T0).expect("backups on");
    let volume = catalog.insert_volume(a, &new_volume("data", "local-1")).expect("a volume");
    catalog.set_volume_backups(a, &volume.id, true, Some(&monthly), T0).expect("backups on");
    backup(catalog, a, ResourceType::Volume, &volume.id, at);
    let theirs = droplet(catalog, b, "theirs");
    catalog.set_droplet_backups(b, theirs, true, None, T0).expect("backups on");
    backup(catalog, b, ResourceType::Droplet, &theirs.to_string(), at);
    let gone = droplet(catalog, a, "gone");
    backup(catalog, a, ResourceType::Droplet, &gone.to_string(), at);
    catalog.delete_droplet(a, gone).expect("deleting");
    // A backup recovered under a resource id that only looks like a droplet's.
    let lookalike = format!("0{on}");
    let recovered = RecoveredImage {
        team_uuid: catalog.team(a).expect("team a").uuid,
        image_id: 9000,
        image_uuid: "00000000-0000-4000-8000-000000009000".into(),
        name: "recovered".into(),
        kind: ImageType::Backup,
        resource_type: ResourceType::Droplet,
        resource_id: lookalike.clone(),
        size_bytes: 1,
        stored_bytes: 1,
        created_at: at.into(),
    };
    catalog.recover_image(&recovered, &copy("local-1", '9')).expect("recovering");

    let subject = |team_id, resource_type, resource_id: String, policy: Option<&serde_json::Value>, exists| {
        RetentionSubject { team_id, resource_type, resource_id, policy: policy.cloned(), exists }
    };
    let mut expected = vec![
        subject(a, ResourceType::Droplet, on.to_string(), Some(&daily), true),
        subject(a, ResourceType::Droplet, off.to_string(), Some(&weekly), true),
        subject(a, ResourceType::Volume, volume.id.clone(), Some(&monthly), true),
        subject(b, ResourceType::Droplet, theirs.to_string(), None, true),
        subject(a, ResourceType::Droplet, gone.to_string(), None, false),
        subject(a, ResourceType::Droplet, lookalike, None, false),
    ];
    let key = |s: &RetentionSubject| (s.team_id, s.resource_type.as_str(), s.resource_id.clone());
    expected.sort_by_key(key);
    assert_eq!(catalog.retention_subjects().expect("subjects"), expected);
}

pub fn backups_of_a_resource_are_listed_oldest_first(catalog: &Catalog) {
    let (a, b) = two_teams(catalog);
    let id = droplet(catalog, a, "web-1");
    let rid = id.to_string();
    let third = backup(catalog, a, ResourceType::Droplet, &rid, "2026-01-03T04:00:00Z");
    let first = backup(catalog, a, ResourceType::Droplet, &rid, "2026-01-01T04:00:00Z");
    // Stored in UTC whatever the offset it is given with, so that it sorts among the others.
    let second = backup(catalog, a, ResourceType::Droplet, &rid, "2026-01-02T05:00:00+01:00");
    available_snapshot(catalog, a, id, "a snapshot is not a backup");
    let (action, _) = catalog
        .start_action(
            a,
            &action_on("backup", ResourceType::Droplet, id),
            Some(&backup_image(ResourceType::Droplet, &rid, None)),
        )
        .expect("a backup left pending");
    catalog.finish_action(action.id, Ok(())).expect("ending it");
    let neighbour = droplet(catalog, a, "web-2");
    backup(catalog, a, ResourceType::Droplet, &neighbour.to_string(), "2026-01-01T00:00:00Z");

    let listed = catalog.backup_images(a, ResourceType::Droplet, &rid).expect("backups");
    assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), [first, second, third], "by the time taken");
    assert_eq!(listed[0].created_at, "2026-01-01T04:00:00Z", "the given time is stored");
    assert_eq!(listed[1].created_at, "2026-01-02T04:00:00Z", "in UTC");
    assert_eq!(
        (listed[0].kind, listed[0].expires_at, listed[0].tags.clone()),
        (ImageType::Backup, None, vec!["daily".to_string()])
    );
    assert!(catalog.backup_images(b, ResourceType::Droplet, &rid).expect("another team's").is_empty());
    let mut by_id = vec![first, second, third];
    by_id.sort_unstable();
    assert_eq!(catalog.droplet(a, id).expect("the droplet").backup_ids, by_id);

    let volume = catalog.insert_volume(a, &new_volume("data", "local-1")).expect("a volume");
    let volume_backup = backup(catalog, a, ResourceType::Volume, &volume.id, "2026-01-01T04:00:00Z");
    assert_eq!(catalog.volume(a, &volume.id).expect("the volume").backup_ids, [volume_backup]);
    let listed = catalog.backup_images(a, ResourceType::Volume, &volume.id).expect("backups");
    assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), [volume_backup]);

    // Without a time, an image is taken now (on the wall clock).
    let (action, image) = catalog
        .start_action(
            a,
            &action_on("snapshot", ResourceType::Droplet, id),
            Some(&backup_image(ResourceType::Droplet, &rid, None)),
        )
        .expect("a backup");
    let created_at = image.expect("the pending image").created_at;
    catalog.finish_action(action.id, Ok(())).expect("ending it");
    assert!(created_at.len() == 20 && created_at.ends_with('Z') && created_at.as_str() > "2026-01-01", "{created_at}");

    // A time that is not one is refused, and nothing is started.
    let garbled = backup_image(ResourceType::Droplet, &rid, Some("Thursday at four"));
    match catalog.start_action(a, &action_on("backup", ResourceType::Droplet, id), Some(&garbled)) {
        Err(StartError::Catalog(Error::Conflict(message))) => {
            assert!(message.contains("Thursday at four"), "{message}")
        }
        other => panic!("a backup with a garbled time: {other:?}"),
    }
    assert!(!catalog.droplet(a, id).expect("the droplet").locked, "a refused backup left an action running");
}

pub fn image_tags_are_replaced(catalog: &Catalog) {
    let (a, b) = two_teams(catalog);
    let id = droplet(catalog, a, "web-1");
    let (image, _) = available_snapshot(catalog, a, id, "tagged");
    let tags = vec!["daily".to_string(), "weekly".to_string()];
    catalog.set_image_tags(a, image, &tags).expect("tagging");
    assert_eq!(catalog.image(a, image).expect("the image").tags, tags);
    let filter = ImageFilter { tag: Some("weekly".into()), ..ImageFilter::default() };
    assert_eq!(catalog.images(a, &filter, Page::ALL).expect("listing by tag").1, 1);
    catalog.set_image_tags(a, image, &[]).expect("untagging");
    assert!(catalog.image(a, image).expect("the image").tags.is_empty());
    assert_not_found(catalog.set_image_tags(b, image, &tags), "tagging another team's image");
    assert_not_found(catalog.set_image_tags(a, image + 1000, &tags), "tagging an unknown image");
    assert!(catalog.image(a, image).expect("the image").tags.is_empty());
}
