//! The catalog's rows, as plain data. JSON columns (power drivers, backup policies, action
//! parameters) stay `serde_json::Value` here: their meaning belongs to the crates that use them.

use serde_json::Value;

use crate::error::{Error, Result};

pub type TeamId = i64;
pub type DropletId = i64;
pub type ImageId = i64;
pub type ActionId = i64;
pub type RunId = i64;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl $crate::sql::ToValue for $name {
            fn to_value(&self) -> $crate::sql::Value {
                $crate::sql::Value::Text(self.as_str().to_string())
            }
        }

        impl $crate::sql::FromValue for $name {
            fn from_value(value: &$crate::sql::Value) -> Option<Self> {
                <String as $crate::sql::FromValue>::from_value(value).and_then(|text| $name::parse(&text))
            }
        }
    };
}

text_enum!(
    /// What an action or an image is about.
    ResourceType { Droplet = "droplet", Volume = "volume", Image = "image" }
);
text_enum!(ActionStatus { InProgress = "in-progress", Completed = "completed", Errored = "errored" });
text_enum!(
    /// Snapshots are taken on demand and kept until deleted; backups are taken on a schedule.
    ImageType { Snapshot = "snapshot", Backup = "backup" }
);
text_enum!(
    /// Pending while the action creating it runs; pending images are never listed.
    ImageStatus { Pending = "pending", Available = "available" }
);
text_enum!(DropletStatus { New = "new", Active = "active", Off = "off", Archive = "archive" });
text_enum!(DiskFormat { Raw = "raw", Qcow2 = "qcow2" });
text_enum!(
    /// Where a scheduled backup's window stands: an attempt running, waiting to retry, or done
    /// (succeeded, failed after its attempts or when its window closed, or missed altogether).
    RunStatus {
        Running = "running",
        Retrying = "retrying",
        Succeeded = "succeeded",
        Failed = "failed",
        Missed = "missed",
    }
);

#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    pub id: TeamId,
    pub uuid: String,
    pub name: String,
    pub email: String,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub id: i64,
    pub team_id: TeamId,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// The disk a droplet or volume is backed up from and restored to.
#[derive(Clone, Debug, PartialEq)]
pub struct Disk {
    pub path: String,
    pub format: DiskFormat,
    pub size_bytes: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Droplet {
    pub id: DropletId,
    pub team_id: TeamId,
    pub name: String,
    pub region: String,
    pub disk: Disk,
    /// The power driver's configuration (see `drydock-power`).
    pub power: Value,
    pub status: DropletStatus,
    pub size_slug: String,
    pub memory_mb: u32,
    pub vcpus: u32,
    pub tags: Vec<String>,
    pub backups_enabled: bool,
    pub backup_policy: Option<Value>,
    /// Unix seconds when backups were last turned on; `None` while they are off.
    pub backups_since: Option<i64>,
    pub image_id: Option<ImageId>,
    pub created_at: String,
    /// True while an action runs on it.
    pub locked: bool,
    pub snapshot_ids: Vec<ImageId>,
    pub backup_ids: Vec<ImageId>,
    pub volume_ids: Vec<String>,
}

/// What registering a droplet stores.
#[derive(Clone, Debug)]
pub struct NewDroplet {
    pub name: String,
    pub region: String,
    pub disk: Disk,
    pub power: Value,
    pub status: DropletStatus,
    pub size_slug: String,
    pub memory_mb: u32,
    pub vcpus: u32,
    pub tags: Vec<String>,
    pub backups_enabled: bool,
    pub backup_policy: Option<Value>,
    /// Unix seconds when backups were turned on; stored only when `backups_enabled`.
    pub backups_since: Option<i64>,
    pub image_id: Option<ImageId>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    pub id: String,
    pub team_id: TeamId,
    pub name: String,
    pub region: String,
    pub description: String,
    pub disk: Disk,
    pub filesystem_type: String,
    pub filesystem_label: String,
    pub droplet_id: Option<DropletId>,
    pub tags: Vec<String>,
    pub backups_enabled: bool,
    pub backup_policy: Option<Value>,
    /// Unix seconds when backups were last turned on; `None` while they are off.
    pub backups_since: Option<i64>,
    pub created_at: String,
    pub locked: bool,
    /// Its available backups, by id.
    pub backup_ids: Vec<ImageId>,
}

#[derive(Clone, Debug)]
pub struct NewVolume {
    pub name: String,
    pub region: String,
    pub description: String,
    pub disk: Disk,
    pub filesystem_type: String,
    pub filesystem_label: String,
    pub tags: Vec<String>,
    pub backups_enabled: bool,
    pub backup_policy: Option<Value>,
    /// Unix seconds when backups were turned on; stored only when `backups_enabled`.
    pub backups_since: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub id: ImageId,
    /// How volume snapshots are addressed (DigitalOcean gives them UUIDs).
    pub uuid: String,
    pub team_id: TeamId,
    pub name: String,
    pub kind: ImageType,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub status: ImageStatus,
    pub description: String,
    pub distribution: String,
    /// The image's apparent size.
    pub size_bytes: u64,
    /// Bytes this image added to its repository when it was taken (compressed, deduplicated).
    pub stored_bytes: u64,
    pub tags: Vec<String>,
    pub created_at: String,
    /// Unix seconds after which a backup of a deleted droplet or volume is pruned.
    pub expires_at: Option<i64>,
    /// Where a complete copy exists, by region, with the repository's snapshot id there.
    pub copies: Vec<ImageCopy>,
}

impl Image {
    pub fn regions(&self) -> Vec<String> {
        self.copies.iter().map(|c| c.region.clone()).collect()
    }

    /// The API id of a snapshot: the integer for droplet images, the UUID for volume snapshots.
    pub fn public_id(&self) -> String {
        match self.resource_type {
            ResourceType::Volume => self.uuid.clone(),
            _ => self.id.to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageCopy {
    pub region: String,
    pub snapshot_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub id: ActionId,
    pub team_id: TeamId,
    pub kind: String,
    pub status: ActionStatus,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub region: String,
    /// What the action was asked to do; read by the worker that runs it.
    pub params: Value,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub error: Option<String>,
    pub started_at: String,
    pub completed_at: Option<String>,
    /// The daemon running it, on a catalog several daemons share.
    pub worker: Option<String>,
}

/// One backup window of one resource: the row whose insertion claimed it, and what its
/// attempts did. Times are unix seconds on the scheduler's clock.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BackupRun {
    pub id: RunId,
    pub team_id: TeamId,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub status: RunStatus,
    /// Attempts started (the compare-and-set counter of every state change).
    pub attempts: u32,
    pub failed_attempts: u32,
    /// The current (or last) attempt's backup action, once it is recorded.
    pub action_id: Option<ActionId>,
    pub image_id: Option<ImageId>,
    /// The daemon that started the current attempt (`None` for a missed window).
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    /// The last failed attempt's reason (kept if a later attempt succeeds).
    pub error: Option<String>,
    pub taken_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub duration_secs: Option<f64>,
    pub size_bytes: Option<u64>,
    pub stored_bytes: Option<u64>,
    /// How the attempt's action stands, if it has one.
    pub action_status: Option<ActionStatus>,
    pub action_error: Option<String>,
}

/// What claiming a backup window stores.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub team_id: TeamId,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub claimed_by: String,
    pub now: i64,
}

/// A droplet or volume with backups on, as the scheduler sees it each tick.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupTarget {
    pub team_id: TeamId,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub name: String,
    pub region: String,
    pub policy: Option<Value>,
    pub backups_since: Option<i64>,
    /// The run of its latest window, if any.
    pub last_run: Option<BackupRun>,
}

/// What the backups of one resource have done so far; outlives pruned runs and the resource.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BackupStats {
    pub team_id: TeamId,
    pub resource_type: ResourceType,
    pub resource_id: String,
    /// The resource's name when its backups last ran.
    pub name: String,
    /// When the last successful backup was taken.
    pub last_success_at: Option<i64>,
    pub last_window_start: Option<i64>,
    pub last_duration_secs: Option<f64>,
    pub last_size_bytes: Option<u64>,
    pub last_stored_bytes: Option<u64>,
    pub successes: u64,
    /// Failed attempts (a window retried three times counts three).
    pub failures: u64,
    pub missed: u64,
    pub last_error: Option<String>,
    pub last_failure_at: Option<i64>,
}

/// A resource that has backups whose retention must be applied.
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionSubject {
    pub team_id: TeamId,
    pub resource_type: ResourceType,
    pub resource_id: String,
    /// The droplet's or volume's backup policy, whether its backups are on or off.
    pub policy: Option<Value>,
    /// False once the droplet or volume is deleted (its backups expire on their own dates).
    pub exists: bool,
}

pub(crate) fn json_column(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|_| Error::Corrupt(what.to_string()))
}

pub(crate) fn string_list(text: &str, what: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|_| Error::Corrupt(what.to_string()))
}

pub(crate) fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("catalog values serialize")
}
