//! Garbage collection of every region, on the scheduler's interval or on request. It runs
//! beside backups and restores (the engine's lease protocol, docs/concurrency.md): nothing here
//! waits for them or makes them wait.

use std::sync::Arc;

use drydock_engine::{CancelToken, NoProgress};
use serde::Serialize;

use crate::runner::Jobs;

/// What gc has done since the daemon started, for the API and metrics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcStatus {
    pub running: bool,
    pub runs: u64,
    /// RFC 3339, wall clock.
    pub last_started_at: Option<String>,
    pub last_finished_at: Option<String>,
    pub last_bytes_freed: u64,
    pub last_packs_deleted: usize,
    pub bytes_freed_total: u64,
    /// Regions whose last gc failed, with the reason.
    pub last_errors: Vec<String>,
}

impl Jobs {
    /// Starts a gc of every region in the background; false if one is already running (there
    /// is nothing to gain from two). Must be called inside a tokio runtime.
    pub fn start_gc(self: &Arc<Self>) -> bool {
        {
            let mut status = self.gc_status_lock();
            if status.running {
                return false;
            }
            status.running = true;
            status.last_started_at = Some(drydock_catalog::now());
        }
        let jobs = self.clone();
        tokio::task::spawn_blocking(move || jobs.gc_regions());
        true
    }

    pub fn gc_status(&self) -> GcStatus {
        self.gc_status_lock().clone()
    }

    fn gc_regions(&self) {
        let (mut freed, mut packs, mut errors) = (0, 0, Vec::new());
        for spec in self.regions().specs() {
            let outcome = self.regions().repository(&spec.slug).map_err(|e| e.to_string()).and_then(|repo| {
                drydock_engine::gc::gc(&repo, &NoProgress, &CancelToken::new()).map_err(|e| e.to_string())
            });
            match outcome {
                Ok(report) => {
                    tracing::info!(region = %spec.slug, ?report, "gc done");
                    freed += report.bytes_freed;
                    packs += report.packs_deleted;
                }
                Err(e) => {
                    tracing::warn!(region = %spec.slug, "gc: {e}");
                    errors.push(format!("{}: {e}", spec.slug));
                }
            }
        }
        let mut status = self.gc_status_lock();
        status.running = false;
        status.runs += 1;
        status.last_finished_at = Some(drydock_catalog::now());
        status.last_bytes_freed = freed;
        status.last_packs_deleted = packs;
        status.bytes_freed_total += freed;
        status.last_errors = errors;
    }
}
