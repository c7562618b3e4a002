mod common;

use common::*;
use drydock_engine::backup::{BackupOptions, backup};
use drydock_engine::restore::restore;
use drydock_engine::verify::{Subset, VerifyOptions, verify};
use drydock_engine::{CancelToken, NoProgress, Repository};
use drydock_sources::{FileTarget, ImageFile};

fn backup_file(repo: &Repository, path: &std::path::Path, name: &str) -> drydock_engine::backup::BackupReport {
    let source = ImageFile::open(path).unwrap();
    let options = BackupOptions { name: name.into(), tags: vec!["t".into()] };
    backup(repo, &source, &options, &NoProgress, &CancelToken::new()).unwrap()
}

#[test]
fn backup_then_restore_is_bit_exact_and_second_backup_stores_only_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = memory_repo();
    let image = write_image(dir.path(), "disk.img", 1);
    let first = backup_file(&repo, &image, "disk");
    assert!(first.meta.chunks_new > 0);
    assert!(first.meta.chunks_zero > 0, "holes and zero ranges become zero chunks");

    // Change 4 KiB in one chunk: the second backup stores one new chunk.
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new().write(true).open(&image).unwrap().write_all_at(&[9u8; 4096], 70_000).unwrap();
    let second = backup_file(&repo, &image, "disk");
    assert_eq!(second.meta.chunks_new, 1);
    assert_eq!(second.meta.parent.as_deref(), Some(first.id.to_hex().as_str()));

    let reopened = Repository::open(storage, Some(PASSPHRASE)).unwrap();
    let (id, manifest) = reopened.find_snapshot(&second.id.to_hex()[..8]).unwrap();
    let out = dir.path().join("restored.img");
    let target = Box::new(FileTarget::create(&out, manifest.meta.size_bytes, false).unwrap());
    restore(&reopened, &id, &manifest, target, &NoProgress, &CancelToken::new()).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&image).unwrap());

    let report =
        verify(&reopened, &VerifyOptions { read_data: Some(Subset::All) }, &|_| {}, &NoProgress, &CancelToken::new())
            .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.chunks_read > 0);
}

/// Listing reads only a manifest's metadata part; loading it whole checks everything else.
#[test]
fn listing_reads_metadata_only_and_loading_checks_the_chunk_list() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = memory_repo();
    let image = write_image(dir.path(), "disk.img", 3);
    let snapshot = backup_file(&repo, &image, "disk");

    let key = drydock_storage::ObjectKey::new(format!("snapshots/{}", snapshot.id)).unwrap();
    let mut bytes = storage.get(&key).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    storage.put(&key, &bytes).unwrap();

    let (metas, damaged) = repo.load_snapshot_metas_lenient().unwrap();
    assert!(damaged.is_empty(), "{damaged:?}");
    assert_eq!(metas.len(), 1);
    assert_eq!(metas[0].1, snapshot.meta);
    let error = repo.load_snapshot(&snapshot.id).unwrap_err();
    assert!(matches!(error, drydock_engine::Error::Corrupt { .. }), "{error}");
}
