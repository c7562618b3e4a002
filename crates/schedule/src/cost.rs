//! What backups and snapshots cost per month, at per-GiB-month prices. The defaults are
//! DigitalOcean's published prices (research/product-features.md, validated 9 March 2026):
//! snapshots $0.06, usage-based backups $0.04 weekly, $0.03 daily, $0.02 every 12 h, $0.015 every
//! 6 h, $0.01 every 4 h. drydock bills what it stores: deduplicated, compressed bytes.

use serde::{Deserialize, Serialize};

use crate::policy::{Plan, Policy};
use crate::simulate::Simulation;

const GIB: u64 = 1 << 30;
const HOUR_SECS: i64 = 3600;

/// Per-GiB-month prices, in the configuration as `[prices]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prices {
    pub currency: String,
    pub snapshot_gib_month: f64,
    pub backup_weekly_gib_month: f64,
    pub backup_daily_gib_month: f64,
    pub backup_12h_gib_month: f64,
    pub backup_6h_gib_month: f64,
    pub backup_4h_gib_month: f64,
}

impl Default for Prices {
    fn default() -> Prices {
        Prices {
            currency: "USD".into(),
            snapshot_gib_month: 0.06,
            backup_weekly_gib_month: 0.04,
            backup_daily_gib_month: 0.03,
            backup_12h_gib_month: 0.02,
            backup_6h_gib_month: 0.015,
            backup_4h_gib_month: 0.01,
        }
    }
}

impl Prices {
    /// The per-GiB-month price of a plan's backups: a sub-daily plan pays the price of
    /// DigitalOcean's plan at its frequency (every 1 or 2 h as every 4 h, the most frequent it
    /// sells), monthly as weekly, and cron as the plan its average interval comes closest to
    /// without being more frequent.
    pub fn backup_price(&self, plan: &Plan) -> f64 {
        match plan {
            Plan::EveryHours { hours } => self.every_hours_price((*hours).into()),
            Plan::Daily { .. } => self.backup_daily_gib_month,
            Plan::Weekly { .. } | Plan::Monthly { .. } => self.backup_weekly_gib_month,
            Plan::Cron(cron) => {
                // To the nearest hour: an average over whole years is a little off a weekly
                // expression's 7 days (four years hold 209 Mondays, not 208.7).
                let hours = (cron.average_interval().as_secs() + HOUR_SECS / 2) / HOUR_SECS;
                match hours {
                    168.. => self.backup_weekly_gib_month,
                    24.. => self.backup_daily_gib_month,
                    _ => self.every_hours_price(hours),
                }
            }
        }
    }

    /// The price of backups every `hours` hours, for an interval below a day.
    fn every_hours_price(&self, hours: i64) -> f64 {
        match hours {
            12.. => self.backup_12h_gib_month,
            6.. => self.backup_6h_gib_month,
            _ => self.backup_4h_gib_month,
        }
    }
}

/// What storing `bytes` costs a month at `price_gib_month` (per GiB, 2^30 bytes).
pub fn monthly_cost(bytes: u64, price_gib_month: f64) -> f64 {
    bytes as f64 / GIB as f64 * price_gib_month
}

/// What a simulated policy stores and costs once it has reached the simulation's end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub stored_bytes: u64,
    pub monthly_cost: f64,
}

/// Estimates what the backups `simulation` retains at its end store and cost, for `data_bytes`
/// of data of which the fraction `change_per_backup` (0 to 1) changes between backups. The
/// repository deduplicates, so the oldest retained backup stores all the data and each later
/// one only what changed: `data + (retained − 1) × change × data`, never more than a full copy
/// per backup. Nothing retained stores nothing.
pub fn estimate(
    policy: &Policy,
    simulation: &Simulation,
    data_bytes: u64,
    change_per_backup: f64,
    prices: &Prices,
) -> Estimate {
    let retained = simulation.backups.len() as f64;
    let change = if change_per_backup.is_nan() { 0.0 } else { change_per_backup.clamp(0.0, 1.0) };
    let data = data_bytes as f64;
    let stored = if retained == 0.0 { 0.0 } else { data + (retained - 1.0) * change * data };
    // Saturates at u64::MAX for absurd inputs rather than wrapping.
    let stored_bytes = stored.round() as u64;
    Estimate { stored_bytes, monthly_cost: monthly_cost(stored_bytes, prices.backup_price(&policy.plan)) }
}
