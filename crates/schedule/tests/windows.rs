//! Backup windows in time zones, across clock changes and month ends; due times; staleness.
//! Every expected instant below is worked out by hand from the plan and the zone's offsets.

use std::collections::HashSet;

use drydock_schedule::Window;
use drydock_schedule::policy::Policy;
use drydock_schedule::window::{due_at, fnv1a64, stale};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn policy(value: Value) -> Policy {
    Policy::from_json(&value).unwrap_or_else(|error| panic!("{value}: {error}"))
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn window(start: &str, end: &str) -> Window {
    Window { start: ts(start), end: ts(end) }
}

fn starts(windows: &[Window]) -> Vec<String> {
    windows.iter().map(|window| window.start.to_string()).collect()
}

fn hours(count: i64) -> SignedDuration {
    SignedDuration::from_hours(count)
}

#[test]
fn digitalocean_daily_windows_are_four_hours_from_the_chosen_hour() {
    let midnight = policy(json!({}));
    assert_eq!(
        midnight.windows_between(ts("2026-01-01T00:00:00Z"), ts("2026-01-04T00:00:00Z")),
        [
            window("2026-01-01T00:00:00Z", "2026-01-01T04:00:00Z"),
            window("2026-01-02T00:00:00Z", "2026-01-02T04:00:00Z"),
            window("2026-01-03T00:00:00Z", "2026-01-03T04:00:00Z"),
        ]
    );
    let evening = policy(json!({"plan": "daily", "hour": 20}));
    assert_eq!(
        evening.windows_between(ts("2026-01-01T20:00:01Z"), ts("2026-01-03T20:00:00Z")),
        [window("2026-01-02T20:00:00Z", "2026-01-03T00:00:00Z")]
    );
    assert_eq!(evening.max_interval(), hours(24));
}

#[test]
fn digitalocean_weekly_windows_fall_on_the_weekday() {
    // 1 January 2026 is a Thursday.
    let thursday = policy(json!({"plan": "weekly", "weekday": "THU", "hour": 20}));
    assert_eq!(
        thursday.windows_between(ts("2026-01-01T00:00:00Z"), ts("2026-01-15T00:00:00Z")),
        [
            window("2026-01-01T20:00:00Z", "2026-01-02T00:00:00Z"),
            window("2026-01-08T20:00:00Z", "2026-01-09T00:00:00Z"),
        ]
    );
    assert_eq!(thursday.max_interval(), hours(7 * 24));
    // In a time zone, the weekday and hour are local: Thursday 20:00 in Tokyo (UTC+9).
    let tokyo = policy(json!({"plan": "weekly", "weekday": "THU", "hour": 20, "time_zone": "Asia/Tokyo"}));
    assert_eq!(
        tokyo.windows_between(ts("2026-01-01T00:00:00Z"), ts("2026-01-08T00:00:00Z")),
        [window("2026-01-01T11:00:00Z", "2026-01-01T15:00:00Z")]
    );
}

#[test]
fn window_at_and_next_window_after() {
    let daily = policy(json!({"hour": 4}));
    let today = window("2026-01-02T04:00:00Z", "2026-01-02T08:00:00Z");
    assert_eq!(daily.window_at(ts("2026-01-02T05:00:00Z")), Some(today));
    assert_eq!(daily.window_at(ts("2026-01-02T04:00:00Z")), Some(today));
    // Before today's start the latest window is yesterday's, although it has closed.
    assert_eq!(
        daily.window_at(ts("2026-01-02T03:59:59Z")),
        Some(window("2026-01-01T04:00:00Z", "2026-01-01T08:00:00Z"))
    );
    assert_eq!(
        daily.next_window_after(ts("2026-01-02T04:00:00Z")),
        Some(window("2026-01-03T04:00:00Z", "2026-01-03T08:00:00Z"))
    );
    assert_eq!(daily.next_window_after(ts("2026-01-02T03:59:59Z")), Some(today));
    let monthly = policy(json!({"plan": "monthly", "day_of_month": 15}));
    assert_eq!(
        monthly.window_at(ts("2026-03-14T00:00:00Z")),
        Some(window("2026-02-15T00:00:00Z", "2026-02-15T04:00:00Z"))
    );
}

#[test]
fn hourly_windows_across_new_york_spring_forward() {
    // 8 March 2026: at 02:00 EST (07:00Z) clocks jump to 03:00 EDT. Local 02:00 does not exist
    // and moves to 03:00 EDT, which is also the 03:00 window: 23 windows, back to back.
    let hourly = policy(json!({"plan": "hourly", "time_zone": "America/New_York"}));
    let day = hourly.windows_between(ts("2026-03-08T05:00:00Z"), ts("2026-03-09T04:00:00Z"));
    assert_eq!(day.len(), 23);
    for (k, window) in day.iter().enumerate() {
        let expected_start = ts("2026-03-08T05:00:00Z") + hours(k as i64);
        assert_eq!((window.start, window.length()), (expected_start, hours(1)), "window {k}");
    }
    // Every 4 hours: 00:00 EST is 05:00Z but 04:00 EDT is 08:00Z, so the first window is cut
    // to 3 hours rather than overlap the next.
    let four_hourly = policy(json!({"plan": "intra_daily_4h", "time_zone": "America/New_York"}));
    assert_eq!(
        starts(&four_hourly.windows_between(ts("2026-03-08T05:00:00Z"), ts("2026-03-09T04:00:00Z"))),
        [
            "2026-03-08T05:00:00Z",
            "2026-03-08T08:00:00Z",
            "2026-03-08T12:00:00Z",
            "2026-03-08T16:00:00Z",
            "2026-03-08T20:00:00Z",
            "2026-03-09T00:00:00Z"
        ]
    );
    assert_eq!(
        four_hourly.window_at(ts("2026-03-08T07:30:00Z")),
        Some(window("2026-03-08T05:00:00Z", "2026-03-08T08:00:00Z"))
    );
}

#[test]
fn hourly_windows_across_new_york_fall_back() {
    // 1 November 2026: at 02:00 EDT (06:00Z) clocks go back to 01:00 EST. Local 01:00 is
    // ambiguous and takes the earlier instant (05:00Z); local 02:00 EST is 07:00Z. The local day
    // lasts 25 hours and has 24 windows, with no window starting at 06:00Z.
    let hourly = policy(json!({"plan": "hourly", "time_zone": "America/New_York"}));
    let day = hourly.windows_between(ts("2026-11-01T04:00:00Z"), ts("2026-11-02T05:00:00Z"));
    assert_eq!(day.len(), 24);
    assert_eq!(
        starts(&day[..4]),
        ["2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"]
    );
    assert_eq!(day[1], window("2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"));
    assert_eq!(day[23].start, ts("2026-11-02T04:00:00Z"));
    // Between 06:00Z and 07:00Z no window is open; the latest one has closed.
    assert_eq!(hourly.window_at(ts("2026-11-01T06:30:00Z")), Some(day[1]));
    // A daily window at 00:00 keeps its local hour on both sides of the change.
    let daily = policy(json!({"time_zone": "America/New_York"}));
    assert_eq!(
        starts(&daily.windows_between(ts("2026-10-31T00:00:00Z"), ts("2026-11-03T00:00:00Z"))),
        ["2026-10-31T04:00:00Z", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"]
    );
}

#[test]
fn two_hourly_windows_across_paris_clock_changes() {
    let paris = policy(json!({"plan": "intra_daily_2h", "time_zone": "Europe/Paris"}));
    // 29 March 2026: 02:00 CET (01:00Z) jumps to 03:00 CEST. Local 00:00 is 23:00Z the day
    // before; local 02:00 moves to 03:00 CEST = 01:00Z; local 04:00 CEST is 02:00Z. Twelve
    // windows, the one moved into the gap cut to one hour.
    let spring = paris.windows_between(ts("2026-03-28T23:00:00Z"), ts("2026-03-29T22:00:00Z"));
    assert_eq!(spring.len(), 12);
    assert_eq!(
        spring[..3],
        [
            window("2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z"),
            window("2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"),
            window("2026-03-29T02:00:00Z", "2026-03-29T04:00:00Z"),
        ]
    );
    assert_eq!(spring[11].start, ts("2026-03-29T20:00:00Z"));
    // 25 October 2026: 03:00 CEST (01:00Z) goes back to 02:00 CET. Local 02:00 is ambiguous
    // and takes the earlier instant, 00:00Z; local 04:00 CET is 03:00Z.
    let autumn = paris.windows_between(ts("2026-10-24T22:00:00Z"), ts("2026-10-25T23:00:00Z"));
    assert_eq!(autumn.len(), 12);
    assert_eq!(
        autumn[..3],
        [
            window("2026-10-24T22:00:00Z", "2026-10-25T00:00:00Z"),
            window("2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"),
            window("2026-10-25T03:00:00Z", "2026-10-25T05:00:00Z"),
        ]
    );
    assert_eq!(autumn[11].start, ts("2026-10-25T21:00:00Z"));
    assert_eq!(paris.max_interval(), hours(2));
}

#[test]
fn monthly_on_the_31st_uses_the_last_day_of_shorter_months() {
    let monthly = policy(json!({"plan": "monthly", "day_of_month": 31, "hour": 4}));
    assert_eq!(
        starts(&monthly.windows_between(ts("2026-01-01T00:00:00Z"), ts("2026-06-01T00:00:00Z"))),
        [
            "2026-01-31T04:00:00Z",
            "2026-02-28T04:00:00Z",
            "2026-03-31T04:00:00Z",
            "2026-04-30T04:00:00Z",
            "2026-05-31T04:00:00Z"
        ]
    );
    // 2028 is a leap year.
    assert_eq!(
        monthly.windows_between(ts("2028-02-01T00:00:00Z"), ts("2028-03-01T00:00:00Z")),
        [window("2028-02-29T04:00:00Z", "2028-02-29T08:00:00Z")]
    );
    assert_eq!(monthly.max_interval(), hours(31 * 24));
    let on_the_30th = policy(json!({"plan": "monthly", "day_of_month": 30}));
    assert_eq!(
        starts(&on_the_30th.windows_between(ts("2026-02-01T00:00:00Z"), ts("2026-04-01T00:00:00Z"))),
        ["2026-02-28T00:00:00Z", "2026-03-30T00:00:00Z"]
    );
}

#[test]
fn cron_windows_sundays_and_thursdays_at_0330_over_two_weeks() {
    let utc = policy(json!({"cron": "30 3 * * 0,4"}));
    assert_eq!(
        utc.windows_between(ts("2026-01-01T00:00:00Z"), ts("2026-01-15T00:00:00Z")),
        [
            window("2026-01-01T03:30:00Z", "2026-01-01T07:30:00Z"),
            window("2026-01-04T03:30:00Z", "2026-01-04T07:30:00Z"),
            window("2026-01-08T03:30:00Z", "2026-01-08T07:30:00Z"),
            window("2026-01-11T03:30:00Z", "2026-01-11T07:30:00Z"),
        ]
    );
    assert_eq!(utc.max_interval(), hours(4 * 24));
    // In Paris (UTC+1 in winter) 03:30 local is 02:30Z.
    let paris = policy(json!({"cron": "30 3 * * 0,4", "time_zone": "Europe/Paris"}));
    assert_eq!(
        starts(&paris.windows_between(ts("2026-01-01T00:00:00Z"), ts("2026-01-15T00:00:00Z"))),
        ["2026-01-01T02:30:00Z", "2026-01-04T02:30:00Z", "2026-01-08T02:30:00Z", "2026-01-11T02:30:00Z"]
    );
    // A window ends at the next run when that comes sooner than its length.
    let quarter_hourly = policy(json!({"cron": "*/15 * * * *"}));
    assert_eq!(
        quarter_hourly.window_at(ts("2026-01-01T10:07:00Z")),
        Some(window("2026-01-01T10:00:00Z", "2026-01-01T10:15:00Z"))
    );
}

#[test]
fn minutely_cron_across_a_spring_forward_gap_keeps_windows_in_order() {
    // Local 02:00–02:59 do not exist on 8 March 2026 in New York; they move onto 03:00–03:59
    // EDT, which the expression also matches: each instant gives one window, in order.
    let minutely = policy(json!({"cron": "* * * * *", "time_zone": "America/New_York"}));
    let windows = minutely.windows_between(ts("2026-03-08T06:58:00Z"), ts("2026-03-08T07:02:00Z"));
    assert_eq!(
        starts(&windows),
        ["2026-03-08T06:58:00Z", "2026-03-08T06:59:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:01:00Z"]
    );
    assert!(windows.iter().all(|window| window.length() == SignedDuration::from_mins(1)));
}

#[test]
fn due_times_are_stable_in_the_first_half_and_spread_out() {
    // FNV-1a's published test vectors: the hash must never change, or due times would move.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    let four_hours = window("2026-01-01T00:00:00Z", "2026-01-01T04:00:00Z");
    // 0xb507add415a87cd6 % 7200 = 5750 s = 1 h 35 min 50 s.
    assert_eq!(due_at(&four_hours, "droplet:12"), ts("2026-01-01T01:35:50Z"));
    assert_eq!(due_at(&four_hours, "droplet:12"), due_at(&four_hours, "droplet:12"));
    let next_day = window("2026-01-02T00:00:00Z", "2026-01-02T04:00:00Z");
    assert_eq!(due_at(&next_day, "droplet:12"), ts("2026-01-02T01:35:50Z"));

    let mut seconds = HashSet::new();
    for n in 1..=500 {
        let due = due_at(&four_hours, &format!("droplet:{n}"));
        assert!(four_hours.start <= due && due < four_hours.start + hours(2), "droplet:{n} due at {due}");
        seconds.insert(due);
    }
    assert!(seconds.len() >= 400, "500 droplets share only {} distinct seconds", seconds.len());

    let one_minute = window("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z");
    assert!(due_at(&one_minute, "volume:1") < ts("2026-01-01T00:00:30Z"));
    let one_second = window("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z");
    assert_eq!(due_at(&one_second, "volume:1"), one_second.start);
}

#[test]
fn stale_when_more_than_the_longest_interval_plus_a_window_has_passed() {
    let daily = policy(json!({}));
    let last = ts("2026-01-01T01:00:00Z");
    // Daily: 24 h between windows + 4 h of window = 28 h allowed.
    assert!(!stale(&daily, Some(last), ts("2025-12-01T00:00:00Z"), last + hours(28)));
    assert!(stale(&daily, Some(last), ts("2025-12-01T00:00:00Z"), last + hours(28) + SignedDuration::from_secs(1)));
    // Before any success, the clock starts when backups were enabled.
    let since = ts("2026-01-05T12:00:00Z");
    assert!(!stale(&daily, None, since, since + hours(27)));
    assert!(stale(&daily, None, since, since + hours(29)));
    let weekly = policy(json!({"plan": "weekly"}));
    assert!(!stale(&weekly, Some(last), since, last + hours(6 * 24)));
    let hourly = policy(json!({"plan": "hourly"}));
    assert!(stale(&hourly, Some(last), since, last + hours(2) + SignedDuration::from_secs(1)));
}

#[test]
fn max_interval_per_plan() {
    let cases = [
        (json!({"plan": "hourly"}), hours(1)),
        (json!({"plan": "intra_daily_6h"}), hours(6)),
        (json!({"plan": "intra_daily_12h"}), hours(12)),
        (json!({"plan": "daily"}), hours(24)),
        (json!({"plan": "weekly", "weekday": "MON"}), hours(7 * 24)),
        (json!({"plan": "monthly"}), hours(31 * 24)),
        (json!({"cron": "0 9 * * 1-5"}), hours(3 * 24)),
        (json!({"cron": "0 0 29 2 *"}), hours(366 * 24)),
    ];
    for (input, expected) in cases {
        assert_eq!(policy(input.clone()).max_interval(), expected, "{input}");
    }
}

#[test]
fn a_half_hour_gap_can_move_a_run_past_a_later_one_of_the_same_day() {
    // Lord Howe Island moves from UTC+10:30 to +11 at 02:00 local on 4 October 2026, jumping to
    // 02:30. Local 02:20 moves forward by the gap to 02:50 (15:50Z), after 02:45 (15:45Z): both
    // windows exist, in instant order, the first cut short by the second.
    let lord_howe = policy(json!({"cron": "20,45 2 * * *", "time_zone": "Australia/Lord_Howe"}));
    assert_eq!(
        lord_howe.windows_between(ts("2026-10-03T15:00:00Z"), ts("2026-10-03T16:00:00Z")),
        [
            window("2026-10-03T15:45:00Z", "2026-10-03T15:50:00Z"),
            window("2026-10-03T15:50:00Z", "2026-10-03T19:50:00Z"),
        ]
    );
}

#[test]
fn a_skipped_day_moves_its_windows_onto_the_next() {
    // Samoa skipped Friday 30 December 2011, going from UTC-10 to +14 at midnight. The Friday
    // 08:00 window moves forward by the 24-hour gap to Saturday 08:00 +14 (Friday 18:00Z), and a
    // search from the start of Saturday finds it.
    let samoa = policy(json!({"plan": "weekly", "weekday": "FRI", "hour": 8, "time_zone": "Pacific/Apia"}));
    assert_eq!(
        starts(&samoa.windows_between(ts("2011-12-30T10:00:00Z"), ts("2012-01-07T00:00:00Z"))),
        ["2011-12-30T18:00:00Z", "2012-01-05T18:00:00Z"]
    );
}
