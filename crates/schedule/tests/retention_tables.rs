//! The acceptance test of retention: 400 days of five policies (hourly, daily, weekly, monthly,
//! cron) for 50 droplets, ten per policy, on the simulator's virtual clock, and the exact set of
//! backups each keeps at the end, checked against tables worked out by hand from calendars.
//!
//! Every simulation runs from 2025-09-28T00:00Z for 400 days, to 2026-11-02T00:00Z. The start is
//! chosen so that the end falls on the day New York falls back (Sunday 1 November 2026, 02:00 EDT
//! becomes 01:00 EST): the hourly policy's last 24 backups span 25 real hours.
//!
//! The calendar facts the tables rest on:
//! - 1 January 2026 is a Thursday, so 1 November 2026 is a Sunday (304 days later, 304 = 43 × 7 +
//!   3), 26 October a Monday, and ISO week 1 of 2026 began on Monday 29 December 2025.
//! - New York: EDT (−04:00) until 2 November 2025 and from 8 March 2026, EST (−05:00) between and
//!   from 1 November 2026 02:00 EDT. Paris: CET (+01:00) from 26 October 2025 to 29 March 2026
//!   and from 25 October 2026, CEST (+02:00) otherwise. Sydney: AEDT (+11:00) from 5 October
//!   2025 to 5 April 2026 and from 4 October 2026, AEST (+10:00) otherwise.
//! - Tags: the first backup ever opens every period; after that `daily` marks the first of a
//!   local date, `weekly` the first of an ISO week (weeks start on Monday), `monthly` the first
//!   of a month, `yearly` the first of a year.
//!
//! The droplets of a policy differ only in their spread (a stable offset in the first half of
//! each window), so each backup is compared by the local start of its window, its tags and the
//! reasons it is kept; its exact instant is checked to be the droplet's due time in that window.

use std::collections::HashSet;
use std::time::Instant;

use drydock_schedule::policy::Policy;
use drydock_schedule::simulate::{Simulation, simulate};
use drydock_schedule::window::due_at;
use jiff::Timestamp;
use serde_json::{Value, json};

const START: &str = "2025-09-28T00:00:00Z";
const DAYS: u32 = 400;
const END: &str = "2026-11-02T00:00:00Z";
const DROPLETS_PER_POLICY: usize = 10;

/// One retained backup: the local start of its window, its tags, why it is kept.
type Row = (&'static str, &'static [&'static str], &'static [&'static str]);

/// What a policy must leave at the end.
struct Expected {
    taken: u32,
    kept: &'static [Row],
}

/// Hourly in New York (windows at every local hour, 1 hour long), keep 24 hourly, 7 daily,
/// 4 weekly, 12 monthly; no age.
///
/// The first window is 27 September 2025 20:00 EDT (the start, 00:00Z). The last one starts at
/// 1 November 2026 18:00 EST (23:00Z); 19:00 EST is the end itself. Windows: every real hour of
/// the 400 days (9,600) has one, except the repeated hour of each fall-back day (local 01:00
/// means the earlier, EDT, instant, so 01:00 EST has no window), on 2 November 2025 and 1
/// November 2026: 9,598. On 8 March 2026 local 02:00 does not exist and moves to 03:00, the
/// same instant as the 03:00 window: one window, and every real hour still has one.
///
/// - hourly 24: local 1 November 00:00 EDT, 01:00 EDT, 02:00 EST … 18:00 EST (19 windows) and
///   31 October 19:00–23:00 EDT (5): 24 windows over 25 real hours.
/// - daily 7 (the 00:00 window of each date): 1 November back to 26 October 2026.
/// - weekly 4 (Mondays 00:00): 26, 19, 12 and 5 October 2026.
/// - monthly 12 (the 1st, 00:00): 1 November 2026 back to 1 December 2025; 1 November 2025
///   is the 13th, and the first backup (27 September 2025, tagged everything) is older still.
/// - 1 January 2026 (Thursday) is not weekly: 31 December 2025 was already in ISO week 1 of 2026.
///   1 December 2025 and 1 June 2026 are Mondays, so weekly too.
///
/// 11 monthly (December–October) + 3 weekly only (5, 12, 19 October) + 6 daily (26–31 October)
/// + 24 hourly = 44 kept.
const HOURLY_NEW_YORK: Expected = Expected {
    taken: 9598,
    kept: &[
        ("2025-12-01T00:00-05:00", &["hourly", "daily", "weekly", "monthly"], &["newest 12 of 12 monthly"]),
        ("2026-01-01T00:00-05:00", &["hourly", "daily", "monthly", "yearly"], &["newest 11 of 12 monthly"]),
        ("2026-02-01T00:00-05:00", &["hourly", "daily", "monthly"], &["newest 10 of 12 monthly"]),
        ("2026-03-01T00:00-05:00", &["hourly", "daily", "monthly"], &["newest 9 of 12 monthly"]),
        ("2026-04-01T00:00-04:00", &["hourly", "daily", "monthly"], &["newest 8 of 12 monthly"]),
        ("2026-05-01T00:00-04:00", &["hourly", "daily", "monthly"], &["newest 7 of 12 monthly"]),
        ("2026-06-01T00:00-04:00", &["hourly", "daily", "weekly", "monthly"], &["newest 6 of 12 monthly"]),
        ("2026-07-01T00:00-04:00", &["hourly", "daily", "monthly"], &["newest 5 of 12 monthly"]),
        ("2026-08-01T00:00-04:00", &["hourly", "daily", "monthly"], &["newest 4 of 12 monthly"]),
        ("2026-09-01T00:00-04:00", &["hourly", "daily", "monthly"], &["newest 3 of 12 monthly"]),
        ("2026-10-01T00:00-04:00", &["hourly", "daily", "monthly"], &["newest 2 of 12 monthly"]),
        ("2026-10-05T00:00-04:00", &["hourly", "daily", "weekly"], &["newest 4 of 4 weekly"]),
        ("2026-10-12T00:00-04:00", &["hourly", "daily", "weekly"], &["newest 3 of 4 weekly"]),
        ("2026-10-19T00:00-04:00", &["hourly", "daily", "weekly"], &["newest 2 of 4 weekly"]),
        ("2026-10-26T00:00-04:00", &["hourly", "daily", "weekly"], &["newest 7 of 7 daily", "newest 1 of 4 weekly"]),
        ("2026-10-27T00:00-04:00", &["hourly", "daily"], &["newest 6 of 7 daily"]),
        ("2026-10-28T00:00-04:00", &["hourly", "daily"], &["newest 5 of 7 daily"]),
        ("2026-10-29T00:00-04:00", &["hourly", "daily"], &["newest 4 of 7 daily"]),
        ("2026-10-30T00:00-04:00", &["hourly", "daily"], &["newest 3 of 7 daily"]),
        ("2026-10-31T00:00-04:00", &["hourly", "daily"], &["newest 2 of 7 daily"]),
        ("2026-10-31T19:00-04:00", &["hourly"], &["newest 24 of 24 hourly"]),
        ("2026-10-31T20:00-04:00", &["hourly"], &["newest 23 of 24 hourly"]),
        ("2026-10-31T21:00-04:00", &["hourly"], &["newest 22 of 24 hourly"]),
        ("2026-10-31T22:00-04:00", &["hourly"], &["newest 21 of 24 hourly"]),
        ("2026-10-31T23:00-04:00", &["hourly"], &["newest 20 of 24 hourly"]),
        (
            "2026-11-01T00:00-04:00",
            &["hourly", "daily", "monthly"],
            &["newest 19 of 24 hourly", "newest 1 of 7 daily", "newest 1 of 12 monthly"],
        ),
        ("2026-11-01T01:00-04:00", &["hourly"], &["newest 18 of 24 hourly"]),
        // Clocks fell back at 02:00 EDT: the next window is two real hours later.
        ("2026-11-01T02:00-05:00", &["hourly"], &["newest 17 of 24 hourly"]),
        ("2026-11-01T03:00-05:00", &["hourly"], &["newest 16 of 24 hourly"]),
        ("2026-11-01T04:00-05:00", &["hourly"], &["newest 15 of 24 hourly"]),
        ("2026-11-01T05:00-05:00", &["hourly"], &["newest 14 of 24 hourly"]),
        ("2026-11-01T06:00-05:00", &["hourly"], &["newest 13 of 24 hourly"]),
        ("2026-11-01T07:00-05:00", &["hourly"], &["newest 12 of 24 hourly"]),
        ("2026-11-01T08:00-05:00", &["hourly"], &["newest 11 of 24 hourly"]),
        ("2026-11-01T09:00-05:00", &["hourly"], &["newest 10 of 24 hourly"]),
        ("2026-11-01T10:00-05:00", &["hourly"], &["newest 9 of 24 hourly"]),
        ("2026-11-01T11:00-05:00", &["hourly"], &["newest 8 of 24 hourly"]),
        ("2026-11-01T12:00-05:00", &["hourly"], &["newest 7 of 24 hourly"]),
        ("2026-11-01T13:00-05:00", &["hourly"], &["newest 6 of 24 hourly"]),
        ("2026-11-01T14:00-05:00", &["hourly"], &["newest 5 of 24 hourly"]),
        ("2026-11-01T15:00-05:00", &["hourly"], &["newest 4 of 24 hourly"]),
        ("2026-11-01T16:00-05:00", &["hourly"], &["newest 3 of 24 hourly"]),
        ("2026-11-01T17:00-05:00", &["hourly"], &["newest 2 of 24 hourly"]),
        ("2026-11-01T18:00-05:00", &["hourly"], &["newest 1 of 24 hourly"]),
    ],
};

/// Daily at 04:00 in Paris, SnapShooter's 7 daily, 4 weekly, 12 monthly, plus 2 yearly.
///
/// One window a day from Sunday 28 September 2025 04:00 CEST (02:00Z, after the start) to
/// 1 November 2026 04:00 CET (03:00Z); 2 November's is after the end: 400 taken. Every backup
/// is daily. The first (a Sunday) opens every period; then weekly falls on Mondays, monthly on
/// the 1st, yearly on 1 January 2026.
///
/// - daily 7: 1 November back to 26 October 2026 (all CET, +01:00, since 25 October).
/// - weekly 4: Mondays 26, 19, 12, 5 October (the last three CEST, +02:00: the same local
///   window an hour earlier in UTC).
/// - monthly 12: 1 November 2026 back to 1 December 2025.
/// - yearly 2: 1 January 2026 and, older, the first backup of all, 28 September 2025.
///
/// 1 yearly (first) + 11 monthly (December–October) + 3 weekly + 7 daily = 22 kept.
const DAILY_PARIS: Expected = Expected {
    taken: 400,
    kept: &[
        ("2025-09-28T04:00+02:00", &["daily", "weekly", "monthly", "yearly"], &["newest 2 of 2 yearly"]),
        ("2025-12-01T04:00+01:00", &["daily", "weekly", "monthly"], &["newest 12 of 12 monthly"]),
        (
            "2026-01-01T04:00+01:00",
            &["daily", "monthly", "yearly"],
            &["newest 11 of 12 monthly", "newest 1 of 2 yearly"],
        ),
        ("2026-02-01T04:00+01:00", &["daily", "monthly"], &["newest 10 of 12 monthly"]),
        ("2026-03-01T04:00+01:00", &["daily", "monthly"], &["newest 9 of 12 monthly"]),
        ("2026-04-01T04:00+02:00", &["daily", "monthly"], &["newest 8 of 12 monthly"]),
        ("2026-05-01T04:00+02:00", &["daily", "monthly"], &["newest 7 of 12 monthly"]),
        ("2026-06-01T04:00+02:00", &["daily", "weekly", "monthly"], &["newest 6 of 12 monthly"]),
        ("2026-07-01T04:00+02:00", &["daily", "monthly"], &["newest 5 of 12 monthly"]),
        ("2026-08-01T04:00+02:00", &["daily", "monthly"], &["newest 4 of 12 monthly"]),
        ("2026-09-01T04:00+02:00", &["daily", "monthly"], &["newest 3 of 12 monthly"]),
        ("2026-10-01T04:00+02:00", &["daily", "monthly"], &["newest 2 of 12 monthly"]),
        ("2026-10-05T04:00+02:00", &["daily", "weekly"], &["newest 4 of 4 weekly"]),
        ("2026-10-12T04:00+02:00", &["daily", "weekly"], &["newest 3 of 4 weekly"]),
        ("2026-10-19T04:00+02:00", &["daily", "weekly"], &["newest 2 of 4 weekly"]),
        ("2026-10-26T04:00+01:00", &["daily", "weekly"], &["newest 7 of 7 daily", "newest 1 of 4 weekly"]),
        ("2026-10-27T04:00+01:00", &["daily"], &["newest 6 of 7 daily"]),
        ("2026-10-28T04:00+01:00", &["daily"], &["newest 5 of 7 daily"]),
        ("2026-10-29T04:00+01:00", &["daily"], &["newest 4 of 7 daily"]),
        ("2026-10-30T04:00+01:00", &["daily"], &["newest 3 of 7 daily"]),
        ("2026-10-31T04:00+01:00", &["daily"], &["newest 2 of 7 daily"]),
        ("2026-11-01T04:00+01:00", &["daily", "monthly"], &["newest 1 of 7 daily", "newest 1 of 12 monthly"]),
    ],
};

/// DigitalOcean's default weekly policy: Sundays 00:00 UTC, kept 28 days.
///
/// Sundays 28 September 2025 (the start itself) to 1 November 2026 (399 = 57 × 7 days later):
/// 58 taken. At the end (Monday 2 November 00:00Z) the backup of 4 October is 29 days old less
/// its offset (under 2 hours): expired. Those of 11, 18, 25 October and 1 November are younger
/// than 28 days: DigitalOcean's four weekly backups. Each is a new day and ISO week; 1 November
/// is also a new month.
const WEEKLY_DIGITALOCEAN: Expected = Expected {
    taken: 58,
    kept: &[
        ("2026-10-11T00:00+00:00", &["daily", "weekly"], &["younger than 28 days"]),
        ("2026-10-18T00:00+00:00", &["daily", "weekly"], &["younger than 28 days"]),
        ("2026-10-25T00:00+00:00", &["daily", "weekly"], &["younger than 28 days"]),
        ("2026-11-01T00:00+00:00", &["daily", "weekly", "monthly"], &["younger than 28 days"]),
    ],
};

/// Monthly on the 31st at 20:00 in Sydney, keep 9 monthly and 1 yearly. A month shorter than 31
/// days uses its last day: 30 September 2025 (the first, tagged everything), 31 October, 30
/// November, 31 December, 31 January 2026, 28 February, 31 March, 30 April, 31 May, 30 June,
/// 31 July, 31 August, 30 September, 31 October 2026 (20:00 AEDT = 09:00Z, before the end):
/// 14 taken. 30 November 2026 is after the end. Every backup is a new day, week and month.
///
/// - monthly 9: 31 October 2026 back to 28 February 2026 (clamped). 28 February and 31 March
///   are AEDT (+11:00), 30 April to 30 September AEST (+10:00), 31 October AEDT again.
/// - yearly 1: 31 January 2026 (the first of 2026); 30 September 2025 is older.
const MONTHLY_SYDNEY: Expected = Expected {
    taken: 14,
    kept: &[
        ("2026-01-31T20:00+11:00", &["daily", "weekly", "monthly", "yearly"], &["newest 1 of 1 yearly"]),
        ("2026-02-28T20:00+11:00", &["daily", "weekly", "monthly"], &["newest 9 of 9 monthly"]),
        ("2026-03-31T20:00+11:00", &["daily", "weekly", "monthly"], &["newest 8 of 9 monthly"]),
        ("2026-04-30T20:00+10:00", &["daily", "weekly", "monthly"], &["newest 7 of 9 monthly"]),
        ("2026-05-31T20:00+10:00", &["daily", "weekly", "monthly"], &["newest 6 of 9 monthly"]),
        ("2026-06-30T20:00+10:00", &["daily", "weekly", "monthly"], &["newest 5 of 9 monthly"]),
        ("2026-07-31T20:00+10:00", &["daily", "weekly", "monthly"], &["newest 4 of 9 monthly"]),
        ("2026-08-31T20:00+10:00", &["daily", "weekly", "monthly"], &["newest 3 of 9 monthly"]),
        ("2026-09-30T20:00+10:00", &["daily", "weekly", "monthly"], &["newest 2 of 9 monthly"]),
        ("2026-10-31T20:00+11:00", &["daily", "weekly", "monthly"], &["newest 1 of 9 monthly"]),
    ],
};

/// The seeds' tutorial, `30 3 * * 0,4` (03:30 on Sundays and Thursdays) in New York, keep 5
/// daily and 3 weekly.
///
/// Sundays 28 September 2025 to 1 November 2026 (58) and Thursdays 2 October 2025 to 29 October
/// 2026 (57, 1 October 2026 being 52 weeks after 2 October 2025): 115 taken. Every run is a new
/// day; an ISO week starts on Monday, so its Thursday run comes first and is the weekly one.
///
/// - daily 5: Sunday 1 November (03:30 EST, after the clocks fell back), Thursday 29 October,
///   Sunday 25, Thursday 22, Sunday 18 October (EDT).
/// - weekly 3: Thursdays 29, 22 and 15 October.
const CRON_NEW_YORK: Expected = Expected {
    taken: 115,
    kept: &[
        ("2026-10-15T03:30-04:00", &["daily", "weekly"], &["newest 3 of 3 weekly"]),
        ("2026-10-18T03:30-04:00", &["daily"], &["newest 5 of 5 daily"]),
        ("2026-10-22T03:30-04:00", &["daily", "weekly"], &["newest 4 of 5 daily", "newest 2 of 3 weekly"]),
        ("2026-10-25T03:30-04:00", &["daily"], &["newest 3 of 5 daily"]),
        ("2026-10-29T03:30-04:00", &["daily", "weekly"], &["newest 2 of 5 daily", "newest 1 of 3 weekly"]),
        ("2026-11-01T03:30-05:00", &["daily", "monthly"], &["newest 1 of 5 daily"]),
    ],
};

fn policy(value: Value) -> Policy {
    Policy::from_json(&value).unwrap_or_else(|error| panic!("{value}: {error}"))
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// The five policies, each with its table.
fn policies() -> Vec<(Policy, Expected)> {
    vec![
        (
            policy(json!({"plan": "hourly", "time_zone": "America/New_York",
                "keep_hourly": 24, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12})),
            HOURLY_NEW_YORK,
        ),
        (
            policy(json!({"plan": "daily", "hour": 4, "time_zone": "Europe/Paris",
                "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_yearly": 2})),
            DAILY_PARIS,
        ),
        (policy(json!({"plan": "weekly"})), WEEKLY_DIGITALOCEAN),
        (
            policy(json!({"plan": "monthly", "day_of_month": 31, "hour": 20, "time_zone": "Australia/Sydney",
                "keep_monthly": 9, "keep_yearly": 1})),
            MONTHLY_SYDNEY,
        ),
        (
            policy(json!({"cron": "30 3 * * 0,4", "time_zone": "America/New_York",
                "keep_daily": 5, "keep_weekly": 3})),
            CRON_NEW_YORK,
        ),
    ]
}

/// The retained backups as table rows, each checked to be taken at the droplet's due time in
/// its window.
fn rows(policy: &Policy, key: &str, simulation: &Simulation) -> Vec<(String, Vec<String>, Vec<String>)> {
    simulation
        .backups
        .iter()
        .map(|backup| {
            let window = policy.window_at(backup.taken_at).expect("every backup is in a window");
            assert_eq!(backup.taken_at, due_at(&window, key), "{key}: taken at its due time");
            let local = window.start.to_zoned(policy.tz.clone()).strftime("%Y-%m-%dT%H:%M%:z").to_string();
            let tags = backup.tags.iter().map(|tag| tag.as_str().to_string()).collect();
            let reasons = backup.reasons.iter().map(ToString::to_string).collect();
            (local, tags, reasons)
        })
        .collect()
}

fn expected_rows(table: &[Row]) -> Vec<(String, Vec<String>, Vec<String>)> {
    let strings = |items: &[&str]| items.iter().map(|item| item.to_string()).collect();
    table.iter().map(|(local, tags, reasons)| (local.to_string(), strings(tags), strings(reasons))).collect()
}

#[test]
fn fifty_droplets_keep_exactly_the_backups_worked_out_by_hand() {
    let began = Instant::now();
    let mut droplet = 0;
    for (policy, expected) in policies() {
        let mut due_offsets = HashSet::new();
        for _ in 0..DROPLETS_PER_POLICY {
            droplet += 1;
            let key = format!("droplet:{droplet}");
            let simulation = simulate(&policy, &key, ts(START), DAYS).expect("within the limit");
            let plan = policy.plan.name();
            assert_eq!(simulation.end, ts(END));
            assert_eq!(rows(&policy, &key, &simulation), expected_rows(expected.kept), "{plan} policy, {key}");
            assert_eq!(simulation.taken, expected.taken, "{plan} policy, {key}: backups taken");
            assert_eq!(simulation.pruned as usize, expected.taken as usize - expected.kept.len(), "{plan}, {key}");
            let last = simulation.backups.last().expect("a policy keeps its newest backup");
            due_offsets.insert(last.taken_at.duration_since(policy.window_at(last.taken_at).unwrap().start));
        }
        // The spread is real: ten droplets do not all start at the same moment.
        assert!(due_offsets.len() > 1, "{}: every droplet due at the same offset", policy.plan.name());
    }
    assert_eq!(droplet, 50);
    let elapsed = began.elapsed();
    eprintln!("50 droplets × {DAYS} days simulated and checked in {elapsed:?}");
    assert!(elapsed.as_secs() < 10, "simulating 50 droplets took {elapsed:?}");
}
