//! Bad input, damaged repositories and full disks: one clear line on stderr that names the
//! object, a non-zero exit, never a panic, and nothing half-written left behind.

mod common;

use std::path::Path;

use common::{
    EXIT_DAMAGE_FOUND, Image, Outcome, PASSWORD, Sandbox, Tmpfs, drydock_command, file_name, os, partial_files,
    truncate_half,
};

const IMAGE_BYTES: usize = 3 << 20;

/// A repository with one snapshot, `victim`, and the image it was taken from.
fn repo_with_victim() -> (Sandbox, Image) {
    let sandbox = Sandbox::new();
    let image = Image::mixed(21, IMAGE_BYTES);
    sandbox.backup(&image, "victim");
    (sandbox, image)
}

/// Restores `snapshot` to a file and requires a clean failure naming `needles`, with no file at
/// the target and no partial file beside it.
fn assert_restore_fails_cleanly(sandbox: &Sandbox, snapshot: &str, needles: &[&str]) {
    let target = sandbox.path("restored.img");
    let outcome = sandbox.drydock([os("image"), os("restore"), os(snapshot), target.as_os_str()]);
    outcome.assert_clean_failure(needles);
    assert!(!target.exists(), "a failed restore left {}", target.display());
    assert_eq!(partial_files(target.parent().unwrap()), Vec::<std::path::PathBuf>::new(), "partial files left behind");
}

/// `repo verify` (with `args`) must exit with the damage code and print a `damaged:` line
/// naming every one of `needles`.
fn assert_verify_finds(sandbox: &Sandbox, args: &[&str], needles: &[&str]) -> Outcome {
    let mut all = vec!["repo", "verify"];
    all.extend_from_slice(args);
    let outcome = sandbox.drydock(&all);
    let context = format!("{}\n{}", outcome.stderr, outcome.stdout_text());
    assert_eq!(outcome.status.code(), Some(EXIT_DAMAGE_FOUND), "verify {args:?} did not report damage:\n{context}");
    assert!(!outcome.stderr.contains("panicked"), "{context}");
    let lines = outcome.damage_lines();
    assert!(
        lines.iter().any(|l| needles.iter().all(|n| l.contains(n))),
        "no `damaged:` line names all of {needles:?}:\n{context}"
    );
    outcome
}

// ---- bad input ----

#[test]
fn missing_image_file_is_named() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path("no-such-disk.img");
    let outcome = sandbox.drydock([os("image"), os("backup"), missing.as_os_str()]);
    outcome.assert_clean_failure(&[&missing.display().to_string()]);
}

#[test]
fn image_path_that_is_a_directory_is_named() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let outcome = sandbox.drydock([os("image"), os("backup"), dir.as_os_str()]);
    outcome.assert_clean_failure(&[&dir.display().to_string(), "not an image file"]);
    assert!(sandbox.list().is_empty());
}

#[test]
fn wrong_passphrase_is_reported_as_such() {
    let (sandbox, _) = repo_with_victim();
    let outcome = sandbox.cmd(["image", "list"]).password("not the passphrase").run();
    outcome.assert_clean_failure(&["wrong passphrase", &sandbox.repo.display().to_string()]);
}

#[test]
fn missing_passphrase_without_a_terminal_says_how_to_give_one() {
    let (sandbox, _) = repo_with_victim();
    let outcome = sandbox.cmd(["image", "list"]).no_password().run();
    outcome.assert_clean_failure(&["passphrase", "DRYDOCK_PASSWORD"]);
}

#[test]
fn directory_that_is_not_a_repository_is_named() {
    let sandbox = Sandbox::empty();
    std::fs::create_dir(&sandbox.repo).unwrap();
    std::fs::write(sandbox.repo.join("notes.txt"), b"hello").unwrap();
    let outcome = sandbox.drydock(["image", "list"]);
    outcome.assert_clean_failure(&[&sandbox.repo.display().to_string(), "not a drydock repository"]);
}

#[test]
fn missing_repository_directory_is_named() {
    let sandbox = Sandbox::empty();
    let outcome = sandbox.drydock(["image", "list"]);
    outcome.assert_clean_failure(&[&sandbox.repo.display().to_string()]);
    assert!(!sandbox.repo.exists(), "opening a missing repository created it");
}

#[test]
fn repository_path_that_is_a_file_is_named() {
    let sandbox = Sandbox::empty();
    std::fs::write(&sandbox.repo, b"just a file").unwrap();
    for args in [&["image", "list"][..], &["repo", "init"]] {
        let outcome = sandbox.drydock(args);
        outcome.assert_clean_failure(&[&sandbox.repo.display().to_string()]);
    }
    assert_eq!(std::fs::read(&sandbox.repo).unwrap(), b"just a file");
}

#[test]
fn no_repository_given_says_how_to_give_one() {
    let outcome = drydock_command(["image", "list"]).password(PASSWORD).run();
    outcome.assert_clean_failure(&["--repo"]);
}

#[test]
fn init_refuses_a_non_empty_directory() {
    let sandbox = Sandbox::empty();
    std::fs::create_dir(&sandbox.repo).unwrap();
    std::fs::write(sandbox.repo.join("family-photos.jpg"), b"precious").unwrap();
    let outcome = sandbox.drydock(["repo", "init"]);
    outcome.assert_clean_failure(&[&sandbox.repo.display().to_string(), "not empty"]);
    let entries: Vec<_> = std::fs::read_dir(&sandbox.repo).unwrap().flatten().map(|e| file_name(&e.path())).collect();
    assert_eq!(entries, ["family-photos.jpg"], "init wrote into a directory it refused");
}

#[test]
fn init_twice_is_refused_and_the_repository_survives() {
    let (sandbox, image) = repo_with_victim();
    let outcome = sandbox.cmd(["repo", "init"]).password("a different passphrase").run();
    outcome.assert_clean_failure(&[&sandbox.repo.display().to_string(), "already"]);
    sandbox.assert_restores("victim", &image.bytes);
    sandbox.cmd(["image", "list"]).password("a different passphrase").run().assert_clean_failure(&["wrong passphrase"]);
}

/// `drydock image list | head -1`: the reader is gone before drydock writes.
#[test]
fn closed_standard_output_is_an_error_not_a_panic() {
    let (sandbox, _) = repo_with_victim();
    let commands: [&[&str]; 5] = [
        &["image", "list"],
        &["--json", "image", "list"],
        &["repo", "info"],
        &["repo", "key", "list"],
        &["image", "restore", "victim", "-"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let outcome = sandbox.cmd(args).stdout(writer.into()).run();
        outcome.assert_clean_failure(&["standard output"]);
    }
}

// ---- damaged objects ----

#[test]
fn truncated_pack_is_named_by_verify_and_restore() {
    let (sandbox, _) = repo_with_victim();
    let pack = sandbox.objects("packs")[0].clone();
    let short = &file_name(&pack)[..8];
    truncate_half(&pack);

    sandbox.drydock(["image", "list"]).assert_ok();
    assert_verify_finds(&sandbox, &[], &[&format!("pack {short}"), "victim ("]);
    assert_verify_finds(&sandbox, &["--read-data"], &[&format!("pack {short}"), "victim ("]);
    assert_restore_fails_cleanly(&sandbox, "victim", &[short]);
}

#[test]
fn truncated_index_is_named_by_verify_and_restore() {
    let (sandbox, _) = repo_with_victim();
    let index = sandbox.objects("index")[0].clone();
    let short = &file_name(&index)[..8];
    truncate_half(&index);

    assert_verify_finds(&sandbox, &[], &[&format!("index {short}")]);
    assert_restore_fails_cleanly(&sandbox, "victim", &[&format!("index {short}")]);
}

#[test]
fn truncated_manifest_is_named_by_list_verify_and_restore() {
    let (sandbox, _) = repo_with_victim();
    let manifest = sandbox.objects("snapshots")[0].clone();
    let short = &file_name(&manifest)[..8];
    sandbox.backup(&Image::mixed(22, IMAGE_BYTES), "bystander");
    // Cut inside the metadata part, which is all that `image list` reads.
    std::fs::OpenOptions::new().write(true).open(&manifest).unwrap().set_len(30).unwrap();

    // The list names the damaged snapshot, exits with the damage code, and still shows the rest.
    let listed = sandbox.drydock(["image", "list"]);
    listed.assert_clean_failure(&[&format!("snapshot {short}")]);
    assert_eq!(listed.status.code(), Some(3), "list with a damaged snapshot");
    assert!(listed.stdout_text().contains("bystander"), "the intact snapshot is not listed");
    assert_verify_finds(&sandbox, &[], &[&format!("snapshot {short}")]);
    assert_restore_fails_cleanly(&sandbox, "victim", &[&format!("snapshot {short}")]);
}

#[test]
fn truncated_config_is_named() {
    let (sandbox, _) = repo_with_victim();
    truncate_half(&sandbox.repo.join("config"));
    for args in [&["image", "list"][..], &["repo", "verify"], &["repo", "info"]] {
        sandbox.drydock(args).assert_clean_failure(&["config"]);
    }
    assert_restore_fails_cleanly(&sandbox, "victim", &["config"]);
}

#[test]
fn truncated_key_slot_is_named() {
    let (sandbox, _) = repo_with_victim();
    let slot = sandbox.objects("keys")[0].clone();
    truncate_half(&slot);
    let name = file_name(&slot);
    for args in [&["image", "list"][..], &["repo", "verify"]] {
        sandbox.drydock(args).assert_clean_failure(&["key slot", &name]);
    }
    assert_restore_fails_cleanly(&sandbox, "victim", &["key slot"]);
}

#[test]
fn flipped_byte_in_a_pack_names_the_damaged_snapshot_and_stops_its_restore() {
    let sandbox = Sandbox::new();
    let left = Image::random(31, IMAGE_BYTES);
    sandbox.backup(&left, "left");
    let left_packs = sandbox.object_names("packs");
    let right = Image::random(32, IMAGE_BYTES);
    sandbox.backup(&right, "right");

    let pack = sandbox.objects("packs").into_iter().find(|p| left_packs.contains(&file_name(p))).unwrap();
    let short = file_name(&pack)[..8].to_string();
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&pack, &bytes).unwrap();

    // Sizes still match: only reading the data finds it.
    assert_eq!(sandbox.drydock(["repo", "verify"]).status.code(), Some(0));
    let outcome = assert_verify_finds(&sandbox, &["--read-data"], &[&format!("pack {short}"), "left ("]);
    assert!(
        outcome.damage_lines().iter().all(|l| !l.contains("right (")),
        "an intact snapshot is reported damaged:\n{}",
        outcome.stderr
    );
    let json = sandbox.drydock(["--json", "repo", "verify", "--read-data"]);
    assert_eq!(json.status.code(), Some(EXIT_DAMAGE_FOUND));
    let problems = json.json()["problems"].as_array().cloned().unwrap_or_default();
    let names_left = |problem: &serde_json::Value| {
        let snapshots = problem["snapshots"].as_array().cloned().unwrap_or_default();
        snapshots.iter().any(|name| name.as_str().is_some_and(|n| n.starts_with("left (")))
    };
    assert!(problems.iter().any(names_left), "JSON problems do not name the snapshot: {problems:?}");

    assert_restore_fails_cleanly(&sandbox, "left", &[&format!("pack {short}")]);
    // A failed restore over an existing file keeps the old file.
    let existing = sandbox.path("existing.img");
    std::fs::write(&existing, b"yesterday's image").unwrap();
    let args = [os("image"), os("restore"), os("left"), existing.as_os_str(), os("--overwrite")];
    sandbox.drydock(args).assert_clean_failure(&[&format!("pack {short}")]);
    assert_eq!(std::fs::read(&existing).unwrap(), b"yesterday's image", "a failed restore replaced the target");
    assert!(partial_files(&sandbox.path("")).is_empty(), "partial files left behind");
    sandbox.assert_restores("right", &right.bytes);
}

// ---- full disks ----

#[test]
fn full_repository_disk_fails_the_backup_and_keeps_earlier_snapshots() {
    let mut sandbox = Sandbox::empty();
    let disk = Tmpfs::mount(&sandbox.path("small-disk"), 16);
    sandbox.repo = disk.path.clone();
    sandbox.init(&common::SMALL_REPO);
    let small = Image::mixed(41, 2 << 20);
    let small_id = sandbox.backup(&small, "small");

    let big = Image::random(42, 40 << 20);
    let big_path = sandbox.path("big.img");
    big.write(&big_path);
    let outcome = sandbox.drydock([os("image"), os("backup"), big_path.as_os_str()]);
    outcome.assert_clean_failure(&["no space"]);

    let listed: Vec<_> = sandbox.list().into_iter().map(|s| s.id).collect();
    assert_eq!(listed, std::slice::from_ref(&small_id), "the failed backup is listed");
    sandbox.assert_restores(&small_id, &small.bytes);
    sandbox.assert_verifies();

    // gc gives the room back: the same disk now takes a new backup.
    sandbox.gc();
    let medium = Image::random(43, 6 << 20);
    let medium_id = sandbox.backup(&medium, "medium");
    sandbox.assert_restores(&medium_id, &medium.bytes);
    sandbox.assert_restores(&small_id, &small.bytes);
    sandbox.assert_verifies();
}

#[test]
fn full_restore_target_disk_fails_and_leaves_no_file() {
    let sandbox = Sandbox::new();
    let image = Image::random(51, 24 << 20);
    sandbox.backup(&image, "large");
    let disk = Tmpfs::mount(&sandbox.path("target-disk"), 16);
    let target = disk.path.join("large.img");

    let outcome = sandbox.drydock([os("image"), os("restore"), os("large"), target.as_os_str()]);
    outcome.assert_clean_failure(&["no space", "large.img"]);
    let left: Vec<_> = std::fs::read_dir(&disk.path).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the failed restore left {left:?}");
    assert_free_space_returned(&disk.path);
    sandbox.assert_restores("large", &image.bytes);
}

/// Nothing of a failed restore keeps using the disk.
fn assert_free_space_returned(dir: &Path) {
    let output = std::process::Command::new("df").arg("--output=used").arg("-B1").arg(dir).output().expect("df");
    let text = String::from_utf8_lossy(&output.stdout);
    let used: u64 = text.lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(u64::MAX);
    assert!(used < 1 << 20, "{used} bytes still used on {} after the failed restore", dir.display());
}

#[test]
fn restore_of_a_damaged_snapshot_to_stdout_fails_without_a_panic() {
    let (sandbox, _) = repo_with_victim();
    let pack = sandbox.objects("packs")[0].clone();
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&pack, &bytes).unwrap();
    let outcome = sandbox.drydock(["image", "restore", "victim", "-"]);
    // A stream cannot take back what it wrote: the exit status is what tells the reader.
    outcome.assert_clean_failure(&[&file_name(&pack)[..8]]);
}
