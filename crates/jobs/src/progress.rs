//! Engine progress written to the catalog, at most a few times a second, so clients polling an
//! action see it move without every chunk costing a database write.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use drydock_catalog::{ActionId, Catalog};
use drydock_engine::Progress;

const WRITE_INTERVAL: Duration = Duration::from_millis(250);

pub struct ActionProgress<'a> {
    catalog: &'a Catalog,
    action: ActionId,
    done: AtomicU64,
    total: AtomicU64,
    last_write: Mutex<Instant>,
}

impl<'a> ActionProgress<'a> {
    pub fn new(catalog: &'a Catalog, action: ActionId) -> Self {
        ActionProgress {
            catalog,
            action,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            last_write: Mutex::new(Instant::now() - WRITE_INTERVAL),
        }
    }

    fn write(&self, force: bool) {
        let Ok(mut last) = self.last_write.try_lock() else { return };
        if !force && last.elapsed() < WRITE_INTERVAL {
            return;
        }
        *last = Instant::now();
        // Progress is informational: a failed write must not fail the operation.
        if let Err(e) = self.catalog.set_action_progress(
            self.action,
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        ) {
            tracing::warn!(action = self.action, "recording progress: {e}");
        }
    }
}

impl Progress for ActionProgress<'_> {
    fn start(&self, bytes: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(bytes, Ordering::Relaxed);
        self.write(true);
    }

    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        self.write(false);
    }
}
