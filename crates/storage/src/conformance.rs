//! The [`Storage`] contract as executable checks, shared by every implementation.
//!
//! Public and always compiled (not `cfg(test)`) so that each backend's tests, in this crate or
//! another, run the same suite: `conformance::run_all(&|| Box::new(MyStorage::new(...)))`.
//! Violations panic, because the callers are tests.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::{ErrorKind, ObjectKey, Result, Storage};

/// How long a check waits for `list` to catch up: the contract lets listings lag, so a merely
/// eventually consistent backend must not fail, but a wrong listing must not hang the suite.
const LIST_SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Writers and keys per writer in the concurrency check: enough to interleave on any machine.
const CONCURRENT_WRITERS: usize = 8;
const CONCURRENT_KEYS_PER_WRITER: usize = 16;

type Check = fn(&dyn Storage);

const CHECKS: &[(&str, Check)] = &[
    ("put_get_roundtrip", put_get_roundtrip),
    ("put_replaces_existing_object", put_replaces_existing_object),
    ("missing_objects_are_not_found", missing_objects_are_not_found),
    ("stat_reports_size", stat_reports_size),
    ("get_range_bounds", get_range_bounds),
    ("list_by_prefix", list_by_prefix),
    ("delete_is_idempotent", delete_is_idempotent),
    ("nested_keys", nested_keys),
    ("unusual_but_valid_keys", unusual_but_valid_keys),
    ("concurrent_writers", concurrent_writers),
];

/// Runs every check, each against a fresh storage from `make`, which must start empty.
pub fn run_all(make: &dyn Fn() -> Box<dyn Storage>) {
    for (name, check) in CHECKS {
        let storage = make();
        let description = storage.describe();
        assert_eq!(storage.list("").unwrap(), [], "conformance check {name} needs an empty {description}");
        // Catch and re-raise so the failure names the check and the storage, not just a line here.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| check(&*storage))) {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("storage conformance check {name} failed on {description}: {message}");
        }
    }
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(name).unwrap_or_else(|e| panic!("test key: {e}"))
}

/// Bytes that differ from position to position, so a shifted or truncated read shows.
fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length).map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8 ^ seed).collect()
}

fn put(storage: &dyn Storage, name: &str, data: &[u8]) {
    storage.put(&key(name), data).unwrap_or_else(|e| panic!("{e}"));
}

/// Compares by length and equality rather than `assert_eq!`, which would print megabytes.
fn assert_reads(storage: &dyn Storage, name: &str, expected: &[u8]) {
    let data = storage.get(&key(name)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        data == expected,
        "get {name} returned {} bytes that differ from the {} bytes put",
        data.len(),
        expected.len()
    );
}

fn assert_kind<T: std::fmt::Debug>(result: Result<T>, kind: ErrorKind, what: &str) {
    match result {
        Err(e) => assert_eq!(e.kind, kind, "{what}: {e}"),
        Ok(value) => panic!("{what}: expected an error of kind {kind:?}, got Ok({value:?})"),
    }
}

/// Waits until `list(prefix)` returns exactly `expected` (key, size) pairs, in any order.
fn assert_lists(storage: &dyn Storage, prefix: &str, expected: &[(&str, u64)]) {
    let mut expected: Vec<(String, u64)> = expected.iter().map(|&(k, size)| (k.to_string(), size)).collect();
    expected.sort();
    let deadline = Instant::now() + LIST_SETTLE_TIMEOUT;
    loop {
        let listed = storage.list(prefix).unwrap_or_else(|e| panic!("{e}"));
        let mut listed: Vec<(String, u64)> =
            listed.into_iter().map(|info| (info.key.as_str().to_string(), info.size_bytes)).collect();
        listed.sort();
        if listed == expected {
            return;
        }
        assert!(Instant::now() < deadline, "list {prefix:?} returned {listed:?}, expected {expected:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn put_get_roundtrip(storage: &dyn Storage) {
    put(storage, "small", b"hello");
    assert_reads(storage, "small", b"hello");
    put(storage, "empty", b"");
    assert_reads(storage, "empty", b"");
    let all_bytes: Vec<u8> = (0..=255).collect();
    put(storage, "all-bytes", &all_bytes);
    assert_reads(storage, "all-bytes", &all_bytes);
    let large = pattern(5 << 20, 1);
    put(storage, "large", &large);
    assert_reads(storage, "large", &large);
}

fn put_replaces_existing_object(storage: &dyn Storage) {
    put(storage, "packs/object", &pattern(1000, 1));
    put(storage, "packs/object", &pattern(10, 2));
    assert_reads(storage, "packs/object", &pattern(10, 2));
    assert_eq!(storage.stat(&key("packs/object")).unwrap().size_bytes, 10);
    assert_lists(storage, "packs/", &[("packs/object", 10)]);
}

fn missing_objects_are_not_found(storage: &dyn Storage) {
    assert_kind(storage.get(&key("missing")), ErrorKind::NotFound, "get of a missing key");
    assert_kind(storage.get_range(&key("missing"), 0, 0), ErrorKind::NotFound, "get_range of a missing key");
    assert_kind(storage.stat(&key("missing")), ErrorKind::NotFound, "stat of a missing key");
    // A key that is only a prefix of others, or lies below an object, names no object either
    // (on a filesystem these are a directory and a path through a file).
    put(storage, "dir/child", b"x");
    assert_kind(storage.get(&key("dir")), ErrorKind::NotFound, "get of a key that is only a prefix");
    assert_kind(storage.stat(&key("dir")), ErrorKind::NotFound, "stat of a key that is only a prefix");
    assert_kind(storage.get_range(&key("dir"), 0, 0), ErrorKind::NotFound, "get_range of a prefix");
    assert_kind(storage.get(&key("dir/child/below")), ErrorKind::NotFound, "get below an object");
    assert_kind(storage.stat(&key("dir/child/below")), ErrorKind::NotFound, "stat below an object");
}

fn stat_reports_size(storage: &dyn Storage) {
    put(storage, "sized", &pattern(1234, 3));
    put(storage, "empty", b"");
    let info = storage.stat(&key("sized")).unwrap();
    assert_eq!((info.key.as_str(), info.size_bytes), ("sized", 1234));
    assert_eq!(storage.stat(&key("empty")).unwrap().size_bytes, 0);
}

fn get_range_bounds(storage: &dyn Storage) {
    let data = pattern(100, 4);
    put(storage, "ranged", &data);
    let range = |offset: u64, length: u64| storage.get_range(&key("ranged"), offset, length);
    assert_eq!(range(10, 20).unwrap(), &data[10..30], "middle");
    assert_eq!(range(0, 10).unwrap(), &data[..10], "start");
    assert_eq!(range(90, 10).unwrap(), &data[90..], "ending exactly at the end");
    assert_eq!(range(0, 100).unwrap(), data, "whole object");
    assert_eq!(range(100, 0).unwrap(), Vec::<u8>::new(), "empty range at the end");
    assert_kind(range(95, 10), ErrorKind::OutOfRange, "range running past the end");
    assert_kind(range(0, 101), ErrorKind::OutOfRange, "range one byte too long");
    assert_kind(range(101, 0), ErrorKind::OutOfRange, "empty range starting past the end");
    assert_kind(range(200, 1), ErrorKind::OutOfRange, "range starting past the end");
    assert_kind(range(u64::MAX, 2), ErrorKind::OutOfRange, "range whose end overflows");
}

fn list_by_prefix(storage: &dyn Storage) {
    let objects: &[(&str, u64)] = &[
        ("packs/ab/x", 1),
        ("packs/ab/y", 2),
        ("packs/ac/z", 3),
        ("packs/b/w", 4),
        ("packsx", 5),
        ("packs-old/q", 6),
        ("index/1", 7),
        ("top", 8),
    ];
    for &(name, size) in objects {
        put(storage, name, &pattern(size as usize, 5));
    }
    let only = |names: &[&str]| -> Vec<(&str, u64)> {
        objects.iter().copied().filter(|(name, _)| names.contains(name)).collect()
    };
    assert_lists(storage, "", objects);
    assert_lists(storage, "packs/", &only(&["packs/ab/x", "packs/ab/y", "packs/ac/z", "packs/b/w"]));
    // A prefix may end in the middle of a segment.
    assert_lists(storage, "packs/a", &only(&["packs/ab/x", "packs/ab/y", "packs/ac/z"]));
    assert_lists(storage, "packs/ab", &only(&["packs/ab/x", "packs/ab/y"]));
    assert_lists(storage, "packs/ab/", &only(&["packs/ab/x", "packs/ab/y"]));
    assert_lists(storage, "packs/ab/x", &only(&["packs/ab/x"]));
    assert_lists(
        storage,
        "packs",
        &only(&["packs/ab/x", "packs/ab/y", "packs/ac/z", "packs/b/w", "packsx", "packs-old/q"]),
    );
    assert_lists(storage, "packsx", &only(&["packsx"]));
    assert_lists(storage, "to", &only(&["top"]));
    // Prefixes no key can start with: below an object, and not keys at all.
    for prefix in ["nothing", "packs/ab/x/", "top/", "packs/c", "/", "packs//", "../", "./packs/", "PACKS/"] {
        assert_lists(storage, prefix, &[]);
    }
}

fn delete_is_idempotent(storage: &dyn Storage) {
    put(storage, "doomed", b"x");
    put(storage, "kept", b"y");
    storage.delete(&key("doomed")).unwrap();
    assert_kind(storage.get(&key("doomed")), ErrorKind::NotFound, "get after delete");
    assert_kind(storage.stat(&key("doomed")), ErrorKind::NotFound, "stat after delete");
    assert_lists(storage, "", &[("kept", 1)]);
    storage.delete(&key("doomed")).unwrap();
    storage.delete(&key("never-existed")).unwrap();
    // Deleting a key that is only a prefix of another deletes nothing.
    put(storage, "dir/child", b"z");
    storage.delete(&key("dir")).unwrap();
    assert_reads(storage, "dir/child", b"z");
}

fn nested_keys(storage: &dyn Storage) {
    put(storage, "a/b/c/d/e/f/g", b"deep");
    put(storage, "a/b/x", b"shallow");
    put(storage, "a/y", b"top");
    assert_reads(storage, "a/b/c/d/e/f/g", b"deep");
    assert_lists(storage, "a/b/", &[("a/b/c/d/e/f/g", 4), ("a/b/x", 7)]);
    storage.delete(&key("a/b/c/d/e/f/g")).unwrap();
    assert_lists(storage, "a/", &[("a/b/x", 7), ("a/y", 3)]);
    // The place a deleted object lived in can hold a new one.
    put(storage, "a/b/c/d/e/f/h", b"again");
    assert_reads(storage, "a/b/c/d/e/f/h", b"again");
}

fn unusual_but_valid_keys(storage: &dyn Storage) {
    // Names a file-based backend might be tempted to treat as its own: hidden files, names like
    // temporary files, names made of dots.
    let names = [".hidden", "d/.tmp-123-4-5", "d/..x", "d/...", "snapshots/2024-01-01_t.json", "-", "0"];
    for name in names {
        put(storage, name, name.as_bytes());
    }
    for name in names {
        assert_reads(storage, name, name.as_bytes());
    }
    let expected: Vec<(&str, u64)> = names.iter().map(|&name| (name, name.len() as u64)).collect();
    assert_lists(storage, "", &expected);
}

fn concurrent_writers(storage: &dyn Storage) {
    let name = |writer: usize, index: usize| format!("concurrent/{writer}/{index}");
    let data = |writer: usize, index: usize| pattern(100 * (index + 1), writer as u8);
    std::thread::scope(|scope| {
        for writer in 0..CONCURRENT_WRITERS {
            scope.spawn(move || {
                for index in 0..CONCURRENT_KEYS_PER_WRITER {
                    put(storage, &name(writer, index), &data(writer, index));
                    assert_reads(storage, &name(writer, index), &data(writer, index));
                }
            });
        }
    });
    let mut expected = Vec::new();
    for writer in 0..CONCURRENT_WRITERS {
        for index in 0..CONCURRENT_KEYS_PER_WRITER {
            assert_reads(storage, &name(writer, index), &data(writer, index));
            expected.push((name(writer, index), data(writer, index).len() as u64));
        }
    }
    let expected: Vec<(&str, u64)> = expected.iter().map(|(name, size)| (name.as_str(), *size)).collect();
    assert_lists(storage, "concurrent/", &expected);
}
