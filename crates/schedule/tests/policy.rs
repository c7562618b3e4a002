//! Backup policies as JSON: DigitalOcean's fields with DigitalOcean's meanings, drydock's
//! extras, defaults, normalization and one-line errors that name the field.

use drydock_schedule::policy::{Plan, Policy, supported};
use serde_json::{Value, json};

fn parse(value: Value) -> Policy {
    Policy::from_json(&value).unwrap_or_else(|error| panic!("{value} should parse: {error}"))
}

fn error(value: Value) -> String {
    match Policy::from_json(&value) {
        Ok(policy) => panic!("{value} should be refused, got {policy:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn missing_and_empty_policies_are_daily_at_midnight_utc_kept_7_days() {
    let expected = json!({
        "plan": "daily", "hour": 0, "time_zone": "UTC", "window_length_hours": 4,
        "retention_period_days": 7, "keep_hourly": 0, "keep_daily": 0, "keep_weekly": 0,
        "keep_monthly": 0, "keep_yearly": 0, "replication_regions": [],
    });
    assert_eq!(parse(Value::Null).to_json(), expected);
    assert_eq!(parse(json!({})).to_json(), expected);
    assert_eq!(parse(json!({})), Policy::default());
}

#[test]
fn a_digitalocean_weekly_policy_comes_back_with_digitalocean_meanings() {
    let policy = parse(json!({"plan": "weekly", "weekday": "THU", "hour": 20}));
    assert_eq!(policy.plan, Plan::Weekly { weekday: 4, hour: 20 });
    assert_eq!(
        policy.to_json(),
        json!({
            "plan": "weekly", "weekday": "THU", "hour": 20, "time_zone": "UTC", "window_length_hours": 4,
            "retention_period_days": 28, "keep_hourly": 0, "keep_daily": 0, "keep_weekly": 0,
            "keep_monthly": 0, "keep_yearly": 0, "replication_regions": [],
        })
    );
    // DigitalOcean's read-only fields echoed back are accepted.
    assert_eq!(parse(policy.to_json()), policy);
}

#[test]
fn fields_outside_the_plan_are_checked_but_not_kept() {
    let daily = parse(json!({"plan": "daily", "weekday": "mon", "day_of_month": 12}));
    let out = daily.to_json();
    assert!(out.get("weekday").is_none() && out.get("day_of_month").is_none() && out.get("cron").is_none());
    assert!(error(json!({"plan": "daily", "weekday": "someday"})).starts_with("backup_policy.weekday"));
    assert!(error(json!({"plan": "daily", "day_of_month": 32})).starts_with("backup_policy.day_of_month"));
    let hourly = parse(json!({"plan": "hourly", "hour": 8})).to_json();
    assert!(hourly.get("hour").is_none());
}

#[test]
fn hours_other_than_digitaloceans_window_starts_are_refused_naming_the_field() {
    assert_eq!(error(json!({"hour": 3})), "backup_policy.hour must be one of 0, 4, 8, 12, 16, 20, not 3");
    assert_eq!(error(json!({"hour": 24})), "backup_policy.hour must be one of 0, 4, 8, 12, 16, 20, not 24");
    assert_eq!(error(json!({"hour": -4})), "backup_policy.hour must be one of 0, 4, 8, 12, 16, 20, not -4");
    assert_eq!(error(json!({"hour": "4"})), "backup_policy.hour must be one of 0, 4, 8, 12, 16, 20, not \"4\"");
    assert_eq!(error(json!({"plan": "monthly", "hour": 2})).lines().count(), 1);
    for hour in [0, 4, 8, 12, 16, 20] {
        assert_eq!(parse(json!({"hour": hour})).plan, Plan::Daily { hour });
    }
}

#[test]
fn other_bad_values_are_refused_in_one_line_naming_the_field() {
    let cases = [
        (json!("daily"), "backup_policy must be an object"),
        (json!({"plan": "yearly"}), "backup_policy.plan must be one of hourly, intra_daily_2h"),
        (json!({"plan": "intra_daily_3h"}), "backup_policy.plan must be one of"),
        (json!({"plan": "weekly", "weekday": "Thursday"}), "backup_policy.weekday must be one of SUN, MON"),
        (json!({"time_zone": "Mars/Olympus_Mons"}), "backup_policy.time_zone must be an IANA time zone name"),
        (json!({"window_length_hours": 0}), "backup_policy.window_length_hours must be a whole number from 1 to 24"),
        (json!({"window_length_hours": 25}), "backup_policy.window_length_hours must be a whole number from 1 to 24"),
        (
            json!({"plan": "intra_daily_2h", "window_length_hours": 3}),
            "backup_policy.window_length_hours must be a whole number from 1 to 2 (the intra_daily_2h plan's interval), not 3",
        ),
        (json!({"keep_daily": -1}), "backup_policy.keep_daily must be a whole number from 0 to 10000"),
        (json!({"retention_period_days": 1.5}), "backup_policy.retention_period_days must be a whole number"),
        (json!({"plan": "cron"}), "backup_policy.cron is required for plan cron"),
        (json!({"plan": "daily", "cron": "0 3 * * *"}), "backup_policy.cron is only for plan cron, not daily"),
        (json!({"cron": "61 * * * *"}), "backup_policy.cron \"61 * * * *\": minute 61 is out of range 0-59"),
        (json!({"cron": 5}), "backup_policy.cron must be a cron expression string"),
        (json!({"replication_regions": "nyc1"}), "backup_policy.replication_regions must be an array"),
        (json!({"replication_regions": ["NYC 1"]}), "backup_policy.replication_regions must be an array"),
        (json!({"retention_period_days": 0}), "backup_policy keeps no backups"),
    ];
    for (input, expected) in cases {
        let message = error(input.clone());
        assert!(message.starts_with(expected), "{input}: {message:?} should start with {expected:?}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

#[test]
fn retention_defaults_follow_the_plan_unless_counts_are_given() {
    let days = |value: Value| parse(value).retention.retention_period_days;
    assert_eq!(days(json!({"plan": "daily"})), Some(7));
    assert_eq!(days(json!({"plan": "hourly"})), Some(7));
    assert_eq!(days(json!({"plan": "weekly"})), Some(28));
    assert_eq!(days(json!({"plan": "monthly"})), Some(365));
    assert_eq!(days(json!({"cron": "30 3 * * 0,4"})), Some(7));
    // Counts alone are pure GFS: no age limit, and none written out.
    let gfs = parse(json!({"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12}));
    assert_eq!(gfs.retention.retention_period_days, None);
    assert_eq!(gfs.retention.keep_counts(), [0, 7, 4, 12, 0]);
    assert!(gfs.to_json().get("retention_period_days").is_none());
    assert_eq!(parse(gfs.to_json()), gfs);
    // Both given: both kept; a period of 0 next to counts means none.
    assert_eq!(days(json!({"keep_daily": 7, "retention_period_days": 3})), Some(3));
    assert_eq!(days(json!({"keep_daily": 7, "retention_period_days": 0})), None);
    assert_eq!(days(json!({"plan": "weekly", "retention_period_days": 90})), Some(90));
}

#[test]
fn drydock_plans_parse_and_normalize() {
    let sub_daily = [("hourly", 1, 1), ("intra_daily_2h", 2, 2), ("intra_daily_4h", 4, 4), ("intra_daily_6h", 6, 4)];
    for (name, hours, window) in sub_daily.into_iter().chain([("intra_daily_12h", 12, 4)]) {
        let policy = parse(json!({"plan": name}));
        assert_eq!(policy.plan, Plan::EveryHours { hours }, "{name}");
        assert_eq!(policy.plan.name(), name);
        assert_eq!(policy.window_length_hours, window, "{name}");
    }
    let monthly = parse(json!({"plan": "monthly", "day_of_month": 31, "hour": 8, "time_zone": "europe/paris"}));
    assert_eq!(monthly.plan, Plan::Monthly { day: 31, hour: 8 });
    let out = monthly.to_json();
    assert_eq!((out["day_of_month"].clone(), out["hour"].clone()), (json!(31), json!(8)));
    assert_eq!(out["time_zone"], "Europe/Paris");
    // `cron` alone means plan cron; its text is kept as written.
    let cron = parse(json!({"cron": " 30 3 * * 0,4 ", "window_length_hours": 2}));
    assert_eq!(cron.plan.name(), "cron");
    assert_eq!(cron.to_json()["cron"], "30 3 * * 0,4");
    assert!(cron.to_json().get("hour").is_none());
    assert_eq!(parse(cron.to_json()), cron);
    let regions = parse(json!({"replication_regions": ["ams3", "sfo3", "ams3"]}));
    assert_eq!(regions.replication_regions, ["ams3", "sfo3"]);
}

#[test]
fn supported_policies_start_with_digitaloceans_two_and_list_every_plan() {
    let supported = supported();
    let plans = supported.as_array().unwrap();
    let names: Vec<&str> = plans.iter().map(|plan| plan["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "weekly",
            "daily",
            "hourly",
            "intra_daily_2h",
            "intra_daily_4h",
            "intra_daily_6h",
            "intra_daily_12h",
            "monthly",
            "cron"
        ]
    );
    let digitalocean = [
        json!({"name": "weekly", "possible_window_starts": [0, 4, 8, 12, 16, 20], "window_length_hours": 4,
               "retention_period_days": 28, "possible_days": ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]}),
        json!({"name": "daily", "possible_window_starts": [0, 4, 8, 12, 16, 20], "window_length_hours": 4,
               "retention_period_days": 7, "possible_days": []}),
    ];
    for (entry, expected) in plans.iter().zip(digitalocean) {
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&entry[key], value, "{key} of {}", expected["name"]);
        }
        assert_eq!(entry["time_zones"], true);
    }
    assert_eq!(plans[7]["possible_days_of_month"].as_array().unwrap().len(), 31);
    assert_eq!(plans[2]["window_length_hours"], 1);
    assert_eq!(plans[6]["keep_counts"][4], "keep_yearly");
}
