//! The retention executor: applies `drydock_schedule::retention::plan` to the catalog and the
//! repositories.
//!
//! Pruning a backup deletes its catalog row first (so it is never listed once expiring has
//! begun), then forgets its repository snapshots. Neither step takes a lock a backup waits
//! for: forgetting only deletes a manifest, and the data goes at the next gc, which runs
//! beside backups by the engine's lease protocol (docs/concurrency.md).

use std::sync::Arc;

use drydock_catalog::{Image, ResourceType, TeamId};
use drydock_schedule::retention::{self, BackupRef, Decision};
use drydock_schedule::{Policy, Tag};
use jiff::{SignedDuration, Timestamp};

use crate::clock::Clock;
use crate::error::Result;
use crate::runner::Jobs;

/// DigitalOcean keeps a deleted droplet's backups for four weeks.
pub const DELETED_RESOURCE_RETENTION: SignedDuration = SignedDuration::from_hours(28 * 24);

pub struct Pruner {
    jobs: Arc<Jobs>,
    clock: Clock,
}

impl Pruner {
    pub fn new(jobs: Arc<Jobs>, clock: Clock) -> Pruner {
        Pruner { jobs, clock }
    }

    /// Applies retention to every resource that has backups, existing or deleted. Returns how
    /// many backups were pruned.
    pub fn prune_all(&self) -> Result<usize> {
        let mut pruned = 0;
        for subject in self.jobs.catalog().retention_subjects()? {
            let result = if subject.exists {
                let policy = Policy::from_json(subject.policy.as_ref().unwrap_or(&serde_json::Value::Null)).ok();
                self.prune_resource(subject.team_id, subject.resource_type, &subject.resource_id, policy.as_ref())
            } else {
                self.prune_deleted(subject.team_id, subject.resource_type, &subject.resource_id)
            };
            match result {
                Ok(n) => pruned += n,
                Err(e) => tracing::warn!("pruning backups of {} {}: {e}", subject.resource_type, subject.resource_id),
            }
        }
        Ok(pruned)
    }

    /// Applies a resource's retention now; backups whose plan says expire are pruned.
    pub fn prune_resource(
        &self,
        team: TeamId,
        resource_type: ResourceType,
        resource_id: &str,
        policy: Option<&Policy>,
    ) -> Result<usize> {
        let Some(policy) = policy else { return Ok(0) };
        let backups = self.jobs.catalog().backup_images(team, resource_type, resource_id)?;
        let decisions = retention::plan(&policy.retention, &retention_refs(&backups), self.clock.now());
        Ok(self.remove_expired(team, &backups, &decisions))
    }

    /// A deleted resource's backups are kept four weeks from its deletion, then pruned.
    fn prune_deleted(&self, team: TeamId, resource_type: ResourceType, resource_id: &str) -> Result<usize> {
        let now = self.clock.now();
        let catalog = self.jobs.catalog();
        // Deleted before expiry dates were recorded: the four weeks start now.
        let grace = now.saturating_add(DELETED_RESOURCE_RETENTION).unwrap_or(now);
        catalog.expire_backups(team, resource_type, resource_id, grace.as_second())?;
        let mut pruned = 0;
        for image in catalog.backup_images(team, resource_type, resource_id)? {
            if image.expires_at.is_some_and(|at| at <= now.as_second()) && self.remove(team, &image) {
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    fn remove_expired(&self, team: TeamId, backups: &[Image], decisions: &[Decision]) -> usize {
        let expired = |image: &&Image| decisions.iter().any(|d| d.id == image.id && !d.keep());
        backups.iter().filter(expired).filter(|image| self.remove(team, image)).count()
    }

    /// Deletes one backup; false (logged) when the catalog refuses, e.g. while a restore
    /// reads it: the next pass tries again.
    fn remove(&self, team: TeamId, image: &Image) -> bool {
        match self.jobs.catalog().delete_image(team, image.id) {
            Ok(removed) => {
                if let Err(e) = self.jobs.forget_copies(&removed) {
                    tracing::warn!("backup {} left the catalog but its data stays until repaired: {e}", image.id);
                }
                tracing::info!(image = image.id, "backup expired and pruned");
                true
            }
            Err(e) => {
                tracing::info!(image = image.id, "expired backup kept for now: {e}");
                false
            }
        }
    }
}

/// Backups as retention sees them. Tags that are not retention tags are ignored; a backup
/// whose time cannot be read is left out, and so never expires.
pub fn retention_refs(backups: &[Image]) -> Vec<BackupRef> {
    backups
        .iter()
        .filter_map(|image| {
            Some(BackupRef {
                id: image.id,
                taken_at: image.created_at.parse::<Timestamp>().ok()?,
                tags: image.tags.iter().filter_map(|t| Tag::parse(t)).collect(),
            })
        })
        .collect()
}
