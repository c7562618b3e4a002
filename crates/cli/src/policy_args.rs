//! Backup policies on the command line: the flags that `retention simulate` and the
//! `enable-backups` and `backup-policy` verbs share, and the words tables show a policy in.
//!
//! The flags only build the API's `backup_policy` object: whoever reads it (the
//! `drydock_schedule` crate here, the daemon for the client verbs) checks it, so there is one
//! set of rules and one set of error messages. The words read the normalized object back and
//! leave out what it lacks.

use anyhow::{Context, Result, bail};
use clap::Args;
use drydock_schedule::policy::PLAN_NAMES;
use serde_json::{Map, Value};

/// A backup policy, field by field or whole with `--policy`. Unset fields take the policy's
/// defaults: daily at 00:00 UTC, a 4-hour window, backups kept 7 days.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Backup policy")]
pub struct PolicyArgs {
    /// How often backups are taken.
    #[arg(long, value_parser = PLAN_NAMES)]
    pub plan: Option<String>,
    /// Hour the window starts (0, 4, 8, 12, 16 or 20) for daily, weekly and monthly plans.
    #[arg(long, value_name = "H")]
    pub hour: Option<u8>,
    /// Day of the week of a weekly plan: SUN, MON, TUE, WED, THU, FRI or SAT.
    #[arg(long, value_name = "DAY")]
    pub weekday: Option<String>,
    /// Day of the month of a monthly plan, 1 to 31 (a shorter month uses its last day).
    #[arg(long, value_name = "N")]
    pub day_of_month: Option<u8>,
    /// Five-field cron expression, e.g. "30 3 * * 0,4" (implies --plan cron).
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// IANA time zone of the plan's times, e.g. Europe/Paris [default: UTC].
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// How many hours after its start a window stays open [default: 4].
    #[arg(long, value_name = "H")]
    pub window_hours: Option<u8>,
    /// Keep the newest N backups tagged hourly.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest N backups tagged daily (the first of each day).
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest N backups tagged weekly (the first of each ISO week).
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest N backups tagged monthly (the first of each month).
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest N backups tagged yearly (the first of each year).
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every backup younger than this many days [default: 7 daily, 28 weekly, 365 monthly,
    /// none when a --keep-* count is given].
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Copy every backup to this region too (repeatable).
    #[arg(long = "replicate-to", value_name = "REGION")]
    pub replicate_to: Vec<String>,
    /// The whole policy as the API's JSON object, instead of the flags above.
    #[arg(
        long,
        value_name = "JSON",
        conflicts_with_all = [
            "plan", "hour", "weekday", "day_of_month", "cron", "time_zone", "window_hours", "keep_hourly",
            "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "retention_days", "replicate_to",
        ]
    )]
    pub policy: Option<String>,
}

impl PolicyArgs {
    /// The `backup_policy` object the flags describe, or `None` when none was given (the
    /// daemon then keeps the policy it has, or uses its default).
    pub fn to_json(&self) -> Result<Option<Value>> {
        if let Some(text) = &self.policy {
            let policy: Value = serde_json::from_str(text).context("--policy is not JSON")?;
            if !policy.is_object() {
                bail!("--policy must be a JSON object, not {policy}");
            }
            return Ok(Some(policy));
        }
        let mut fields = Map::new();
        let mut set = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                fields.insert(name.to_string(), value);
            }
        };
        set("plan", self.plan.clone().map(Value::from));
        set("hour", self.hour.map(Value::from));
        set("weekday", self.weekday.clone().map(Value::from));
        set("day_of_month", self.day_of_month.map(Value::from));
        set("cron", self.cron.clone().map(Value::from));
        set("time_zone", self.time_zone.clone().map(Value::from));
        set("window_length_hours", self.window_hours.map(Value::from));
        set("keep_hourly", self.keep_hourly.map(Value::from));
        set("keep_daily", self.keep_daily.map(Value::from));
        set("keep_weekly", self.keep_weekly.map(Value::from));
        set("keep_monthly", self.keep_monthly.map(Value::from));
        set("keep_yearly", self.keep_yearly.map(Value::from));
        set("retention_period_days", self.retention_days.map(Value::from));
        set("replication_regions", (!self.replicate_to.is_empty()).then(|| self.replicate_to.clone().into()));
        Ok((!fields.is_empty()).then_some(Value::Object(fields)))
    }
}

/// When backups are taken: "daily at 04:00 UTC, 4 h window", "every 6 hours Europe/Paris, …",
/// "cron 30 3 * * 0,4 UTC, …".
pub fn schedule(policy: &Value) -> String {
    let at = |hour: &Value| format!("at {:02}:00", hour.as_u64().unwrap_or(0));
    let when = match policy["plan"].as_str().unwrap_or("daily") {
        "hourly" => "every hour".to_string(),
        "daily" => format!("daily {}", at(&policy["hour"])),
        "weekly" => format!("weekly on {} {}", policy["weekday"].as_str().unwrap_or("SUN"), at(&policy["hour"])),
        "monthly" => format!("monthly on day {} {}", policy["day_of_month"].as_u64().unwrap_or(1), at(&policy["hour"])),
        "cron" => format!("cron {}", policy["cron"].as_str().unwrap_or_default()),
        other => match other.strip_prefix("intra_daily_").and_then(|hours| hours.strip_suffix('h')) {
            Some(hours) => format!("every {hours} hours"),
            None => other.to_string(),
        },
    };
    let zone = policy["time_zone"].as_str().unwrap_or("UTC");
    match policy["window_length_hours"].as_u64() {
        Some(hours) => format!("{when} {zone}, {hours} h window"),
        None => format!("{when} {zone}"),
    }
}

/// Which backups are kept: "7 daily, 4 weekly", "backups younger than 7 days", or both.
pub fn keeps(policy: &Value) -> String {
    let mut parts: Vec<String> = ["hourly", "daily", "weekly", "monthly", "yearly"]
        .iter()
        .filter_map(|tag| policy[format!("keep_{tag}")].as_u64().filter(|&n| n > 0).map(|n| format!("{n} {tag}")))
        .collect();
    if let Some(days) = policy["retention_period_days"].as_u64().filter(|&days| days > 0) {
        parts.push(format!("backups younger than {days} days"));
    }
    if parts.is_empty() { "nothing".to_string() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{PolicyArgs, keeps, schedule};

    #[test]
    fn flags_become_the_api_fields() {
        let args = PolicyArgs {
            plan: Some("weekly".into()),
            weekday: Some("THU".into()),
            hour: Some(20),
            window_hours: Some(2),
            keep_weekly: Some(4),
            replicate_to: vec!["ams3".into()],
            ..PolicyArgs::default()
        };
        let expected = json!({"plan": "weekly", "weekday": "THU", "hour": 20, "window_length_hours": 2,
                              "keep_weekly": 4, "replication_regions": ["ams3"]});
        assert_eq!(args.to_json().unwrap(), Some(expected));
    }

    #[test]
    fn no_flags_is_no_policy() {
        assert_eq!(PolicyArgs::default().to_json().unwrap(), None);
    }

    #[test]
    fn policy_flag_is_taken_whole_and_must_be_an_object() {
        let whole = PolicyArgs { policy: Some(r#"{"cron": "30 3 * * 0,4"}"#.into()), ..PolicyArgs::default() };
        assert_eq!(whole.to_json().unwrap(), Some(json!({"cron": "30 3 * * 0,4"})));
        let array = PolicyArgs { policy: Some("[1]".into()), ..PolicyArgs::default() };
        assert!(array.to_json().unwrap_err().to_string().contains("object"));
        let broken = PolicyArgs { policy: Some("{plan: daily}".into()), ..PolicyArgs::default() };
        assert!(broken.to_json().unwrap_err().to_string().contains("--policy"));
    }

    #[test]
    fn policies_read_back_in_words() {
        let weekly = json!({"plan": "weekly", "weekday": "THU", "hour": 20, "time_zone": "Europe/Paris",
                            "window_length_hours": 4, "retention_period_days": 28, "keep_daily": 0});
        assert_eq!(schedule(&weekly), "weekly on THU at 20:00 Europe/Paris, 4 h window");
        assert_eq!(keeps(&weekly), "backups younger than 28 days");
        let gfs = json!({"plan": "intra_daily_6h", "keep_hourly": 0, "keep_daily": 7, "keep_weekly": 4});
        assert_eq!(schedule(&gfs), "every 6 hours UTC");
        assert_eq!(keeps(&gfs), "7 daily, 4 weekly");
    }
}
