//! The everyday commands through the real binary: round trips, JSON output, names, keys.

mod common;

use std::os::unix::fs::MetadataExt;

use common::{CHUNK_BYTES, Image, PASSWORD, Sandbox, assert_same_bytes, os, partial_files};
use serde_json::Value;

/// Not a multiple of the chunk size, so the last chunk is short.
const IMAGE_BYTES: usize = (3 << 20) + 12_345;

#[test]
fn round_trip_to_a_file_and_to_stdout_is_bit_exact() {
    let sandbox = Sandbox::new();
    let image = Image::mixed(1, IMAGE_BYTES);
    let source = sandbox.path("disk.img");
    image.write(&source);

    let backup = sandbox.drydock([os("image"), os("backup"), source.as_os_str()]).assert_ok();
    assert!(backup.stdout_text().contains("disk.img"), "backup names the snapshot: {}", backup.stdout_text());
    let listing = sandbox.drydock(["image", "list"]).assert_ok().stdout_text();
    assert!(listing.lines().any(|l| l.contains("disk.img")), "list shows the snapshot:\n{listing}");

    let target = sandbox.path("restored.img");
    sandbox.drydock([os("image"), os("restore"), os("disk.img"), target.as_os_str()]).assert_ok();
    assert_same_bytes(&std::fs::read(&target).unwrap(), &image.bytes, "restored file");
    // Zero chunks are left as holes, so the restored file takes less room than its length.
    let allocated = std::fs::metadata(&target).unwrap().blocks() * 512;
    assert!(
        allocated + CHUNK_BYTES as u64 <= IMAGE_BYTES as u64,
        "restored file is not sparse: {allocated} bytes allocated for {IMAGE_BYTES} ({} bytes of holes in the source)",
        image.hole_bytes()
    );

    let streamed = sandbox.drydock(["image", "restore", "disk.img", "-"]).assert_ok();
    assert_same_bytes(&streamed.stdout, &image.bytes, "restore to stdout");
    // With the image on stdout, --json must not add a summary to it.
    let streamed = sandbox.drydock(["--json", "image", "restore", "disk.img", "-"]).assert_ok();
    assert_same_bytes(&streamed.stdout, &image.bytes, "restore --json to stdout");
}

#[test]
fn unencrypted_repository_round_trips_without_a_passphrase() {
    let sandbox = Sandbox::empty();
    sandbox.cmd(["repo", "init", "--no-encryption", "--chunk-size", "64KiB"]).no_password().run().assert_ok();
    let image = Image::mixed(2, IMAGE_BYTES);
    let source = sandbox.path("plain.img");
    image.write(&source);
    sandbox.cmd([os("image"), os("backup"), source.as_os_str()]).no_password().run().assert_ok();
    let restored = sandbox.cmd(["image", "restore", "plain.img", "-"]).no_password().run().assert_ok();
    assert_same_bytes(&restored.stdout, &image.bytes, "unencrypted restore");
    let info = sandbox.cmd(["--json", "repo", "info"]).no_password().run().assert_ok().json();
    assert_eq!(info["config"]["encryption"], "none", "{info}");
}

#[test]
fn image_list_json_has_the_documented_fields() {
    let sandbox = Sandbox::new();
    let image = Image::mixed(3, IMAGE_BYTES);
    let source = sandbox.path("tagged.img");
    image.write(&source);
    let args = [os("image"), os("backup"), source.as_os_str(), os("--name"), os("web-1")];
    let tags = [os("--tag"), os("daily"), os("--tag"), os("prod")];
    sandbox.drydock(args.into_iter().chain(tags)).assert_ok();
    sandbox.backup(&Image::mixed(4, 1 << 20), "db-1");

    let list = sandbox.json(["image", "list"]);
    let items = list.as_array().unwrap_or_else(|| panic!("image list --json is not an array: {list}"));
    assert_eq!(items.len(), 2, "{list}");
    for item in items {
        for field in ["id", "name", "size_bytes", "stored_bytes", "created_at", "tags"] {
            assert!(item.get(field).is_some(), "item lacks {field:?}: {item}");
        }
        let id = item["id"].as_str().expect("id is a string");
        assert_eq!(id.len(), 64, "id is a full hex id: {id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "id is hex: {id}");
        assert!(item["size_bytes"].is_u64() && item["stored_bytes"].is_u64(), "{item}");
        assert!(item["created_at"].as_str().is_some_and(|t| t.contains('T')), "created_at is RFC 3339: {item}");
        assert!(item["tags"].is_array(), "{item}");
    }
    let web = items.iter().find(|i| i["name"] == "web-1").expect("web-1 listed");
    assert_eq!(web["size_bytes"], IMAGE_BYTES as u64);
    assert_eq!(web["tags"], serde_json::json!(["daily", "prod"]));
    assert!(web["stored_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn every_command_prints_exactly_one_json_value() {
    let sandbox = Sandbox::empty();
    let init = sandbox.json(["repo", "init", "--chunk-size", "64KiB", "--pack-size", "1MiB"]);
    assert!(init["repository_id"].is_string(), "init: {init}");
    assert_eq!(init["chunk_size_bytes"], CHUNK_BYTES as u64, "init: {init}");

    let info = sandbox.json(["repo", "info"]);
    assert!(info["config"]["repository_id"] == init["repository_id"] && info["stats"].is_object(), "info: {info}");

    let keys = sandbox.json(["repo", "key", "list"]);
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "key list: {keys}");
    let added =
        sandbox.cmd(["--json", "repo", "key", "add"]).env("DRYDOCK_NEW_PASSWORD", "another").run().assert_ok().json();
    assert!(added["id"].is_string(), "key add: {added}");

    let image = Image::mixed(5, 1 << 20);
    let source = sandbox.path("one.img");
    image.write(&source);
    let backup = sandbox.json([os("image"), os("backup"), source.as_os_str()]);
    let id = backup["id"].as_str().unwrap_or_else(|| panic!("backup: {backup}")).to_string();
    assert_eq!(backup["size_bytes"], 1 << 20, "backup: {backup}");

    let list = sandbox.json(["image", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "list: {list}");

    let target = sandbox.path("out.img");
    let restore = sandbox.json([os("image"), os("restore"), os(&id), target.as_os_str()]);
    assert!(restore["snapshot"] == id.as_str() && restore["size_bytes"] == 1 << 20, "restore: {restore}");

    for args in
        [&["repo", "verify"][..], &["repo", "verify", "--read-data"], &["repo", "verify", "--read-data-subset", "1/2"]]
    {
        let verify = sandbox.json(args);
        assert_eq!(verify["problems"], serde_json::json!([]), "{args:?}: {verify}");
    }
    let gc = sandbox.json(["repo", "gc"]);
    assert!(gc["packs_deleted"].is_u64(), "gc: {gc}");

    let forget = sandbox.json(["image", "forget", id.as_str()]);
    assert_eq!(forget["forgotten"], serde_json::json!([id]), "forget: {forget}");

    let added_id = added["id"].as_str().unwrap();
    let removed = sandbox.json(["repo", "key", "remove", added_id]);
    assert_eq!(removed["removed"], added_id, "key remove: {removed}");
    let passwd = sandbox
        .cmd(["--json", "repo", "key", "passwd"])
        .env("DRYDOCK_NEW_PASSWORD", "changed")
        .run()
        .assert_ok()
        .json();
    assert!(passwd["id"].is_string(), "key passwd: {passwd}");
}

#[test]
fn unchanged_image_stores_nothing_the_second_time() {
    let sandbox = Sandbox::new();
    let image = Image::mixed(6, IMAGE_BYTES);
    let source = sandbox.path("same.img");
    image.write(&source);
    let backup = |sandbox: &Sandbox| sandbox.json([os("image"), os("backup"), source.as_os_str()]);
    let first = backup(&sandbox);
    assert!(first["stored_bytes"].as_u64().unwrap() > 0, "{first}");
    let second = backup(&sandbox);
    assert_eq!(second["stored_bytes"], 0, "an unchanged image stored data again: {second}");
    assert_ne!(first["id"], second["id"], "each backup is its own snapshot");

    // A small change stores a little, not everything.
    let changed = image.mutated(7, 3);
    changed.write(&source);
    let third = backup(&sandbox);
    let stored = third["stored_bytes"].as_u64().unwrap();
    assert!(stored > 0 && stored < first["stored_bytes"].as_u64().unwrap() / 2, "third: {third}, first: {first}");
    sandbox.assert_restores(third["id"].as_str().unwrap(), &changed.bytes);
    sandbox.assert_restores(first["id"].as_str().unwrap(), &image.bytes);
}

/// Snapshots taken within the same second must still be ordered as taken: `image list` is
/// documented as oldest first and a name restores the newest snapshot of that name.
#[test]
fn restore_by_name_picks_the_newest() {
    let sandbox = Sandbox::new();
    let mut image = Image::mixed(8, 512 << 10);
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    for version in 0..8 {
        image = image.mutated(100 + version, 4);
        ids.push(sandbox.backup(&image, "disk"));
        versions.push(image.clone());
    }
    let newest = sandbox.drydock(["image", "restore", "disk", "-"]).assert_ok().stdout;
    let restored = versions.iter().position(|v| v.bytes == newest);
    assert_eq!(
        restored,
        Some(versions.len() - 1),
        "restoring by name gave version {restored:?} of 0..{}",
        versions.len()
    );
    let listed: Vec<String> = sandbox.list().into_iter().map(|s| s.id).collect();
    assert_eq!(listed, ids, "image list is not in the order the snapshots were taken");
    for (id, version) in ids.iter().zip(&versions) {
        sandbox.assert_restores(id, &version.bytes);
    }
}

#[test]
fn forget_by_name_and_by_id_prefix() {
    let sandbox = Sandbox::new();
    let alpha = sandbox.backup(&Image::mixed(9, 1 << 20), "alpha");
    let beta = sandbox.backup(&Image::mixed(10, 1 << 20), "beta");
    let gamma_image = Image::mixed(11, 1 << 20);
    let gamma = sandbox.backup(&gamma_image, "gamma");

    sandbox.drydock(["image", "forget", "alpha"]).assert_ok();
    assert_eq!(sandbox.list_ids(), [beta.clone(), gamma.clone()].into(), "forget by name");
    let restore = sandbox.drydock(["image", "restore", &alpha, "-"]);
    restore.assert_clean_failure(&[&alpha]);

    sandbox.drydock(["image", "forget", &beta[..8]]).assert_ok();
    assert_eq!(sandbox.list_ids(), [gamma.clone()].into(), "forget by id prefix");
    sandbox.assert_restores(&gamma, &gamma_image.bytes);
}

#[test]
fn forget_with_one_unknown_name_forgets_nothing() {
    let sandbox = Sandbox::new();
    let kept = sandbox.backup(&Image::mixed(12, 1 << 20), "kept");
    let outcome = sandbox.drydock(["image", "forget", "kept", "no-such-snapshot"]);
    outcome.assert_clean_failure(&["no-such-snapshot"]);
    assert_eq!(sandbox.list_ids(), [kept].into());
}

#[test]
fn keys_can_be_added_listed_removed_and_changed() {
    let sandbox = Sandbox::new();
    let image = Image::mixed(13, 1 << 20);
    let id = sandbox.backup(&image, "keys");
    let slots = |password: &str| -> Vec<Value> {
        let out = sandbox.cmd(["--json", "repo", "key", "list"]).password(password).run().assert_ok().json();
        out.as_array().expect("key list is an array").clone()
    };
    let original = slots(PASSWORD);
    assert_eq!(original.len(), 1);
    assert_eq!(original[0]["current"], true, "{original:?}");
    let original_id = original[0]["id"].as_str().unwrap().to_string();

    let added =
        sandbox.cmd(["--json", "repo", "key", "add"]).env("DRYDOCK_NEW_PASSWORD", "second").run().assert_ok().json();
    let second_id = added["id"].as_str().unwrap().to_string();
    let both = slots("second");
    assert_eq!(both.len(), 2, "{both:?}");
    let current: Vec<_> = both.iter().filter(|s| s["current"] == true).map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(current, [second_id.as_str()], "the slot the passphrase opened is marked current");
    sandbox.cmd(["image", "list"]).password(PASSWORD).run().assert_ok();

    sandbox.cmd(["repo", "key", "remove", &original_id[..8]]).password("second").run().assert_ok();
    sandbox.cmd(["image", "list"]).password(PASSWORD).run().assert_clean_failure(&["wrong passphrase"]);
    let last = sandbox.cmd(["repo", "key", "remove", &second_id]).password("second").run();
    last.assert_clean_failure(&[&second_id, "last"]);

    sandbox.cmd(["repo", "key", "passwd"]).password("second").env("DRYDOCK_NEW_PASSWORD", "third").run().assert_ok();
    sandbox.cmd(["image", "list"]).password("second").run().assert_clean_failure(&["wrong passphrase"]);
    assert_eq!(slots("third").len(), 1);
    let restored = sandbox.cmd(["image", "restore", &id, "-"]).password("third").run().assert_ok();
    assert_same_bytes(&restored.stdout, &image.bytes, "restore after passwd");
}

#[test]
fn restore_refuses_an_existing_target_without_overwrite() {
    let sandbox = Sandbox::new();
    let image = Image::mixed(14, IMAGE_BYTES);
    let id = sandbox.backup(&image, "precious");
    let target = sandbox.path("existing.img");
    std::fs::write(&target, b"do not lose me").unwrap();

    let refused = sandbox.drydock([os("image"), os("restore"), os(&id), target.as_os_str()]);
    refused.assert_clean_failure(&[&target.display().to_string(), "--overwrite"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"do not lose me", "the refused restore changed the target");
    assert!(partial_files(target.parent().unwrap()).is_empty(), "partial file left behind");

    let args = [os("image"), os("restore"), os(&id), target.as_os_str(), os("--overwrite")];
    sandbox.drydock(args).assert_ok();
    assert_same_bytes(&std::fs::read(&target).unwrap(), &image.bytes, "overwritten target");
    assert!(partial_files(target.parent().unwrap()).is_empty(), "partial file left behind");
}
