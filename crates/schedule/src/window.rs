//! Backup windows: the intervals in which a policy's backups may start.
//!
//! Window starts are civil (local) times in the policy's time zone, turned into instants with
//! the *compatible* rule: a time that does not exist (spring forward) moves forward by the gap,
//! an ambiguous one (fall back) takes the earlier instant. Two local times that land on the
//! same instant make one window, so a spring-forward day may have one window fewer. A window
//! ends `window_length_hours` after its start or at the next start, whichever is sooner, so
//! windows never overlap.

use std::collections::VecDeque;

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};

use crate::cron::SEARCH_DAYS_MAX;
use crate::policy::{Plan, Policy};

/// `[start, end)`: a backup for this window may start at any moment inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub fn length(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }

    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }
}

impl Policy {
    /// The windows whose start is in `[from, to)`, in order.
    pub fn windows_between(&self, from: Timestamp, to: Timestamp) -> Vec<Window> {
        self.windows_from(from).take_while(|window| window.start < to).collect()
    }

    /// The windows whose start is at or after `from`, in order, computed as they are consumed.
    pub fn windows_from(&self, from: Timestamp) -> impl Iterator<Item = Window> + '_ {
        let mut starts = self.starts_from(from).peekable();
        let length = self.window_length();
        std::iter::from_fn(move || {
            let start = starts.next()?;
            let full_end = later(start, length);
            let end = starts.peek().map_or(full_end, |&next| next.min(full_end));
            Some(Window { start, end })
        })
    }

    /// The latest window that starts at or before `at` (it may have ended), if one starts within
    /// the search horizon (8 years).
    pub fn window_at(&self, at: Timestamp) -> Option<Window> {
        // Where clocks fall back across midnight, the next local date's first times can come
        // before `at`, so the search begins a day after `at`'s local date.
        let mut date = self.tz.to_datetime(at).date().tomorrow().ok()?;
        for _ in 0..=SEARCH_DAYS_MAX {
            if let Some(start) = self.starts_on(date).into_iter().rev().find(|&start| start <= at) {
                return self.windows_from(start).next();
            }
            date = date.yesterday().ok()?;
        }
        None
    }

    /// The first window that starts strictly after `at`.
    pub fn next_window_after(&self, at: Timestamp) -> Option<Window> {
        let just_after = at.checked_add(SignedDuration::from_nanos(1)).ok()?;
        self.windows_from(just_after).next()
    }

    /// The longest gap between consecutive window starts, in civil terms (a daily plan's is one
    /// day even across a clock change): the interval of a sub-daily plan, 1 day, 7 days, 31
    /// days, or for cron the longest gap over a year, capped at 366 days.
    pub fn max_interval(&self) -> SignedDuration {
        match &self.plan {
            Plan::EveryHours { hours } => SignedDuration::from_hours((*hours).into()),
            Plan::Daily { .. } => SignedDuration::from_hours(24),
            Plan::Weekly { .. } => SignedDuration::from_hours(7 * 24),
            Plan::Monthly { .. } => SignedDuration::from_hours(31 * 24),
            Plan::Cron(cron) => cron.max_gap(),
        }
    }

    /// The window starts at or after `from`, ascending and without duplicates.
    fn starts_from(&self, from: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        let first_date = self.tz.to_datetime(from).date();
        let mut date = Some(first_date.yesterday().unwrap_or(first_date));
        let mut pending = VecDeque::new();
        let mut last: Option<Timestamp> = None;
        let mut days_without_start = 0;
        std::iter::from_fn(move || {
            loop {
                while let Some(start) = pending.pop_front() {
                    if start >= from && last.is_none_or(|last| start > last) {
                        last = Some(start);
                        return Some(start);
                    }
                }
                // Every valid policy has a window at least every 8 years, so a longer search
                // has reached the end of jiff's range (year 9999): stop there.
                if days_without_start > SEARCH_DAYS_MAX {
                    return None;
                }
                let today = date?;
                pending.extend(self.starts_on(today));
                days_without_start = if pending.is_empty() { days_without_start + 1 } else { 0 };
                date = today.tomorrow().ok();
            }
        })
    }

    /// The instants at which windows start on local date `date`, ascending (an instant may
    /// repeat; [`Policy::starts_from`] drops repeats).
    fn starts_on(&self, date: Date) -> Vec<Timestamp> {
        let mut starts: Vec<Timestamp> = self
            .local_starts_on(date)
            .into_iter()
            .filter_map(|time| self.tz.to_timestamp(date.to_datetime(time)).ok())
            .collect();
        // A time in a spring-forward gap moves forward by the gap, possibly past later times
        // of the same day.
        starts.sort_unstable();
        starts
    }

    /// The local times at which windows start on `date`, before conversion to instants.
    fn local_starts_on(&self, date: Date) -> Vec<Time> {
        let at_hour = |hour: u8| vec![Time::constant(hour as i8, 0, 0, 0)];
        match &self.plan {
            Plan::EveryHours { hours } => {
                (0..24).step_by((*hours).max(1).into()).map(|hour| Time::constant(hour, 0, 0, 0)).collect()
            }
            Plan::Daily { hour } => at_hour(*hour),
            Plan::Weekly { weekday, hour } if date.weekday().to_sunday_zero_offset() == *weekday as i8 => {
                at_hour(*hour)
            }
            Plan::Monthly { day, hour } if date.day() == (*day as i8).min(date.days_in_month()) => at_hour(*hour),
            Plan::Cron(cron) if cron.matches_date(date) => cron.times_of_day().collect(),
            Plan::Weekly { .. } | Plan::Monthly { .. } | Plan::Cron(_) => Vec::new(),
        }
    }
}

/// When the backup of `key` (e.g. `"droplet:12"`, `"volume:<uuid>"`) is due in `window`: its start
/// plus an offset in the first half of the window, the same for a key in every window of a
/// given length, and spread over the half so that many resources do not start together.
pub fn due_at(window: &Window, key: &str) -> Timestamp {
    let half_secs = window.length().as_secs() / 2;
    if half_secs <= 0 {
        return window.start;
    }
    let offset_secs = fnv1a64(key.as_bytes()) % half_secs as u64;
    later(window.start, SignedDuration::from_secs(offset_secs as i64))
}

/// 64-bit FNV-1a. Written out rather than taken from `std`, whose hasher may change between
/// releases: due times must stay where they are across versions.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

/// Whether a backup the plan promised has not come: more than the longest interval plus a
/// window length has passed since the last success (or, before any, since backups were
/// enabled at `since`).
pub fn stale(policy: &Policy, last_success: Option<Timestamp>, since: Timestamp, now: Timestamp) -> bool {
    let allowed = policy.max_interval().saturating_add(policy.window_length());
    now.duration_since(last_success.unwrap_or(since)) > allowed
}

/// `at + duration`, saturating at the ends of jiff's range.
pub(crate) fn later(at: Timestamp, duration: SignedDuration) -> Timestamp {
    at.saturating_add(duration).unwrap_or(if duration.is_negative() { Timestamp::MIN } else { Timestamp::MAX })
}
