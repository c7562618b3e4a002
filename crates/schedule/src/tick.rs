//! What the scheduler should do next for one resource, decided from its policy, its last run
//! and the time: a pure function, so the daemon's executor only records and acts.
//!
//! The executor calls [`step`] repeatedly, recording each result (which changes `last_run`),
//! until it gets [`Step::Wait`], [`Step::Watch`] or [`Step::Start`]. Each window gets at most one
//! run: a window is owed only if it starts after the last run's window, so a window claimed
//! before a restart is never claimed again, and one left unclaimed is started once if it is
//! still open or recorded as missed if it has closed.

use jiff::{SignedDuration, Timestamp};

use crate::policy::Policy;
use crate::window::{Window, due_at, later};

/// How many attempts a window's backup gets before it is given up.
pub const MAX_ATTEMPTS: u32 = 5;
/// How far back closed windows are still reported as missed; older ones are forgotten.
pub const LOOKBACK: SignedDuration = SignedDuration::from_hours(7 * 24);
const BACKOFF_FIRST: SignedDuration = SignedDuration::from_mins(1);
const BACKOFF_MAX: SignedDuration = SignedDuration::from_mins(30);

/// Where a window's run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// An attempt is under way.
    Running,
    /// An attempt failed; another is due at `next_attempt_at`.
    Retrying,
    Succeeded,
    /// Every attempt failed, or the window closed before one succeeded.
    Failed,
    /// The window closed with no attempt (the daemon was down, or busy).
    Missed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] =
        [RunStatus::Running, RunStatus::Retrying, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Missed];

    /// The status as stored and shown: "running", "retrying", "succeeded", "failed", "missed".
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Retrying => "retrying",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Missed => "missed",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// The last run of a resource, as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunState {
    pub window: Window,
    pub status: RunStatus,
    /// Attempts started so far (1 for the first).
    pub attempts: u32,
    /// For Retrying: when the next attempt may start.
    pub next_attempt_at: Option<Timestamp>,
    /// For Running: how the attempt's action ended, if it has (None = still running).
    pub outcome: Option<Result<(), String>>,
}

/// One resource with backups on.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// Spreads due times: `"droplet:12"`, `"volume:<uuid>"`.
    pub key: &'a str,
    pub policy: &'a Policy,
    /// When backups were turned on (or the policy last changed): windows that ended before
    /// are not owed.
    pub enabled_since: Timestamp,
    pub last_run: Option<&'a RunState>,
}

/// What to do next for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do before `until` (the next due moment, or the next retry).
    Wait { until: Timestamp },
    /// Claim `window` and start attempt 1 (now >= its due time, now < window.end).
    Start { window: Window },
    /// The last run is Retrying, its next attempt is due and its window is open: start it.
    Retry { window: Window },
    /// The last run was Running and its action completed: record success.
    Completed { window: Window },
    /// The last run was Running and its action failed: retry at `retry_at`, or give up (None).
    AttemptFailed { window: Window, reason: String, retry_at: Option<Timestamp> },
    /// The last run is Retrying but its window has closed: record failure.
    GiveUp { window: Window },
    /// A window owed since `enabled_since` closed with no run: record it missed.
    Missed { window: Window },
    /// The last run is Running and its action has not ended: check on the next tick.
    Watch,
}

/// Decides the next step for `target` at `now`. The last run comes first (a run in progress is
/// watched, finished or retried); then the windows it owes, oldest first.
pub fn step(target: &Target, now: Timestamp) -> Step {
    match target.last_run.and_then(|last_run| step_for_run(last_run, now)) {
        Some(step) => step,
        None => step_for_windows(target, now),
    }
}

/// How long to wait before the attempt after attempt number `attempt` (1-based): 1 min, 2, 4,
/// … doubling, at most 30 min.
pub fn backoff(attempt: u32) -> SignedDuration {
    let doublings = attempt.saturating_sub(1).min(16);
    let delay = BACKOFF_FIRST.saturating_mul(1 << doublings);
    delay.min(BACKOFF_MAX)
}

/// When to try again after attempt number `attempts` failed at `now`: after its backoff, if
/// attempts remain and that is still inside the window; `None` means give up.
pub fn retry_at(attempts: u32, now: Timestamp, window: Window) -> Option<Timestamp> {
    let at = later(now, backoff(attempts));
    (attempts < MAX_ATTEMPTS && at < window.end).then_some(at)
}

/// The step a run in progress calls for, or `None` when it has ended and the windows decide.
fn step_for_run(run: &RunState, now: Timestamp) -> Option<Step> {
    let window = run.window;
    match run.status {
        RunStatus::Running => Some(match &run.outcome {
            None => Step::Watch,
            Some(Ok(())) => Step::Completed { window },
            Some(Err(reason)) => {
                Step::AttemptFailed { window, reason: reason.clone(), retry_at: retry_at(run.attempts, now, window) }
            }
        }),
        RunStatus::Retrying if now >= window.end => Some(Step::GiveUp { window }),
        RunStatus::Retrying => Some(match run.next_attempt_at {
            Some(until) if until > now => Step::Wait { until },
            _ => Step::Retry { window },
        }),
        RunStatus::Succeeded | RunStatus::Failed | RunStatus::Missed => None,
    }
}

/// The step the owed windows call for: a window is owed if it ends after `enabled_since`,
/// starts after the last run's window and no earlier than [`LOOKBACK`] before `now`.
fn step_for_windows(target: &Target, now: Timestamp) -> Step {
    let policy = target.policy;
    // Windows are at most 24 hours long, so none that starts earlier can end after
    // `enabled_since`.
    let ending_after_enabled = later(target.enabled_since, -SignedDuration::from_hours(24));
    let mut from = later(now, -LOOKBACK).max(ending_after_enabled);
    if let Some(run) = target.last_run {
        from = from.max(later(run.window.start, SignedDuration::from_nanos(1)));
    }
    let owed = policy.windows_from(from).find(|window| window.end > target.enabled_since);
    let Some(window) = owed else {
        // No window within the search horizon: look again later.
        return Step::Wait { until: later(now, SignedDuration::from_hours(24)) };
    };
    if window.end <= now {
        return Step::Missed { window };
    }
    let due = due_at(&window, target.key).max(target.enabled_since);
    if window.start <= now && now >= due { Step::Start { window } } else { Step::Wait { until: due } }
}
