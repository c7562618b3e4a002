//! Writer leases: how a backup tells gc "I may reference chunks you think are unused".
//!
//! A backup puts `leases/<name>` before it reads the index and deletes it after its manifest is
//! stored. A background thread rewrites the lease every quarter of the repository's lease TTL.
//! The backup refuses to commit if its last successful refresh is older than half the TTL, so
//! a lease gc considers expired (older than the TTL) can never belong to a writer that will
//! still commit. docs/concurrency.md has the whole rule and its proof.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drydock_storage::{ObjectKey, Storage};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{self, HEADER_BYTES, MAGIC_LEASE};
use crate::layout;

pub const LEASE_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub operation: String,
    pub hostname: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (from /proc), so a reused pid is not
    /// mistaken for the writer.
    pub pid_start_ticks: u64,
    pub boot_id: String,
    pub started_at_unix: u64,
    pub refreshed_at_unix: u64,
}

impl LeaseRecord {
    fn current(operation: &str) -> LeaseRecord {
        let now = crate::time::now_unix_secs();
        let pid = std::process::id();
        LeaseRecord {
            operation: operation.to_string(),
            hostname: crate::time::hostname(),
            pid,
            pid_start_ticks: process_start_ticks(pid).unwrap_or(0),
            boot_id: boot_id(),
            started_at_unix: now,
            refreshed_at_unix: now,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format::header(MAGIC_LEASE, LEASE_VERSION).to_vec();
        out.extend_from_slice(&serde_json::to_vec(self).expect("lease serializes"));
        out
    }

    pub fn decode(bytes: &[u8], object: &str) -> Result<LeaseRecord> {
        format::check_header(bytes, MAGIC_LEASE, LEASE_VERSION, object)?;
        serde_json::from_slice(&bytes[HEADER_BYTES..]).map_err(|e| Error::corrupt(object, format!("unreadable: {e}")))
    }

    /// Whether the writer may still commit. A writer on this machine is alive exactly while its
    /// process is; elsewhere only time can tell.
    pub fn is_live(&self, now_unix: u64, ttl_secs: u64) -> bool {
        if self.hostname == crate::time::hostname() && self.boot_id == boot_id() {
            return process_start_ticks(self.pid) == Some(self.pid_start_ticks);
        }
        self.refreshed_at_unix.saturating_add(ttl_secs) > now_unix
    }
}

/// A held lease; refreshed in the background until released or dropped.
pub struct Lease {
    storage: Arc<dyn Storage>,
    key: ObjectKey,
    ttl: Duration,
    shared: Arc<Shared>,
    refresher: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<RefreshState>,
    wake: Condvar,
}

struct RefreshState {
    stop: bool,
    last_refresh: Instant,
}

impl Lease {
    pub fn acquire(storage: Arc<dyn Storage>, operation: &str, ttl_secs: u64) -> Result<Lease> {
        let key = layout::lease(&layout::random_name());
        let record = LeaseRecord::current(operation);
        let started = Instant::now();
        storage.put(&key, &record.encode())?;
        let shared = Arc::new(Shared {
            state: Mutex::new(RefreshState { stop: false, last_refresh: started }),
            wake: Condvar::new(),
        });
        let ttl = Duration::from_secs(ttl_secs.max(4));
        let refresher = {
            let (storage, key, shared) = (storage.clone(), key.clone(), shared.clone());
            std::thread::spawn(move || refresh_loop(storage.as_ref(), &key, record, &shared, ttl / 4))
        };
        Ok(Lease { storage, key, ttl, shared, refresher: Some(refresher) })
    }

    /// The lease's object name under `leases/`.
    pub fn name(&self) -> &str {
        self.key.file_name()
    }

    /// Fails if the lease may have expired in gc's eyes. Called right before committing.
    pub fn check_valid(&self) -> Result<()> {
        let last = self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).last_refresh;
        if last.elapsed() > self.ttl / 2 {
            return Err(Error::InvalidInput(format!(
                "lease {} was not refreshed for {}s; not committing (storage unreachable?)",
                self.key,
                last.elapsed().as_secs()
            )));
        }
        Ok(())
    }

    pub fn release(mut self) -> Result<()> {
        self.stop_refresher();
        self.storage.delete(&self.key)?;
        Ok(())
    }

    fn stop_refresher(&mut self) {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.refresher.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.refresher.is_some() {
            self.stop_refresher();
            // Best effort: if this fails, gc sees a dead process (or, elsewhere, an expired lease).
            let _ = self.storage.delete(&self.key);
        }
    }
}

fn refresh_loop(storage: &dyn Storage, key: &ObjectKey, mut record: LeaseRecord, shared: &Shared, every: Duration) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        // Checked before waiting too: the stop request may come before this thread first runs.
        if state.stop {
            return;
        }
        let (next, _) = shared.wake.wait_timeout(state, every).unwrap_or_else(|e| e.into_inner());
        state = next;
        if state.stop {
            return;
        }
        drop(state);
        record.refreshed_at_unix = crate::time::now_unix_secs();
        let attempt = Instant::now();
        let ok = storage.put(key, &record.encode()).is_ok();
        state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            state.last_refresh = attempt;
        }
    }
}

/// Field 22 of /proc/<pid>/stat: start time in clock ticks after boot.
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Every lease in the repository; unreadable ones count as live (safe side).
pub fn list_leases(storage: &dyn Storage) -> Result<Vec<(String, Option<LeaseRecord>)>> {
    let mut leases = Vec::new();
    for info in storage.list(layout::LEASES)? {
        let name = info.key.file_name().to_string();
        match storage.get(&info.key) {
            Ok(bytes) => leases.push((name.clone(), LeaseRecord::decode(&bytes, &format!("lease {name}")).ok())),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(leases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_live_and_a_dead_pid_is_not() {
        let mut record = LeaseRecord::current("test");
        assert!(record.is_live(crate::time::now_unix_secs(), 60));
        record.pid_start_ticks += 1;
        assert!(!record.is_live(crate::time::now_unix_secs(), 60));
    }

    #[test]
    fn foreign_lease_expires_after_ttl() {
        let mut record = LeaseRecord::current("test");
        record.hostname = "elsewhere".into();
        assert!(record.is_live(record.refreshed_at_unix + 59, 60));
        assert!(!record.is_live(record.refreshed_at_unix + 61, 60));
    }

    #[test]
    fn lease_is_removed_on_release() {
        let storage: Arc<dyn Storage> = Arc::new(drydock_storage::MemoryStorage::new());
        let lease = Lease::acquire(storage.clone(), "backup", 60).unwrap();
        assert_eq!(list_leases(storage.as_ref()).unwrap().len(), 1);
        lease.check_valid().unwrap();
        lease.release().unwrap();
        assert!(list_leases(storage.as_ref()).unwrap().is_empty());
    }
}
