//! Actions: the long operations behind the API (snapshot, restore, create from an image,
//! transfer, power), run on a bounded pool of workers and tracked in the catalog.
//!
//! The API records an action and hands it here; a worker runs it on a blocking thread with the
//! engine, reports progress to the catalog and ends it `completed` or `errored`. After a crash,
//! [`Jobs::recover`] ends or resumes whatever was left `in-progress`.

mod consistency;
mod disks;
mod error;
mod execute;
mod power;
mod progress;
mod regions;
mod runner;
mod tags;

pub use consistency::{CatalogCheck, Mismatch, check_catalog, rebuild_catalog};
pub use disks::{DiskPolicy, inspect_disk};
pub use error::{Error, Result};
pub use power::{current_status, parse_power, require_switchable};
pub use regions::{RegionSpec, Regions};
pub use runner::{JobSettings, Jobs, Recovery};
pub use tags::RepoTags;
