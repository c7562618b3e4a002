//! Damage on disk is found and named, with the snapshots it affects; it never causes a panic,
//! and a restore never writes data that failed its checks.

mod common;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use drydock_engine::gc::gc;
use drydock_engine::id::{IndexId, PackId, SnapshotId};
use drydock_engine::index::{IndexFile, PackEntry};
use drydock_engine::snapshot::Manifest;
use drydock_engine::verify::VerifyReport;
use drydock_engine::{CancelToken, Error, InitOptions, NoProgress, Repository, probe};
use drydock_storage::{LocalStorage, Storage};

/// Room for a whole small image in one pack.
fn small_packs(options: InitOptions) -> InitOptions {
    InitOptions { pack_size_bytes_target: 128 << 10, ..options }
}

/// Two compressible chunks around a zero chunk, then a short incompressible one: one small pack
/// of three blobs with both flags, so flipping every 97th byte of it stays quick.
fn image(seed: u64) -> Vec<u8> {
    let two_letters =
        |seed| pattern(CHUNK_BYTES, seed, false).iter().map(|b| b"ab"[(b & 1) as usize]).collect::<Vec<_>>();
    let mut image = vec![0u8; 3 * CHUNK_BYTES + 1000];
    image[..CHUNK_BYTES].copy_from_slice(&two_letters(seed));
    image[2 * CHUNK_BYTES..3 * CHUNK_BYTES].copy_from_slice(&two_letters(seed + 1));
    image[3 * CHUNK_BYTES..].copy_from_slice(&pattern(1000, seed + 2, false));
    image
}

struct Snapshot {
    id: SnapshotId,
    name: &'static str,
    image: Vec<u8>,
}

impl Snapshot {
    /// How verify names an affected snapshot.
    fn label(&self) -> String {
        format!("{} ({})", self.name, self.id.short())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    storage: Arc<dyn Storage>,
    repo: Repository,
    a: Snapshot,
    b: Snapshot,
}

/// Two snapshots with different names and no chunk in common, on disk.
fn fixture(options: InitOptions) -> Fixture {
    let dir = scratch_dir();
    let root = dir.path().join("repo");
    let (storage, repo) = local_repo(&root, small_packs(options));
    let take = |name: &'static str, seed: u64| {
        let image = image(seed);
        Snapshot { id: backup_bytes(&repo, dir.path(), name, &image).id, name, image }
    };
    let (a, b) = (take("a", 1), take("b", 100));
    Fixture { _dir: dir, root, storage, repo, a, b }
}

impl Fixture {
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Packs holding chunks of `snapshot`, with the index file that lists each.
    fn packs_of(&self, snapshot: &Snapshot) -> Vec<(IndexId, PackEntry)> {
        let chunks = self.repo.load_snapshot(&snapshot.id).unwrap().chunks;
        let mut packs: Vec<_> = self
            .repo
            .load_index_files()
            .unwrap()
            .into_iter()
            .flat_map(|(index, file)| file.packs.into_iter().map(move |pack| (index, pack)))
            .filter(|(_, pack)| pack.blobs.iter().any(|blob| chunks.contains(&blob.id)))
            .collect();
        packs.sort_by_key(|(_, pack)| (std::cmp::Reverse(pack.blobs.len()), pack.id));
        packs
    }

    /// The pack of `a` with the most blobs.
    fn pack_of_a(&self) -> PackEntry {
        let (_, pack) = self.packs_of(&self.a).into_iter().next().unwrap();
        let other: Vec<PackId> = self.packs_of(&self.b).into_iter().map(|(_, p)| p.id).collect();
        assert!(!other.contains(&pack.id), "fixture: a and b share no pack");
        pack
    }

    fn pack_path(&self, id: &PackId) -> PathBuf {
        let hex = id.to_hex();
        self.path(&format!("packs/{}/{hex}", &hex[..2]))
    }

    fn assert_restores(&self, snapshot: &Snapshot, context: &str) {
        match try_restore_bytes(&self.repo, &snapshot.id) {
            Ok(bytes) => assert!(bytes == snapshot.image, "{context}: {} restored wrong bytes", snapshot.name),
            Err(e) => panic!("{context}: {} should restore: {e}", snapshot.name),
        }
    }

    /// Restoring `snapshot` fails, and the error names `object`.
    fn assert_restore_fails_naming(&self, snapshot: &Snapshot, object: &str, context: &str) -> Error {
        let error = match try_restore_bytes(&self.repo, &snapshot.id) {
            Ok(bytes) => panic!("{context}: restore of {} succeeded ({} bytes)", snapshot.name, bytes.len()),
            Err(e) => e,
        };
        assert!(error.to_string().contains(object), "{context}: error does not name {object}: {error}");
        error
    }
}

/// Replaces the file's bytes for the duration of `check`, then puts the original back.
fn with_damage(path: &Path, damage: impl FnOnce(&mut Vec<u8>), check: impl FnOnce()) {
    let original = std::fs::read(path).unwrap();
    let mut damaged = original.clone();
    damage(&mut damaged);
    std::fs::write(path, &damaged).unwrap();
    check();
    std::fs::write(path, &original).unwrap();
}

fn flip(position: usize) -> impl FnOnce(&mut Vec<u8>) {
    move |bytes| bytes[position] ^= 0x01
}

fn truncate(len: usize) -> impl FnOnce(&mut Vec<u8>) {
    move |bytes| bytes.truncate(len)
}

fn problem_objects(report: &VerifyReport) -> Vec<&str> {
    report.problems.iter().map(|p| p.object.as_str()).collect()
}

fn snapshots_named(report: &VerifyReport) -> Vec<&str> {
    report.problems.iter().flat_map(|p| p.snapshots.iter().map(String::as_str)).collect()
}

#[test]
fn flipped_pack_byte_is_reported_with_the_snapshots_it_damages() {
    let f = fixture(options());
    let pack = f.pack_of_a();
    let path = f.pack_path(&pack.id);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let object = format!("pack {}", pack.id.short());
    let blobs: Vec<Range<usize>> =
        pack.blobs.iter().map(|b| b.offset as usize..(b.offset + b.stored_len) as usize).collect();
    let blobs_end = blobs.iter().map(|r| r.end).max().unwrap();
    assert!(pack.blobs.len() >= 2, "fixture: the damaged pack holds several blobs");
    assert_eq!((16..blobs_end).filter(|p| !blobs.iter().any(|r| r.contains(p))).count(), 0, "blobs are contiguous");

    // Start header, every region every 97 bytes, the pack header's edges and the trailer.
    let mut positions: Vec<usize> = (0..len).step_by(97).collect();
    positions.extend((0..16).chain(blobs_end - 2..blobs_end + 2).chain(len - 16..len));
    positions.sort();
    positions.dedup();
    for (n, &position) in positions.iter().enumerate() {
        let at = format!("byte {position} of {len} ({object})");
        with_damage(&path, flip(position), || {
            let report = verify_all(&f.repo);
            assert!(!report.problems.is_empty(), "{at}: verify missed the damage");
            assert!(problem_objects(&report).iter().all(|o| *o == object), "{at}: {:#?}", report.problems);
            assert!(!snapshots_named(&report).contains(&f.b.label().as_str()), "{at}: b is not affected");
            if blobs.iter().any(|r| r.contains(&position)) {
                assert!(snapshots_named(&report).contains(&f.a.label().as_str()), "{at}: {:#?}", report.problems);
                match f.assert_restore_fails_naming(&f.a, &object, &at) {
                    Error::Corrupt { .. } => {}
                    other => panic!("{at}: expected a corruption error, got {other}"),
                }
            } else {
                // The blobs themselves are intact and restore reads only them.
                assert!(snapshots_named(&report).is_empty(), "{at}: {:#?}", report.problems);
                f.assert_restores(&f.a, &at);
            }
            if n % 16 == 0 {
                f.assert_restores(&f.b, &at);
            }
        });
    }
    assert_verify_clean(&f.repo);
}

#[test]
fn flipped_index_byte_is_reported_with_the_snapshots_it_hides() {
    let f = fixture(options());
    let (index, _) = f.packs_of(&f.a).into_iter().next().unwrap();
    let key = format!("index/{index}");
    let path = f.path(&key);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let object = format!("index {}", index.short());
    for position in [0, 8, 10, 15, 16, 20, 28, len / 2, len - 17, len - 1] {
        let at = format!("byte {position} of {len} ({object})");
        with_damage(&path, flip(position), || {
            let report = verify_all(&f.repo);
            assert!(problem_objects(&report).contains(&object.as_str()), "{at}: {:#?}", report.problems);
            assert!(snapshots_named(&report).contains(&f.a.label().as_str()), "{at}: {:#?}", report.problems);
            assert!(!snapshots_named(&report).contains(&f.b.label().as_str()), "{at}: {:#?}", report.problems);
            f.assert_restore_fails_naming(&f.a, &object, &at);
        });
        // The same damage under a matching name (a storage that rewrote the object) gets past
        // the name check and must be stopped by the header check or authentication.
        let mut damaged = std::fs::read(&path).unwrap();
        damaged[position] ^= 0x01;
        let renamed = IndexId(*blake3::hash(&damaged).as_bytes());
        let error = IndexFile::decode(f.repo.keys(), &renamed, &damaged).unwrap_err();
        assert!(matches!(error, Error::Corrupt { .. } | Error::UnsupportedVersion { .. }), "{at}, renamed: {error}");
    }
    assert_verify_clean(&f.repo);
}

#[test]
fn flipped_manifest_byte_is_reported_and_the_other_snapshot_still_restores() {
    let f = fixture(options());
    let key = format!("snapshots/{}", f.a.id);
    let path = f.path(&key);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let object = format!("snapshot {}", f.a.id.short());
    for position in [0, 8, 12, 16, 20, 28, len / 2, len - 17, len - 1] {
        let at = format!("byte {position} of {len} ({object})");
        with_damage(&path, flip(position), || {
            let (good, bad) = f.repo.load_snapshots_lenient().unwrap();
            assert_eq!(good.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [f.b.id], "{at}");
            assert_eq!(bad.len(), 1, "{at}");
            assert_eq!(bad[0].0, f.a.id, "{at}");
            assert!(matches!(&bad[0].1, Error::Corrupt { object: o, .. } if *o == object), "{at}: {}", bad[0].1);

            let report = verify_all(&f.repo);
            assert_eq!(problem_objects(&report), [object.as_str()], "{at}: {:#?}", report.problems);
            f.assert_restore_fails_naming(&f.a, &object, &at);
            let error = f.repo.find_snapshot(&f.a.id.to_hex()).unwrap_err();
            assert!(error.to_string().contains(&object), "{at}: {error}");
            f.assert_restores(&f.b, &at);

            // Without that manifest gc cannot know what is garbage: it must stop, not guess.
            let before = objects(f.storage.as_ref());
            let error = gc(&f.repo, &NoProgress, &CancelToken::new()).unwrap_err();
            assert!(error.to_string().contains(&f.a.id.short()), "{at}: {error}");
            assert_eq!(objects(f.storage.as_ref()), before, "{at}: gc changed the repository");
        });
        let mut damaged = std::fs::read(&path).unwrap();
        damaged[position] ^= 0x01;
        let renamed = SnapshotId(*blake3::hash(&damaged).as_bytes());
        let error = Manifest::decode(f.repo.keys(), &renamed, &damaged).unwrap_err();
        assert!(matches!(error, Error::Corrupt { .. } | Error::UnsupportedVersion { .. }), "{at}, renamed: {error}");
    }
    assert_verify_clean(&f.repo);
}

#[test]
fn truncated_pack_is_reported_and_never_restored_wrong() {
    let f = fixture(options());
    let pack = f.pack_of_a();
    let path = f.pack_path(&pack.id);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let object = format!("pack {}", pack.id.short());
    let blobs_end = pack.blobs.iter().map(|b| (b.offset + b.stored_len) as usize).max().unwrap();
    for new_len in [0, 1, 15, 16, 17, blobs_end / 2, blobs_end - 1, blobs_end, len - 12, len - 1] {
        let at = format!("{object} cut to {new_len} of {len} bytes");
        with_damage(&path, truncate(new_len), || {
            let report = verify_all(&f.repo);
            let snapshot_a = format!("snapshot {}", f.a.id.short());
            assert!(problem_objects(&report).contains(&object.as_str()), "{at}: {:#?}", report.problems);
            assert!(
                problem_objects(&report).iter().all(|o| *o == object || *o == snapshot_a),
                "{at}: {:#?}",
                report.problems
            );
            // The index's size no longer matches: all of the pack's chunks are in doubt.
            assert!(snapshots_named(&report).contains(&f.a.label().as_str()), "{at}: {:#?}", report.problems);
            if new_len < blobs_end {
                f.assert_restore_fails_naming(&f.a, &pack.id.short(), &at);
            } else {
                f.assert_restores(&f.a, &at);
            }
            f.assert_restores(&f.b, &at);
        });
    }
}

#[test]
fn truncated_index_and_manifest_give_clear_errors() {
    let f = fixture(options());
    let (index, _) = f.packs_of(&f.a).into_iter().next().unwrap();
    let index_path = f.path(&format!("index/{index}"));
    let index_len = std::fs::metadata(&index_path).unwrap().len() as usize;
    let index_object = format!("index {}", index.short());
    for new_len in [0, 8, 16, 30, index_len / 2, index_len - 1] {
        let at = format!("{index_object} cut to {new_len} bytes");
        with_damage(&index_path, truncate(new_len), || {
            let report = verify_all(&f.repo);
            assert!(problem_objects(&report).contains(&index_object.as_str()), "{at}: {:#?}", report.problems);
            assert!(snapshots_named(&report).contains(&f.a.label().as_str()), "{at}: {:#?}", report.problems);
            f.assert_restore_fails_naming(&f.a, &index_object, &at);
        });
    }

    let manifest_path = f.path(&format!("snapshots/{}", f.a.id));
    let manifest_len = std::fs::metadata(&manifest_path).unwrap().len() as usize;
    let manifest_object = format!("snapshot {}", f.a.id.short());
    for new_len in [0, 8, 16, 30, manifest_len / 2, manifest_len - 1] {
        let at = format!("{manifest_object} cut to {new_len} bytes");
        with_damage(&manifest_path, truncate(new_len), || {
            let error = f.repo.load_snapshot(&f.a.id).unwrap_err();
            assert!(matches!(&error, Error::Corrupt { object, .. } if *object == manifest_object), "{at}: {error}");
            let report = verify_all(&f.repo);
            assert_eq!(problem_objects(&report), [manifest_object.as_str()], "{at}: {:#?}", report.problems);
            f.assert_restores(&f.b, &at);
        });
    }
    assert_verify_clean(&f.repo);
}

fn open(storage: &Arc<dyn Storage>, passphrase: &[u8]) -> drydock_engine::Result<Repository> {
    Repository::open(storage.clone(), Some(passphrase))
}

fn assert_config_error(result: drydock_engine::Result<Repository>, at: &str) {
    match result {
        Ok(_) => panic!("{at}: a damaged config was accepted"),
        Err(Error::Corrupt { object, .. } | Error::UnsupportedVersion { object, .. }) if object == "config" => {}
        Err(other) => panic!("{at}: expected an error about the config, got {other}"),
    }
}

#[test]
fn truncated_config_and_key_slot_give_clear_errors() {
    let f = fixture(options());
    let config_path = f.path("config");
    let config_len = std::fs::metadata(&config_path).unwrap().len() as usize;
    for new_len in [0, 8, 16, 47, config_len / 2, config_len - 33, config_len - 1] {
        let at = format!("config cut to {new_len} of {config_len} bytes");
        with_damage(&config_path, truncate(new_len), || {
            assert_config_error(open(&f.storage, PASSPHRASE), &at);
            assert!(probe(f.storage.as_ref()).is_err(), "{at}: probe accepted it");
        });
    }

    let slots = f.storage.list("keys/").unwrap();
    assert_eq!(slots.len(), 1);
    let slot_path = f.path(slots[0].key.as_str());
    let slot_len = slots[0].size_bytes as usize;
    for new_len in [0, 8, 16, 30, slot_len / 2, slot_len - 1] {
        let at = format!("key slot cut to {new_len} of {slot_len} bytes");
        with_damage(&slot_path, truncate(new_len), || match open(&f.storage, PASSPHRASE) {
            // Not "wrong passphrase": the passphrase may well be right.
            Err(Error::Corrupt { object, .. } | Error::UnsupportedVersion { object, .. }) => {
                assert!(object.starts_with("key slot"), "{at}: {object}")
            }
            Err(other) => panic!("{at}: expected an error about the key slot, got {other}"),
            Ok(_) => panic!("{at}: opened with a damaged key slot"),
        });
    }
    open(&f.storage, PASSPHRASE).unwrap();
}

#[test]
fn every_flipped_config_byte_is_detected_at_open() {
    for options in [options(), InitOptions { kdf: TEST_KDF, ..InitOptions::unencrypted() }] {
        let dir = tempfile::tempdir().unwrap();
        let (storage, _) = local_repo(dir.path(), options);
        let path = dir.path().join("config");
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        // Header, JSON and MAC alike: a flip anywhere must be refused (the MAC covers all).
        for position in 0..len {
            with_damage(&path, flip(position), || {
                assert_config_error(open(&storage, PASSPHRASE), &format!("config byte {position} of {len}"))
            });
        }
        open(&storage, PASSPHRASE).unwrap();
    }
}

#[test]
fn wrong_passphrase_and_missing_repository_are_told_apart() {
    let f = fixture(options());
    assert!(matches!(open(&f.storage, b"not the passphrase"), Err(Error::WrongPassphrase)));
    assert!(matches!(Repository::open(f.storage.clone(), None), Err(Error::InvalidInput(_))));

    let empty = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::open(empty.path()).unwrap());
    std::fs::write(empty.path().join("unrelated"), b"not a repository").unwrap();
    let error = open(&storage, PASSPHRASE).unwrap_err();
    assert!(matches!(error, Error::NotARepository(_)), "{error}");
    assert!(error.to_string().contains(&empty.path().display().to_string()), "{error}");
    assert!(matches!(probe(storage.as_ref()), Err(Error::NotARepository(_))));
    assert!(matches!(Repository::init(f.storage.clone(), options()), Err(Error::AlreadyARepository(_))));
}

#[test]
fn unencrypted_repository_detects_a_flipped_blob_byte() {
    let f = fixture(InitOptions { kdf: TEST_KDF, chunk_size_bytes: CHUNK_BYTES as u32, ..InitOptions::unencrypted() });
    Repository::open(f.storage.clone(), None).unwrap();
    let pack = f.pack_of_a();
    let path = f.pack_path(&pack.id);
    let object = format!("pack {}", pack.id.short());
    let blob = pack.blobs[0];
    let start = blob.offset as usize;
    let end = start + blob.stored_len as usize;
    // First byte, middle and the last byte (the tag) of one blob.
    for position in [start, (start + end) / 2, end - 1] {
        let at = format!("byte {position} of {object}");
        with_damage(&path, flip(position), || {
            let report = verify_all(&f.repo);
            assert!(problem_objects(&report).iter().all(|o| *o == object), "{at}: {:#?}", report.problems);
            assert!(snapshots_named(&report).contains(&f.a.label().as_str()), "{at}: {:#?}", report.problems);
            let error = f.assert_restore_fails_naming(&f.a, &object, &at);
            assert!(matches!(error, Error::Corrupt { .. }), "{at}: {error}");
            f.assert_restores(&f.b, &at);
        });
    }
    assert_verify_clean(&f.repo);
}

/// Verify says a damaged index file affects only the snapshots whose chunks it lists, and
/// restore checks every chunk it reads against its id, so skipping the damaged file can never
/// yield wrong data: a snapshot verify calls intact must still restore.
#[test]
fn snapshot_verify_calls_intact_restores_despite_another_damaged_index_file() {
    let f = fixture(options());
    let (index_a, _) = f.packs_of(&f.a).into_iter().next().unwrap();
    assert!(f.packs_of(&f.b).iter().all(|(index, _)| *index != index_a), "fixture: b is listed elsewhere");
    let path = f.path(&format!("index/{index_a}"));
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    with_damage(&path, flip(len / 2), || {
        let report = verify_all(&f.repo);
        assert!(!snapshots_named(&report).contains(&f.b.label().as_str()), "{:#?}", report.problems);
        f.assert_restores(&f.b, "b, with a's index file damaged");
    });
}
