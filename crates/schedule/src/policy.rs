//! A backup policy: when backups are taken (the plan, its window and time zone), how long they
//! are kept (GFS counts and an age), and where they are replicated. Parsed from and written to
//! the JSON the API speaks; DigitalOcean's fields keep DigitalOcean's meanings.
//!
//! Input is lenient (missing fields take defaults, `null` is missing, weekday names and time
//! zones in any case, unknown fields ignored as DigitalOcean does) and output is normalized, so
//! what [`Policy::to_json`] writes reads back as the same policy.

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use crate::cron::Cron;

/// The hours a daily, weekly or monthly window may start at (DigitalOcean's rule).
pub const WINDOW_STARTS: [u8; 6] = [0, 4, 8, 12, 16, 20];
pub const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// The intervals of the sub-daily plans, in hours.
pub const SUB_DAILY_HOURS: [u8; 5] = [1, 2, 4, 6, 12];
/// DigitalOcean's window length, and drydock's default (shortened to the interval below 4 h).
pub const WINDOW_LENGTH_HOURS_DEFAULT: u8 = 4;
pub const WINDOW_LENGTH_HOURS_MAX: u8 = 24;
/// Ten years.
pub const RETENTION_PERIOD_DAYS_MAX: u32 = 3660;
/// More than a year of hourly backups.
pub const KEEP_COUNT_MAX: u32 = 10_000;
pub const REPLICATION_REGIONS_MAX: usize = 16;
const REGION_SLUG_LEN_MAX: usize = 32;
/// The GFS count fields, in the order of [`crate::Tag`].
pub const KEEP_FIELDS: [&str; 5] = ["keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"];
/// The plan names `from_json` accepts.
pub const PLAN_NAMES: [&str; 9] = [
    "hourly",
    "intra_daily_2h",
    "intra_daily_4h",
    "intra_daily_6h",
    "intra_daily_12h",
    "daily",
    "weekly",
    "monthly",
    "cron",
];

/// When backups are taken. Times of day are in the policy's time zone.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Every `hours` hours (1, 2, 4, 6 or 12), windows starting at local midnight + k × hours.
    EveryHours { hours: u8 },
    /// Every day, the window starting at `hour`:00.
    Daily { hour: u8 },
    /// Every week on `weekday` (0 = Sunday … 6 = Saturday), the window starting at `hour`:00.
    Weekly { weekday: u8, hour: u8 },
    /// Every month on `day` (1..=31; a month shorter than `day` uses its last day), at `hour`:00.
    Monthly { day: u8, hour: u8 },
    /// At every time a five-field cron expression matches, in the policy's time zone.
    Cron(Cron),
}

impl Plan {
    /// The plan's name in the API: `hourly`, `intra_daily_2h` … `intra_daily_12h`, `daily`,
    /// `weekly`, `monthly`, `cron`.
    pub fn name(&self) -> &'static str {
        match self {
            Plan::EveryHours { hours: 1 } => "hourly",
            Plan::EveryHours { hours: 2 } => "intra_daily_2h",
            Plan::EveryHours { hours: 4 } => "intra_daily_4h",
            Plan::EveryHours { hours: 6 } => "intra_daily_6h",
            Plan::EveryHours { .. } => "intra_daily_12h",
            Plan::Daily { .. } => "daily",
            Plan::Weekly { .. } => "weekly",
            Plan::Monthly { .. } => "monthly",
            Plan::Cron(_) => "cron",
        }
    }

    /// The interval of a sub-daily plan, in hours; `None` for the others.
    pub fn sub_daily_hours(&self) -> Option<u8> {
        match self {
            Plan::EveryHours { hours } => Some(*hours),
            _ => None,
        }
    }

    /// The plan called `name` with default fields, for the names that need none.
    fn sub_daily(name: &str) -> Option<Plan> {
        let hours = match name {
            "hourly" => 1,
            _ => name.strip_prefix("intra_daily_")?.strip_suffix('h')?.parse().ok()?,
        };
        SUB_DAILY_HOURS.contains(&hours).then_some(Plan::EveryHours { hours })
    }
}

/// How long backups are kept (see [`crate::retention`]). A count of 0 keeps none by that tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
    /// Backups younger than this many days are kept whatever their tags.
    pub retention_period_days: Option<u32>,
}

impl Retention {
    /// The counts in the order of [`KEEP_FIELDS`].
    pub fn keep_counts(&self) -> [u32; 5] {
        [self.keep_hourly, self.keep_daily, self.keep_weekly, self.keep_monthly, self.keep_yearly]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub plan: Plan,
    /// IANA name, e.g. "Europe/Paris"; "UTC" by default.
    pub time_zone: String,
    pub tz: TimeZone,
    /// How long after its start a window stays open (a backup may start until then).
    pub window_length_hours: u8,
    pub retention: Retention,
    /// Regions every backup is copied to after it is taken (used by the regions issue).
    pub replication_regions: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// DigitalOcean's default: daily, the window starting at 00:00 UTC, backups kept 7 days.
impl Default for Policy {
    fn default() -> Policy {
        Policy {
            plan: Plan::Daily { hour: 0 },
            time_zone: "UTC".into(),
            tz: TimeZone::UTC,
            window_length_hours: WINDOW_LENGTH_HOURS_DEFAULT,
            retention: Retention { retention_period_days: Some(7), ..Retention::default() },
            replication_regions: Vec::new(),
        }
    }
}

impl Policy {
    /// Reads the API's `backup_policy` object; `null` and `{}` mean daily at 00:00 UTC. Errors
    /// are one line naming the field, e.g. `backup_policy.hour must be one of 0, 4, 8, 12, 16,
    /// 20, not 3`.
    pub fn from_json(value: &Value) -> Result<Policy, PolicyError> {
        let empty = Map::new();
        let fields = match value {
            Value::Null => &empty,
            Value::Object(fields) => fields,
            other => return Err(PolicyError(format!("backup_policy must be an object, not {other}"))),
        };
        let given = |name: &str| fields.get(name).filter(|value| !value.is_null());

        // Every field is checked whatever the plan, so that a mistake is refused rather than
        // silently dropped; only the plan's own fields are kept.
        let hour = match given("hour") {
            None => 0,
            Some(value) => value
                .as_u64()
                .and_then(|hour| u8::try_from(hour).ok())
                .filter(|hour| WINDOW_STARTS.contains(hour))
                .ok_or_else(|| {
                    PolicyError(format!("backup_policy.hour must be one of 0, 4, 8, 12, 16, 20, not {value}"))
                })?,
        };
        let weekday = match given("weekday") {
            None => 0,
            Some(value) => value
                .as_str()
                .and_then(|name| WEEKDAYS.iter().position(|day| day.eq_ignore_ascii_case(name)))
                .map(|index| index as u8)
                .ok_or_else(|| {
                    PolicyError(format!("backup_policy.weekday must be one of {}, not {value}", WEEKDAYS.join(", ")))
                })?,
        };
        let day_of_month = match given("day_of_month") {
            None => 1,
            Some(value) => whole_number(value, 1, 31).ok_or_else(|| {
                PolicyError(format!("backup_policy.day_of_month must be a whole number from 1 to 31, not {value}"))
            })? as u8,
        };
        let cron = match given("cron") {
            None => None,
            Some(Value::String(text)) => {
                Some(Cron::parse(text).map_err(|error| PolicyError(format!("backup_policy.{}", error.0)))?)
            }
            Some(other) => {
                return Err(PolicyError(format!("backup_policy.cron must be a cron expression string, not {other}")));
            }
        };
        let plan = read_plan(given("plan"), hour, weekday, day_of_month, cron)?;
        let (time_zone, tz) = read_time_zone(given("time_zone"))?;
        let window_length_hours = read_window_length(given("window_length_hours"), &plan)?;
        let retention = read_retention(&given, &plan)?;
        let replication_regions = read_regions(given("replication_regions"))?;
        Ok(Policy { plan, time_zone, tz, window_length_hours, retention, replication_regions })
    }

    /// The normalized JSON: always `plan`, `time_zone`, `window_length_hours`, the five keep
    /// counts and `replication_regions`; `hour` except for sub-daily and cron plans; `weekday`
    /// for weekly, `day_of_month` for monthly, `cron` for cron plans; `retention_period_days`
    /// when set.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("plan".into(), self.plan.name().into());
        match &self.plan {
            Plan::EveryHours { .. } => {}
            Plan::Daily { hour } => {
                object.insert("hour".into(), (*hour).into());
            }
            Plan::Weekly { weekday, hour } => {
                object.insert("hour".into(), (*hour).into());
                object.insert("weekday".into(), WEEKDAYS[*weekday as usize % 7].into());
            }
            Plan::Monthly { day, hour } => {
                object.insert("hour".into(), (*hour).into());
                object.insert("day_of_month".into(), (*day).into());
            }
            Plan::Cron(cron) => {
                object.insert("cron".into(), cron.text.clone().into());
            }
        }
        object.insert("time_zone".into(), self.time_zone.clone().into());
        object.insert("window_length_hours".into(), self.window_length_hours.into());
        if let Some(days) = self.retention.retention_period_days {
            object.insert("retention_period_days".into(), days.into());
        }
        for (name, count) in KEEP_FIELDS.iter().zip(self.retention.keep_counts()) {
            object.insert((*name).into(), count.into());
        }
        object.insert("replication_regions".into(), self.replication_regions.clone().into());
        Value::Object(object)
    }

    /// How long each window stays open, as configured (a cron window may end sooner, at the
    /// next run).
    pub fn window_length(&self) -> SignedDuration {
        SignedDuration::from_hours(self.window_length_hours.into())
    }
}

/// What `GET /v2/droplets/backups/supported_policies` says: DigitalOcean's two entries first
/// (weekly, daily) with DigitalOcean's values, then drydock's plans. Extra keys say what else
/// every plan accepts: `time_zones`, `keep_counts`, `window_length_hours_max`, and
/// `possible_days_of_month` for monthly.
pub fn supported() -> Value {
    let entry = |name: &str, window_starts: &[u8], window_length: u8, retention_days: u32, days: &[&str]| {
        json!({
            "name": name,
            "possible_window_starts": window_starts,
            "window_length_hours": window_length,
            "retention_period_days": retention_days,
            "possible_days": days,
            "time_zones": true,
            "keep_counts": KEEP_FIELDS,
            "window_length_hours_max": WINDOW_LENGTH_HOURS_MAX,
        })
    };
    let mut plans = vec![
        entry("weekly", &WINDOW_STARTS, WINDOW_LENGTH_HOURS_DEFAULT, 28, &WEEKDAYS),
        entry("daily", &WINDOW_STARTS, WINDOW_LENGTH_HOURS_DEFAULT, 7, &[]),
    ];
    for hours in SUB_DAILY_HOURS {
        let plan = Plan::EveryHours { hours };
        let mut sub_daily = entry(plan.name(), &[], default_window_length(&plan), 7, &[]);
        sub_daily["window_length_hours_max"] = hours.into();
        plans.push(sub_daily);
    }
    let mut monthly = entry("monthly", &WINDOW_STARTS, WINDOW_LENGTH_HOURS_DEFAULT, 365, &[]);
    monthly["possible_days_of_month"] = (1..=31).collect::<Vec<u8>>().into();
    plans.push(monthly);
    plans.push(entry("cron", &[], WINDOW_LENGTH_HOURS_DEFAULT, 7, &[]));
    Value::Array(plans)
}

fn whole_number(value: &Value, min: u64, max: u64) -> Option<u64> {
    value.as_u64().filter(|number| (min..=max).contains(number))
}

/// The plan named `plan` (or cron when only `cron` is given, daily when neither is).
fn read_plan(
    plan: Option<&Value>,
    hour: u8,
    weekday: u8,
    day_of_month: u8,
    cron: Option<Cron>,
) -> Result<Plan, PolicyError> {
    let refuse = |value: &Value| {
        PolicyError(format!("backup_policy.plan must be one of {}, not {value}", PLAN_NAMES.join(", ")))
    };
    let name = match plan {
        None if cron.is_some() => "cron",
        None => "daily",
        Some(value) => value.as_str().ok_or_else(|| refuse(value))?,
    };
    if name != "cron" && cron.is_some() && PLAN_NAMES.contains(&name) {
        return Err(PolicyError(format!("backup_policy.cron is only for plan cron, not {name}")));
    }
    Ok(match name {
        "daily" => Plan::Daily { hour },
        "weekly" => Plan::Weekly { weekday, hour },
        "monthly" => Plan::Monthly { day: day_of_month, hour },
        "cron" => Plan::Cron(cron.ok_or_else(|| PolicyError("backup_policy.cron is required for plan cron".into()))?),
        other => Plan::sub_daily(other).ok_or_else(|| refuse(plan.unwrap_or(&Value::Null)))?,
    })
}

fn read_time_zone(value: Option<&Value>) -> Result<(String, TimeZone), PolicyError> {
    let Some(value) = value else {
        return Ok(("UTC".into(), TimeZone::UTC));
    };
    let refuse = || {
        PolicyError(format!("backup_policy.time_zone must be an IANA time zone name like Europe/Paris, not {value}"))
    };
    let name = value.as_str().ok_or_else(refuse)?;
    let tz = TimeZone::get(name).map_err(|_| refuse())?;
    // The database's spelling, so that "europe/paris" is stored as "Europe/Paris".
    let name = tz.iana_name().unwrap_or(name).to_string();
    Ok((name, tz))
}

fn default_window_length(plan: &Plan) -> u8 {
    plan.sub_daily_hours().map_or(WINDOW_LENGTH_HOURS_DEFAULT, |hours| hours.min(WINDOW_LENGTH_HOURS_DEFAULT))
}

fn read_window_length(value: Option<&Value>, plan: &Plan) -> Result<u8, PolicyError> {
    let Some(value) = value else {
        return Ok(default_window_length(plan));
    };
    // A sub-daily window may not reach into the next one.
    let max = plan.sub_daily_hours().unwrap_or(WINDOW_LENGTH_HOURS_MAX);
    let reason = if plan.sub_daily_hours().is_some() {
        format!(" (the {} plan's interval)", plan.name())
    } else {
        String::new()
    };
    whole_number(value, 1, max.into()).map(|hours| hours as u8).ok_or_else(|| {
        PolicyError(format!(
            "backup_policy.window_length_hours must be a whole number from 1 to {max}{reason}, not {value}"
        ))
    })
}

/// The keep counts and age; see the crate's retention rules for the defaults.
fn read_retention<'v>(given: &impl Fn(&str) -> Option<&'v Value>, plan: &Plan) -> Result<Retention, PolicyError> {
    let mut counts = [0u32; 5];
    for (count, name) in counts.iter_mut().zip(KEEP_FIELDS) {
        if let Some(value) = given(name) {
            *count = whole_number(value, 0, KEEP_COUNT_MAX.into()).ok_or_else(|| {
                PolicyError(format!(
                    "backup_policy.{name} must be a whole number from 0 to {KEEP_COUNT_MAX}, not {value}"
                ))
            })? as u32;
        }
    }
    let period = match given("retention_period_days") {
        None => None,
        Some(value) => Some(whole_number(value, 0, RETENTION_PERIOD_DAYS_MAX.into()).ok_or_else(|| {
            PolicyError(format!(
                "backup_policy.retention_period_days must be a whole number from 0 to {RETENTION_PERIOD_DAYS_MAX}, not {value}"
            ))
        })? as u32),
    };
    let any_count = counts.iter().any(|&count| count > 0);
    let retention_period_days = match period {
        // DigitalOcean's: 7 daily backups, 4 weekly ones; drydock keeps a year of monthly ones.
        None if !any_count => Some(match plan {
            Plan::Weekly { .. } => 28,
            Plan::Monthly { .. } => 365,
            _ => 7,
        }),
        // Pure GFS: kept only by the counts.
        None | Some(0) if any_count => None,
        Some(0) => {
            return Err(PolicyError(
                "backup_policy keeps no backups: set retention_period_days or a keep_* count above 0".into(),
            ));
        }
        days => days,
    };
    let [keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly] = counts;
    Ok(Retention { keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, retention_period_days })
}

fn read_regions(value: Option<&Value>) -> Result<Vec<String>, PolicyError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let refuse = || {
        PolicyError(format!(
            "backup_policy.replication_regions must be an array of at most {REPLICATION_REGIONS_MAX} region slugs like \"nyc1\", not {value}"
        ))
    };
    let items = value.as_array().filter(|items| items.len() <= REPLICATION_REGIONS_MAX).ok_or_else(refuse)?;
    let mut regions: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let slug = item.as_str().filter(|slug| is_region_slug(slug)).ok_or_else(refuse)?;
        // Naming a region twice means the same as naming it once.
        if !regions.iter().any(|region| region == slug) {
            regions.push(slug.to_string());
        }
    }
    Ok(regions)
}

fn is_region_slug(slug: &str) -> bool {
    (1..=REGION_SLUG_LEN_MAX).contains(&slug.len())
        && slug.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}
