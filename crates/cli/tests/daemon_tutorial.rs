//! The seeds' tutorial ("How To Snapshot Through the API", `shared/seeds/004_*.txt`) with curl
//! against drydock: get the droplet, power it off, wait until it is off, snapshot it, poll the
//! action until `completed`; then the snapshot restores bit-exactly into a new droplet. And the
//! one-step variant drydock adds: a snapshot that powers the droplet off and on again itself.

mod daemon_common;

use std::time::{Duration, Instant};

use daemon_common::{Daemon, assert_same_contents, write_sparse_disk};
use serde_json::json;

const DISK_BYTES: u64 = 256 << 20;
const DISK_DATA_BYTES: u64 = 24 << 20;
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn the_tutorial_flow_snapshots_a_powered_off_droplet_and_restores_it_bit_exactly() {
    let daemon = Daemon::start();
    let disk = daemon.disks.join("irssi.img");
    write_sparse_disk(&disk, DISK_BYTES, DISK_DATA_BYTES, 4);
    let power = daemon.file_power("irssi");
    let id = daemon.register("irssi", &disk, power.driver.clone());

    // "To get information about a single droplet": the tutorial's droplet_on? reads status.
    let droplet = daemon.droplet(id);
    assert_eq!(droplet["id"], id);
    assert_eq!(droplet["status"], "active", "{droplet}");
    assert_eq!(droplet["locked"], false);
    assert_eq!(droplet["snapshot_ids"], json!([]));

    // power_off, then poll the droplet until it is no longer on.
    let power_off = daemon.droplet_action(id, &json!({"type": "power_off"}));
    assert_eq!(power_off["type"], "power_off");
    let deadline = Instant::now() + POWER_OFF_TIMEOUT;
    while daemon.droplet(id)["status"] == "active" {
        assert!(Instant::now() < deadline, "droplet {id} still active {POWER_OFF_TIMEOUT:?} after power_off");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(daemon.droplet(id)["status"], "off");
    daemon.wait_completed(power_off["id"].as_i64().expect("an action id"));
    assert!(!power.is_on());

    // The snapshot, answered with the action in progress, polled through /v2/actions/ID.
    let snapshot = daemon.droplet_action(id, &json!({"type": "snapshot", "name": "Name for New Snapshot"}));
    assert_eq!(snapshot["status"], "in-progress", "{snapshot}");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["resource_id"], id);
    assert_eq!(snapshot["resource_type"], "droplet");
    assert_eq!(snapshot["region_slug"], "local-1");
    assert!(snapshot["started_at"].is_string() && snapshot["completed_at"].is_null(), "{snapshot}");
    let action_id = snapshot["id"].as_i64().expect("an action id");
    let done = daemon.wait_completed(action_id);
    assert!(done["completed_at"].is_string(), "{done}");
    assert_eq!(done["drydock"]["progress"]["percent"], 100);
    assert_eq!(done["drydock"]["error"], serde_json::Value::Null);

    // The snapshot is the droplet's, listed everywhere a client looks for it.
    let droplet = daemon.droplet(id);
    assert_eq!(droplet["status"], "off", "a plain snapshot leaves the power alone");
    assert_eq!(droplet["locked"], false);
    let snapshot_id = droplet["snapshot_ids"][0].as_i64().unwrap_or_else(|| panic!("no snapshot id: {droplet}"));
    let listed = daemon.get(&format!("/v2/droplets/{id}/snapshots")).expect(200);
    assert_eq!(listed["meta"]["total"], 1);
    assert_eq!(listed["snapshots"][0]["name"], "Name for New Snapshot");
    let snapshot = daemon.get(&format!("/v2/snapshots/{snapshot_id}")).expect(200)["snapshot"].clone();
    assert_eq!(snapshot["id"], snapshot_id.to_string());
    assert_eq!(snapshot["resource_id"], id.to_string());
    assert_eq!(snapshot["regions"], json!(["local-1"]));
    assert_eq!(power.switches(), ["off"], "only the power_off action switched the machine");

    // A new droplet from the snapshot: the disk comes back byte for byte.
    let restored = daemon.disks.join("restored.img");
    let created = daemon
        .post("/v2/droplets", &json!({"name": "irssi-restored", "image": snapshot_id, "disk": {"path": restored}}))
        .expect(202);
    let new_id = created["droplet"]["id"].as_i64().expect("a droplet id");
    assert_ne!(new_id, id);
    let create_action = created["links"]["actions"][0]["id"].as_i64().expect("a create action");
    assert_eq!(created["links"]["actions"][0]["rel"], "create");
    daemon.wait_completed(create_action);
    let new_droplet = daemon.droplet(new_id);
    assert_eq!(new_droplet["status"], "active", "{new_droplet}");
    assert_eq!(new_droplet["image"]["id"], snapshot_id);
    assert_eq!(new_droplet["drydock"]["disk"]["size_bytes"], DISK_BYTES);
    assert_same_contents(&restored, &disk);

    daemon.assert_catalog_consistent();
    daemon.assert_healthy();
}

#[test]
fn a_snapshot_with_power_off_switches_the_droplet_off_and_on_again() {
    let daemon = Daemon::start();
    let disk = daemon.disks.join("web.img");
    write_sparse_disk(&disk, 16 << 20, 4 << 20, 5);
    let power = daemon.file_power("web");
    let id = daemon.register("web-1", &disk, power.driver.clone());
    assert_eq!(daemon.droplet(id)["status"], "active");

    let action = daemon.droplet_action(id, &json!({"type": "snapshot", "name": "one step", "power_off": true}));
    assert_eq!(action["status"], "in-progress");
    let done = daemon.wait_completed(action["id"].as_i64().expect("an action id"));
    assert_eq!(done["drydock"]["progress"]["percent"], 100);

    assert_eq!(power.switches(), ["off", "on"], "powered off for the snapshot, then on again");
    assert!(power.is_on());
    let droplet = daemon.droplet(id);
    assert_eq!(droplet["status"], "active", "{droplet}");
    assert_eq!(droplet["locked"], false);
    assert_eq!(droplet["snapshot_ids"].as_array().map(Vec::len), Some(1), "{droplet}");

    // Without a power driver there is nothing to switch: refused before anything starts.
    let other = daemon.disks.join("plain.img");
    write_sparse_disk(&other, 8 << 20, 1 << 20, 6);
    let plain = daemon.register("plain", &other, json!({"driver": "none"}));
    let refused =
        daemon.post(&format!("/v2/droplets/{plain}/actions"), &json!({"type": "snapshot", "power_off": true}));
    let message = refused.expect_error(422);
    assert!(message.contains("power"), "{message}");
    assert_eq!(daemon.get(&format!("/v2/droplets/{plain}/actions")).expect(200)["meta"]["total"], 1, "only create");
    daemon.assert_healthy();
}
