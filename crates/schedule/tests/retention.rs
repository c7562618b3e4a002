//! The retention plan, tags, the simulator's bookkeeping and the cost estimate, each on small
//! cases worked out by hand.

use drydock_schedule::cost::{self, Estimate, Prices, monthly_cost};
use drydock_schedule::policy::{Plan, Policy, Retention};
use drydock_schedule::retention::{BackupRef, Decision, Reason, plan};
use drydock_schedule::simulate::{SimulatedBackup, Simulation, TooManyBackups, simulate};
use drydock_schedule::tags::{Tag, tags_for};
use drydock_schedule::window::due_at;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn policy(value: Value) -> Policy {
    Policy::from_json(&value).unwrap_or_else(|error| panic!("{value}: {error}"))
}

fn backup(id: i64, taken_at: &str, tags: &[Tag]) -> BackupRef {
    BackupRef { id, taken_at: ts(taken_at), tags: tags.to_vec() }
}

fn reasons(decisions: &[Decision]) -> Vec<(i64, Vec<Reason>)> {
    decisions.iter().map(|decision| (decision.id, decision.reasons.clone())).collect()
}

fn newest(tag: Tag, rank: u32, keep: u32) -> Reason {
    Reason::Newest { tag, rank, keep }
}

// ---- the retention plan ----

#[test]
fn the_newest_of_each_tag_are_kept_and_the_rest_expire() {
    let retention = Retention { keep_daily: 2, keep_weekly: 1, ..Retention::default() };
    // Given oldest last, to check that decisions follow the input order, not the ranking.
    let backups = [
        backup(4, "2026-01-08T00:00:00Z", &[Tag::Daily]),
        backup(3, "2026-01-07T00:00:00Z", &[Tag::Daily]),
        backup(2, "2026-01-06T00:00:00Z", &[Tag::Daily, Tag::Weekly]),
        backup(1, "2026-01-05T00:00:00Z", &[Tag::Daily, Tag::Weekly]),
    ];
    let decisions = plan(&retention, &backups, ts("2026-01-09T00:00:00Z"));
    assert_eq!(
        reasons(&decisions),
        [
            (4, vec![newest(Tag::Daily, 1, 2)]),
            (3, vec![newest(Tag::Daily, 2, 2)]),
            (2, vec![newest(Tag::Weekly, 1, 1)]),
            (1, vec![]),
        ]
    );
    assert_eq!(decisions.iter().map(Decision::keep).collect::<Vec<_>>(), [true, true, true, false]);
    assert_eq!(decisions[0].taken_at, backups[0].taken_at);
}

#[test]
fn backups_taken_at_the_same_instant_rank_by_id_the_larger_first() {
    let retention = Retention { keep_daily: 1, ..Retention::default() };
    let at = "2026-01-05T00:00:00Z";
    let backups = [backup(7, at, &[Tag::Daily]), backup(9, at, &[Tag::Daily]), backup(8, at, &[Tag::Daily])];
    let decisions = plan(&retention, &backups, ts("2026-01-06T00:00:00Z"));
    assert_eq!(reasons(&decisions), [(7, vec![]), (9, vec![newest(Tag::Daily, 1, 1)]), (8, vec![])]);
}

#[test]
fn a_count_of_zero_keeps_nothing_by_that_tag() {
    let retention = Retention { keep_hourly: 0, keep_daily: 1, ..Retention::default() };
    let backups = [
        backup(1, "2026-01-05T00:00:00Z", &[Tag::Hourly, Tag::Daily]),
        backup(2, "2026-01-05T01:00:00Z", &[Tag::Hourly]),
    ];
    let decisions = plan(&retention, &backups, ts("2026-01-05T02:00:00Z"));
    assert_eq!(reasons(&decisions), [(1, vec![newest(Tag::Daily, 1, 1)]), (2, vec![])]);
}

#[test]
fn backups_younger_than_the_period_are_kept_whatever_their_tags() {
    let retention = Retention { retention_period_days: Some(7), keep_daily: 1, ..Retention::default() };
    let now = ts("2026-01-10T00:00:00Z");
    let backups = [
        // Exactly 7 days old: no longer younger than 7 days.
        backup(1, "2026-01-03T00:00:00Z", &[Tag::Daily]),
        backup(2, "2026-01-03T00:00:01Z", &[]),
        backup(3, "2026-01-09T00:00:00Z", &[Tag::Daily]),
    ];
    assert_eq!(
        reasons(&plan(&retention, &backups, now)),
        [
            (1, vec![]),
            (2, vec![Reason::Young { days: 7 }]),
            (3, vec![newest(Tag::Daily, 1, 1), Reason::Young { days: 7 }]),
        ]
    );
    // A period of 0 days keeps nothing by age.
    let none = Retention { retention_period_days: Some(0), ..Retention::default() };
    assert!(plan(&none, &backups, now).iter().all(|decision| !decision.keep()));
}

#[test]
fn manual_snapshots_are_never_pruned_and_count_for_no_tag() {
    let retention = Retention { keep_daily: 1, ..Retention::default() };
    let backups = [
        backup(1, "2020-01-01T00:00:00Z", &[Tag::Manual]),
        backup(2, "2026-01-05T00:00:00Z", &[Tag::Daily]),
        backup(3, "2026-01-04T00:00:00Z", &[Tag::Daily]),
    ];
    let decisions = plan(&retention, &backups, ts("2026-01-06T00:00:00Z"));
    assert_eq!(reasons(&decisions), [(1, vec![Reason::Manual]), (2, vec![newest(Tag::Daily, 1, 1)]), (3, vec![])]);
}

#[test]
fn every_reason_that_applies_is_listed_in_tag_order() {
    let retention = Retention {
        keep_hourly: 24,
        keep_daily: 7,
        keep_weekly: 4,
        keep_monthly: 12,
        keep_yearly: 1,
        retention_period_days: Some(1),
    };
    let all = [Tag::Hourly, Tag::Daily, Tag::Weekly, Tag::Monthly, Tag::Yearly, Tag::Manual];
    let backups = [backup(1, "2026-01-01T00:00:00Z", &all)];
    assert_eq!(
        reasons(&plan(&retention, &backups, ts("2026-01-01T01:00:00Z"))),
        [(
            1,
            vec![
                newest(Tag::Hourly, 1, 24),
                newest(Tag::Daily, 1, 7),
                newest(Tag::Weekly, 1, 4),
                newest(Tag::Monthly, 1, 12),
                newest(Tag::Yearly, 1, 1),
                Reason::Young { days: 1 },
                Reason::Manual,
            ]
        )]
    );
    assert!(plan(&retention, &[], ts("2026-01-01T00:00:00Z")).is_empty());
}

#[test]
fn reasons_read_as_the_api_shows_them() {
    assert_eq!(newest(Tag::Daily, 3, 7).to_string(), "newest 3 of 7 daily");
    assert_eq!(newest(Tag::Yearly, 1, 1).to_string(), "newest 1 of 1 yearly");
    assert_eq!(Reason::Young { days: 7 }.to_string(), "younger than 7 days");
    assert_eq!(Reason::Young { days: 1 }.to_string(), "younger than 1 day");
    assert_eq!(Reason::Manual.to_string(), "manual snapshot");
}

// ---- tags ----

#[test]
fn tags_are_named_and_parsed_both_ways() {
    for tag in Tag::ALL {
        assert_eq!(Tag::parse(tag.as_str()), Some(tag));
    }
    let names: Vec<&str> = Tag::ALL.iter().map(|tag| tag.as_str()).collect();
    assert_eq!(names, ["hourly", "daily", "weekly", "monthly", "yearly", "manual"]);
    assert_eq!(Tag::parse("Daily"), None);
    assert_eq!(Tag::parse("web"), None);
}

#[test]
fn the_first_backup_opens_every_period_and_sub_daily_backups_are_hourly() {
    let daily = policy(json!({}));
    let at = ts("2026-05-13T01:00:00Z");
    assert_eq!(tags_for(&daily, at, None), [Tag::Daily, Tag::Weekly, Tag::Monthly, Tag::Yearly]);
    let every_6h = policy(json!({"plan": "intra_daily_6h"}));
    assert_eq!(tags_for(&every_6h, at, None), [Tag::Hourly, Tag::Daily, Tag::Weekly, Tag::Monthly, Tag::Yearly]);
    assert_eq!(tags_for(&every_6h, at, Some(ts("2026-05-13T00:00:00Z"))), [Tag::Hourly]);
    assert_eq!(tags_for(&daily, at, Some(ts("2026-05-13T00:00:00Z"))), []);
    // A cron plan is not sub-daily however often it runs: its backups are not hourly.
    let cron = policy(json!({"cron": "0 * * * *"}));
    assert_eq!(tags_for(&cron, at, Some(ts("2026-05-13T00:00:00Z"))), []);
}

#[test]
fn iso_week_53_of_2026_runs_into_2027() {
    // 1 January 2026 is a Thursday, so 2026 has 53 ISO weeks: week 53 runs from Monday
    // 28 December 2026 to Sunday 3 January 2027, and week 1 of 2027 starts on 4 January.
    let daily = policy(json!({}));
    let tags = |at: &str, previous: &str| tags_for(&daily, ts(at), Some(ts(previous)));
    // Thursday 31 December to Friday 1 January: a new day, month and year, the same week.
    assert_eq!(tags("2027-01-01T01:00:00Z", "2026-12-31T01:00:00Z"), [Tag::Daily, Tag::Monthly, Tag::Yearly]);
    assert_eq!(tags("2027-01-03T01:00:00Z", "2026-12-28T01:00:00Z"), [Tag::Daily, Tag::Monthly, Tag::Yearly]);
    // Sunday 3 to Monday 4 January 2027: week 53 of 2026 to week 1 of 2027.
    assert_eq!(tags("2027-01-04T01:00:00Z", "2027-01-03T01:00:00Z"), [Tag::Daily, Tag::Weekly]);
    // Sunday 27 to Monday 28 December 2026: week 52 to week 53.
    assert_eq!(tags("2026-12-28T01:00:00Z", "2026-12-27T01:00:00Z"), [Tag::Daily, Tag::Weekly]);
}

#[test]
fn a_week_can_start_in_the_old_year() {
    // 1 January 2025 is a Wednesday: ISO week 1 of 2025 began on Monday 30 December 2024.
    let daily = policy(json!({}));
    let tags = |at: &str, previous: &str| tags_for(&daily, ts(at), Some(ts(previous)));
    assert_eq!(tags("2024-12-30T01:00:00Z", "2024-12-29T01:00:00Z"), [Tag::Daily, Tag::Weekly]);
    assert_eq!(tags("2025-01-01T01:00:00Z", "2024-12-31T01:00:00Z"), [Tag::Daily, Tag::Monthly, Tag::Yearly]);
    // Weekly backups on Sundays: each is a new week, and the one of 5 January a new year too.
    assert_eq!(
        tags("2025-01-05T01:00:00Z", "2024-12-29T01:00:00Z"),
        [Tag::Daily, Tag::Weekly, Tag::Monthly, Tag::Yearly]
    );
}

#[test]
fn periods_are_counted_in_the_policys_time_zone() {
    let utc = policy(json!({}));
    let tokyo = policy(json!({"time_zone": "Asia/Tokyo"}));
    let new_york = policy(json!({"time_zone": "America/New_York"}));
    // 14:00Z and 16:00Z on 31 December 2026 are 23:00 on 31 December and 01:00 on 1 January in
    // Tokyo (+09:00), and 09:00 and 11:00 on 31 December in New York (−05:00).
    let (previous, at) = (ts("2026-12-31T14:00:00Z"), ts("2026-12-31T16:00:00Z"));
    assert_eq!(tags_for(&utc, at, Some(previous)), []);
    assert_eq!(tags_for(&new_york, at, Some(previous)), []);
    assert_eq!(tags_for(&tokyo, at, Some(previous)), [Tag::Daily, Tag::Monthly, Tag::Yearly]);
    // And the other way: 03:00Z and 05:00Z on 1 January are the same UTC day, but the first is
    // still 31 December (22:00) in New York.
    let (previous, at) = (ts("2027-01-01T03:00:00Z"), ts("2027-01-01T05:00:00Z"));
    assert_eq!(tags_for(&utc, at, Some(previous)), []);
    assert_eq!(tags_for(&new_york, at, Some(previous)), [Tag::Daily, Tag::Monthly, Tag::Yearly]);
}

// ---- the simulator ----

/// The simulator as the brief states it, without its shortcut: prune after every backup.
fn simulate_pruning_every_backup(policy: &Policy, key: &str, start: Timestamp, days: u32) -> Vec<SimulatedBackup> {
    let end = start + SignedDuration::from_hours(i64::from(days) * 24);
    let mut retained: Vec<BackupRef> = Vec::new();
    let mut previous = None;
    for (id, window) in (1..).zip(policy.windows_between(start, end)) {
        let taken_at = due_at(&window, key);
        retained.push(BackupRef { id, taken_at, tags: tags_for(policy, taken_at, previous) });
        previous = Some(taken_at);
        let decisions = plan(&policy.retention, &retained, taken_at);
        let mut keep = decisions.iter().map(Decision::keep);
        retained.retain(|_| keep.next().unwrap());
    }
    let decisions = plan(&policy.retention, &retained, end);
    retained
        .into_iter()
        .zip(decisions)
        .filter(|(_, decision)| decision.keep())
        .map(|(backup, decision)| SimulatedBackup {
            taken_at: backup.taken_at,
            tags: backup.tags,
            reasons: decision.reasons,
        })
        .collect()
}

#[test]
fn pruning_only_when_the_list_doubles_leaves_what_pruning_every_backup_leaves() {
    let policies = [
        json!({"plan": "intra_daily_2h", "time_zone": "Europe/Paris", "retention_period_days": 3,
            "keep_hourly": 5, "keep_daily": 3, "keep_weekly": 2, "keep_monthly": 2, "keep_yearly": 1}),
        json!({"plan": "daily", "retention_period_days": 10, "keep_weekly": 3}),
        json!({"cron": "0 */5 * * 1-5", "time_zone": "America/New_York", "keep_daily": 4, "keep_monthly": 3}),
        json!({"plan": "weekly", "weekday": "THU", "hour": 20}),
    ];
    let start = ts("2026-02-20T00:00:00Z");
    for value in policies {
        let policy = policy(value);
        let simulation = simulate(&policy, "droplet:3", start, 120).expect("within the limit");
        let expected = simulate_pruning_every_backup(&policy, "droplet:3", start, 120);
        assert_eq!(simulation.backups, expected, "{}", policy.plan.name());
        assert_eq!(simulation.pruned, simulation.taken - expected.len() as u32);
    }
}

#[test]
fn a_simulation_taking_too_many_backups_is_refused() {
    // Ten years of hourly backups fit; a cron every minute passes the limit in 70 days.
    let hourly = policy(json!({"plan": "hourly", "retention_period_days": 3660}));
    let decade = simulate(&hourly, "droplet:1", ts("2026-01-01T00:00:00Z"), 3660).expect("within the limit");
    assert_eq!(decade.taken, 3660 * 24);
    let every_minute = policy(json!({"cron": "* * * * *", "retention_period_days": 3660}));
    assert!(simulate(&every_minute, "droplet:1", ts("2026-01-01T00:00:00Z"), 69).is_ok());
    assert_eq!(
        simulate(&every_minute, "droplet:1", ts("2026-01-01T00:00:00Z"), 70),
        Err(TooManyBackups { days: 70 }),
        "{} backups",
        70 * 24 * 60
    );
}

#[test]
fn a_simulation_is_written_as_json_with_local_times() {
    // Daily at 04:00 Paris, kept 7 days; "droplet:1" spreads into the window's first 2 hours.
    let policy = policy(json!({"plan": "daily", "hour": 4, "time_zone": "Europe/Paris"}));
    let simulation = simulate(&policy, "droplet:1", ts("2026-03-25T00:00:00Z"), 10).expect("within the limit");
    let json = simulation.to_json();
    // Windows on 25 March to 3 April (10); at the end (4 April 00:00Z) those of 28 March and
    // later are younger than 7 days. 29 March is the day Paris moves to +02:00.
    assert_eq!((json["taken"].clone(), json["pruned"].clone(), json["kept"].clone()), (json!(10), json!(3), json!(7)));
    assert_eq!(
        (json["start"].as_str(), json["end"].as_str()),
        (Some("2026-03-25T00:00:00Z"), Some("2026-04-04T00:00:00Z"))
    );
    let backups = json["backups"].as_array().unwrap();
    let first = &backups[0];
    let local = first["local"].as_str().unwrap();
    assert!(local.starts_with("2026-03-28T0") && local.ends_with("+01:00"), "{local}");
    let last_local = backups[6]["local"].as_str().unwrap();
    assert!(last_local.starts_with("2026-04-03T0") && last_local.ends_with("+02:00"), "{last_local}");
    let taken_at: Timestamp = first["taken_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(taken_at, simulation.backups[0].taken_at);
    assert_eq!(first["tags"], json!(["daily"]));
    assert_eq!(backups[4]["tags"], json!(["daily", "monthly"]), "1 April");
    assert_eq!(first["reasons"], json!(["younger than 7 days"]));
}

// ---- cost ----

fn cron_plan(text: &str) -> Plan {
    policy(json!({"cron": text})).plan
}

#[test]
fn each_plan_pays_the_price_of_the_digitalocean_plan_at_its_frequency() {
    let prices = Prices::default();
    let price = |plan: Plan| prices.backup_price(&plan);
    assert_eq!(price(Plan::EveryHours { hours: 12 }), 0.02);
    assert_eq!(price(Plan::EveryHours { hours: 6 }), 0.015);
    for hours in [1, 2, 4] {
        assert_eq!(price(Plan::EveryHours { hours }), 0.01, "every {hours} h");
    }
    assert_eq!(price(Plan::Daily { hour: 0 }), 0.03);
    assert_eq!(price(Plan::Weekly { weekday: 0, hour: 0 }), 0.04);
    assert_eq!(price(Plan::Monthly { day: 1, hour: 0 }), 0.04);
    // Cron by its average interval: 3.5 days is daily, a month weekly, 12 h, 8 h and 30 min.
    assert_eq!(price(cron_plan("30 3 * * 0,4")), 0.03);
    assert_eq!(price(cron_plan("0 0 1 * *")), 0.04);
    assert_eq!(price(cron_plan("0 0 * * 1")), 0.04);
    assert_eq!(price(cron_plan("0 3,15 * * *")), 0.02);
    assert_eq!(price(cron_plan("0 */8 * * *")), 0.015);
    assert_eq!(price(cron_plan("*/30 * * * *")), 0.01);
}

#[test]
fn the_monthly_cost_is_per_gib() {
    assert_eq!(monthly_cost(10 << 30, 0.03), 0.3);
    assert_eq!(monthly_cost(1 << 29, 0.06), 0.03);
    assert_eq!(monthly_cost(0, 0.06), 0.0);
}

fn simulation_keeping(count: usize) -> Simulation {
    let backup = SimulatedBackup { taken_at: ts("2026-01-01T00:00:00Z"), tags: vec![Tag::Daily], reasons: vec![] };
    Simulation {
        backups: vec![backup; count],
        taken: 30,
        pruned: 30 - count as u32,
        start: ts("2026-01-01T00:00:00Z"),
        end: ts("2026-01-31T00:00:00Z"),
        tz: TimeZone::UTC,
    }
}

#[test]
fn the_estimate_counts_one_full_copy_and_the_changes_of_the_others() {
    let daily = policy(json!({}));
    let prices = Prices::default();
    // 10 GiB, 7 kept, 2% changing: 10 + 6 × 0.2 = 11.2 GiB at 0.03.
    let estimate = cost::estimate(&daily, &simulation_keeping(7), 10 << 30, 0.02, &prices);
    let stored = (11.2 * (1u64 << 30) as f64).round() as u64;
    assert_eq!(estimate.stored_bytes, stored);
    assert!((estimate.monthly_cost - 11.2 * 0.03).abs() < 1e-9, "{}", estimate.monthly_cost);
    // Nothing kept stores nothing; a change above 1 counts as a full copy per backup.
    assert_eq!(
        cost::estimate(&daily, &simulation_keeping(0), 10 << 30, 0.02, &prices),
        Estimate { stored_bytes: 0, monthly_cost: 0.0 }
    );
    assert_eq!(cost::estimate(&daily, &simulation_keeping(3), 1 << 30, 7.0, &prices).stored_bytes, 3 << 30);
    assert_eq!(cost::estimate(&daily, &simulation_keeping(3), 1 << 30, f64::NAN, &prices).stored_bytes, 1 << 30);
}
