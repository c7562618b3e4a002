//! Backup policies at the API's edge: DigitalOcean's `backup_policy` object, extended (see
//! `drydock_schedule::policy`), and the backup state shown with every droplet and volume.

use drydock_catalog::BackupStats;
use drydock_jobs::Regions;
use drydock_schedule::Policy;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::error::ApiError;

/// Checks a policy from a request and returns it normalized, read-only fields filled in. A
/// missing policy is DigitalOcean's default: daily, window starting at 0 UTC. Replication
/// regions must be regions of this daemon.
pub fn normalize(given: Option<&Value>, regions: &Regions) -> Result<Value, ApiError> {
    let policy = parse_request(given)?;
    if let Some(unknown) = policy.replication_regions.iter().find(|r| regions.spec(r).is_none()) {
        let known: Vec<&str> = regions.specs().iter().map(|s| s.slug.as_str()).collect();
        return Err(ApiError::unprocessable(format!(
            "backup_policy.replication_regions: region {unknown:?} is not configured (regions: {})",
            known.join(", ")
        )));
    }
    Ok(policy.to_json())
}

pub fn parse_request(given: Option<&Value>) -> Result<Policy, ApiError> {
    let empty = json!({});
    Policy::from_json(given.unwrap_or(&empty)).map_err(|e| ApiError::unprocessable(e.0))
}

/// A stored policy (normalized when it was set); `None` when there is none or it no longer
/// parses (a newer daemon wrote it).
pub fn stored(policy: Option<&Value>) -> Option<Policy> {
    policy.and_then(|p| Policy::from_json(p).ok())
}

/// What `GET /v2/droplets/backups/supported_policies` says.
pub fn supported() -> Value {
    drydock_schedule::policy::supported()
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A unix-second time as the API writes times.
pub fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix).map_or_else(|_| String::new(), time)
}

/// DigitalOcean's `next_backup_window`: `{start, end}` of the next window, or null while
/// backups are off.
pub fn next_window(enabled: bool, policy: Option<&Value>, now: Timestamp) -> Value {
    let Some(policy) = stored(policy).filter(|_| enabled) else { return Value::Null };
    match policy.next_window_after(now) {
        Some(window) => json!({"start": time(window.start), "end": time(window.end)}),
        None => Value::Null,
    }
}

/// drydock's backup state of a droplet or volume: `status` is `disabled`, `pending` (no
/// backup yet, none overdue), `ok` or `stale` (the last success is older than the plan
/// allows), with the counters the metrics also show.
pub fn state(
    enabled: bool,
    policy: Option<&Value>,
    since: Option<i64>,
    stats: Option<&BackupStats>,
    now: Timestamp,
) -> Value {
    let at = |s: Option<i64>| s.and_then(|s| Timestamp::from_second(s).ok());
    let last_success = stats.and_then(|s| at(s.last_success_at));
    let status = match (enabled, stored(policy)) {
        (false, _) | (true, None) => "disabled",
        (true, Some(policy)) => {
            let since = at(since).unwrap_or(now);
            if drydock_schedule::window::stale(&policy, last_success, since, now) {
                "stale"
            } else if last_success.is_none() {
                "pending"
            } else {
                "ok"
            }
        }
    };
    json!({
        "status": status,
        "last_success_at": last_success.map(time),
        "last_duration_secs": stats.and_then(|s| s.last_duration_secs),
        "last_size_bytes": stats.and_then(|s| s.last_size_bytes),
        "successes": stats.map_or(0, |s| s.successes),
        "failures": stats.map_or(0, |s| s.failures),
        "missed": stats.map_or(0, |s| s.missed),
        "last_error": stats.and_then(|s| s.last_error.clone()),
        "next_window": next_window(enabled, policy, now),
    })
}
