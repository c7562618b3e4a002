//! The worker pool: runs recorded actions, at most `workers` at once, each on a blocking
//! thread, and ends every one of them in the catalog, whatever happens.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drydock_catalog::{Action, ActionId, Catalog, Image, ImageStatus, ResourceType};
use drydock_engine::CancelToken;
use drydock_engine::id::SnapshotId;
use tokio::sync::{Notify, Semaphore};

use crate::disks::DiskPolicy;
use crate::error::Result;
use crate::execute;
use crate::regions::Regions;
use crate::tags::RepoTags;

#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Long actions running at once; more wait their turn (and stay `in-progress`).
    pub workers: usize,
    pub disks: DiskPolicy,
    /// Where qcow2 disks are converted to and from raw.
    pub scratch_dir: PathBuf,
}

/// Cancelled actions get at least this long at shutdown to reach a safe point and record how
/// they ended, whatever the grace period: cancellation lands within moments, and an action the
/// daemon exits without ending stays `in-progress` until the next start recovers it.
const CANCELLED_WAIT_MIN: Duration = Duration::from_secs(10);

pub struct Jobs {
    catalog: Arc<Catalog>,
    regions: Arc<Regions>,
    settings: JobSettings,
    permits: Arc<Semaphore>,
    running: Mutex<HashMap<ActionId, CancelToken>>,
    idle: Notify,
    /// Signalled whenever an action ends: the scheduler waits on it to finish backups promptly.
    ended: Notify,
    gc: Mutex<crate::gc::GcStatus>,
}

/// What [`Jobs::recover`] did with the actions a stopped daemon left running.
#[derive(Debug, Default)]
pub struct Recovery {
    pub resumed: Vec<ActionId>,
    pub errored: Vec<ActionId>,
}

impl Jobs {
    pub fn new(catalog: Arc<Catalog>, regions: Arc<Regions>, settings: JobSettings) -> Arc<Jobs> {
        let permits = Arc::new(Semaphore::new(settings.workers.max(1)));
        Arc::new(Jobs {
            catalog,
            regions,
            settings,
            permits,
            running: Mutex::new(HashMap::new()),
            idle: Notify::new(),
            ended: Notify::new(),
            gc: Mutex::default(),
        })
    }

    pub(crate) fn gc_status_lock(&self) -> std::sync::MutexGuard<'_, crate::gc::GcStatus> {
        self.gc.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn regions(&self) -> &Arc<Regions> {
        &self.regions
    }

    pub fn disks(&self) -> &DiskPolicy {
        &self.settings.disks
    }

    pub(crate) fn settings(&self) -> &JobSettings {
        &self.settings
    }

    /// Runs a recorded in-progress action in the background. Must be called inside a tokio
    /// runtime.
    pub fn spawn(self: &Arc<Self>, action: Action) {
        let cancel = CancelToken::new();
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(action.id, cancel.clone());
        let jobs = self.clone();
        tokio::spawn(async move {
            let id = action.id;
            let ended = action.clone();
            let outcome = match jobs.permits.clone().acquire_owned().await {
                Ok(_permit) => {
                    let worker = jobs.clone();
                    let joined = tokio::task::spawn_blocking(move || execute::run(&worker, &action, &cancel)).await;
                    match joined {
                        Ok(result) => result.map_err(|e| e.to_string()),
                        Err(e) => Err(format!("internal error while running the action: {e}")),
                    }
                }
                Err(_) => Err("interrupted: the daemon shut down before the action started".to_string()),
            };
            if let Err(reason) = &outcome {
                tracing::warn!(action = id, "action errored: {reason}");
            }
            let failed = outcome.is_err();
            match jobs.catalog.finish_action(id, outcome) {
                Ok(_) if failed => jobs.forget_failed_create(&ended),
                Ok(_) => {}
                // Taken over by another daemon (or ended by a recovery): its end is not ours.
                Err(e) => tracing::error!(action = id, "recording the end of the action: {e}"),
            }
            jobs.ended.notify_one();
            let mut running = jobs.running.lock().unwrap_or_else(|e| e.into_inner());
            running.remove(&id);
            if running.is_empty() {
                jobs.idle.notify_waiters();
            }
        });
    }

    /// Completes when an action has ended since the last call (at most one wake-up is stored).
    pub async fn action_ended(&self) {
        self.ended.notified().await
    }

    pub fn running_count(&self) -> usize {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(crate) fn running_actions(&self) -> Vec<(ActionId, CancelToken)> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.iter().map(|(id, cancel)| (*id, cancel.clone())).collect()
    }

    pub(crate) fn is_running(&self, id: ActionId) -> bool {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&id)
    }

    /// Workers not running an action; none once shutting down.
    pub(crate) fn free_workers(&self) -> usize {
        if self.permits.is_closed() {
            return 0;
        }
        self.settings.workers.max(1).saturating_sub(self.running_count())
    }

    /// Lets running actions finish for up to `grace`, then cancels the rest, which end
    /// `errored` at their next safe point; waits for them up to `grace` again, and at least
    /// [`CANCELLED_WAIT_MIN`].
    pub async fn shutdown(&self, grace: Duration) {
        self.permits.close();
        if self.wait_idle(grace).await {
            return;
        }
        for cancel in self.running.lock().unwrap_or_else(|e| e.into_inner()).values() {
            cancel.cancel();
        }
        if !self.wait_idle(grace.max(CANCELLED_WAIT_MIN)).await {
            tracing::warn!("{} actions did not stop in time: the next start ends them", self.running_count());
        }
    }

    async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.running_count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.running_count() == 0;
            }
        }
    }

    /// Ends what a stopped daemon left `in-progress`. A snapshot whose repository snapshot was
    /// committed before the stop is finished (resumed); everything else ends `errored` with
    /// the reason, and pending images and partly restored disks are removed. Call before
    /// serving.
    pub fn recover(&self) -> Result<Recovery> {
        let mut recovery = Recovery::default();
        for action in self.catalog.running_actions()? {
            let image_id = action.params.get("image_id").and_then(|v| v.as_i64());
            let image = image_id.and_then(|id| self.catalog.image(action.team_id, id).ok());
            if let Some(image) = image.filter(|i| i.status == ImageStatus::Pending) {
                if self.finish_committed_image(&action, &image)? {
                    self.catalog.finish_action(action.id, Ok(()))?;
                    recovery.resumed.push(action.id);
                    continue;
                }
                self.catalog.discard_pending_image(image.id)?;
            }
            execute::remove_leftovers(self, &action);
            let reason = execute::interrupted_reason(&action);
            self.catalog.finish_action(action.id, Err(reason))?;
            self.forget_failed_create(&action);
            recovery.errored.push(action.id);
        }
        Ok(recovery)
    }

    /// A droplet or volume whose creation from an image failed never existed: it leaves the
    /// catalog (its errored action stays, saying why). Called once the action has ended, so the
    /// resource is no longer locked.
    fn forget_failed_create(&self, action: &Action) {
        if action.kind != "create" {
            return;
        }
        let forgotten = match action.resource_type {
            ResourceType::Droplet => match action.resource_id.parse() {
                Ok(id) => self.catalog.delete_droplet(action.team_id, id),
                Err(_) => return,
            },
            ResourceType::Volume => self.catalog.delete_volume(action.team_id, &action.resource_id),
            ResourceType::Image => return,
        };
        if let Err(e) = forgotten {
            tracing::warn!(action = action.id, "removing the {} of a failed create: {e}", action.resource_type);
        }
    }

    /// If the repository holds the image's snapshot (the daemon stopped between committing it
    /// and recording it), records it and returns true.
    pub(crate) fn finish_committed_image(&self, action: &Action, image: &Image) -> Result<bool> {
        let Ok(repo) = self.regions.repository(&action.region) else { return Ok(false) };
        let (metas, _) = repo.load_snapshot_metas_lenient()?;
        let found =
            metas.into_iter().find(|(_, meta)| RepoTags::decode(&meta.tags).is_some_and(|t| t.image_id == image.id));
        let Some((id, meta)) = found else { return Ok(false) };
        let copy = drydock_catalog::ImageCopy { region: action.region.clone(), snapshot_id: id.to_hex() };
        self.catalog.finish_image(image.id, &copy, meta.size_bytes, meta.stored_bytes)?;
        Ok(true)
    }

    /// Refuses power actions on a droplet whose driver cannot switch it.
    pub fn power_check(&self, power: &serde_json::Value, droplet: &str) -> Result<()> {
        crate::power::require_switchable(power, droplet)
    }

    /// Deletes an image's copies from its regions' repositories (their data goes at the next
    /// gc). Called after the image left the catalog.
    pub fn forget_copies(&self, image: &Image) -> Result<()> {
        for copy in &image.copies {
            let repo = self.regions.repository(&copy.region)?;
            if let Some(id) = SnapshotId::from_hex(&copy.snapshot_id) {
                drydock_engine::forget::forget(&repo, &[id])?;
            }
        }
        Ok(())
    }
}
