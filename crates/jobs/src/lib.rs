//! Actions: the long operations behind the API (snapshot, restore, create from an image,
//! transfer, power), run on a bounded pool of workers and tracked in the catalog.
//!
//! The API records an action and hands it here; a worker runs it on a blocking thread with the
//! engine, reports progress to the catalog and ends it `completed` or `errored`. After a crash,
//! [`Jobs::recover`] ends or resumes whatever was left `in-progress`. Daemons sharing a catalog
//! hold leases on the actions they run and take over those of a daemon that died (`leases`).

mod backup_attempt;
mod clock;
mod consistency;
mod disks;
mod error;
mod events;
mod execute;
mod gc;
mod leases;
mod power;
mod progress;
mod prune;
mod regions;
mod runner;
mod scheduler;
mod tags;
mod usage;

pub use clock::Clock;
pub use consistency::{CatalogCheck, Mismatch, check_catalog, rebuild_catalog};
pub use disks::{DiskPolicy, inspect_disk};
pub use drydock_storage::{Credentials as S3Credentials, S3Config};
pub use error::{Error, Result};
pub use events::{BackupEvent, BackupEventKind, EventSink, NoEvents};
pub use gc::GcStatus;
pub use power::{current_status, parse_power, require_switchable};
pub use prune::{DELETED_RESOURCE_RETENTION, Pruner, retention_refs};
pub use regions::{RegionLocation, RegionSpec, Regions, check_s3_config};
pub use runner::{JobSettings, Jobs, Recovery};
pub use scheduler::{Scheduler, SchedulerSettings, TickReport};
pub use tags::RepoTags;
pub use usage::{ImageUsage, RegionUsage, ResourceUsage, UsageReport, UsageTotals, usage_report};
