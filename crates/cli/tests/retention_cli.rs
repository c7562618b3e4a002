//! `drydock retention simulate`, run as a person runs it: the real binary, no daemon.
//!
//! Every expectation below is worked out by hand. The simulator takes each backup at the same
//! offset into its window, fnv1a64("simulation") mod 7200 s = 4982 s = 1 h 23 min 2 s into a
//! 4-hour window (the spread covers the window's first half), so a daily window at 00:00 UTC
//! has its backup at 01:23:02 UTC.

mod common;

use common::drydock_command;
use serde_json::Value;

fn simulate(args: &[&str]) -> common::Outcome {
    let mut all = vec!["retention", "simulate"];
    all.extend_from_slice(args);
    drydock_command(&all).run()
}

/// The `taken_at` of every backup left at the end, oldest first.
fn taken(answer: &Value) -> Vec<String> {
    let backups = answer["simulation"]["backups"].as_array().expect("simulation.backups is a list");
    backups.iter().map(|b| b["taken_at"].as_str().expect("taken_at is a string").to_string()).collect()
}

fn backup_taken_at<'a>(answer: &'a Value, taken_at: &str) -> &'a Value {
    let backups = answer["simulation"]["backups"].as_array().unwrap();
    backups.iter().find(|b| b["taken_at"] == taken_at).unwrap_or_else(|| panic!("no backup taken at {taken_at}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().expect("a list").iter().map(|v| v.as_str().expect("a string")).collect()
}

/// DigitalOcean's default (daily, kept 7 days) from 2026-01-01 for 30 days: backups on Jan 1
/// to 30 at 01:23:02; at the end, Jan 31 00:00, those younger than 7 days are the ones taken
/// after Jan 24 00:00: Jan 24 to 30.
#[test]
fn digitalocean_daily_policy_keeps_seven_backups() {
    let outcome = simulate(&["--plan", "daily", "--start", "2026-01-01", "--days", "30", "--json"]).assert_ok();
    let answer = outcome.json();
    let expected: Vec<String> = (24..=30).map(|day| format!("2026-01-{day}T01:23:02Z")).collect();
    assert_eq!(taken(&answer), expected);
    assert_eq!(answer["simulation"]["taken"], 30);
    assert_eq!(answer["simulation"]["pruned"], 23);
    assert_eq!(answer["policy"]["retention_period_days"], 7, "DigitalOcean's default: {}", answer["policy"]);
    let newest = backup_taken_at(&answer, "2026-01-30T01:23:02Z");
    assert_eq!(strings(&newest["reasons"]), ["younger than 7 days"]);
}

/// Started at 01:23:02 on Jan 1, the Jan 1 window (00:00) is before the start: backups on Jan
/// 2 to 31, the last one at the very end. A backup exactly 7 days old is no longer younger than
/// 7 days: Jan 24's goes, Jan 25 to 31 stay.
#[test]
fn a_backup_exactly_retention_days_old_expires() {
    let outcome = simulate(&["--start", "2026-01-01T01:23:02Z", "--days", "30", "--json"]).assert_ok();
    let answer = outcome.json();
    let expected: Vec<String> = (25..=31).map(|day| format!("2026-01-{day}T01:23:02Z")).collect();
    assert_eq!(taken(&answer), expected);
    assert_eq!(answer["simulation"]["taken"], 30);
}

/// Daily at 00:00 UTC from 2026-01-01 (a Thursday) for 60 days, keeping 7 daily and 4 weekly:
/// backups on Jan 1 to Mar 1. Each is the first of its day, so all are daily; the weekly ones
/// are the first of each ISO week: Jan 1, then the Mondays Jan 5 … Feb 23 (Mar 1 is a Sunday).
/// Kept: the newest 7 daily, Feb 23 to Mar 1, and the newest 4 weekly, Feb 2, 9, 16 and 23.
#[test]
fn gfs_policy_keeps_the_newest_daily_and_weekly_backups() {
    let args =
        "--plan daily --hour 0 --time-zone UTC --keep-daily 7 --keep-weekly 4 --start 2026-01-01 --days 60 --json";
    let answer = simulate(&args.split(' ').collect::<Vec<_>>()).assert_ok().json();
    let days = ["02-02", "02-09", "02-16", "02-23", "02-24", "02-25", "02-26", "02-27", "02-28", "03-01"];
    let expected: Vec<String> = days.iter().map(|day| format!("2026-{day}T01:23:02Z")).collect();
    assert_eq!(taken(&answer), expected);
    assert_eq!(answer["simulation"]["taken"], 60);
    assert_eq!(answer["simulation"]["pruned"], 50);

    // Counts alone: no age rule unless one is asked for.
    let policy = &answer["policy"];
    assert_eq!(policy["plan"], "daily");
    assert_eq!(policy["keep_daily"], 7);
    assert_eq!(policy["keep_weekly"], 4);
    assert!(policy.get("retention_period_days").is_none_or(Value::is_null), "no age rule: {policy}");

    let feb_2 = backup_taken_at(&answer, "2026-02-02T01:23:02Z");
    assert_eq!(strings(&feb_2["tags"]), ["daily", "weekly"]);
    assert_eq!(strings(&feb_2["reasons"]), ["newest 4 of 4 weekly"]);
    let feb_23 = backup_taken_at(&answer, "2026-02-23T01:23:02Z");
    assert_eq!(strings(&feb_23["reasons"]), ["newest 7 of 7 daily", "newest 1 of 4 weekly"]);
    let mar_1 = backup_taken_at(&answer, "2026-03-01T01:23:02Z");
    assert_eq!(strings(&mar_1["tags"]), ["daily", "monthly"]);
    assert_eq!(strings(&mar_1["reasons"]), ["newest 1 of 7 daily"]);

    // 10 GiB changing 2% per backup, priced at the daily backup price.
    let estimate = &answer["estimate"];
    assert_eq!(estimate["data_bytes"], 10u64 << 30);
    assert_eq!(estimate["currency"], "USD");
    let stored_bytes = estimate["stored_bytes"].as_u64().expect("stored_bytes");
    assert!(stored_bytes > 10 << 30, "ten backups store more than the data: {estimate}");
    let monthly_cost = estimate["monthly_cost"].as_f64().expect("monthly_cost");
    let expected_cost = stored_bytes as f64 / (1u64 << 30) as f64 * 0.03;
    assert!((monthly_cost - expected_cost).abs() < 1e-9, "{monthly_cost} != {expected_cost}");
}

/// The table: one line per backup in the policy's local time, then the totals. Daily at 04:00
/// Paris time (03:00 UTC in winter) from Jan 1 00:00 UTC: backups on Jan 1 to 30 at 05:23:02
/// CET; at the end the 7 taken after Jan 24 00:00 UTC remain.
#[test]
fn table_shows_local_times_tags_reasons_and_totals() {
    let args = ["--hour", "4", "--time-zone", "Europe/Paris", "--start", "2026-01-01", "--days", "30"];
    let text = simulate(&args).assert_ok().stdout_text();
    let rows: Vec<&str> = text.lines().filter(|line| line.starts_with("2026-")).collect();
    assert_eq!(rows.len(), 7, "{text}");
    for (row, day) in rows.iter().zip(24..) {
        assert!(row.starts_with(&format!("2026-01-{day} 05:23:02 CET")), "{row}");
        assert!(row.contains("daily") && row.contains("younger than 7 days"), "{row}");
    }
    assert!(text.contains("30 taken, 23 pruned, 7 kept"), "{text}");
    assert!(text.contains("daily at 04:00 Europe/Paris"), "{text}");
    assert!(text.contains("USD a month"), "{text}");
}

#[test]
fn bad_input_is_one_line_naming_the_mistake() {
    let cases: [(&[&str], &[&str]); 8] = [
        (&["--time-zone", "Mars/Olympus_Mons"], &["time_zone", "Mars/Olympus_Mons"]),
        (&["--hour", "3"], &["hour", "3"]),
        (&["--cron", "0 3 * * * *"], &["cron"]),
        (&["--keep-daily", "0", "--retention-days", "0"], &[]),
        (&["--start", "yesterday"], &["--start", "yesterday"]),
        (&["--days", "0"], &["--days"]),
        (&["--cron", "* * * * *", "--days", "365"], &["100000 backups", "365 days"]),
        (&["--policy", "{\"plan\": \"fortnightly\"}"], &["plan", "fortnightly"]),
    ];
    for (args, needles) in cases {
        simulate(args).assert_clean_failure(needles);
    }
}

// ---- the client verbs, against a real daemon ----

mod daemon_common;

use daemon_common::{Daemon, write_sparse_disk};

/// `drydock ARGS` pointed at `daemon` through the environment, as a script would be.
fn client(daemon: &Daemon, args: &[&str]) -> common::Outcome {
    let output = daemon_common::drydock()
        .args(args)
        .env("DRYDOCK_API_URL", &daemon.url)
        .env("DRYDOCK_TOKEN", &daemon.token)
        .env("DRYDOCK_CACERT", daemon.cert())
        .output()
        .expect("running drydock");
    common::Outcome {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        command: format!("drydock {}", args.join(" ")),
    }
}

fn small_disk(daemon: &Daemon, name: &str) -> std::path::PathBuf {
    let path = daemon.disks.join(name);
    write_sparse_disk(&path, 4 << 20, 1 << 20, name.len() as u64);
    path
}

#[test]
fn backup_verbs_and_usage_talk_to_the_daemon() {
    // No scheduler: when the test runs inside the volume's daily window, it would take a backup
    // and the image count below would depend on the time of day.
    let daemon = Daemon::with_config("[scheduler]\nenabled = false");
    let droplet = daemon.register("web-1", &small_disk(&daemon, "web-1.img"), serde_json::json!({"driver": "none"}));
    let id = droplet.to_string();

    let enable = ["--json", "droplet", "enable-backups", &id, "--plan", "weekly", "--weekday", "THU", "--hour", "20"];
    let action = client(&daemon, &enable).assert_ok().json();
    assert_eq!((&action["type"], &action["status"]), (&"enable_backups".into(), &"completed".into()), "{action}");
    let record = client(&daemon, &["--json", "droplet", "backup-policy", &id]).assert_ok().json();
    assert_eq!(record["backup_enabled"], true, "{record}");
    let policy = &record["backup_policy"];
    assert_eq!((&policy["plan"], &policy["weekday"], &policy["hour"]), (&"weekly".into(), &"THU".into(), &20.into()));
    assert_eq!(policy["retention_period_days"], 28, "DigitalOcean's weekly retention: {policy}");
    let text = client(&daemon, &["droplet", "backup-policy", &id]).assert_ok().stdout_text();
    assert!(text.contains("weekly on THU at 20:00 UTC") && text.contains("backups younger than 28 days"), "{text}");

    client(&daemon, &["droplet", "backup-policy", &id, "--hour", "3"]).assert_clean_failure(&["hour", "3"]);
    client(&daemon, &["--json", "droplet", "backup-policy", &id, "--keep-daily", "7"]).assert_ok();
    let policy =
        client(&daemon, &["--json", "droplet", "backup-policy", &id]).assert_ok().json()["backup_policy"].clone();
    assert_eq!((&policy["plan"], &policy["keep_daily"]), (&"daily".into(), &7.into()), "replaced whole: {policy}");
    assert_eq!(client(&daemon, &["--json", "droplet", "backups", &id]).assert_ok().json(), serde_json::json!([]));
    client(&daemon, &["droplet", "disable-backups", &id]).assert_ok();
    let record = client(&daemon, &["--json", "droplet", "backup-policy", &id]).assert_ok().json();
    assert_eq!(record["backup_enabled"], false, "{record}");

    let disk = small_disk(&daemon, "data-1.img");
    let volume = client(&daemon, &["--json", "volume", "register", "data-1", "--disk", disk.to_str().unwrap()])
        .assert_ok()
        .json();
    let volume_id = volume["id"].as_str().expect("a volume id").to_string();
    client(&daemon, &["volume", "enable-backups", &volume_id, "--keep-daily", "3"]).assert_ok();
    let record = client(&daemon, &["--json", "volume", "backup-policy", &volume_id]).assert_ok().json();
    assert_eq!((&record["backup_enabled"], &record["backup_policy"]["keep_daily"]), (&true.into(), &3.into()));

    // Usage needs an image to measure.
    client(&daemon, &["snapshot", "create", &id, "--wait"]).assert_ok();
    let usage = client(&daemon, &["--json", "usage"]).assert_ok().json();
    let resources = usage["resources"].as_array().expect("usage.resources");
    assert!(resources.iter().any(|r| r["resource_id"] == id.as_str()), "droplet {id} missing: {usage}");
    let text = client(&daemon, &["usage", "--images"]).assert_ok().stdout_text();
    assert!(text.contains("web-1") && text.contains("snapshot") && text.contains("total: 1 images"), "{text}");
}
