//! Bad input never gets a 5xx or a panic: malformed JSON, unknown action types, wrong id types,
//! missing fields, oversized bodies, disk paths outside the allowed roots, bad power drivers,
//! bad pages, missing tokens and scopes, other teams' resources, locked droplets. Every error
//! is DigitalOcean's body `{id, message, request_id}` with the status a client expects.

mod daemon_common;

use std::path::Path;
use std::time::Duration;

use daemon_common::{Daemon, Response, wait_for, write_sparse_disk};
use serde_json::{Value, json};

/// Just over the API's 256 KiB body limit.
const OVERSIZED_BODY_BYTES: usize = 300 << 10;

fn small_disk(daemon: &Daemon, name: &str) -> std::path::PathBuf {
    let path = daemon.disks.join(name);
    write_sparse_disk(&path, 4 << 20, 1 << 20, name.len() as u64);
    path
}

/// Registers with `disk` and `power` as given (`disk` a path or any JSON value).
fn register_raw(daemon: &Daemon, body: Value) -> Response {
    daemon.post("/v2/droplets", &body)
}

/// A 422 whose message names `needle`.
fn expect_refusal(response: Response, needle: &str) {
    let message = response.expect_error(422);
    assert!(message.contains(needle), "{}: the message does not name {needle:?}: {message}", response.request);
}

fn total(daemon: &Daemon, path: &str) -> u64 {
    daemon.get(path).expect(200)["meta"]["total"].as_u64().expect("a total")
}

#[test]
fn malformed_requests_get_4xx_with_digitalocean_error_bodies() {
    let daemon = Daemon::start();
    let disk = small_disk(&daemon, "a.img");
    let id = daemon.register("a", &disk, json!({"driver": "none"}));
    let actions = format!("/v2/droplets/{id}/actions");

    // Malformed JSON is a 400; well-formed JSON of the wrong shape, or a missing field, a 422.
    daemon.request("POST", "/v2/droplets", Some(b"{\"name\":")).expect_error(400);
    daemon.request("POST", &actions, Some(b"not json")).expect_error(400);
    daemon.request("POST", &actions, Some(b"{\"type\": \"snapshot\",}")).expect_error(400);
    expect_refusal(daemon.post(&actions, &json!({"type": "fly"})), "fly");
    expect_refusal(daemon.post(&actions, &json!({"type": "resize"})), "resize");
    daemon.post(&actions, &json!({"name": "no type"})).expect_error(422);
    daemon.post(&actions, &json!({"type": 5})).expect_error(422);
    daemon.post(&actions, &json!([{"type": "snapshot"}])).expect_error(422);
    expect_refusal(daemon.post("/v2/droplets", &json!({"name": "no-disk"})), "disk");
    expect_refusal(daemon.post("/v2/droplets", &json!({"disk": {"path": disk}})), "name");
    daemon.post("/v2/droplets", &json!({"name": "x", "disk": {"format": "raw"}})).expect_error(422);
    daemon.post("/v2/droplets", &json!({"name": 7, "disk": {"path": disk}})).expect_error(422);
    expect_refusal(daemon.post(&actions, &json!({"type": "rename"})), "name");
    expect_refusal(daemon.post(&actions, &json!({"type": "restore"})), "image");
    daemon.post(&actions, &json!({"type": "snapshot", "name": ""})).expect_error(422);
    daemon.post(&actions, &json!({"type": "snapshot", "name": "a\u{0}b"})).expect_error(422);

    // Ids of the wrong type are 400s; well-formed ids of nothing are 404s.
    daemon.get("/v2/droplets/abc").expect_error(400);
    daemon.get("/v2/droplets/0").expect_error(400);
    daemon.get("/v2/droplets/1.5").expect_error(400);
    daemon.get("/v2/droplets/99999999999999999999999").expect_error(400);
    daemon.get("/v2/droplets/987654").expect_error(404);
    daemon.get("/v2/actions/-1").expect_error(400);
    daemon.get("/v2/actions/abc").expect_error(400);
    daemon.get("/v2/actions/987654").expect_error(404);
    daemon.get("/v2/droplets/abc/actions").expect_error(400);
    daemon.get(&format!("/v2/droplets/{id}/actions/xyz")).expect_error(400);
    daemon.post("/v2/droplets/abc/actions", &json!({"type": "snapshot"})).expect_error(400);
    daemon.delete("/v2/droplets/abc").expect_error(400);
    for path in ["/v2/images/1.5", "/v2/images/abc", "/v2/images/987654", "/v2/snapshots/-5", "/v2/snapshots/abc"] {
        let response = daemon.get(path);
        assert!(matches!(response.status, 400 | 404), "{path}: {}", response.status);
        response.expect_error(response.status);
    }
    daemon.get("/v2/volumes/not-a-volume").expect_error(404);
    daemon.get("/v2/nothing-here").expect_error(404);
    daemon.request("PATCH", "/v2/droplets", Some(b"{}")).expect_error(405);
    daemon.request("PUT", &format!("/v2/droplets/{id}"), Some(b"{}")).expect_error(405);

    // Bodies over the limit.
    let padding = "x".repeat(OVERSIZED_BODY_BYTES);
    let oversized = json!({"name": "big", "disk": {"path": disk}, "padding": padding}).to_string();
    daemon.request("POST", "/v2/droplets", Some(oversized.as_bytes())).expect_error(413);
    let oversized = json!({"type": "rename", "name": padding}).to_string();
    daemon.request("POST", &actions, Some(oversized.as_bytes())).expect_error(413);

    // Pages: not positive integers are 400s; too large a per_page is lowered to 200.
    for query in ["per_page=0", "page=abc", "page=0", "per_page=-1", "per_page=1.5", "page=99999999999999999999"] {
        daemon.get(&format!("/v2/droplets?{query}")).expect_error(400);
    }
    daemon.get("/v2/snapshots?resource_type=floppy").expect_error(400);
    daemon.get("/v2/images?private=maybe").expect_error(400);
    let second = daemon.get("/v2/droplets?page=2&per_page=1000").expect(200);
    assert_eq!(second["droplets"], json!([]));
    assert_eq!(second["meta"]["total"], 1);
    let first = second["links"]["pages"]["first"].as_str().unwrap_or_else(|| panic!("no first link: {second}"));
    assert!(first.contains("per_page=200") && !first.contains("1000"), "per_page is not clamped: {first}");
    let all = daemon.get("/v2/actions?per_page=1000").expect(200);
    assert!(all["actions"].as_array().is_some_and(|a| !a.is_empty() && a.len() <= 200), "{all}");

    // Garbage to every endpoint that takes a body: 4xx (or a success), never a 5xx.
    let endpoints = [
        ("POST", "/v2/droplets".to_string()),
        ("POST", actions.clone()),
        ("POST", "/v2/droplets/actions?tag_name=none".to_string()),
        ("POST", "/v2/images/1/actions".to_string()),
        ("PUT", "/v2/images/1".to_string()),
        ("POST", "/v2/volumes".to_string()),
        ("POST", "/v2/volumes/0f1e2d3c-0000-4000-8000-000000000000/snapshots".to_string()),
        ("POST", "/drydock/v1/tokens".to_string()),
    ];
    let deep = "[".repeat(10_000);
    let bodies: Vec<&[u8]> = vec![
        b"",
        b"   ",
        b"null",
        b"[]",
        b"\"text\"",
        b"0",
        b"{}",
        b"{\"type\":null}",
        b"{\"type\":\"\"}",
        b"{\"type\":\"transfer\",\"region\":5}",
        b"{\"type\":\"snapshot\",\"name\":{}}",
        b"{\"name\":{},\"disk\":[]}",
        b"{\"name\":\"x\",\"disk\":5}",
        b"{\"name\":\"x\",\"disk\":{\"path\":null}}",
        b"{\"name\":\"x\",\"image\":-1,\"disk\":{\"path\":\"/nowhere/x.img\"}}",
        b"{\"name\":\"x\",\"image\":1e999}",
        b"{\"scopes\":[\"\"],\"name\":\"x\"}",
        b"{\"scopes\":\"*\"}",
        b"\xff\xfe\x00garbage",
        b"{\"name\":\"\xff\"}",
        deep.as_bytes(),
    ];
    for (method, path) in &endpoints {
        for body in &bodies {
            let response = daemon.request(method, path, Some(body));
            assert!(response.status < 500, "{method} {path} {:?}: {}", String::from_utf8_lossy(body), response.body);
            if response.status >= 400 {
                response.expect_error(response.status);
            }
        }
    }

    // Authenticated answers carry integer rate-limit headers, errors included.
    for response in [daemon.get("/v2/droplets"), daemon.get("/v2/droplets/abc")] {
        for header in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            let value = response.header(header).unwrap_or_else(|| panic!("{}: no {header}", response.request));
            assert!(value.parse::<u64>().is_ok(), "{header}: {value:?}");
        }
    }
    daemon.assert_healthy();
}

/// axum's own path rejection is plain text; clients parse every error body as JSON.
#[test]
fn path_segments_that_are_not_utf8_get_digitalocean_error_bodies() {
    let daemon = Daemon::start();
    for path in ["/v2/droplets/%ff", "/v2/actions/%c3%28", "/v2/droplets/1/actions/%ff", "/v2/snapshots/%ff"] {
        let response = daemon.get(path);
        assert!(matches!(response.status, 400 | 404), "{path}: {} {}", response.status, response.body);
        response.expect_error(response.status);
    }
    daemon.assert_healthy();
}

#[test]
fn disk_paths_power_drivers_and_regions_are_checked_before_anything_is_registered() {
    let daemon = Daemon::start();
    let good = small_disk(&daemon, "good.img");
    let outside = daemon.outside.join("secret.img");
    std::fs::write(&outside, vec![7u8; 8192]).expect("writing a disk outside the roots");
    let link = daemon.disks.join("link.img");
    std::os::unix::fs::symlink(&outside, &link).expect("a symlink out of the root");
    let linked_dir = daemon.disks.join("elsewhere");
    std::os::unix::fs::symlink(&daemon.outside, &linked_dir).expect("a directory symlink out of the root");
    let text = |p: &Path| p.display().to_string();

    let bad_paths = [
        text(&outside),
        "disks/good.img".to_string(),
        format!("{}/../outside/secret.img", daemon.disks.display()),
        text(&link),
        format!("{}/secret.img", linked_dir.display()),
        text(&daemon.disks.join("nonexistent.img")),
        "/dev/null".to_string(),
        "/etc/passwd".to_string(),
    ];
    for path in &bad_paths {
        expect_refusal(register_raw(&daemon, json!({"name": "bad", "disk": {"path": path}})), path);
    }
    register_raw(&daemon, json!({"name": "bad", "disk": {"path": ""}})).expect_error(422);
    let directory = register_raw(&daemon, json!({"name": "bad", "disk": {"path": daemon.disks}}));
    directory.expect_error(422);
    expect_refusal(register_raw(&daemon, json!({"name": "bad", "disk": {"path": good, "format": "vmdk"}})), "vmdk");
    expect_refusal(register_raw(&daemon, json!({"name": "bad", "disk": {"path": good}, "region": "mars-1"})), "mars-1");
    expect_refusal(register_raw(&daemon, json!({"name": "bad name!", "disk": {"path": good}})), "bad name!");
    register_raw(&daemon, json!({"name": "bad", "disk": {"path": good}, "tags": ["no spaces"]})).expect_error(422);

    let bad_powers = [
        json!({"driver": "warp"}),
        json!({"driver": "command", "on": "true"}),
        json!({"driver": "command", "on": "", "off": "true", "status": "true"}),
        json!({"driver": "command", "on": "true", "off": "true", "status": "true", "typo": 1}),
        json!({"driver": "command", "on": "true", "off": "true", "status": "true", "timeout_secs": 999_999}),
        json!({"driver": "qemu", "socket": "relative.sock"}),
        json!({"driver": "qemu"}),
        json!("none"),
        json!(5),
    ];
    for power in bad_powers {
        let response = register_raw(&daemon, json!({"name": "bad", "disk": {"path": good}, "power": power}));
        let message = response.expect_error(422);
        assert!(message.contains("power"), "{power}: {message}");
    }
    assert_eq!(total(&daemon, "/v2/droplets"), 0, "a refused registration left a droplet behind");

    // The data directory's own disks directory is always allowed.
    let own = daemon.data_dir.join("disks").join("own.img");
    write_sparse_disk(&own, 4 << 20, 1 << 20, 9);
    let id = daemon.register("own", &own, json!({"driver": "none"}));
    let snapshot = daemon.droplet_action(id, &json!({"type": "snapshot", "name": "base"}));
    daemon.wait_completed(snapshot["id"].as_i64().expect("an action id"));
    let image = daemon.droplet(id)["snapshot_ids"][0].as_i64().expect("a snapshot id");

    // Creating from an image: the new disk must be new, in an allowed directory.
    let create = |path: &str| register_raw(&daemon, json!({"name": "copy", "image": image, "disk": {"path": path}}));
    expect_refusal(create(&text(&good)), &text(&good));
    expect_refusal(create(&text(&own)), "already exists");
    expect_refusal(create(&text(&daemon.outside.join("new.img"))), "outside");
    expect_refusal(create(&format!("{}/new.img", linked_dir.display())), "outside");
    expect_refusal(create(&text(&daemon.disks.join("no-such-dir").join("new.img"))), "no-such-dir");
    expect_refusal(create("new.img"), "new.img");
    for bad_image in [json!(987654), json!("abc"), json!(-3), json!({"id": image}), json!(1.5)] {
        let response = register_raw(
            &daemon,
            json!({"name": "copy", "image": bad_image, "disk": {"path": daemon.disks.join("new.img")}}),
        );
        assert!(matches!(response.status, 404 | 422), "image {bad_image}: {} {}", response.status, response.body);
        response.expect_error(response.status);
    }
    assert_eq!(total(&daemon, "/v2/droplets"), 1, "a refused creation left a droplet behind");
    assert!(!daemon.disks.join("new.img").exists());
    daemon.assert_healthy();
}

#[test]
fn tokens_scopes_and_teams_are_enforced() {
    let daemon = Daemon::start();
    let disk = small_disk(&daemon, "team-a.img");
    let id = daemon.register("team-a", &disk, json!({"driver": "none"}));
    let snapshot = daemon.droplet_action(id, &json!({"type": "snapshot", "name": "a-snap"}));
    let action_id = snapshot["id"].as_i64().expect("an action id");
    daemon.wait_completed(action_id);
    let image = daemon.droplet(id)["snapshot_ids"][0].as_i64().expect("a snapshot id");
    let droplet = format!("/v2/droplets/{id}");

    // 401: no token, an unknown one, the wrong scheme, a revoked one.
    daemon.request_as(None, "GET", "/v2/droplets", None).expect_error(401);
    daemon.request_as(Some("dop_v1_0000"), "GET", "/v2/droplets", None).expect_error(401);
    daemon.request_as(Some(""), "GET", &droplet, None).expect_error(401);
    let created = daemon.post("/drydock/v1/tokens", &json!({"name": "short-lived", "scopes": ["droplet:read"]}));
    let created = created.expect(201)["token"].clone();
    let secret = created["secret"].as_str().expect("a secret").to_string();
    daemon.request_as(Some(&secret), "GET", &droplet, None).expect(200);
    daemon.delete(&format!("/drydock/v1/tokens/{}", created["id"])).expect(204);
    daemon.request_as(Some(&secret), "GET", &droplet, None).expect_error(401);
    assert_eq!(daemon.request_as(None, "GET", "/drydock/v1/health", None).status, 200);

    // 403: a valid token without the scope.
    let reader = daemon.create_token("droplet:read", "default");
    daemon.request_as(Some(&reader), "GET", &droplet, None).expect(200);
    let forbidden = [
        ("POST", "/v2/droplets".to_string(), json!({"name": "x", "disk": {"path": disk}})),
        ("POST", format!("{droplet}/actions"), json!({"type": "snapshot"})),
        ("DELETE", droplet.clone(), Value::Null),
        ("GET", "/v2/snapshots".to_string(), Value::Null),
        ("GET", "/v2/actions".to_string(), Value::Null),
        ("DELETE", format!("/v2/snapshots/{image}"), Value::Null),
        ("GET", "/drydock/v1/tokens".to_string(), Value::Null),
    ];
    for (method, path, body) in &forbidden {
        let body = (!body.is_null()).then(|| body.to_string());
        let response = daemon.request_as(Some(&reader), method, path, body.as_deref().map(str::as_bytes));
        response.expect_error(403);
    }
    let updater = daemon.create_token("droplet:read,droplet:update", "default");
    let snapshot_without_image_create =
        daemon.request_as(Some(&updater), "POST", &format!("{droplet}/actions"), Some(b"{\"type\":\"snapshot\"}"));
    let message = snapshot_without_image_create.expect_error(403);
    assert!(message.contains("image:create"), "{message}");
    assert_eq!(daemon.get(&format!("{droplet}/actions")).expect(200)["meta"]["total"], 2, "create and snapshot only");

    // Team B sees nothing of team A's, and cannot touch it.
    let team_b = daemon.create_token("*", "team-b");
    let as_b = |method: &str, path: &str, body: Option<&[u8]>| daemon.request_as(Some(&team_b), method, path, body);
    as_b("GET", &droplet, None).expect_error(404);
    as_b("DELETE", &droplet, None).expect_error(404);
    as_b("POST", &format!("{droplet}/actions"), Some(b"{\"type\":\"snapshot\"}")).expect_error(404);
    as_b("GET", &format!("{droplet}/actions"), None).expect_error(404);
    as_b("GET", &format!("{droplet}/snapshots"), None).expect_error(404);
    as_b("GET", &format!("/v2/actions/{action_id}"), None).expect_error(404);
    as_b("GET", &format!("/v2/snapshots/{image}"), None).expect_error(404);
    as_b("DELETE", &format!("/v2/snapshots/{image}"), None).expect_error(404);
    as_b("GET", &format!("/v2/images/{image}"), None).expect_error(404);
    as_b("PUT", &format!("/v2/images/{image}"), Some(b"{\"name\":\"mine now\"}")).expect_error(404);
    let restore = json!({"type": "restore", "image": image}).to_string();
    as_b("POST", &format!("{droplet}/actions"), Some(restore.as_bytes())).expect_error(404);
    let steal = json!({"name": "stolen", "image": image, "disk": {"path": daemon.disks.join("stolen.img")}});
    as_b("POST", "/v2/droplets", Some(steal.to_string().as_bytes())).expect_error(404);
    for list in ["/v2/droplets", "/v2/snapshots", "/v2/images", "/v2/actions", "/v2/volumes"] {
        let listed = as_b("GET", list, None).expect(200);
        assert_eq!(listed["meta"]["total"], 0, "team B sees {list}: {listed}");
    }
    // Team A's droplet and snapshot are untouched.
    assert_eq!(daemon.droplet(id)["name"], "team-a");
    assert_eq!(daemon.get(&format!("/v2/images/{image}")).expect(200)["image"]["name"], "a-snap");
    assert!(!daemon.disks.join("stolen.img").exists());
    daemon.assert_healthy();
}

#[test]
fn a_locked_droplet_refuses_other_actions_and_deletion() {
    let daemon = Daemon::start();
    let disk = small_disk(&daemon, "busy.img");
    let state = daemon.root().join("busy.power");
    let release = daemon.root().join("busy.release");
    std::fs::write(&state, "on\n").expect("writing the power state");
    let (s, r) = (state.display(), release.display());
    let power = json!({
        "driver": "command",
        "on": format!("echo on > '{s}'"),
        // Holds the action (and the lock) until the test lets it go.
        "off": format!("while [ ! -e '{r}' ]; do sleep 0.02; done; echo off > '{s}'"),
        "status": format!("grep -qx on '{s}'"),
        "timeout_secs": 30,
    });
    let body = json!({"name": "busy", "disk": {"path": disk}, "power": power, "tags": ["busy"]});
    let created = daemon.post("/v2/droplets", &body).expect(202);
    let id = created["droplet"]["id"].as_i64().expect("a droplet id");

    let power_off = daemon.droplet_action(id, &json!({"type": "power_off"}));
    let power_off_id = power_off["id"].as_i64().expect("an action id");
    assert!(wait_for(Duration::from_secs(10), || daemon.droplet(id)["locked"] == true), "the droplet never locked");

    for body in [json!({"type": "snapshot"}), json!({"type": "rename", "name": "other"}), json!({"type": "power_on"})] {
        let message = daemon.post(&format!("/v2/droplets/{id}/actions"), &body).expect_error(422);
        assert!(message.contains("locked"), "{body}: {message}");
    }
    daemon.post("/v2/droplets/actions?tag_name=busy", &json!({"type": "snapshot"})).expect_error(422);
    daemon.delete(&format!("/v2/droplets/{id}")).expect_error(422);
    daemon.request("DELETE", "/v2/droplets?tag_name=busy", None).expect_error(422);
    assert_eq!(daemon.action(power_off_id)["status"], "in-progress");

    std::fs::write(&release, "").expect("releasing the power command");
    daemon.wait_completed(power_off_id);
    let droplet = daemon.droplet(id);
    assert_eq!(droplet["locked"], false);
    assert_eq!(droplet["status"], "off");
    let renamed = daemon.droplet_action(id, &json!({"type": "rename", "name": "not-busy"}));
    assert_eq!(renamed["status"], "completed");
    assert_eq!(daemon.droplet(id)["name"], "not-busy");
    daemon.delete(&format!("/v2/droplets/{id}")).expect(204);
    daemon.assert_healthy();
}
