//! Copying a snapshot to another repository: different keys, possibly a different chunk size;
//! the copy restores bit-exactly, stores only what the destination lacks, and a damaged source
//! fails it without leaving a snapshot behind.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use drydock_engine::backup::{BackupOptions, BackupReport, backup};
use drydock_engine::copy::{SnapshotSource, copy_snapshot};
use drydock_engine::lease::list_leases;
use drydock_engine::{CancelToken, Error, InitOptions, NoProgress, Progress, Repository};
use drydock_sources::{BlockSource, ImageFile};
use drydock_storage::{ObjectInfo, ObjectKey, Storage};

const OTHER_PASSPHRASE: &[u8] = b"the other region's passphrase";

/// A destination: its own passphrase (so its own keys), and the chunk size asked for.
fn destination_options(chunk_size_bytes: usize) -> InitOptions {
    InitOptions {
        chunk_size_bytes: chunk_size_bytes as u32,
        pack_size_bytes_target: 1 << 20,
        kdf: TEST_KDF,
        ..InitOptions::encrypted(OTHER_PASSPHRASE)
    }
}

/// Source and destination repositories on disk, in one temporary directory.
struct Regions {
    dir: tempfile::TempDir,
    source_storage: Arc<dyn Storage>,
    source: Repository,
    destination_storage: Arc<dyn Storage>,
    destination: Repository,
}

fn regions(source_chunk_bytes: usize, destination_chunk_bytes: usize) -> Regions {
    let dir = scratch_dir();
    let source_options = InitOptions { chunk_size_bytes: source_chunk_bytes as u32, ..options() };
    let (source_storage, source) = local_repo(&dir.path().join("nyc1"), source_options);
    let (destination_storage, destination) =
        local_repo(&dir.path().join("ams3"), destination_options(destination_chunk_bytes));
    Regions { dir, source_storage, source, destination_storage, destination }
}

impl Regions {
    fn copy(&self, report: &BackupReport, options: &BackupOptions) -> drydock_engine::Result<BackupReport> {
        copy_snapshot(&self.source, &report.id, &self.destination, options, &NoProgress, &CancelToken::new())
    }

    fn leases_on_source(&self) -> usize {
        list_leases(self.source_storage.as_ref()).unwrap().len()
    }
}

fn backup_tagged(repo: &Repository, path: &Path, name: &str, tags: &[&str]) -> BackupReport {
    let options = BackupOptions { name: name.into(), tags: tags.iter().map(|t| t.to_string()).collect() };
    backup(repo, &ImageFile::open(path).unwrap(), &options, &NoProgress, &CancelToken::new()).unwrap()
}

/// An image whose size is no multiple of any chunk size used here, with random data, text, a
/// hole, explicit zeros and a short tail.
fn write_odd_image(dir: &Path, name: &str, seed: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    let size_bytes = (3 << 20) + 12_345;
    file.set_len(size_bytes).unwrap();
    file.write_all_at(&pattern(300_000, seed, false), 5_000).unwrap();
    file.write_all_at(&pattern(400_000, seed + 1, true), 1 << 20).unwrap();
    file.write_all_at(&vec![0u8; 200_000], 1_500_000).unwrap();
    file.write_all_at(&pattern(50_001, seed + 2, false), size_bytes - 50_001).unwrap();
    path
}

#[test]
fn copy_between_encrypted_repositories_restores_bit_exact_and_keeps_name_and_tags() {
    let r = regions(CHUNK_BYTES, CHUNK_BYTES);
    let sparse = write_image(r.dir.path(), "sparse.img", 1);
    let odd = write_odd_image(r.dir.path(), "odd.img", 10);
    let snapshots = [
        (backup_tagged(&r.source, &sparse, "web-01", &["daily", "prod"]), sparse),
        (backup_tagged(&r.source, &odd, "db-01", &[]), odd),
    ];

    for (original, image) in &snapshots {
        let copy = r.copy(original, &BackupOptions::default()).unwrap();
        assert_eq!(copy.meta.name, original.meta.name);
        assert_eq!(copy.meta.tags, original.meta.tags);
        assert_eq!(copy.meta.size_bytes, original.meta.size_bytes);
        assert_eq!(copy.meta.chunks_zero, original.meta.chunks_zero, "zero chunks stay zero chunks");
        let expected_source = format!("snapshot {} ({}) in local ", original.id.short(), original.meta.name);
        assert!(copy.meta.source.starts_with(&expected_source), "{}", copy.meta.source);
        assert!(restore_bytes(&r.destination, &copy.id) == std::fs::read(image).unwrap(), "{image:?} differs");
    }
    assert!(snapshots[0].0.meta.chunks_zero > 0, "fixture: the first image has holes");
    assert!(
        !snapshots[1].0.meta.size_bytes.is_multiple_of(CHUNK_BYTES as u64),
        "fixture: the second image ends mid-chunk"
    );

    // Options set a new name and tags.
    let renamed = BackupOptions { name: "web-01-ams3".into(), tags: vec!["transferred".into()] };
    let copy = r.copy(&snapshots[0].0, &renamed).unwrap();
    assert_eq!((copy.meta.name.as_str(), copy.meta.tags.as_slice()), ("web-01-ams3", &["transferred".to_string()][..]));
    assert_eq!(copy.meta.chunks_new, 0, "the destination holds every chunk already");

    assert_eq!(r.destination.snapshot_ids().unwrap().len(), 3);
    assert_verify_clean(&r.destination);
    assert_eq!(r.leases_on_source(), 0, "the reader lease on the source is released");
    assert!(matches!(Repository::open(r.destination_storage.clone(), Some(PASSPHRASE)), Err(Error::WrongPassphrase)));
}

#[test]
fn copying_a_slightly_changed_snapshot_stores_only_the_changed_chunk() {
    let r = regions(CHUNK_BYTES, CHUNK_BYTES);
    let image = write_image(r.dir.path(), "disk.img", 2);
    let first = backup_tagged(&r.source, &image, "disk", &[]);
    // 4 KiB of fresh random data inside one chunk.
    let changed_bytes = 4096;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .write_all_at(&pattern(changed_bytes, 99, false), 70_000)
        .unwrap();
    let second = backup_tagged(&r.source, &image, "disk", &[]);

    let first_copy = r.copy(&first, &BackupOptions::default()).unwrap();
    let before_bytes = pack_bytes(r.destination_storage.as_ref());
    let second_copy = r.copy(&second, &BackupOptions::default()).unwrap();
    let added_bytes = pack_bytes(r.destination_storage.as_ref()) - before_bytes;

    // Deduplication works on whole chunks: the change costs its chunk, stored incompressible,
    // plus the pack's header and trailer. Twice that is a generous bound, and it is far below
    // the image.
    assert_eq!(second_copy.meta.chunks_new, 1);
    let changed_chunks_bytes = (changed_bytes.div_ceil(CHUNK_BYTES) * CHUNK_BYTES) as u64;
    assert!(added_bytes < 2 * changed_chunks_bytes, "the second copy stored {added_bytes} bytes");
    assert!(added_bytes * 20 < second.meta.size_bytes, "the second copy stored {added_bytes} bytes");
    assert_eq!(second_copy.meta.stored_bytes, added_bytes);
    assert_eq!(second_copy.meta.parent.as_deref(), Some(first_copy.id.to_hex().as_str()));
    assert!(restore_bytes(&r.destination, &second_copy.id) == std::fs::read(&image).unwrap());

    // Copying the same snapshot again stores nothing.
    let again = r.copy(&second, &BackupOptions::default()).unwrap();
    assert_eq!((again.meta.chunks_new, again.meta.stored_bytes), (0, 0));
}

/// The destination cuts the image at its own chunk boundaries, which fall inside the source's
/// chunks: a copy makes exactly the chunks a direct backup into the destination makes.
#[test]
fn copy_into_a_repository_with_a_different_chunk_size_is_exact() {
    // Larger and smaller than the source's, neither a multiple of the other.
    for (source_chunk_bytes, destination_chunk_bytes) in [(CHUNK_BYTES, 160 << 10), (160 << 10, CHUNK_BYTES)] {
        let context = format!("{source_chunk_bytes} → {destination_chunk_bytes} byte chunks");
        let r = regions(source_chunk_bytes, destination_chunk_bytes);
        let image = write_odd_image(r.dir.path(), "disk.img", 3);
        let original = backup_tagged(&r.source, &image, "disk", &["t"]);
        let direct = backup_tagged(&r.destination, &image, "direct", &[]);

        let copy = r.copy(&original, &BackupOptions::default()).unwrap();
        assert_eq!(copy.meta.chunk_size_bytes, destination_chunk_bytes as u32, "{context}");
        assert_eq!(copy.meta.chunks_new, 0, "{context}: every chunk is one the direct backup stored");
        let chunks = |id| r.destination.load_snapshot(id).unwrap().chunks;
        assert!(chunks(&copy.id) == chunks(&direct.id), "{context}: chunk lists differ");
        assert!(restore_bytes(&r.destination, &copy.id) == std::fs::read(&image).unwrap(), "{context}");
    }
}

#[test]
fn a_damaged_pack_in_the_source_fails_the_copy_naming_it_and_commits_nothing() {
    let r = regions(CHUNK_BYTES, CHUNK_BYTES);
    let image = write_image(r.dir.path(), "disk.img", 4);
    let original = backup_tagged(&r.source, &image, "disk", &[]);
    let (pack_id, _) = r.source.list_packs().unwrap().into_iter().next().unwrap();
    let hex = pack_id.to_hex();
    let path = r.dir.path().join(format!("nyc1/packs/{}/{hex}", &hex[..2]));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1; // inside the first blob, which starts after the 16-byte header
    std::fs::write(&path, &bytes).unwrap();

    let error = r.copy(&original, &BackupOptions::default()).unwrap_err();
    let Error::Corrupt { object, reason } = &error else { panic!("expected a damaged pack, got {error}") };
    assert!(object.starts_with(&format!("pack {}", pack_id.short())), "{error}");
    assert!(object.contains(&format!("snapshot {}", original.id.short())), "{error}");
    assert!(reason.contains("failed authentication"), "{error}");
    assert!(r.destination.snapshot_ids().unwrap().is_empty(), "a failed copy committed a snapshot");
    assert_eq!(r.leases_on_source(), 0, "the reader lease on the source is released");
    assert_eq!(count_under(r.destination_storage.as_ref(), "leases/"), 0);
}

#[test]
fn a_cancelled_copy_commits_nothing() {
    let r = regions(CHUNK_BYTES, CHUNK_BYTES);
    let original = backup_tagged(&r.source, &write_image(r.dir.path(), "disk.img", 5), "disk", &[]);
    let cancel = CancelToken::new();
    cancel.cancel();
    let result =
        copy_snapshot(&r.source, &original.id, &r.destination, &BackupOptions::default(), &NoProgress, &cancel);
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(r.destination.snapshot_ids().unwrap().is_empty());
    assert_eq!(r.leases_on_source(), 0);
}

/// Counts ranged reads of packs; everything else passes through.
#[derive(Debug)]
struct CountingStorage {
    inner: Arc<dyn Storage>,
    pack_reads: AtomicUsize,
}

impl Storage for CountingStorage {
    fn put(&self, key: &ObjectKey, data: &[u8]) -> drydock_storage::Result<()> {
        self.inner.put(key, data)
    }
    fn get(&self, key: &ObjectKey) -> drydock_storage::Result<Vec<u8>> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> drydock_storage::Result<Vec<u8>> {
        if key.as_str().starts_with("packs/") {
            self.pack_reads.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.get_range(key, offset, length)
    }
    fn list(&self, prefix: &str) -> drydock_storage::Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn delete(&self, key: &ObjectKey) -> drydock_storage::Result<()> {
        self.inner.delete(key)
    }
    fn stat(&self, key: &ObjectKey) -> drydock_storage::Result<ObjectInfo> {
        self.inner.stat(key)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// When the destination's chunks cut through the source's, the threads reading the parts of a
/// source chunk share one fetch of it: a copy reads each stored chunk once, whatever the sizes.
#[test]
fn a_copy_fetches_each_source_chunk_once() {
    for (source_chunk_bytes, destination_chunk_bytes) in
        [(CHUNK_BYTES, CHUNK_BYTES), (CHUNK_BYTES, 160 << 10), (160 << 10, CHUNK_BYTES)]
    {
        let context = format!("{source_chunk_bytes} → {destination_chunk_bytes} byte chunks");
        let r = regions(source_chunk_bytes, destination_chunk_bytes);
        let original = backup_tagged(&r.source, &write_odd_image(r.dir.path(), "disk.img", 8), "disk", &[]);
        let counting = Arc::new(CountingStorage { inner: r.source_storage.clone(), pack_reads: AtomicUsize::new(0) });
        let source = Repository::open(counting.clone(), Some(PASSPHRASE)).unwrap();
        let options = BackupOptions::default();
        copy_snapshot(&source, &original.id, &r.destination, &options, &NoProgress, &CancelToken::new()).unwrap();
        let stored_chunks = original.meta.size_bytes.div_ceil(source_chunk_bytes as u64) - original.meta.chunks_zero;
        assert_eq!(counting.pack_reads.load(Ordering::Relaxed) as u64, stored_chunks, "{context}");
    }
}

/// Records the operations of the source's leases whenever the copy reports progress.
struct LeaseWatcher<'a> {
    storage: &'a dyn Storage,
    seen: std::sync::Mutex<Vec<String>>,
}

impl Progress for LeaseWatcher<'_> {
    fn advance(&self, _bytes: u64) {
        let operations = list_leases(self.storage).unwrap().into_iter().filter_map(|(_, r)| r.map(|r| r.operation));
        self.seen.lock().unwrap().extend(operations);
    }
}

#[test]
fn the_copy_holds_a_reader_lease_on_the_source_while_it_reads() {
    let r = regions(CHUNK_BYTES, CHUNK_BYTES);
    let original = backup_tagged(&r.source, &write_image(r.dir.path(), "disk.img", 6), "disk", &[]);
    let watcher = LeaseWatcher { storage: r.source_storage.as_ref(), seen: Default::default() };
    copy_snapshot(&r.source, &original.id, &r.destination, &BackupOptions::default(), &watcher, &CancelToken::new())
        .unwrap();
    let seen = watcher.seen.into_inner().unwrap();
    assert!(!seen.is_empty() && seen.iter().all(|operation| operation == "restore"), "{seen:?}");
    assert_eq!(r.leases_on_source(), 0);
}

/// Reads of any length at any offset, from several threads at once, spanning chunks and holes.
#[test]
fn snapshot_source_reads_any_range_from_many_threads() {
    const THREADS: u64 = 8;
    const READS_PER_THREAD: u64 = 200;
    let r = regions(CHUNK_BYTES, CHUNK_BYTES);
    let path = write_odd_image(r.dir.path(), "disk.img", 7);
    let image = std::fs::read(&path).unwrap();
    let original = backup_tagged(&r.source, &path, "disk", &[]);

    let source = SnapshotSource::open(&r.source, &original.id).unwrap();
    assert_eq!(r.leases_on_source(), 1);
    assert_eq!(source.size_bytes(), image.len() as u64);
    assert_eq!(
        source.describe(),
        format!("snapshot {} (disk) in {}", original.id.short(), r.source_storage.describe())
    );
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (source, image) = (&source, &image);
            scope.spawn(move || {
                let lengths = pattern(READS_PER_THREAD as usize * 16, thread + 100, false);
                for read in lengths.chunks(16) {
                    let number = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap());
                    let len = number(&read[..8]) % (3 * CHUNK_BYTES as u64) + 1;
                    let offset = number(&read[8..]) % (image.len() as u64 - len + 1);
                    let mut buf = vec![0xAAu8; len as usize];
                    source.read_at(&mut buf, offset).unwrap();
                    assert!(buf[..] == image[offset as usize..(offset + len) as usize], "{len} bytes at {offset}");
                }
            });
        }
    });
    assert!(source.read_at(&mut [0u8; 2], image.len() as u64 - 1).is_err(), "a read past the end fails");

    // Every byte outside the data ranges is zero, and whole chunks of zeros are outside them.
    let ranges = source.data_ranges().unwrap();
    assert!(ranges.windows(2).all(|pair| pair[0].end < pair[1].start), "sorted, disjoint, merged: {ranges:?}");
    let gap_starts = std::iter::once(0).chain(ranges.iter().map(|range| range.end));
    let gap_ends = ranges.iter().map(|range| range.start).chain([image.len() as u64]);
    for (start, end) in gap_starts.zip(gap_ends) {
        assert!(image[start as usize..end as usize].iter().all(|&b| b == 0), "bytes {start}..{end} are not zeros");
    }
    let covered: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let zero_chunks_bytes = original.meta.chunks_zero * CHUNK_BYTES as u64;
    assert_eq!(covered, image.len() as u64 - zero_chunks_bytes);

    source.release().unwrap();
    assert_eq!(r.leases_on_source(), 0);
}
