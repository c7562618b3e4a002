//! The tags a backup carries from the moment it is taken; they never change afterwards.
//!
//! A scheduled backup is `daily` when it is the first of its local calendar day, `weekly` the
//! first of its ISO week (weeks start on Monday, and the last days of December may belong to
//! week 1 of the next ISO year), `monthly` the first of its month and `yearly` the first of its
//! year, all in the policy's time zone; every backup of a sub-daily plan is also `hourly`.
//! "First" is decided against the previous successful scheduled backup alone, so a missed or
//! failed window does not move a tag to a later backup of another period.

use jiff::Timestamp;
use jiff::civil::Date;

use crate::policy::Policy;

/// Retention tags. `Manual` marks snapshots taken on request: they are never pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tag {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    Manual,
}

impl Tag {
    pub const ALL: [Tag; 6] = [Tag::Hourly, Tag::Daily, Tag::Weekly, Tag::Monthly, Tag::Yearly, Tag::Manual];

    /// The tag as stored and shown: "hourly", "daily", "weekly", "monthly", "yearly", "manual".
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Hourly => "hourly",
            Tag::Daily => "daily",
            Tag::Weekly => "weekly",
            Tag::Monthly => "monthly",
            Tag::Yearly => "yearly",
            Tag::Manual => "manual",
        }
    }

    /// The tag named `text` exactly as [`Tag::as_str`] writes it; `None` for any other text
    /// (an image may carry user tags too, which retention ignores).
    pub fn parse(text: &str) -> Option<Tag> {
        Tag::ALL.into_iter().find(|tag| tag.as_str() == text)
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tags of a scheduled backup taken at `taken_at`, when the previous successful scheduled
/// backup of the same resource was taken at `previous` (`None`: this is the first, which opens
/// every period). Sorted in the order of [`Tag`]; never `Manual`.
pub fn tags_for(policy: &Policy, taken_at: Timestamp, previous: Option<Timestamp>) -> Vec<Tag> {
    let mut tags = Vec::with_capacity(5);
    if policy.plan.sub_daily_hours().is_some() {
        tags.push(Tag::Hourly);
    }
    let date = policy.tz.to_datetime(taken_at).date();
    let Some(previous) = previous.map(|previous| policy.tz.to_datetime(previous).date()) else {
        tags.extend([Tag::Daily, Tag::Weekly, Tag::Monthly, Tag::Yearly]);
        return tags;
    };
    let week = |date: Date| {
        let week = date.iso_week_date();
        (week.year(), week.week())
    };
    let new_period = [
        (Tag::Daily, date != previous),
        (Tag::Weekly, week(date) != week(previous)),
        (Tag::Monthly, (date.year(), date.month()) != (previous.year(), previous.month())),
        (Tag::Yearly, date.year() != previous.year()),
    ];
    tags.extend(new_period.into_iter().filter(|&(_, new)| new).map(|(tag, _)| tag));
    tags
}
