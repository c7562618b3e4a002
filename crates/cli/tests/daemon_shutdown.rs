//! SIGTERM: an idle daemon exits at once; a running snapshot is let finish within the grace
//! period, or cancelled and recorded errored after it. Either way the daemon exits 0, nothing
//! is left `in-progress`, and the catalog agrees with the repository.

mod daemon_common;

use std::time::{Duration, Instant};

use daemon_common::{Daemon, write_sparse_disk};
use drydock_catalog::Catalog;
use serde_json::{Value, json};

/// An idle daemon has nothing to wait for.
const IDLE_EXIT_MAX: Duration = Duration::from_secs(5);
/// Big enough that its snapshot runs for over a second here.
const DISK_BYTES: u64 = 2 << 30;
const DISK_DATA_BYTES: u64 = 600 << 20;
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn sigterm_stops_an_idle_daemon_quickly_and_cleanly() {
    let mut daemon = Daemon::start();
    daemon.get("/v2/account").expect(200);
    let (status, took) = daemon.terminate(IDLE_EXIT_MAX);
    assert_eq!(status.code(), Some(0), "{status}\n{}", daemon.logs());
    eprintln!("idle daemon exited {took:?} after SIGTERM");
    assert!(daemon.logs().contains("stopped"), "{}", daemon.logs());
    // The data directory lock went with it: a new daemon starts on the same directory.
    daemon.launch();
    daemon.get("/v2/account").expect(200);
    daemon.assert_healthy();
}

#[test]
fn sigterm_lets_a_running_snapshot_finish_within_the_grace_period() {
    let mut daemon = Daemon::with_config("shutdown_grace_secs = 60");
    let (droplet, action_id) = start_big_snapshot(&daemon, "graceful");
    wait_for_progress(&daemon, action_id);
    let (status, took) = daemon.terminate(Duration::from_secs(90));
    assert_eq!(status.code(), Some(0), "{status}\n{}", daemon.logs());
    eprintln!("daemon with a running snapshot exited {took:?} after SIGTERM");
    assert_no_running_actions(&daemon);

    daemon.launch();
    let action = daemon.action(action_id);
    assert_eq!(action["status"], "completed", "the snapshot was not let finish: {action}");
    let view = daemon.droplet(droplet);
    assert_eq!(view["locked"], false);
    assert_eq!(view["snapshot_ids"].as_array().map(Vec::len), Some(1), "{view}");
    assert_eq!(daemon.get("/v2/snapshots").expect(200)["meta"]["total"], 1);
    assert_eq!(daemon.assert_catalog_consistent()["images_checked"], 1);
    daemon.assert_healthy();
}

#[test]
fn sigterm_cancels_a_snapshot_that_outlasts_the_grace_period() {
    cancelled_by_sigterm(1);
}

/// No grace at all: the snapshot is cancelled at once, and its end still recorded.
#[test]
fn sigterm_with_no_grace_period_cancels_a_running_snapshot_and_records_it() {
    cancelled_by_sigterm(0);
}

fn cancelled_by_sigterm(grace_secs: u64) {
    let mut daemon = Daemon::with_config(&format!("shutdown_grace_secs = {grace_secs}"));
    let (droplet, action_id) = start_big_snapshot(&daemon, "cancelled");
    wait_for_progress(&daemon, action_id);
    let (status, took) = daemon.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status}\n{}", daemon.logs());
    eprintln!("daemon with a snapshot cancelled after {grace_secs} s exited {took:?} after SIGTERM");
    assert_no_running_actions(&daemon);

    daemon.launch();
    let action = daemon.action(action_id);
    assert_eq!(action["status"], "errored", "{action}");
    assert!(action["drydock"]["error"].as_str().is_some_and(|e| !e.is_empty()), "no reason given: {action}");
    let view = daemon.droplet(droplet);
    assert_eq!(view["locked"], false);
    assert_eq!(view["snapshot_ids"], json!([]), "a cancelled snapshot is listed: {view}");
    assert_eq!(daemon.get("/v2/snapshots").expect(200)["meta"]["total"], 0);
    let renamed = daemon.droplet_action(droplet, &json!({"type": "rename", "name": "after-sigterm"}));
    assert_eq!(renamed["status"], "completed");
    assert_eq!(daemon.assert_catalog_consistent()["images_checked"], 0);
    daemon.assert_healthy();
}

/// Registers a droplet on a large disk and starts its snapshot; returns the droplet and action.
fn start_big_snapshot(daemon: &Daemon, name: &str) -> (i64, i64) {
    let disk = daemon.disks.join(format!("{name}.img"));
    write_sparse_disk(&disk, DISK_BYTES, DISK_DATA_BYTES, name.len() as u64);
    let droplet = daemon.register(name, &disk, json!({"driver": "none"}));
    let action = daemon.droplet_action(droplet, &json!({"type": "snapshot", "name": format!("{name}-snap")}));
    (droplet, action["id"].as_i64().expect("an action id"))
}

/// Waits until the snapshot has done some bytes, and is still running.
fn wait_for_progress(daemon: &Daemon, action_id: i64) -> Value {
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    loop {
        let action = daemon.action(action_id);
        assert_eq!(action["status"], "in-progress", "the snapshot ended before SIGTERM: {action}");
        if action["drydock"]["progress"]["bytes_done"].as_u64().unwrap_or(0) > 0 {
            return action;
        }
        assert!(Instant::now() < deadline, "no progress within {PROGRESS_TIMEOUT:?}: {action}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Read straight from the catalog of the stopped daemon: a graceful stop recorded how every
/// action ended, rather than leaving it to the next start's recovery.
fn assert_no_running_actions(daemon: &Daemon) {
    let catalog = Catalog::open(&daemon.data_dir.join("catalog.sqlite")).expect("opening the catalog");
    let running = catalog.running_actions().expect("listing running actions");
    assert!(running.is_empty(), "the daemon stopped with actions in progress: {running:?}\n{}", daemon.logs());
}
