//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use drydock_engine::keys::KdfParams;
use drydock_engine::{InitOptions, Repository};
use drydock_storage::{MemoryStorage, Storage};

/// Cheap key derivation: tests open repositories hundreds of times.
pub const TEST_KDF: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };
pub const PASSPHRASE: &[u8] = b"test passphrase";

pub fn options() -> InitOptions {
    InitOptions {
        chunk_size_bytes: 64 << 10,
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
