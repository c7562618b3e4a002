//! The catalog: what drydock knows about teams, tokens, droplets, volumes, images, actions and
//! scheduled backup runs.
//!
//! The repositories hold the data; the catalog is derived state that makes the API fast and
//! remembers what the repositories cannot (power drivers, policies, running actions). It can be
//! rebuilt from the repositories' snapshot tags (see `drydock-jobs`' consistency check).
//!
//! SQLite by default; PostgreSQL when several daemons share one catalog (see `sql`). Every
//! function the API serves takes a team: nothing of one team is visible to another. The
//! daemon's own functions (the scheduler's targets and runs, backup statistics, retention,
//! workers' actions) see every team.

mod actions;
mod backup_runs;
mod backup_stats;
mod backup_targets;
mod db;
mod droplets;
mod error;
mod images;
mod leases;
mod migrate;
mod model;
mod retention;
mod sql;
mod teams;
mod volumes;

pub use actions::{NewAction, StartError};
pub use db::Catalog;
pub use droplets::DropletFilter;
pub use error::{Error, Result};
pub use images::{ImageFilter, NewImage, RecoveredImage};
pub use model::*;
pub use sql::DbError;
pub use teams::NewToken;

/// Now, as DigitalOcean writes times: RFC 3339 in UTC, to the second.
pub fn now() -> String {
    utc_seconds(jiff::Timestamp::now())
}

/// A time as the catalog stores it: RFC 3339 in UTC, to the second, so that stored times sort
/// as text.
pub(crate) fn utc_seconds(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One page of a listing: rows `offset..offset + limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

impl Page {
    pub const ALL: Page = Page { offset: 0, limit: i64::MAX as u64 };
}
