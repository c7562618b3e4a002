//! Five-field cron expressions (minute hour day-of-month month day-of-week), evaluated on civil
//! (local) date-times; [`crate::window`] turns the matches into instants in a time zone.
//!
//! The semantics are Vixie cron's: `*`, lists, ranges, steps (`*/15`, `1-30/5`, and `5/15` meaning
//! `5-59/15`), month and weekday names (`JAN`, `mon`), day-of-week 0–7 with both 0 and 7 Sunday,
//! and the `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` shorthands. When day-of-month and
//! day-of-week are both restricted, a day matches if either does; as in Vixie cron, a field
//! that starts with `*` (including `*/2`) counts as unrestricted.

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime, Time};

use crate::policy::PolicyError;

/// The longest expression accepted, in bytes.
pub const CRON_TEXT_LEN_MAX: usize = 256;

/// How many days a search for the next match may look ahead. An expression that matches at all
/// matches at least once in 8 years (the rarest is 29 February, which 2100 skips).
pub(crate) const SEARCH_DAYS_MAX: i32 = 8 * 366 + 2;

const MINUTES_PER_DAY: i64 = 24 * 60;
const MONTH_NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// The longest each month can be, February in a leap year.
const MONTH_DAYS_MAX: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A parsed cron expression; `text` is what the user wrote (trimmed). Each set is a bit mask:
/// bit `n` is set when value `n` matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    pub text: String,
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    /// 0 = Sunday … 6 = Saturday (7 is folded into 0).
    days_of_week: u8,
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
}

/// One of the five fields: its name in errors, its bounds and the names it accepts.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min`, `min + 1`, …
    names: &'static [&'static str],
}

const MINUTE: Field = Field { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: Field = Field { name: "hour", min: 0, max: 23, names: &[] };
const DAY_OF_MONTH: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: Field = Field { name: "month", min: 1, max: 12, names: &MONTH_NAMES };
const DAY_OF_WEEK: Field = Field { name: "day-of-week", min: 0, max: 7, names: &WEEKDAY_NAMES };

impl Cron {
    /// Parses `text`. Errors are one line naming the expression and the field at fault, e.g.
    /// `cron "61 * * * *": minute 61 is out of range 0-59`.
    pub fn parse(text: &str) -> Result<Cron, PolicyError> {
        let text = text.trim();
        parse_fields(text).map_err(|detail| PolicyError(format!("cron {text:?}: {detail}")))
    }

    /// Whether `date` is a day on which the expression runs (at its times of day).
    pub fn matches_date(&self, date: Date) -> bool {
        if !bit(self.months.into(), date.month() as u32) {
            return false;
        }
        let by_day_of_month = bit(self.days_of_month.into(), date.day() as u32);
        let by_day_of_week = bit(self.days_of_week.into(), date.weekday().to_sunday_zero_offset() as u32);
        if self.day_of_month_restricted && self.day_of_week_restricted {
            by_day_of_month || by_day_of_week
        } else {
            by_day_of_month && by_day_of_week
        }
    }

    /// Whether the expression runs at `at` (seconds and below are ignored).
    pub fn matches(&self, at: DateTime) -> bool {
        self.matches_date(at.date())
            && bit(self.hours.into(), at.hour() as u32)
            && bit(self.minutes, at.minute() as u32)
    }

    /// The times of day at which it runs on a matching day, in order.
    pub fn times_of_day(&self) -> impl Iterator<Item = Time> + '_ {
        ones(self.hours.into(), 23).flat_map(move |hour| {
            ones(self.minutes, 59).map(move |minute| Time::constant(hour as i8, minute as i8, 0, 0))
        })
    }

    /// The first civil date-time strictly after `after` at which the expression runs, or `None`
    /// if there is none within 8 years (or before the end of jiff's range). It
    /// walks days, skipping whole months that do not match, then hours, then minutes.
    pub fn next_after(&self, after: DateTime) -> Option<DateTime> {
        // Matches are whole minutes, so the first candidate is the next whole minute.
        let mut earliest_minute = after.hour() as u32 * 60 + after.minute() as u32 + 1;
        let mut date = after.date();
        let mut days_searched = 0;
        while days_searched <= SEARCH_DAYS_MAX {
            if !bit(self.months.into(), date.month() as u32) {
                let next_month = date.last_of_month().tomorrow().ok()?;
                days_searched += (date.days_in_month() - date.day() + 1) as i32;
                date = next_month;
                earliest_minute = 0;
                continue;
            }
            if self.matches_date(date)
                && let Some(time) = self.first_time_from(earliest_minute)
            {
                return Some(date.to_datetime(time));
            }
            date = date.tomorrow().ok()?;
            days_searched += 1;
            earliest_minute = 0;
        }
        None
    }

    /// The longest civil gap between consecutive runs that start in 2024 (a leap year, so that
    /// 29 February counts), capped at 366 days. Clock changes are not counted, as for the other
    /// plans (a daily plan's gap is 1 day).
    pub fn max_gap(&self) -> SignedDuration {
        const YEAR_DAYS: i64 = 366;
        let cap = SignedDuration::from_hours(YEAR_DAYS * 24);
        let times: Vec<i64> = self.times_of_day().map(minute_of_day).collect();
        let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
            return cap;
        };
        // Day numbers (0 = 1 January 2024) of the matching days in 2024 and the year after, so
        // that each day of 2024 finds the next one.
        let matching: Vec<i64> = (0..)
            .zip(days_from(Date::constant(2024, 1, 1)).take(2 * YEAR_DAYS as usize))
            .filter(|(_, date)| self.matches_date(*date))
            .map(|(day, _)| day)
            .collect();
        let days_in_year = matching.iter().filter(|&&day| day < YEAR_DAYS).count();
        let followed: Vec<i64> = matching
            .windows(2)
            .filter(|pair| pair[0] < YEAR_DAYS)
            .map(|pair| (pair[1] - pair[0]) * MINUTES_PER_DAY - last + first)
            .collect();
        if days_in_year == 0 || followed.len() < days_in_year {
            return cap;
        }
        let within_day = times.windows(2).map(|pair| pair[1] - pair[0]);
        let longest_minutes = within_day.chain(followed).max().unwrap_or(MINUTES_PER_DAY);
        SignedDuration::from_mins(longest_minutes).min(cap)
    }

    /// The average time between runs over 2024–2027 (a whole leap-year cycle); used to price a
    /// cron plan like the fixed plan of similar frequency.
    pub fn average_interval(&self) -> SignedDuration {
        const CYCLE_DAYS: i64 = 4 * 365 + 1;
        let matching_days =
            days_from(Date::constant(2024, 1, 1)).take(CYCLE_DAYS as usize).filter(|d| self.matches_date(*d)).count();
        let runs = matching_days as i64 * self.times_of_day().count() as i64;
        SignedDuration::from_secs(CYCLE_DAYS * 24 * 3600 / runs.max(1))
    }

    /// False only for expressions like `0 0 30 2 *` whose days of month fall in none of their
    /// months; every other expression matches some day.
    fn can_match(&self) -> bool {
        if self.day_of_week_restricted && self.day_of_month_restricted {
            return true;
        }
        ones(self.months.into(), 12).any(|month| {
            let longest = MONTH_DAYS_MAX[month as usize - 1];
            ones(self.days_of_month.into(), longest).next().is_some()
        })
    }

    /// The first time of day at or after minute-of-day `earliest_minute` at which it runs.
    fn first_time_from(&self, earliest_minute: u32) -> Option<Time> {
        let (earliest_hour, earliest_minute_of_hour) = (earliest_minute / 60, earliest_minute % 60);
        ones(self.hours.into(), 23).filter(|&hour| hour >= earliest_hour).find_map(|hour| {
            let from = if hour == earliest_hour { earliest_minute_of_hour } else { 0 };
            let minute = ones(self.minutes, 59).find(|&minute| minute >= from)?;
            Some(Time::constant(hour as i8, minute as i8, 0, 0))
        })
    }
}

/// `start` and the days after it.
fn days_from(start: Date) -> impl Iterator<Item = Date> {
    std::iter::successors(Some(start), |date| date.tomorrow().ok())
}

fn minute_of_day(time: Time) -> i64 {
    time.hour() as i64 * 60 + time.minute() as i64
}

fn bit(mask: u64, value: u32) -> bool {
    value < 64 && mask >> value & 1 == 1
}

/// The values `0..=max` whose bit is set in `mask`, ascending.
fn ones(mask: u64, max: u32) -> impl Iterator<Item = u32> {
    (0..=max).filter(move |&value| bit(mask, value))
}

fn parse_fields(text: &str) -> Result<Cron, String> {
    if text.len() > CRON_TEXT_LEN_MAX {
        return Err(format!("is longer than {CRON_TEXT_LEN_MAX} bytes"));
    }
    let expanded = match text.strip_prefix('@') {
        Some(shorthand) => expand_shorthand(shorthand)?,
        None => text,
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
        return Err(format!("has {} fields, expected 5 (minute hour day-of-month month day-of-week)", fields.len()));
    };
    let mut days_of_week = parse_field(&DAY_OF_WEEK, day_of_week)?;
    // 7 is another name for Sunday.
    if bit(days_of_week, 7) {
        days_of_week = (days_of_week | 1) & !(1 << 7);
    }
    let cron = Cron {
        text: text.to_string(),
        minutes: parse_field(&MINUTE, minute)?,
        hours: parse_field(&HOUR, hour)? as u32,
        days_of_month: parse_field(&DAY_OF_MONTH, day_of_month)? as u32,
        months: parse_field(&MONTH, month)? as u16,
        days_of_week: days_of_week as u8,
        day_of_month_restricted: !day_of_month.starts_with('*'),
        day_of_week_restricted: !day_of_week.starts_with('*'),
    };
    if !cron.can_match() {
        return Err("never matches: none of its months has any of its days of month".into());
    }
    Ok(cron)
}

fn expand_shorthand(shorthand: &str) -> Result<&'static str, String> {
    Ok(match shorthand.to_ascii_lowercase().as_str() {
        "hourly" => "0 * * * *",
        "daily" | "midnight" => "0 0 * * *",
        "weekly" => "0 0 * * 0",
        "monthly" => "0 0 1 * *",
        "yearly" | "annually" => "0 0 1 1 *",
        _ => return Err(format!("@{shorthand} is not one of @hourly, @daily, @weekly, @monthly, @yearly")),
    })
}

/// Parses one field (a comma-separated list of `*`, `a`, `a-b`, each with an optional `/step`)
/// into a bit mask.
fn parse_field(field: &Field, text: &str) -> Result<u64, String> {
    let mut mask = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(field, step)?)),
            None => (item, None),
        };
        let (first, last) = match range {
            "*" => (field.min, field.max),
            _ => match range.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (parse_value(field, first)?, parse_value(field, last)?);
                    if first > last {
                        return Err(format!("{} range {range} goes backwards", field.name));
                    }
                    (first, last)
                }
                // `5/15` means every 15 from 5; a bare value is just itself.
                None => {
                    let value = parse_value(field, range)?;
                    (value, if step.is_some() { field.max } else { value })
                }
            },
        };
        for value in (first..=last).step_by(step.unwrap_or(1) as usize) {
            mask |= 1 << value;
        }
    }
    Ok(mask)
}

fn parse_step(field: &Field, text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(step) if (1..=field.max).contains(&step) => Ok(step),
        _ => Err(format!("{} step must be a number from 1 to {}, not {text:?}", field.name, field.max)),
    }
}

fn parse_value(field: &Field, text: &str) -> Result<u32, String> {
    if let Some(index) = field.names.iter().position(|name| name.eq_ignore_ascii_case(text)) {
        return Ok(field.min + index as u32);
    }
    match text.parse::<u32>() {
        Ok(value) if (field.min..=field.max).contains(&value) => Ok(value),
        Ok(value) => Err(format!("{} {value} is out of range {}-{}", field.name, field.min, field.max)),
        Err(_) if text.is_empty() => Err(format!("{} has an empty value", field.name)),
        Err(_) if field.names.is_empty() => Err(format!("{} {text:?} is not a number", field.name)),
        Err(_) => Err(format!("{} {text:?} is not a number or a name like {}", field.name, field.names[1])),
    }
}
