//! The catalog: what drydock knows about teams, tokens, droplets, volumes, images and actions.
//!
//! The repositories hold the data; the catalog is derived state that makes the API fast and
//! remembers what the repositories cannot (power drivers, policies, running actions). It can be
//! rebuilt from the repositories' snapshot tags (see `drydock-jobs`' consistency check).
//!
//! SQLite in WAL mode: one writer connection behind a mutex, a few reader connections beside
//! it, so reads never wait for a write. Every function takes a team: nothing of one team is
//! visible to another.

mod actions;
mod db;
mod droplets;
mod error;
mod images;
mod migrate;
mod model;
mod teams;
mod volumes;

pub use actions::{NewAction, StartError};
pub use db::Catalog;
pub use droplets::DropletFilter;
pub use error::{Error, Result};
pub use images::{ImageFilter, NewImage, RecoveredImage};
pub use model::*;
pub use teams::NewToken;

/// Now, as DigitalOcean writes times: RFC 3339 in UTC, to the second.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
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
