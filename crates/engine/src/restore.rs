//! Restoring a snapshot: parallel ranged reads, every chunk authenticated and hash-checked
//! before it is written, out-of-order positioned writes, holes for zero chunks.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use drydock_sources::RestoreTarget;
use drydock_storage::ErrorKind;

use crate::aligned::AlignedBuf;
use crate::blob::BlobDecoder;
use crate::control::{CancelToken, Progress};
use crate::error::{Error, Result};
use crate::id::{ChunkId, SnapshotId};
use crate::index::{ChunkIndex, Location};
use crate::layout;
use crate::lease::Lease;
use crate::repo::Repository;
use crate::snapshot::Manifest;

/// Neighbouring blobs of one pack are fetched in one ranged read up to this size…
const BATCH_BYTES_MAX: u64 = 8 << 20;
/// …and a gap of unneeded bytes up to this size is read through rather than split on.
const BATCH_GAP_BYTES_MAX: u64 = 256 << 10;
/// Most image bytes one [`Window`] covers. Below a stream target's reorder limit, so the reader
/// holding the earliest unwritten chunk never waits on another chunk of its batch.
const WINDOW_IMAGE_BYTES_MAX: u64 = 32 << 20;
const _: () = assert!(WINDOW_IMAGE_BYTES_MAX < drydock_sources::STREAM_REORDER_BYTES_MAX);
/// Reads in flight: more than cores, because object stores answer with latency, not CPU.
const RESTORE_READERS_MIN: usize = 8;

#[derive(Clone, Debug)]
pub struct RestoreReport {
    pub bytes_total: u64,
    pub bytes_written: u64,
    pub chunks_read: u64,
    pub chunks_zero: u64,
    pub duration_ms: u64,
}

/// One ranged read: blobs of nearby image positions that sit close together in one pack.
struct Batch {
    pack: u32,
    start: u64,
    end: u64,
    blobs: Vec<(usize, ChunkId, Location)>,
}

pub fn restore(
    repo: &Repository,
    snapshot_id: &SnapshotId,
    manifest: &Manifest,
    target: Box<dyn RestoreTarget>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<RestoreReport> {
    let started = Instant::now();
    // Readers hold a lease too, so gc never removes a pack under a running restore.
    let lease = Lease::acquire(repo.storage().clone(), "restore", repo.config().lease_ttl_secs)?;
    let label = format!("snapshot {} ({})", snapshot_id.short(), manifest.meta.name);
    let (index, damaged_index_files) = repo.load_index_for_reading()?;
    // A chunk missing while an index file is damaged: the damage is the cause to report.
    let Plan { batches, zero_runs } =
        plan(manifest, &index, &label).map_err(|e| damaged_index_files.into_iter().next().map_or(e, |(_, d)| d))?;
    progress.start(manifest.meta.size_bytes);

    for &(start, len) in &zero_runs {
        target.zero_range(start, len).map_err(|e| Error::io(format!("writing {}", target.describe()), e))?;
        progress.advance(len);
    }
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let written = AtomicUsize::new(0);
    let readers = crate::parallel::worker_count().max(RESTORE_READERS_MIN);
    let job = Job { repo, index: &index, manifest, target: target.as_ref(), progress, label: &label };
    std::thread::scope(|scope| {
        for _ in 0..readers {
            scope.spawn(|| {
                let mut aligned = AlignedBuf::with_capacity(repo.config().chunk_size_bytes as usize);
                let mut decoder = BlobDecoder::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= batches.len() || failure.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                        return;
                    }
                    let result =
                        cancel.check().and_then(|()| job.restore_batch(&batches[i], &mut decoder, &mut aligned));
                    match result {
                        Ok(bytes) => {
                            written.fetch_add(bytes, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let description = target.describe();
    target.finish().map_err(|e| Error::io(format!("finishing {description}"), e))?;
    lease.release()?;
    Ok(RestoreReport {
        bytes_total: manifest.meta.size_bytes,
        bytes_written: written.into_inner() as u64,
        chunks_read: batches.iter().map(|b| b.blobs.len() as u64).sum(),
        chunks_zero: manifest.chunks.iter().filter(|c| c.is_zero()).count() as u64,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Splits the image into ranged reads (in image order from one [`Window`] to the next, so a
/// stream target's reorder window stays small) and runs of zero chunks.
struct Plan {
    batches: Vec<Batch>,
    /// (offset, length) of runs of zero chunks.
    zero_runs: Vec<(u64, u64)>,
}

fn plan(manifest: &Manifest, index: &ChunkIndex, label: &str) -> Result<Plan> {
    let mut batches: Vec<Batch> = Vec::new();
    let mut zero_runs: Vec<(u64, u64)> = Vec::new();
    let mut window = Window::default();
    for (position, id) in manifest.chunks.iter().enumerate() {
        let (start, len) = manifest.chunk_range(position);
        if id.is_zero() {
            match zero_runs.last_mut() {
                Some((run_start, run_len)) if *run_start + *run_len == start => *run_len += len,
                _ => zero_runs.push((start, len)),
            }
            continue;
        }
        let location = *index.get(id).ok_or_else(|| {
            Error::corrupt(
                label,
                format!("chunk {} at offset {start} is in no index (its pack is missing)", id.short()),
            )
        })?;
        if location.raw_len as u64 != len {
            return Err(Error::corrupt(
                label,
                format!("chunk {} has length {}, expected {len}", id.short(), location.raw_len),
            ));
        }
        if !window.fits(&location, start + len) {
            window.close_into(&mut batches);
        }
        window.add(position, start, *id, location);
    }
    window.close_into(&mut batches);
    Ok(Plan { batches, zero_runs })
}

/// The blobs of consecutive image positions over at most `WINDOW_IMAGE_BYTES_MAX` of the image.
/// The backup's readers and workers finish chunks out of order, so neighbouring chunks of the
/// image are scattered over a pack, or two: the window's blobs are sorted by pack and offset and
/// read in runs, so random data is read in GETs of up to 8 MiB rather than one per chunk.
#[derive(Default)]
struct Window {
    blobs: Vec<(usize, ChunkId, Location)>,
    /// Where the window's first chunk starts in the image.
    image_start: u64,
    /// A blob (pack, offset) is taken once per window: blobs are decrypted in place, so a chunk
    /// repeated in the image is read again in another batch.
    taken: HashSet<(u32, u32)>,
}

impl Window {
    fn fits(&self, location: &Location, image_end: u64) -> bool {
        self.blobs.is_empty()
            || (image_end - self.image_start <= WINDOW_IMAGE_BYTES_MAX
                && !self.taken.contains(&(location.pack, location.offset)))
    }

    fn add(&mut self, position: usize, image_start: u64, id: ChunkId, location: Location) {
        if self.blobs.is_empty() {
            self.image_start = image_start;
        }
        self.taken.insert((location.pack, location.offset));
        self.blobs.push((position, id, location));
    }

    /// One ranged read per run of blobs of a pack whose gaps are at most `BATCH_GAP_BYTES_MAX`,
    /// each of at most `BATCH_BYTES_MAX`.
    fn close_into(&mut self, batches: &mut Vec<Batch>) {
        self.blobs.sort_by_key(|(_, _, location)| (location.pack, location.offset));
        let mut current: Option<Batch> = None;
        for (position, id, location) in self.blobs.drain(..) {
            let (start, end) = blob_range(&location);
            match &mut current {
                Some(batch)
                    if batch.pack == location.pack
                        && start.saturating_sub(batch.end) <= BATCH_GAP_BYTES_MAX
                        && end - batch.start <= BATCH_BYTES_MAX =>
                {
                    batch.end = end;
                    batch.blobs.push((position, id, location));
                }
                _ => {
                    batches.extend(current.take());
                    current = Some(Batch { pack: location.pack, start, end, blobs: vec![(position, id, location)] });
                }
            }
        }
        batches.extend(current);
        self.taken.clear();
    }
}

fn blob_range(location: &Location) -> (u64, u64) {
    (location.offset as u64, location.offset as u64 + location.stored_len as u64)
}

/// What every reader thread shares.
struct Job<'a> {
    repo: &'a Repository,
    index: &'a ChunkIndex,
    manifest: &'a Manifest,
    target: &'a dyn RestoreTarget,
    progress: &'a dyn Progress,
    label: &'a str,
}

impl Job<'_> {
    /// Reads one batch, checks every chunk in it, and writes the chunks at their offsets.
    fn restore_batch(&self, batch: &Batch, decoder: &mut BlobDecoder, aligned: &mut AlignedBuf) -> Result<usize> {
        let Job { repo, index, manifest, target, progress, label } = *self;
        let pack_id = index.packs[batch.pack as usize];
        let object = format!("pack {} (needed by {label})", pack_id.short());
        let mut bytes = repo
            .storage()
            .get_range(&layout::pack(&pack_id), batch.start, batch.end - batch.start)
            .map_err(|e| match e.kind {
                ErrorKind::NotFound => Error::corrupt(&object, "is missing"),
                ErrorKind::OutOfRange => Error::corrupt(&object, "is shorter than its index says (truncated)"),
                _ => e.into(),
            })?;
        let mut written = 0;
        for (position, id, location) in &batch.blobs {
            let from = (location.offset as u64 - batch.start) as usize;
            let sealed = &mut bytes[from..from + location.stored_len as usize];
            // Decoded into an aligned buffer: a file target then writes it past the page cache.
            decoder.decode_into(repo.keys(), id, location.flags, location.raw_len, sealed, &object, aligned)?;
            let (offset, _) = manifest.chunk_range(*position);
            write_sparse(target, aligned, offset)
                .map_err(|e| Error::io(format!("writing {}", target.describe()), e))?;
            progress.advance(aligned.len() as u64);
            written += aligned.len();
        }
        Ok(written)
    }
}

/// Granularity of holes inside a chunk: the filesystem block size.
const HOLE_BLOCK_BYTES: usize = 4096;

/// Writes `data` at `offset`, turning each run of all-zero blocks into a `zero_range` (a hole in
/// a new file, zeros on a device): restored images are as sparse as their sources, and zeros
/// cost no disk writes.
fn write_sparse(target: &dyn RestoreTarget, data: &[u8], offset: u64) -> std::io::Result<()> {
    let mut start = 0;
    while start < data.len() {
        let zero = is_zero(&data[start..(start + HOLE_BLOCK_BYTES).min(data.len())]);
        let mut end = start;
        while end < data.len() && is_zero(&data[end..(end + HOLE_BLOCK_BYTES).min(data.len())]) == zero {
            end = (end + HOLE_BLOCK_BYTES).min(data.len());
        }
        let at = offset + start as u64;
        if zero {
            target.zero_range(at, (end - start) as u64)?
        } else {
            target.write_at(&data[start..end], at)?
        }
        start = end;
    }
    Ok(())
}

fn is_zero(block: &[u8]) -> bool {
    block.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::sync::Arc;

    use drydock_sources::{FileTarget, ImageFile};
    use drydock_storage::{LocalStorage, Storage};

    use super::*;
    use crate::backup::{BackupOptions, backup};
    use crate::keys::KdfParams;
    use crate::{InitOptions, NoProgress};

    /// Chunk `i` of the image stored at `blobs[i]` = (pack, offset), 1000 bytes each; a last
    /// chunk repeats chunk 6. The plan's ranged reads as (pack, start, end, image positions).
    fn batches_of(blobs: [(u8, u32); 8]) -> Vec<(u32, u64, u64, Vec<usize>)> {
        let ids: Vec<ChunkId> = (0..8u8).map(|i| ChunkId([i + 1; 32])).chain([ChunkId([7; 32])]).collect();
        let mut index = ChunkIndex::default();
        for pack in 0..2 {
            let entries = blobs
                .iter()
                .zip(&ids)
                .filter(|((p, _), _)| *p == pack)
                .map(|(&(_, offset), &id)| crate::pack::BlobEntry {
                    id,
                    offset,
                    stored_len: 1000,
                    raw_len: 64,
                    flags: 0,
                })
                .collect();
            let id = crate::id::PackId([pack + 10; 32]);
            index.add_pack(&crate::index::PackEntry { id, size_bytes: 1 << 20, blobs: entries });
        }
        let meta = crate::snapshot::SnapshotMeta {
            name: "disk".into(),
            source: String::new(),
            size_bytes: 9 * 64,
            chunk_size_bytes: 64,
            created_at: String::new(),
            duration_ms: 0,
            tags: Vec::new(),
            parent: None,
            hostname: String::new(),
            stored_bytes: 0,
            chunks_new: 0,
            chunks_zero: 0,
        };
        let manifest = Manifest { meta, chunks: ids };
        let Plan { batches, zero_runs } = plan(&manifest, &index, "test").unwrap();
        assert!(zero_runs.is_empty());
        let pack_of = |b: &Batch| index.packs[b.pack as usize].0[0] as u32 - 10;
        batches.iter().map(|b| (pack_of(b), b.start, b.end, b.blobs.iter().map(|(p, _, _)| *p).collect())).collect()
    }

    #[test]
    fn chunks_stored_out_of_order_are_read_in_one_batch_and_a_repeated_one_in_another() {
        let offsets = [1000, 0, 3000, 2000, 4000, 6000, 5000, 7000];
        assert_eq!(
            batches_of(offsets.map(|o| (0, o))),
            [(0, 0, 8000, vec![1, 0, 3, 2, 4, 6, 5, 7]), (0, 5000, 6000, vec![8])],
        );
    }

    #[test]
    fn neighbours_scattered_over_two_packs_are_read_in_one_batch_per_pack() {
        let blobs = [(0, 0), (1, 0), (0, 1000), (1, 1000), (0, 2000), (1, 2000), (0, 3000), (1, 3000)];
        assert_eq!(
            batches_of(blobs),
            [(0, 0, 4000, vec![0, 2, 4, 6]), (1, 0, 4000, vec![1, 3, 5, 7]), (0, 3000, 4000, vec![8])],
        );
    }

    #[test]
    fn a_gap_wider_than_the_limit_splits_the_read() {
        let far = 1_000_000;
        let offsets = [0, 1000, 2000, 3000, far, far + 1000, far + 2000, far + 3000];
        assert_eq!(
            batches_of(offsets.map(|o| (0, o))),
            [
                (0, 0, 4000, vec![0, 1, 2, 3]),
                (0, far as u64, far as u64 + 4000, vec![4, 5, 6, 7]),
                (0, 1_002_000, 1_003_000, vec![8])
            ],
        );
    }

    /// The direct-I/O paths end to end on a real filesystem: packs stored by `LocalStorage`
    /// (several, so pack buffers are reused), the image read with O_DIRECT, and restored into a
    /// `FileTarget`. The image size is not a multiple of the block size and it has a hole.
    #[test]
    fn local_roundtrip_of_an_unaligned_sparse_image_is_exact_and_stays_sparse() {
        const CHUNK: usize = 64 << 10;
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::create(dir.path().join("repo")).unwrap());
        let options = InitOptions {
            chunk_size_bytes: CHUNK as u32,
            pack_size_bytes_target: 256 << 10,
            kdf: KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 },
            ..InitOptions::encrypted(b"pw".to_vec())
        };
        let repo = Repository::init(storage, options).unwrap();

        // 20 chunks of incompressible data, 20 chunks of hole, then 3 chunks and 1234 bytes.
        let size_bytes = 43 * CHUNK + 1234;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut content: Vec<u8> = (0..size_bytes)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        content[20 * CHUNK..40 * CHUNK].fill(0);
        let image = dir.path().join("disk.img");
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(size_bytes as u64).unwrap();
        file.write_all_at(&content[..20 * CHUNK], 0).unwrap();
        file.write_all_at(&content[40 * CHUNK..], (40 * CHUNK) as u64).unwrap();

        let source = ImageFile::open(&image).unwrap();
        let options = BackupOptions { name: "disk".into(), tags: Vec::new() };
        let report = backup(&repo, &source, &options, &NoProgress, &CancelToken::new()).unwrap();
        assert!(repo.list_packs().unwrap().len() >= 3, "expected several packs");

        let (id, manifest) = repo.find_snapshot(&report.id.to_hex()).unwrap();
        let out = dir.path().join("restored.img");
        let target = Box::new(FileTarget::create(&out, size_bytes as u64, false).unwrap());
        restore(&repo, &id, &manifest, target, &NoProgress, &CancelToken::new()).unwrap();
        assert!(std::fs::read(&out).unwrap() == content, "restored image differs");
        let allocated_bytes = std::fs::metadata(&out).unwrap().blocks() * 512;
        assert!(allocated_bytes < (30 * CHUNK) as u64, "the hole was filled: {allocated_bytes} bytes allocated");
    }
}
