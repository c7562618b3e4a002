//! A misbehaving storage: transient errors are ridden out by `Retry`, permanent ones stop the
//! operation with a message naming the object, and damaged reads never reach a restore target.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use drydock_engine::restore::restore;
use drydock_engine::{CancelToken, Error, InitOptions, NoProgress, Repository};
use drydock_sources::FileTarget;
use drydock_storage::{ErrorKind, Fault, FaultPlan, Faulty, MemoryStorage, Op, Retry, RetryPolicy, Storage};

/// Short delays keep the tests fast; the retry logic is the same.
const QUICK: RetryPolicy =
    RetryPolicy { attempts_max: 5, delay_initial: Duration::from_millis(1), delay_max: Duration::from_millis(4) };

/// Packs of about four chunks, so a backup stores several and a restore reads several.
fn several_packs() -> InitOptions {
    InitOptions { pack_size_bytes_target: 256 << 10, ..options() }
}

/// A repository created on healthy storage, opened again through `plan`'s faults.
fn faulty_repo(plan: &Arc<FaultPlan>, retry: bool) -> (Arc<dyn Storage>, Repository) {
    let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    Repository::init(inner.clone(), several_packs()).unwrap();
    let faulty = Faulty::new(inner.clone(), plan.clone());
    let storage: Arc<dyn Storage> = if retry { Arc::new(Retry::new(faulty, QUICK)) } else { Arc::new(faulty) };
    (inner, Repository::open(storage, Some(PASSPHRASE)).unwrap())
}

#[test]
fn transient_failures_during_backup_and_restore_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let image = write_image(dir.path(), "disk.img", 1);
    let plan = Arc::new(
        FaultPlan::new()
            .fail(Op::Put, Fault::Transient)
            .on_prefix("packs/")
            .times(2)
            .fail(Op::Put, Fault::Transient)
            .on_prefix("snapshots/")
            .times(1)
            .fail(Op::List, Fault::Transient)
            .on_prefix("index/")
            .times(1)
            .fail(Op::Get, Fault::Transient)
            .on_prefix("index/")
            .times(2)
            .fail(Op::GetRange, Fault::Transient)
            .on_prefix("packs/")
            .times(3),
    );
    let (_, repo) = faulty_repo(&plan, true);

    let snapshot = backup_path(&repo, &image, "disk");
    assert_eq!(repo.snapshot_ids().unwrap(), [snapshot.id]);
    assert_eq!(restore_bytes(&repo, &snapshot.id), std::fs::read(&image).unwrap());
    // Every rule fired: the retries above were really exercised.
    assert_eq!(plan.injected_count(), 2 + 1 + 1 + 2 + 3);
    assert_verify_clean(&repo);
}

#[test]
fn transient_failure_without_retry_fails_the_backup_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let image = write_image(dir.path(), "disk.img", 1);
    let plan = Arc::new(FaultPlan::new().fail(Op::Put, Fault::Transient).on_prefix("packs/").times(1));
    let (inner, repo) = faulty_repo(&plan, false);
    let error = try_backup_path(&repo, &image, "disk").unwrap_err();
    assert!(matches!(&error, Error::Storage(e) if e.kind == ErrorKind::Transient), "{error}");
    assert!(repo.snapshot_ids().unwrap().is_empty());
    assert_eq!(count_under(inner.as_ref(), "leases/"), 0);
}

/// Whatever step of the commit fails for good, no snapshot appears, the lease is gone, and the
/// repository takes the next backup as if nothing happened.
#[test]
fn permanent_failure_mid_backup_leaves_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let image = write_image(dir.path(), "disk.img", 1);
    let cases = [
        (Op::Put, "packs/", 2),
        (Op::Put, "index/", 0),
        (Op::Put, "snapshots/", 0),
        (Op::List, "index/", 0),
        (Op::Put, "leases/", 0),
    ];
    for (op, prefix, after) in cases {
        let case = format!("{} {prefix} after {after}", op.name());
        let plan = Arc::new(FaultPlan::new().fail(op, Fault::Permanent).on_prefix(prefix).after(after));
        let (inner, repo) = faulty_repo(&plan, true);
        let error = try_backup_path(&repo, &image, "disk").expect_err(&case);
        assert_eq!(plan.injected_count(), 1, "{case}: a permanent error is not retried");
        assert!(matches!(&error, Error::Storage(e) if e.kind == ErrorKind::Permanent), "{case}: {error}");
        assert!(error.to_string().contains(prefix), "{case}: {error}");
        assert!(repo.snapshot_ids().unwrap().is_empty(), "{case}");
        assert_eq!(count_under(inner.as_ref(), "leases/"), 0, "{case}: the lease was left behind");

        let healthy = Repository::open(inner, Some(PASSPHRASE)).unwrap();
        let snapshot = backup_path(&healthy, &image, "disk");
        assert_eq!(restore_bytes(&healthy, &snapshot.id), std::fs::read(&image).unwrap(), "{case}");
        assert_verify_clean(&healthy);
    }
}

#[test]
fn no_space_on_pack_put_names_the_pack() {
    let dir = tempfile::tempdir().unwrap();
    let image = write_image(dir.path(), "disk.img", 1);
    let plan = Arc::new(FaultPlan::new().fail(Op::Put, Fault::NoSpace).on_prefix("packs/").times(1));
    let (_, repo) = faulty_repo(&plan, true);

    let error = try_backup_path(&repo, &image, "disk").unwrap_err();
    assert!(matches!(&error, Error::Storage(e) if e.kind == ErrorKind::NoSpace), "{error}");
    // The message names the object: packs/<first two hex digits>/<64 hex digits>.
    let message = error.to_string();
    let key = &message[message.find("packs/").unwrap_or_else(|| panic!("no pack key in {message:?}"))..];
    let name: String = key[9..].chars().take_while(char::is_ascii_hexdigit).collect();
    assert_eq!(name.len(), 64, "{message}");
    assert_eq!(&key[6..9], format!("{}/", &name[..2]), "{message}");
    assert!(message.contains("no space"), "{message}");
    assert!(repo.snapshot_ids().unwrap().is_empty());

    // Space is back: the same repository takes the backup.
    let snapshot = backup_path(&repo, &image, "disk");
    assert_eq!(restore_bytes(&repo, &snapshot.id), std::fs::read(&image).unwrap());
}

/// A storage that hands back damaged bytes must make the restore fail, naming what is damaged,
/// and leave nothing at the target path that could pass for the image.
#[test]
fn corrupt_read_during_restore_is_detected_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    // One data chunk between zeros: exactly one ranged read, so its middle byte is in a blob.
    let mut image = vec![0u8; 4 * CHUNK_BYTES];
    image[CHUNK_BYTES..2 * CHUNK_BYTES].copy_from_slice(&pattern(CHUNK_BYTES, 5, false));
    let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let healthy = Repository::init(inner.clone(), options()).unwrap();
    let snapshot = backup_bytes(&healthy, dir.path(), "disk", &image);
    let manifest = healthy.load_snapshot(&snapshot.id).unwrap();

    for (op, prefix, object) in [(Op::GetRange, "packs/", "pack "), (Op::Get, "index/", "index ")] {
        let case = format!("corrupt {} of {prefix}", op.name());
        let plan = Arc::new(FaultPlan::new().fail(op, Fault::CorruptRead).on_prefix(prefix));
        let repo = Repository::open(Arc::new(Faulty::new(inner.clone(), plan.clone())), Some(PASSPHRASE)).unwrap();
        let out = dir.path().join("restored.img");
        let target = Box::new(FileTarget::create(&out, manifest.meta.size_bytes, false).unwrap());
        let error = restore(&repo, &snapshot.id, &manifest, target, &NoProgress, &CancelToken::new()).unwrap_err();
        assert!(plan.injected_count() >= 1, "{case}");
        assert!(matches!(&error, Error::Corrupt { object: o, .. } if o.starts_with(object)), "{case}: {error}");
        assert!(!out.exists(), "{case}: a restore that failed left {}", out.display());
        let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["disk.img"], "{case}: partial files left behind");
    }
    assert_eq!(restore_bytes(&healthy, &snapshot.id), image);
}
