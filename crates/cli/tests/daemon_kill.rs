//! SIGKILL in the middle of a snapshot, then a restart on the same data directory: no action
//! stays `in-progress`, no lock is left, no half-made snapshot is listed, and the catalog
//! agrees with the repository. A snapshot that completed before the kill survives it whole.

mod daemon_common;

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use daemon_common::{Daemon, assert_same_contents, drydock, write_sparse_disk};
use serde_json::{Value, json};

/// Large enough that a snapshot takes well over a second here, so there is time to kill it at
/// chosen points; sparse, so it costs only its data.
const DISK_BYTES: u64 = 2 << 30;
const DISK_DATA_BYTES: u64 = 600 << 20;
const KILL_POINT_TIMEOUT: Duration = Duration::from_secs(60);

/// When to send SIGKILL.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// As soon as the POST that started the snapshot has been answered.
    AfterPost,
    /// Once the action reports this fraction of its bytes done (more than zero in any case).
    Progress(f64),
}

#[test]
fn sigkill_mid_snapshot_leaves_no_stuck_action_lock_or_half_made_snapshot() {
    let mut daemon = Daemon::start();
    let points = [KillAt::AfterPost, KillAt::Progress(0.0), KillAt::Progress(0.3), KillAt::Progress(0.65)];
    for (n, at) in points.into_iter().enumerate() {
        let name = format!("kill-{n}");
        let disk = daemon.disks.join(format!("{name}.img"));
        // Fresh data every time: nothing a killed run stored can make the next one faster.
        write_sparse_disk(&disk, DISK_BYTES, DISK_DATA_BYTES, 100 + n as u64);
        let id = daemon.register(&name, &disk, json!({"driver": "none"}));
        let action = daemon.droplet_action(id, &json!({"type": "snapshot", "name": format!("{name}-snap")}));
        let action_id = action["id"].as_i64().expect("an action id");
        let seen = match at {
            KillAt::AfterPost => action,
            KillAt::Progress(fraction) => wait_for_progress(&daemon, action_id, fraction),
        };
        daemon.kill();
        eprintln!("killed at {at:?}: progress {}", seen["drydock"]["progress"]);

        daemon.launch();
        let after = daemon.action(action_id);
        assert_eq!(after["status"], "errored", "{at:?}: {after}");
        let reason = after["drydock"]["error"].as_str().unwrap_or_default();
        assert!(reason.contains("interrupted"), "{at:?}: the reason does not say interrupted: {after}");
        assert!(after["completed_at"].is_string(), "{after}");
        assert_nothing_half_made(&daemon, id, 0);

        // The droplet is free: a new action is accepted at once.
        let renamed = daemon.droplet_action(id, &json!({"type": "rename", "name": format!("{name}-renamed")}));
        assert_eq!(renamed["status"], "completed", "{renamed}");
        let report = daemon.assert_catalog_consistent();
        assert_eq!(report["images_checked"], 0, "{report}");
        std::fs::remove_file(&disk).expect("removing the disk");
    }
    assert!(daemon.logs().contains("recovered from an unclean stop"), "{}", daemon.logs());

    // After all those kills the repository is sound and takes a whole snapshot.
    let disk = daemon.disks.join("after.img");
    write_sparse_disk(&disk, 256 << 20, 32 << 20, 7);
    let id = daemon.register("after", &disk, json!({"driver": "none"}));
    let action = daemon.droplet_action(id, &json!({"type": "snapshot", "name": "after the kills"}));
    daemon.wait_completed(action["id"].as_i64().expect("an action id"));
    assert_eq!(daemon.get("/v2/snapshots").expect(200)["meta"]["total"], 1);
    let report = daemon.assert_catalog_consistent();
    assert_eq!(report["images_checked"], 1, "{report}");
    assert_repository_verifies(&daemon);
    daemon.assert_healthy();
}

#[test]
fn a_snapshot_completed_before_sigkill_survives_it_and_restores() {
    let mut daemon = Daemon::start();
    let disk = daemon.disks.join("kept.img");
    write_sparse_disk(&disk, 64 << 20, 16 << 20, 11);
    let id = daemon.register("kept", &disk, json!({"driver": "none"}));
    let action = daemon.droplet_action(id, &json!({"type": "snapshot", "name": "before the kill"}));
    let action_id = action["id"].as_i64().expect("an action id");
    daemon.wait_completed(action_id);
    let snapshot_id = daemon.droplet(id)["snapshot_ids"][0].as_i64().expect("a snapshot id");

    daemon.kill();
    daemon.launch();
    assert_eq!(daemon.action(action_id)["status"], "completed");
    let listed = daemon.get("/v2/snapshots").expect(200);
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
    assert_eq!(listed["snapshots"][0]["id"], snapshot_id.to_string());
    let snapshot = daemon.get(&format!("/v2/snapshots/{snapshot_id}")).expect(200);
    assert_eq!(snapshot["snapshot"]["name"], "before the kill");
    assert_eq!(daemon.droplet(id)["locked"], false);

    let restored = daemon.disks.join("restored.img");
    let created = daemon
        .post("/v2/droplets", &json!({"name": "restored", "image": snapshot_id, "disk": {"path": restored}}))
        .expect(202);
    daemon.wait_completed(created["links"]["actions"][0]["id"].as_i64().expect("a create action"));
    assert_same_contents(&restored, &disk);
    let report = daemon.assert_catalog_consistent();
    assert_eq!((report["images_checked"].clone(), report["snapshots_checked"].clone()), (json!(1), json!(1)));
    daemon.assert_healthy();
}

#[test]
fn sigkill_mid_restore_leaves_the_old_disk_and_mid_create_leaves_no_disk() {
    const SIZE_BYTES: u64 = 1 << 30;
    const DATA_BYTES: u64 = 400 << 20;
    let mut daemon = Daemon::start();
    let disk = daemon.disks.join("source.img");
    write_sparse_disk(&disk, SIZE_BYTES, DATA_BYTES, 21);
    let id = daemon.register("source", &disk, json!({"driver": "none"}));
    let action = daemon.droplet_action(id, &json!({"type": "snapshot", "name": "base"}));
    daemon.wait_completed(action["id"].as_i64().expect("an action id"));
    let image = daemon.droplet(id)["snapshot_ids"][0].as_i64().expect("a snapshot id");

    // Killed while creating a droplet from the snapshot: nothing at the new disk's path.
    let target = daemon.disks.join("copy.img");
    let created =
        daemon.post("/v2/droplets", &json!({"name": "copy", "image": image, "disk": {"path": target}})).expect(202);
    let copy = created["droplet"]["id"].as_i64().expect("a droplet id");
    let create = created["links"]["actions"][0]["id"].as_i64().expect("a create action");
    wait_for_progress(&daemon, create, 0.0);
    daemon.kill();
    daemon.launch();
    let after = daemon.action(create);
    assert_eq!(after["status"], "errored", "{after}");
    assert!(after["drydock"]["error"].as_str().is_some_and(|e| e.contains("interrupted")), "{after}");
    assert!(!target.exists(), "a half-restored disk is at {}", target.display());
    // The droplet never came to exist: it is gone from the catalog, its errored action stays.
    daemon.get(&format!("/v2/droplets/{copy}")).expect(404);
    assert_eq!(leftovers(&daemon), Vec::<String>::new(), "the killed restore left files behind");
    // The same path can be used again, and this time the disk comes back whole.
    let again =
        daemon.post("/v2/droplets", &json!({"name": "copy-2", "image": image, "disk": {"path": target}})).expect(202);
    daemon.wait_completed(again["links"]["actions"][0]["id"].as_i64().expect("a create action"));
    assert_same_contents(&target, &disk);
    std::fs::remove_file(&target).expect("removing the copy");

    // Killed while restoring over the droplet's disk, changed since the snapshot: the disk is
    // as it was before the restore began, like `expected`, a fresh copy changed the same way.
    let expected = daemon.root().join("expected.img");
    write_sparse_disk(&expected, SIZE_BYTES, DATA_BYTES, 21);
    for path in [&disk, &expected] {
        let file = std::fs::OpenOptions::new().write(true).open(path).expect("opening the disk");
        file.write_all_at(&[0x5a; 1 << 16], 12 << 20).expect("changing the disk");
    }
    let restore = daemon.droplet_action(id, &json!({"type": "restore", "image": image}));
    let restore_id = restore["id"].as_i64().expect("an action id");
    wait_for_progress(&daemon, restore_id, 0.0);
    daemon.kill();
    daemon.launch();
    let after = daemon.action(restore_id);
    assert_eq!(after["status"], "errored", "{after}");
    assert_same_contents(&disk, &expected);
    assert_eq!(daemon.droplet(id)["locked"], false);
    assert_eq!(leftovers(&daemon), Vec::<String>::new(), "the killed restore left files behind");
    daemon.assert_catalog_consistent();
    daemon.assert_healthy();
}

/// Partial disks (`<disk>.drydock-partial-<pid>`) a restore left in the disk root.
fn leftovers(daemon: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&daemon.disks)
        .expect("listing the disks")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".drydock-partial-"))
        .collect();
    names.sort();
    names
}

/// Polls the action until it has done `fraction` of its bytes (and at least one); returns the
/// action as last seen. Fails if it ends first: then the disk is too small for this machine.
fn wait_for_progress(daemon: &Daemon, action_id: i64, fraction: f64) -> Value {
    let deadline = Instant::now() + KILL_POINT_TIMEOUT;
    loop {
        let action = daemon.action(action_id);
        assert_eq!(action["status"], "in-progress", "the snapshot ended before the kill point {fraction}: {action}");
        let progress = &action["drydock"]["progress"];
        let (done, total) =
            (progress["bytes_done"].as_u64().unwrap_or(0), progress["bytes_total"].as_u64().unwrap_or(0));
        if done > 0 && total > 0 && done as f64 >= fraction * total as f64 {
            return action;
        }
        assert!(Instant::now() < deadline, "no progress to {fraction} within {KILL_POINT_TIMEOUT:?}: {action}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// No action is in progress, the droplet is not locked and has no snapshot, and exactly
/// `snapshots` snapshots (of other droplets) are listed: none half-made.
fn assert_nothing_half_made(daemon: &Daemon, droplet: i64, snapshots: u64) {
    let actions = daemon.get("/v2/actions?per_page=200").expect(200);
    let running: Vec<&Value> =
        actions["actions"].as_array().expect("actions").iter().filter(|a| a["status"] == "in-progress").collect();
    assert!(running.is_empty(), "actions still in progress after the restart: {running:?}");
    let view = daemon.droplet(droplet);
    assert_eq!(view["locked"], false, "{view}");
    assert_eq!(view["snapshot_ids"], json!([]), "{view}");
    assert_eq!(daemon.get("/v2/snapshots").expect(200)["meta"]["total"], snapshots);
    assert_eq!(daemon.get(&format!("/v2/droplets/{droplet}/snapshots")).expect(200)["meta"]["total"], 0);
    assert_eq!(daemon.get("/v2/images?private=true").expect(200)["meta"]["total"], snapshots);
}

/// `drydock repo verify` on the region's repository, with the daemon's passphrase.
fn assert_repository_verifies(daemon: &Daemon) {
    let output = drydock()
        .arg("--repo")
        .arg(daemon.data_dir.join("regions").join("local-1"))
        .arg("--password-file")
        .arg(daemon.data_dir.join("secrets").join("repository.passphrase"))
        .args(["repo", "verify"])
        .output()
        .expect("running drydock repo verify");
    assert!(
        output.status.success(),
        "repo verify failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
