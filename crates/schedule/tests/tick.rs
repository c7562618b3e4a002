//! The scheduler's decision for one resource, for every transition of [`Step`], and an
//! executor loop over days with a restart in the middle of a window.

use drydock_schedule::Window;
use drydock_schedule::policy::Policy;
use drydock_schedule::tick::{MAX_ATTEMPTS, RunState, RunStatus, Step, Target, backoff, step};
use drydock_schedule::window::due_at;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

const KEY: &str = "droplet:12";

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn mins(count: i64) -> SignedDuration {
    SignedDuration::from_mins(count)
}

/// Daily at 00:00 UTC, 4-hour windows; "droplet:12" is due 1 h 35 min 50 s into each.
fn daily() -> Policy {
    Policy::from_json(&json!({})).unwrap()
}

fn day(date: &str) -> Window {
    let start = ts(&format!("{date}T00:00:00Z"));
    Window { start, end: start + SignedDuration::from_hours(4) }
}

fn run(window: Window, status: RunStatus) -> RunState {
    RunState { window, status, attempts: 1, next_attempt_at: None, outcome: None }
}

fn decide(policy: &Policy, enabled_since: &str, last_run: Option<&RunState>, now: Timestamp) -> Step {
    step(&Target { key: KEY, policy, enabled_since: ts(enabled_since), last_run }, now)
}

#[test]
fn before_the_due_time_it_waits_for_it() {
    let policy = daily();
    let today = day("2026-01-10");
    let due = due_at(&today, KEY);
    assert_eq!(due, ts("2026-01-10T01:35:50Z"));
    let yesterday = run(day("2026-01-09"), RunStatus::Succeeded);
    let just_opened = ts("2026-01-10T00:00:00Z");
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&yesterday), just_opened), Step::Wait { until: due });
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&yesterday), due), Step::Start { window: today });
    // After today's success, the next due moment is tomorrow's.
    let done = run(today, RunStatus::Succeeded);
    assert_eq!(
        decide(&policy, "2025-12-01T00:00:00Z", Some(&done), due + mins(10)),
        Step::Wait { until: ts("2026-01-11T01:35:50Z") }
    );
}

#[test]
fn restart_inside_a_window_starts_it_once() {
    let policy = daily();
    let today = day("2026-01-10");
    // The daemon was down at 01:35:50 and comes back at 03:00: the window is still open and
    // has no run, so it starts now.
    let yesterday = run(day("2026-01-09"), RunStatus::Succeeded);
    let restarted = ts("2026-01-10T03:00:00Z");
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&yesterday), restarted), Step::Start { window: today });
    // Once claimed it is watched, not started again, even after another restart or after the
    // window has closed.
    let running = run(today, RunStatus::Running);
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&running), restarted + mins(1)), Step::Watch);
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&running), ts("2026-01-10T05:00:00Z")), Step::Watch);
}

#[test]
fn a_running_attempt_completes_or_fails_with_a_retry_time() {
    let policy = daily();
    let today = day("2026-01-10");
    let now = ts("2026-01-10T02:00:00Z");
    let succeeded = RunState { outcome: Some(Ok(())), ..run(today, RunStatus::Running) };
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&succeeded), now), Step::Completed { window: today });

    let failed = |attempts: u32| RunState {
        attempts,
        outcome: Some(Err("disk vanished".into())),
        ..run(today, RunStatus::Running)
    };
    let failure = |retry_at| Step::AttemptFailed { window: today, reason: "disk vanished".into(), retry_at };
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&failed(1)), now), failure(Some(now + mins(1))));
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&failed(3)), now), failure(Some(now + mins(4))));
    // The last allowed attempt failed: give up.
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&failed(MAX_ATTEMPTS)), now), failure(None));
    // A retry that would fall at or after the window's end is no retry.
    let late = ts("2026-01-10T03:58:00Z");
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&failed(2)), late), failure(None));
    let later = ts("2026-01-10T03:57:59Z");
    assert_eq!(decide(&policy, "2025-12-01T00:00:00Z", Some(&failed(2)), later), failure(Some(later + mins(2))));
}

#[test]
fn a_retrying_run_waits_retries_or_gives_up_when_the_window_closes() {
    let policy = daily();
    let today = day("2026-01-10");
    let retry_at = ts("2026-01-10T02:04:00Z");
    let retrying = RunState { attempts: 2, next_attempt_at: Some(retry_at), ..run(today, RunStatus::Retrying) };
    let enabled = "2025-12-01T00:00:00Z";
    assert_eq!(decide(&policy, enabled, Some(&retrying), retry_at - mins(1)), Step::Wait { until: retry_at });
    assert_eq!(decide(&policy, enabled, Some(&retrying), retry_at), Step::Retry { window: today });
    assert_eq!(decide(&policy, enabled, Some(&retrying), ts("2026-01-10T03:59:59Z")), Step::Retry { window: today });
    assert_eq!(decide(&policy, enabled, Some(&retrying), today.end), Step::GiveUp { window: today });
    // Without a recorded retry time, retry at once.
    let unscheduled = RunState { next_attempt_at: None, ..retrying.clone() };
    assert_eq!(decide(&policy, enabled, Some(&unscheduled), retry_at - mins(30)), Step::Retry { window: today });
}

#[test]
fn windows_that_closed_without_a_run_are_missed_oldest_first() {
    let policy = daily();
    let enabled = "2025-12-01T00:00:00Z";
    let now = ts("2026-01-10T02:00:00Z");
    let mut last = run(day("2026-01-07"), RunStatus::Succeeded);
    assert_eq!(decide(&policy, enabled, Some(&last), now), Step::Missed { window: day("2026-01-08") });
    last = run(day("2026-01-08"), RunStatus::Missed);
    assert_eq!(decide(&policy, enabled, Some(&last), now), Step::Missed { window: day("2026-01-09") });
    last = run(day("2026-01-09"), RunStatus::Missed);
    assert_eq!(decide(&policy, enabled, Some(&last), now), Step::Start { window: day("2026-01-10") });
    // A failed run (given up) is not retried in a later tick.
    let gave_up = run(day("2026-01-10"), RunStatus::Failed);
    assert_eq!(decide(&policy, enabled, Some(&gave_up), now), Step::Wait { until: ts("2026-01-11T01:35:50Z") });
}

#[test]
fn only_windows_of_the_last_seven_days_and_since_enabling_are_owed() {
    let policy = daily();
    // Never run, enabled long ago: the oldest window inside the lookback is missed first. On
    // 10 January at 00:00:01 the lookback starts 3 January at 00:00:01, after that day's start.
    let now = ts("2026-01-10T00:00:01Z");
    assert_eq!(decide(&policy, "2025-06-01T00:00:00Z", None, now), Step::Missed { window: day("2026-01-04") });
    let month_old = run(day("2025-12-01"), RunStatus::Succeeded);
    assert_eq!(
        decide(&policy, "2025-06-01T00:00:00Z", Some(&month_old), now),
        Step::Missed { window: day("2026-01-04") }
    );
    // Enabled after today's window closed: nothing is owed until tomorrow.
    let enabled_evening = ts("2026-01-10T10:00:00Z");
    assert_eq!(
        decide(&policy, "2026-01-10T10:00:00Z", None, enabled_evening),
        Step::Wait { until: ts("2026-01-11T01:35:50Z") }
    );
    // Enabled inside today's window, after its due time: it starts at once, not before it
    // was enabled.
    assert_eq!(
        decide(&policy, "2026-01-10T03:00:00Z", None, ts("2026-01-10T03:00:00Z")),
        Step::Start { window: day("2026-01-10") }
    );
    assert_eq!(
        decide(&policy, "2026-01-10T03:00:00Z", None, ts("2026-01-10T02:59:00Z")),
        Step::Wait { until: ts("2026-01-10T03:00:00Z") }
    );
}

#[test]
fn backoff_doubles_from_one_minute_to_thirty() {
    let expected = [(0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (7, 30), (u32::MAX, 30)];
    for (attempt, minutes) in expected {
        assert_eq!(backoff(attempt), mins(minutes), "attempt {attempt}");
    }
}

#[test]
fn run_statuses_round_trip_through_their_names() {
    for status in RunStatus::ALL {
        assert_eq!(RunStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(RunStatus::Retrying.as_str(), "retrying");
    assert_eq!(RunStatus::parse("Running"), None);
}

/// The daemon's executor in miniature: at each tick, step until Wait, Watch or Start and record
/// every result as the catalog would. Attempts take 10 minutes; `fails` says which attempt
/// numbers fail.
struct Executor {
    policy: Policy,
    enabled_since: Timestamp,
    last_run: Option<RunState>,
    history: Vec<(Window, RunStatus)>,
    starts: Vec<Timestamp>,
}

impl Executor {
    fn tick(&mut self, now: Timestamp, fails: impl Fn(u32) -> bool) {
        for _ in 0..100 {
            // An attempt started 10 minutes ago has ended.
            if let Some(run) = self.last_run.as_mut()
                && run.status == RunStatus::Running
                && run.outcome.is_none()
                && now >= *self.starts.last().unwrap() + mins(10)
            {
                run.outcome = Some(if fails(run.attempts) { Err("boom".into()) } else { Ok(()) });
            }
            let target = Target {
                key: KEY,
                policy: &self.policy,
                enabled_since: self.enabled_since,
                last_run: self.last_run.as_ref(),
            };
            let attempts = self.last_run.as_ref().map_or(0, |run| run.attempts);
            let set =
                |window, status, attempts| RunState { window, status, attempts, next_attempt_at: None, outcome: None };
            match step(&target, now) {
                Step::Wait { .. } | Step::Watch => return,
                Step::Start { window } => {
                    self.starts.push(now);
                    self.last_run = Some(set(window, RunStatus::Running, 1));
                    return;
                }
                Step::Retry { window } => {
                    self.starts.push(now);
                    self.last_run = Some(set(window, RunStatus::Running, attempts + 1));
                }
                Step::AttemptFailed { window, retry_at: Some(at), .. } => {
                    self.last_run =
                        Some(RunState { next_attempt_at: Some(at), ..set(window, RunStatus::Retrying, attempts) });
                }
                Step::AttemptFailed { window, retry_at: None, .. } | Step::GiveUp { window } => {
                    self.finish(window, RunStatus::Failed, attempts)
                }
                Step::Completed { window } => self.finish(window, RunStatus::Succeeded, attempts),
                Step::Missed { window } => self.finish(window, RunStatus::Missed, 0),
            }
        }
        panic!("step did not settle at {now}");
    }

    fn finish(&mut self, window: Window, status: RunStatus, attempts: u32) {
        self.history.push((window, status));
        self.last_run = Some(RunState { window, status, attempts, next_attempt_at: None, outcome: None });
    }
}

#[test]
fn an_executor_over_two_days_of_hourly_windows_with_an_outage_runs_each_window_once() {
    let policy = Policy::from_json(&json!({"plan": "hourly"})).unwrap();
    let start = ts("2026-01-02T00:00:00Z");
    let mut executor =
        Executor { policy, enabled_since: start, last_run: None, history: Vec::new(), starts: Vec::new() };
    // Ticks every minute for two days, except a daemon outage from 05:10 to 08:40 on the first.
    let (down, up) = (ts("2026-01-02T05:10:00Z"), ts("2026-01-02T08:40:00Z"));
    for minute in 0..2 * 24 * 60 {
        let now = start + mins(minute);
        if now < down || now >= up {
            // The 10:00 window's attempts fail three times, then succeed.
            let hour_ten = now >= ts("2026-01-02T10:00:00Z") && now < ts("2026-01-02T11:00:00Z");
            executor.tick(now, |attempt| hour_ten && attempt <= 3);
        }
    }
    let history = &executor.history;
    let windows: Vec<Window> = history.iter().map(|(window, _)| *window).collect();
    let mut unique = windows.clone();
    unique.dedup();
    assert_eq!(unique, windows, "a window was recorded twice");
    assert_eq!(windows.len(), 48);
    let missed: Vec<String> =
        history.iter().filter(|(_, status)| *status == RunStatus::Missed).map(|(w, _)| w.start.to_string()).collect();
    // The 05:00 window's run was claimed at 05:06 before the outage and is completed after it
    // (it was watched, never restarted); 06:00 and 07:00 closed during the outage; 08:00 is
    // still open at 08:40 and starts then.
    assert_eq!(missed, ["2026-01-02T06:00:00Z", "2026-01-02T07:00:00Z"]);
    assert_eq!(history.iter().filter(|(_, status)| *status == RunStatus::Succeeded).count(), 46);
    // "droplet:12" is due 5 min 50 s into an hourly window, so it starts on the 06 tick. The
    // 10:00 window fails at 10:16, retries after 1 min, fails at 10:27, retries after 2, fails
    // at 10:39, retries after 4 and succeeds.
    let starts: Vec<String> = executor.starts.iter().map(|start| start.to_string()).collect();
    assert!(starts.contains(&"2026-01-02T08:40:00Z".to_string()));
    let ten = starts.iter().filter(|start| start.starts_with("2026-01-02T10:")).collect::<Vec<_>>();
    assert_eq!(ten, ["2026-01-02T10:06:00Z", "2026-01-02T10:17:00Z", "2026-01-02T10:29:00Z", "2026-01-02T10:43:00Z"]);
    assert_eq!(starts.len(), 46 + 3);
}
