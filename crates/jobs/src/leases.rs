//! Actions on a catalog several daemons share: this daemon keeps the leases of the actions it
//! runs, stops those another daemon took over (it stalled past its lease), and takes over and
//! runs again those whose daemon died. See the catalog's `leases` for the rules.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use drydock_catalog::{Action, ActionId, ImageStatus};
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::execute;
use crate::runner::Jobs;

/// Leases are renewed this many times per lease: one missed renewal (a slow database, a busy
/// machine) does not lose them.
const RENEWALS_PER_LEASE: u32 = 3;

impl Jobs {
    /// Keeps leases every third of `lease` until aborted. For a catalog on which
    /// `Catalog::set_worker` was called; must be called inside a tokio runtime.
    pub fn spawn_leases(self: &Arc<Self>, lease: Duration) -> JoinHandle<()> {
        let jobs = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(lease / RENEWALS_PER_LEASE);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let worker = jobs.clone();
                match tokio::task::spawn_blocking(move || worker.keep_leases()).await {
                    Ok(Ok(taken)) => {
                        for action in taken {
                            tracing::warn!(
                                action = action.id,
                                "taking over action {} ({} of {} {}): its daemon stopped renewing its lease",
                                action.id,
                                action.kind,
                                action.resource_type,
                                action.resource_id
                            );
                            jobs.spawn(action);
                        }
                    }
                    Ok(Err(e)) => tracing::warn!("keeping action leases: {e}"),
                    Err(e) => tracing::error!("keeping action leases: {e}"),
                }
            }
        })
    }

    /// One round: renews this daemon's leases, cancels the actions it lost, and takes over
    /// abandoned ones, as many as it has free workers. Returns those to run again (an action
    /// whose work was already committed is finished here instead).
    pub fn keep_leases(&self) -> Result<Vec<Action>> {
        let held: HashSet<ActionId> = self.catalog().renew_leases()?.into_iter().collect();
        for (id, cancel) in self.running_actions() {
            if held.contains(&id) || cancel.is_cancelled() {
                continue;
            }
            // Not renewed: ended, taken over, or started after the renewal read the leases.
            let action = self.catalog().action_for_worker(id)?;
            if action.worker.as_deref() != self.catalog().worker_name() {
                tracing::warn!(action = id, "action {id} was taken over by {:?}: stopping it here", action.worker);
                cancel.cancel();
            }
        }
        let free = self.free_workers();
        if free == 0 {
            return Ok(Vec::new());
        }
        let mut to_run = Vec::new();
        for action in self.catalog().take_over_actions(free)? {
            // Ours all along, still running here after a stall: the lease is ours again.
            if self.is_running(action.id) {
                continue;
            }
            // From here every action taken is either ended or run: one left neither would stay
            // leased to this daemon, renewed and never run.
            let committed = self.finish_if_committed(&action).unwrap_or_else(|e| {
                tracing::warn!(action = action.id, "checking whether action {} was committed: {e}", action.id);
                false
            });
            if committed {
                match self.catalog().finish_action(action.id, Ok(())) {
                    Ok(_) => continue,
                    Err(e) => tracing::warn!(action = action.id, "recording action {} as done: {e}", action.id),
                }
            }
            execute::remove_leftovers(self, &action);
            to_run.push(action);
        }
        Ok(to_run)
    }

    /// A snapshot or backup whose repository snapshot its dead daemon committed but did not
    /// record: recorded now. True if so.
    fn finish_if_committed(&self, action: &Action) -> Result<bool> {
        let image_id = action.params.get("image_id").and_then(|v| v.as_i64());
        let image = image_id.and_then(|id| self.catalog().image(action.team_id, id).ok());
        match image
            .filter(|i| i.status == ImageStatus::Pending && matches!(action.kind.as_str(), "snapshot" | "backup"))
        {
            Some(image) => self.finish_committed_image(action, &image),
            None => Ok(false),
        }
    }
}
