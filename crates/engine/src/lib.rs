//! The drydock repository engine.
//!
//! A repository is a set of immutable objects in a [`drydock_storage::Storage`]: packs of
//! encrypted, compressed chunks, index files that say where each chunk is, and one manifest
//! per snapshot listing its image's chunks. docs/format.md describes the bytes,
//! docs/concurrency.md the rules that let backup, restore, verify and gc run at once.
//!
//! Commands are plain functions taking an open [`Repository`]; progress, cancellation and
//! per-item problems are passed in, and nothing here prints.

mod aligned;
mod blob;
pub mod config;
mod control;
pub mod crypto;
#[cfg(test)]
mod decode_robustness;
mod error;
mod format;
pub mod id;
pub mod index;
pub mod keys;
mod layout;
pub mod lease;
pub mod pack;
mod parallel;
mod repo;
pub mod snapshot;
mod time;

pub mod backup;
pub mod copy;
pub mod forget;
pub mod gc;
pub mod restore;
pub mod usage;
pub mod verify;

pub use control::{CancelToken, NoProgress, Progress};
pub use error::{Error, Result};
pub use repo::{InitOptions, RepoStats, Repository, probe};
