use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::atomic_write::{TEMP_PREFIX, temp_name};
use super::*;

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(name).unwrap()
}

/// Every temporary file below `dir`, found independently of the code under test.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(temp_files(&path));
        } else if path.file_name().unwrap().to_str().unwrap().starts_with(TEMP_PREFIX) {
            found.push(path);
        }
    }
    found
}

fn listed_keys(storage: &LocalStorage, prefix: &str) -> Vec<String> {
    storage.list(prefix).unwrap().into_iter().map(|info| info.key.as_str().to_string()).collect()
}

/// Leaves a temporary file as a writer that crashed `age` ago would have.
fn leave_temp_file(dir: &Path, age: Duration) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(temp_name());
    let file = File::create(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
    path
}

#[test]
fn open_rejects_a_missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let error = LocalStorage::open(dir.path().join("missing")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn open_rejects_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let error = LocalStorage::open(&file).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert!(error.to_string().ends_with("not a directory"), "{error}");
    assert!(LocalStorage::create(&file).is_err());
}

#[test]
fn create_makes_missing_parents_and_describes_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/repo");
    let storage = LocalStorage::create(&root).unwrap();
    assert!(root.is_dir());
    assert_eq!(storage.root(), root);
    assert_eq!(storage.describe(), format!("local {}", root.display()));
    LocalStorage::open(&root).unwrap();
}

#[test]
fn temp_files_never_appear_in_list_during_puts() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::open(dir.path()).unwrap();
    let data = vec![1u8; 64 << 10];
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for index in 0..200 {
                storage.put(&key(&format!("packs/p{}", index % 10)), &data).unwrap();
            }
        });
        for _ in 0..200 {
            for name in listed_keys(&storage, "") {
                assert!(!name.contains("tmp"), "list showed {name}");
            }
        }
    });
    assert_eq!(listed_keys(&storage, "").len(), 10);
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn leftover_temp_files_are_ignored_then_removed_once_stale() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::open(dir.path()).unwrap();
    storage.put(&key("packs/ab/object"), b"data").unwrap();
    let stale = leave_temp_file(&dir.path().join("packs/ab"), Duration::from_secs(7200));
    let fresh = leave_temp_file(dir.path(), Duration::ZERO);
    assert_eq!(listed_keys(&storage, ""), ["packs/ab/object"]);
    // Not even a valid key, so nothing can address it as an object.
    assert!(ObjectKey::new(stale.file_name().unwrap().to_str().unwrap()).is_err());

    assert_eq!(storage.remove_stale_temp_files(Duration::from_secs(3600)).unwrap(), 1);
    assert!(!stale.exists() && fresh.exists(), "only the stale file goes");
    assert_eq!(storage.remove_stale_temp_files(Duration::ZERO).unwrap(), 1);
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
    assert_eq!(storage.get(&key("packs/ab/object")).unwrap(), b"data");
}

#[test]
fn put_below_an_object_fails_clearly_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::open(dir.path()).unwrap();
    storage.put(&key("a/b"), b"object").unwrap();
    let error = storage.put(&key("a/b/c"), b"x").unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent);
    let message = error.to_string();
    assert!(message.starts_with("put a/b/c in local ") && message.contains("not a directory"), "{message}");
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
    assert_eq!(storage.get(&key("a/b")).unwrap(), b"object");
}

#[test]
fn io_errors_map_to_storage_error_kinds() {
    let cases = [
        (io::ErrorKind::NotFound, ErrorKind::NotFound),
        (io::ErrorKind::NotADirectory, ErrorKind::NotFound),
        (io::ErrorKind::StorageFull, ErrorKind::NoSpace),
        (io::ErrorKind::QuotaExceeded, ErrorKind::NoSpace),
        (io::ErrorKind::Interrupted, ErrorKind::Transient),
        (io::ErrorKind::TimedOut, ErrorKind::Transient),
        (io::ErrorKind::WouldBlock, ErrorKind::Transient),
        (io::ErrorKind::PermissionDenied, ErrorKind::Permanent),
        (io::ErrorKind::ReadOnlyFilesystem, ErrorKind::Permanent),
    ];
    for (io_kind, kind) in cases {
        assert_eq!(kind_of(&io::Error::from(io_kind)), kind, "{io_kind:?}");
    }
    // The raw errnos the kernel reports for a full disk and an exhausted quota.
    assert_eq!(kind_of(&io::Error::from_raw_os_error(28)), ErrorKind::NoSpace, "ENOSPC");
    assert_eq!(kind_of(&io::Error::from_raw_os_error(122)), ErrorKind::NoSpace, "EDQUOT");
}

/// `len` bytes of a non-repeating pattern starting at an address aligned for direct I/O, plus
/// `shift` bytes before it so `&buffer[shift..]` is deliberately misaligned when `shift > 0`.
fn aligned_pattern(len: usize, shift: usize) -> (Vec<u8>, usize) {
    use super::atomic_write::DIRECT_IO_ALIGN_BYTES;
    let mut buffer = vec![0u8; len + shift + DIRECT_IO_ALIGN_BYTES];
    let start = buffer.as_ptr().align_offset(DIRECT_IO_ALIGN_BYTES) + shift;
    for (i, byte) in buffer[start..start + len].iter_mut().enumerate() {
        *byte = (i * 7 + i / 4096) as u8;
    }
    (buffer, start)
}

#[test]
fn large_puts_read_back_exactly_whatever_their_alignment() {
    use super::atomic_write::{DIRECT_IO_ALIGN_BYTES, DIRECT_WRITE_BYTES_MIN, direct_prefix_len};
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::open(dir.path()).unwrap();
    let big = DIRECT_WRITE_BYTES_MIN + 3 * DIRECT_IO_ALIGN_BYTES;
    // Aligned and block-sized, aligned with a short tail, misaligned in memory, and small.
    for (i, (len, shift, direct)) in
        [(big, 0, true), (big + 1, 0, true), (big - 1, 0, true), (big + 100, 1, false), (5000, 0, false)]
            .into_iter()
            .enumerate()
    {
        let (buffer, start) = aligned_pattern(len, shift);
        let data = &buffer[start..start + len];
        assert_eq!(direct_prefix_len(data) > 0, direct, "case {i}");
        assert_eq!(direct_prefix_len(data) % DIRECT_IO_ALIGN_BYTES, 0);
        let k = key(&format!("packs/0{i}/obj"));
        storage.put(&k, data).unwrap();
        assert_eq!(storage.get(&k).unwrap(), data, "case {i}");
        assert_eq!(fs::metadata(dir.path().join(k.as_str())).unwrap().len(), len as u64);
    }
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn large_put_replaces_a_longer_object_whole() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::open(dir.path()).unwrap();
    let k = key("packs/aa/obj");
    storage.put(&k, &vec![9u8; 1 << 20]).unwrap();
    let (buffer, start) = aligned_pattern(300 << 10, 0);
    storage.put(&k, &buffer[start..start + (300 << 10)]).unwrap();
    assert_eq!(storage.get(&k).unwrap(), &buffer[start..start + (300 << 10)]);
}
