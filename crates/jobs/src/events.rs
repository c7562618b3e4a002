//! What the scheduler tells the outside world: backup succeeded, failed, missed. The daemon
//! turns these into webhooks; the scheduler only hands them to an [`EventSink`], never waits.

use drydock_catalog::{ActionId, ImageId, ResourceType, TeamId};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupEventKind {
    Succeeded,
    Failed,
    Missed,
}

impl BackupEventKind {
    /// The event's name in webhooks: `backup.succeeded`, `backup.failed`, `backup.missed`.
    pub fn name(self) -> &'static str {
        match self {
            BackupEventKind::Succeeded => "backup.succeeded",
            BackupEventKind::Failed => "backup.failed",
            BackupEventKind::Missed => "backup.missed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackupEvent {
    pub kind: BackupEventKind,
    pub team_id: TeamId,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub resource_name: String,
    /// RFC 3339, UTC.
    pub window_start: String,
    pub window_end: String,
    /// When it happened (RFC 3339, UTC), on the scheduler's clock.
    pub at: String,
    pub attempts: u32,
    pub action_id: Option<ActionId>,
    pub image_id: Option<ImageId>,
    pub size_bytes: Option<u64>,
    pub duration_secs: Option<f64>,
    pub tags: Vec<String>,
    pub error: Option<String>,
}

/// Where events go. `send` must not block: queue the event and deliver it elsewhere.
pub trait EventSink: Send + Sync {
    fn send(&self, event: BackupEvent);
}

/// Drops every event: for daemons without webhooks, and tests.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn send(&self, _event: BackupEvent) {}
}
