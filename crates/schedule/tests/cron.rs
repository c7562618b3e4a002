//! Cron expressions: fields, names, steps, Vixie's day-of-month/day-of-week rule, errors, and
//! the search for the next run.

use drydock_schedule::cron::Cron;
use jiff::SignedDuration;
use jiff::civil::{DateTime, date};

fn cron(text: &str) -> Cron {
    Cron::parse(text).unwrap_or_else(|error| panic!("{text} should parse: {error}"))
}

fn at(text: &str) -> DateTime {
    text.parse().unwrap()
}

/// The first `count` runs after `from`.
fn runs(text: &str, from: &str, count: usize) -> Vec<String> {
    let cron = cron(text);
    std::iter::successors(cron.next_after(at(from)), |&previous| cron.next_after(previous))
        .take(count)
        .map(|run| run.to_string())
        .collect()
}

/// Both expressions run at the same times over eight weeks of 2026.
fn assert_same_runs(text: &str, same_as: &str) {
    let (left, right) = (runs(text, "2026-01-01T00:00", 100), runs(same_as, "2026-01-01T00:00", 100));
    assert_eq!(left, right, "{text} and {same_as}");
}

#[test]
fn sundays_and_thursdays_at_0330_over_two_weeks() {
    // 1 January 2026 is a Thursday.
    assert_eq!(
        runs("30 3 * * 0,4", "2026-01-01T00:00", 5),
        [
            "2026-01-01T03:30:00",
            "2026-01-04T03:30:00",
            "2026-01-08T03:30:00",
            "2026-01-11T03:30:00",
            "2026-01-15T03:30:00"
        ]
    );
    let tutorial = cron("30 3 * * 0,4");
    assert!(tutorial.matches(at("2026-01-04T03:30")));
    assert!(!tutorial.matches(at("2026-01-05T03:30")));
    assert!(!tutorial.matches(at("2026-01-04T03:31")));
    // Strictly after: a run at exactly `after` is not returned, one a second later is.
    assert_eq!(tutorial.next_after(at("2026-01-01T03:30")), Some(at("2026-01-04T03:30")));
    assert_eq!(tutorial.next_after(at("2026-01-01T03:29:59")), Some(at("2026-01-01T03:30")));
    // Thursday 03:30 → Sunday is 3 days, Sunday → Thursday 4.
    assert_eq!(tutorial.max_gap(), SignedDuration::from_hours(4 * 24));
    let average = tutorial.average_interval().as_secs_f64() / 86_400.0;
    assert!((3.45..3.55).contains(&average), "{average} days");
}

#[test]
fn steps_ranges_lists_and_names() {
    assert_eq!(
        runs("*/15 * * * *", "2026-01-01T23:07", 4),
        ["2026-01-01T23:15:00", "2026-01-01T23:30:00", "2026-01-01T23:45:00", "2026-01-02T00:00:00"]
    );
    assert_eq!(cron("*/15 * * * *").max_gap(), SignedDuration::from_mins(15));
    // Friday 2 January 2026 at 09:00 → Monday.
    assert_eq!(runs("0 9 * * 1-5", "2026-01-02T09:00", 2), ["2026-01-05T09:00:00", "2026-01-06T09:00:00"]);
    assert_eq!(cron("0 9 * * 1-5").max_gap(), SignedDuration::from_hours(3 * 24));
    assert_same_runs("0 9 * * MON-FRI", "0 9 * * 1-5");
    assert_eq!(
        runs("0-30/10 8,20 * * *", "2026-01-01T08:00", 5),
        [
            "2026-01-01T08:10:00",
            "2026-01-01T08:20:00",
            "2026-01-01T08:30:00",
            "2026-01-01T20:00:00",
            "2026-01-01T20:10:00"
        ]
    );
    // `5/20` is every 20 minutes from 5.
    assert_eq!(
        runs("5/20 0 * * *", "2025-12-31T23:00", 3),
        ["2026-01-01T00:05:00", "2026-01-01T00:25:00", "2026-01-01T00:45:00"]
    );
    // Month names in any case; runs skip whole months.
    assert_eq!(runs("0 0 1 jan,Jul *", "2026-01-01T00:00", 2), ["2026-07-01T00:00:00", "2027-01-01T00:00:00"]);
    // Both 0 and 7 are Sunday; 4 January 2026 is one.
    assert_eq!(cron("0 0 * * 7").next_after(at("2026-01-01T00:00")), Some(at("2026-01-04T00:00")));
    assert_same_runs("0 0 * * 7", "0 0 * * 0");
    assert_same_runs("0 0 * * 5-7", "0 0 * * 0,5,6");
    assert_same_runs("@weekly", "0 0 * * 0");
}

#[test]
fn day_of_month_and_day_of_week_both_restricted_match_either() {
    // The 13th or any Friday: in January 2026 the Fridays are 2, 9, 16, 23, 30 and the 13th is
    // a Tuesday.
    assert_eq!(
        runs("0 0 13 * 5", "2026-01-01T00:00", 6),
        [
            "2026-01-02T00:00:00",
            "2026-01-09T00:00:00",
            "2026-01-13T00:00:00",
            "2026-01-16T00:00:00",
            "2026-01-23T00:00:00",
            "2026-01-30T00:00:00"
        ]
    );
    // As in Vixie cron, a field starting with `*` is unrestricted, so `*/2` with Monday means
    // both: odd days that are Mondays (5 and 19 January 2026, not 12 or 26).
    assert_eq!(runs("0 0 */2 * 1", "2026-01-01T00:00", 2), ["2026-01-05T00:00:00", "2026-01-19T00:00:00"]);
    // With day-of-week `*`, only the day of month counts.
    assert_eq!(runs("0 0 13 * *", "2026-01-01T00:00", 2), ["2026-01-13T00:00:00", "2026-02-13T00:00:00"]);
}

#[test]
fn rare_expressions_are_found_quickly_and_gaps_capped() {
    // 29 February: 2100 is not a leap year, so after 2096 the next is 2104.
    let leap_day = cron("0 0 29 2 *");
    assert_eq!(leap_day.next_after(at("2096-03-01T00:00")), Some(at("2104-02-29T00:00")));
    assert_eq!(leap_day.max_gap(), SignedDuration::from_hours(366 * 24));
    // The 31st: 31 March → 31 May (30 April in between) is the longest gap, 61 days; 31
    // January → 31 March 2024 is only 60.
    assert_eq!(cron("0 0 31 * *").max_gap(), SignedDuration::from_hours(61 * 24));
    assert_eq!(cron("@yearly").max_gap(), SignedDuration::from_hours(366 * 24));
    assert!(cron("0 0 31 * *").matches_date(date(2026, 12, 31)));
    assert!(!cron("0 0 31 * *").matches_date(date(2026, 4, 30)));
}

#[test]
fn mistakes_are_one_line_errors_naming_the_expression_and_field() {
    let cases = [
        ("61 * * * *", "cron \"61 * * * *\": minute 61 is out of range 0-59"),
        ("* 24 * * *", "cron \"* 24 * * *\": hour 24 is out of range 0-23"),
        ("* * 0 * *", "cron \"* * 0 * *\": day-of-month 0 is out of range 1-31"),
        ("* * * 13 *", "cron \"* * * 13 *\": month 13 is out of range 1-12"),
        ("* * * * 8", "cron \"* * * * 8\": day-of-week 8 is out of range 0-7"),
        ("* * * *", "cron \"* * * *\": has 4 fields, expected 5 (minute hour day-of-month month day-of-week)"),
        ("", "cron \"\": has 0 fields, expected 5 (minute hour day-of-month month day-of-week)"),
        ("*/0 * * * *", "cron \"*/0 * * * *\": minute step must be a number from 1 to 59, not \"0\""),
        ("0 5-1 * * *", "cron \"0 5-1 * * *\": hour range 5-1 goes backwards"),
        ("0 0 * * funday", "cron \"0 0 * * funday\": day-of-week \"funday\" is not a number or a name like MON"),
        ("0 x * * *", "cron \"0 x * * *\": hour \"x\" is not a number"),
        ("0 0 1,,2 * *", "cron \"0 0 1,,2 * *\": day-of-month has an empty value"),
        ("0 0 30 2 *", "cron \"0 0 30 2 *\": never matches: none of its months has any of its days of month"),
        (
            "0 0 31 4,6,9,11 *",
            "cron \"0 0 31 4,6,9,11 *\": never matches: none of its months has any of its days of month",
        ),
        ("@reboot", "cron \"@reboot\": @reboot is not one of @hourly, @daily, @weekly, @monthly, @yearly"),
    ];
    for (text, expected) in cases {
        assert_eq!(Cron::parse(text).map_err(|error| error.to_string()), Err(expected.to_string()), "{text}");
    }
    let too_long = format!("0 0 * * {}", "1,".repeat(200));
    assert!(Cron::parse(&too_long).unwrap_err().to_string().ends_with("is longer than 256 bytes"));
    // 30 February never comes, but with a restricted day of week it still runs on that day.
    assert!(Cron::parse("0 0 30 2 1").is_ok());
}
