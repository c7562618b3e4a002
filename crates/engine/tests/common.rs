//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use drydock_engine::backup::{BackupOptions, BackupReport, backup};
use drydock_engine::id::SnapshotId;
use drydock_engine::keys::KdfParams;
use drydock_engine::restore::restore;
use drydock_engine::verify::{Subset, VerifyOptions, VerifyReport, verify};
use drydock_engine::{CancelToken, InitOptions, NoProgress, Repository};
use drydock_sources::{ImageFile, StreamTarget};
use drydock_storage::{LocalStorage, MemoryStorage, Storage};

/// Cheap key derivation: tests open repositories hundreds of times.
pub const TEST_KDF: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };
pub const PASSPHRASE: &[u8] = b"test passphrase";

pub fn options() -> InitOptions {
    InitOptions {
        chunk_size_bytes: CHUNK_BYTES as u32,
        pack_size_bytes_target: 1 << 20,
        kdf: TEST_KDF,
        ..InitOptions::encrypted(PASSPHRASE)
    }
}

pub fn memory_repo() -> (Arc<dyn Storage>, Repository) {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let repo = Repository::init(storage.clone(), options()).unwrap();
    (storage, repo)
}

/// Deterministic pseudo-random bytes (xorshift), compressible when `text_like`.
pub fn pattern(len: usize, seed: u64, text_like: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if text_like { b"abcdefgh \n"[(x % 10) as usize] } else { x as u8 }
        })
        .collect()
}

/// Writes a sparse image: random data, text, a hole, and zeros written explicitly.
pub fn write_image(dir: &Path, name: &str, seed: u64) -> PathBuf {
    use std::os::unix::fs::FileExt;
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(3 << 20).unwrap();
    file.write_all_at(&pattern(700 << 10, seed, false), 0).unwrap();
    file.write_all_at(&pattern(500 << 10, seed + 1, true), 800 << 10).unwrap();
    file.write_all_at(&vec![0u8; 128 << 10], 1536 << 10).unwrap();
    file.write_all_at(&pattern(100_001, seed + 2, false), (3 << 20) - 100_001).unwrap();
    path
}

/// The chunk size of [`options`].
pub const CHUNK_BYTES: usize = 64 << 10;
/// Reorder window of in-memory restores: larger than any test image, so writers never wait.
const REORDER_BYTES_MAX: u64 = 64 << 20;

/// A repository in `root` (created), on disk: for tests that damage files or need real I/O.
pub fn local_repo(root: &Path, options: InitOptions) -> (Arc<dyn Storage>, Repository) {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::create(root).unwrap());
    let repo = Repository::init(storage.clone(), options).unwrap();
    (storage, repo)
}

pub fn try_backup_path(repo: &Repository, path: &Path, name: &str) -> drydock_engine::Result<BackupReport> {
    let source = ImageFile::open(path).unwrap();
    backup(repo, &source, &BackupOptions { name: name.into(), tags: Vec::new() }, &NoProgress, &CancelToken::new())
}

pub fn backup_path(repo: &Repository, path: &Path, name: &str) -> BackupReport {
    try_backup_path(repo, path, name).unwrap_or_else(|e| panic!("backup of {} failed: {e}", path.display()))
}

/// Writes `bytes` as an image file and backs it up.
pub fn backup_bytes(repo: &Repository, dir: &Path, name: &str, bytes: &[u8]) -> BackupReport {
    let path = dir.join(format!("{name}.img"));
    std::fs::write(&path, bytes).unwrap();
    backup_path(repo, &path, name)
}

/// A `Write` whose bytes the test can read after the restore consumed the target.
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Restores a snapshot into memory (through a stream target, so no file system is involved).
pub fn try_restore_bytes(repo: &Repository, id: &SnapshotId) -> drydock_engine::Result<Vec<u8>> {
    let manifest = repo.load_snapshot(id)?;
    let buffer = SharedBuffer::default();
    let target = Box::new(StreamTarget::new(buffer.clone(), REORDER_BYTES_MAX));
    restore(repo, id, &manifest, target, &NoProgress, &CancelToken::new())?;
    let bytes = std::mem::take(&mut *buffer.0.lock().unwrap());
    Ok(bytes)
}

pub fn restore_bytes(repo: &Repository, id: &SnapshotId) -> Vec<u8> {
    try_restore_bytes(repo, id).unwrap_or_else(|e| panic!("restore of snapshot {} failed: {e}", id.short()))
}

/// Verify reading every pack.
pub fn verify_all(repo: &Repository) -> VerifyReport {
    verify(repo, &VerifyOptions { read_data: Some(Subset::All) }, &|_| {}, &NoProgress, &CancelToken::new()).unwrap()
}

pub fn assert_verify_clean(repo: &Repository) {
    let report = verify_all(repo);
    assert!(report.problems.is_empty(), "verify found problems: {:#?}", report.problems);
}

/// Every object in the storage with its size: a fingerprint of the repository's state.
pub fn objects(storage: &dyn Storage) -> BTreeMap<String, u64> {
    storage.list("").unwrap().into_iter().map(|info| (info.key.as_str().to_string(), info.size_bytes)).collect()
}

pub fn count_under(storage: &dyn Storage, prefix: &str) -> usize {
    storage.list(prefix).unwrap().len()
}

pub fn pack_bytes(storage: &dyn Storage) -> u64 {
    storage.list("packs/").unwrap().iter().map(|info| info.size_bytes).sum()
}

/// A temporary directory in memory (tmpfs) where the machine has one. For tests that open
/// hundreds of leases on a `LocalStorage`: every lease put and delete syncs, which costs
/// milliseconds on a busy disk and nothing on tmpfs, and the files are the same files.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let writable = std::fs::metadata(shm).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if writable && let Ok(dir) = tempfile::tempdir_in(shm) {
        return dir;
    }
    tempfile::tempdir().unwrap()
}
