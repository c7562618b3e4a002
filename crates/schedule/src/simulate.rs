//! The retention simulator: what a policy leaves after N days, and why each backup is kept.
//!
//! It runs the daemon's own functions on a virtual clock: every window of the policy gets a
//! backup at the moment the scheduler would start it ([`due_at`]), tagged by [`tags_for`] against
//! the previous one, and the retention [`plan`] prunes what it no longer keeps. Every backup
//! succeeds and takes no time.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::policy::Policy;
use crate::retention::{BackupRef, Reason, plan};
use crate::tags::{Tag, tags_for};
use crate::window::{due_at, later};

/// Ten years of windows is enough to see any policy's steady state.
pub const DAYS_MAX: u32 = 3660;
/// Ten years of hourly backups (87,840) fit; a cron firing every minute would hold millions of
/// backups and gigabytes for a policy that keeps them all, so such a simulation is refused.
pub const BACKUPS_MAX: u32 = 100_000;

/// The simulation would take more than [`BACKUPS_MAX`] backups.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the policy takes more than {BACKUPS_MAX} backups in {days} days: simulate fewer days")]
pub struct TooManyBackups {
    pub days: u32,
}

/// A backup left at the end of a simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedBackup {
    pub taken_at: Timestamp,
    pub tags: Vec<Tag>,
    /// Why the plan keeps it at the simulation's end.
    pub reasons: Vec<Reason>,
}

/// What a policy leaves after a number of days.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    /// The backups retained at `end`, oldest first.
    pub backups: Vec<SimulatedBackup>,
    /// Backups taken (one per window).
    pub taken: u32,
    /// Backups taken and pruned before `end`.
    pub pruned: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The policy's time zone, in which [`Simulation::to_json`] shows local times.
    pub tz: TimeZone,
}

/// Simulates `policy` for the resource `key` (which spreads due times as in the daemon) from
/// `start` for `days` days of 24 hours: every window that starts in `[start, end)` gets a
/// backup, the retention plan runs after each one with `now` at that backup, and once more at
/// `end`.
///
/// The plan runs over the whole retained list, so running it after every backup would cost
/// O(n²) for a policy that keeps n backups (88,000 for ten years of hourly backups kept by
/// age). Because keeping is monotonic (see [`crate::retention`]), pruning later removes exactly
/// the backups pruning at once would have; so the plan runs only when the list has doubled
/// since it was last pruned, which gives the same result in O(n log n).
pub fn simulate(policy: &Policy, key: &str, start: Timestamp, days: u32) -> Result<Simulation, TooManyBackups> {
    let end = later(start, SignedDuration::from_hours(i64::from(days) * 24));
    let mut retained: Vec<BackupRef> = Vec::new();
    let mut taken: u32 = 0;
    let mut previous = None;
    let mut prune_at_len = 1;
    for window in policy.windows_from(start).take_while(|window| window.start < end) {
        if taken == BACKUPS_MAX {
            return Err(TooManyBackups { days });
        }
        let taken_at = due_at(&window, key);
        let tags = tags_for(policy, taken_at, previous);
        taken += 1;
        retained.push(BackupRef { id: i64::from(taken), taken_at, tags });
        previous = Some(taken_at);
        if retained.len() >= prune_at_len {
            prune(policy, &mut retained, taken_at);
            prune_at_len = (retained.len() * 2).max(1);
        }
    }
    let decisions = plan(&policy.retention, &retained, end);
    let backups: Vec<SimulatedBackup> = retained
        .into_iter()
        .zip(decisions)
        .filter(|(_, decision)| decision.keep())
        .map(|(backup, decision)| SimulatedBackup {
            taken_at: backup.taken_at,
            tags: backup.tags,
            reasons: decision.reasons,
        })
        .collect();
    let pruned = taken - backups.len() as u32;
    Ok(Simulation { backups, taken, pruned, start, end, tz: policy.tz.clone() })
}

/// Removes from `retained` the backups the plan does not keep at `now`.
fn prune(policy: &Policy, retained: &mut Vec<BackupRef>, now: Timestamp) {
    let decisions = plan(&policy.retention, retained, now);
    let mut keep = decisions.iter().map(|decision| decision.keep());
    retained.retain(|_| keep.next().unwrap_or(true));
}

impl Simulation {
    /// `{"start", "end", "taken", "pruned", "kept", "backups": [{"taken_at", "local", "tags",
    /// "reasons"}]}`: instants in RFC 3339 UTC, `local` the same instant in the policy's time
    /// zone with its offset, tags and reasons as the API writes them.
    pub fn to_json(&self) -> Value {
        let backups: Vec<Value> = self
            .backups
            .iter()
            .map(|backup| {
                json!({
                    "taken_at": utc(backup.taken_at),
                    "local": backup.taken_at.to_zoned(self.tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                    "tags": backup.tags.iter().map(|tag| tag.as_str()).collect::<Vec<_>>(),
                    "reasons": backup.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "start": utc(self.start),
            "end": utc(self.end),
            "taken": self.taken,
            "pruned": self.pruned,
            "kept": self.backups.len(),
            "backups": backups,
        })
    }
}

/// RFC 3339 in UTC to the second, as the API writes times.
fn utc(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
