//! Which backups a policy keeps, and why: the retention plan. It is a pure function of the
//! backups and `now`; the executor (`drydock-jobs`' prune) applies it and the API shows it.
//!
//! Keeping is monotonic: as time passes and newer backups arrive, a backup's ranks only grow and
//! its age only increases, and removing an expired backup never brings an older one back within
//! a count (it was behind at least `keep_T` newer ones of each of its tags). So a backup expired
//! once stays expired, and pruning at every step or once at the end removes the same backups.

use jiff::{SignedDuration, Timestamp};

use crate::policy::Retention;
use crate::tags::Tag;

/// A backup as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRef {
    pub id: i64,
    pub taken_at: Timestamp,
    pub tags: Vec<Tag>,
}

/// Why a backup is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Among the newest `keep` backups carrying `tag`, at position `rank` (1 = newest).
    Newest { tag: Tag, rank: u32, keep: u32 },
    /// Younger than the policy's `retention_period_days`.
    Young { days: u32 },
    /// A manual snapshot: never pruned.
    Manual,
}

/// What the plan says about one backup: kept for these reasons, or expired when there are none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub id: i64,
    pub taken_at: Timestamp,
    pub reasons: Vec<Reason>,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Newest { tag, rank, keep } => write!(f, "newest {rank} of {keep} {tag}"),
            Reason::Young { days: 1 } => f.write_str("younger than 1 day"),
            Reason::Young { days } => write!(f, "younger than {days} days"),
            Reason::Manual => f.write_str("manual snapshot"),
        }
    }
}

/// Decides, at `now`, which of one resource's `backups` `retention` keeps and why; the
/// decisions are in the order of `backups`.
///
/// A backup is kept if, for one of its tags T with `keep_T` > 0, it is among the newest `keep_T`
/// backups carrying T (newest first by `taken_at`; at the same instant the larger id, the one
/// recorded later, ranks first), if it is younger than `retention_period_days` days of 24 hours,
/// or if it is a manual snapshot. Every reason that applies is listed: Newest in the order of
/// [`Tag`], then Young, then Manual. A backup with none expires.
pub fn plan(retention: &Retention, backups: &[BackupRef], now: Timestamp) -> Vec<Decision> {
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); backups.len()];
    let counted_tags = [Tag::Hourly, Tag::Daily, Tag::Weekly, Tag::Monthly, Tag::Yearly];
    for (tag, keep) in counted_tags.into_iter().zip(retention.keep_counts()) {
        if keep == 0 {
            continue;
        }
        let mut carrying: Vec<usize> = (0..backups.len()).filter(|&i| backups[i].tags.contains(&tag)).collect();
        carrying.sort_unstable_by_key(|&i| std::cmp::Reverse((backups[i].taken_at, backups[i].id)));
        for (rank, &i) in (1..=keep).zip(&carrying) {
            reasons[i].push(Reason::Newest { tag, rank, keep });
        }
    }
    let young_days = retention.retention_period_days.filter(|&days| days > 0);
    for (backup, reasons) in backups.iter().zip(&mut reasons) {
        if let Some(days) = young_days
            && now.duration_since(backup.taken_at) < SignedDuration::from_hours(i64::from(days) * 24)
        {
            reasons.push(Reason::Young { days });
        }
        if backup.tags.contains(&Tag::Manual) {
            reasons.push(Reason::Manual);
        }
    }
    backups
        .iter()
        .zip(reasons)
        .map(|(backup, reasons)| Decision { id: backup.id, taken_at: backup.taken_at, reasons })
        .collect()
}
