//! Backing up an image: read → hash → skip known → compress → encrypt → pack → store.
//!
//! Threads (all bounded by channel capacities, so memory does not grow with the image):
//! one reader (positioned reads, holes skipped without reading), one worker per core (zero
//! check, keyed hash, dedup, compress, seal), one packer and one uploader. The caller's thread
//! collects chunk ids in image order. Commit order: packs, then index files, then the
//! manifest; a snapshot exists once its manifest does, so an interrupted backup is invisible.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Mutex;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};
use drydock_sources::BlockSource;

use crate::aligned::AlignedBuf;
use crate::blob::BlobEncoder;
use crate::control::{CancelToken, Progress};
use crate::error::{Error, Result};
use crate::gc;
use crate::id::{ChunkId, SnapshotId};
use crate::index::{IndexFile, PackEntry};
use crate::layout;
use crate::lease::Lease;
use crate::pack::{PackWriter, SealedPack};
use crate::parallel;
use crate::repo::Repository;
use crate::snapshot::{Manifest, SnapshotMeta};

/// An index file is written after this many new packs, so a long backup interrupted late still
/// leaves its stored packs indexed and reusable.
const INDEX_PACKS_PER_FILE_MAX: usize = 256;
/// Stored pack buffers kept for reuse: the packer fills one while the uploader stores another.
const PACK_BUFFERS_SPARE_MAX: usize = 2;
/// Reader threads. Reads bypass the page cache (no kernel read-ahead), so several reads in
/// flight are what keeps the disk busy.
const READERS: usize = 3;
/// Read buffers in flight per worker: enough to keep workers fed while the reader waits on I/O.
const READ_BUFFERS_PER_WORKER: usize = 2;

#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    pub name: String,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct BackupReport {
    pub id: SnapshotId,
    pub meta: SnapshotMeta,
}

enum ReadItem {
    Zero { position: usize, len: usize },
    Data { position: usize, buffer: AlignedBuf },
}

struct NewBlob {
    id: ChunkId,
    flags: u8,
    raw_len: u32,
    sealed: Vec<u8>,
}

/// What the workers tell the collector about each chunk.
struct ChunkResult {
    position: usize,
    id: ChunkId,
    raw_len: usize,
    new: bool,
}

/// Known chunks: those in the index (minus packs gc plans to delete) and those claimed by this
/// backup's workers, so each new chunk is stored once even if two workers meet it together.
struct Dedup {
    known: HashSet<ChunkId>,
    claimed: Mutex<HashSet<ChunkId>>,
}

impl Dedup {
    /// True if the caller must store the chunk.
    fn claim(&self, id: &ChunkId) -> bool {
        !self.known.contains(id) && self.claimed.lock().unwrap_or_else(|e| e.into_inner()).insert(*id)
    }
}

pub fn backup(
    repo: &Repository,
    source: &dyn BlockSource,
    options: &BackupOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<BackupReport> {
    validate_name(&options.name)?;
    let started = Instant::now();
    let config = repo.config().clone();
    let lease = Lease::acquire(repo.storage().clone(), "backup", config.lease_ttl_secs)?;

    // The lease is stored before the index and the plans are read: docs/concurrency.md, rule B1.
    let doomed = gc::packs_planned_for_deletion(repo.storage().as_ref())?;
    let mut known = HashSet::new();
    // A damaged index file only costs deduplication: its chunks are stored again.
    for (_, file) in repo.load_index_files_lenient()?.0 {
        for pack in file.packs.iter().filter(|p| !doomed.contains(&p.id)) {
            known.extend(pack.blobs.iter().map(|b| b.id));
        }
    }
    let dedup = Dedup { known, claimed: Mutex::new(HashSet::new()) };
    let parent = latest_with_name(repo, &options.name)?;

    let size_bytes = source.size_bytes();
    let chunk_size = config.chunk_size_bytes as usize;
    let chunk_count = size_bytes.div_ceil(chunk_size as u64) as usize;
    let data_ranges =
        source.data_ranges().map_err(|e| Error::io(format!("finding the data in {}", source.describe()), e))?;
    progress.start(size_bytes);

    let workers = parallel::worker_count();
    let buffer_count = workers * READ_BUFFERS_PER_WORKER + READERS;
    let (read_tx, read_rx) = bounded::<ReadItem>(buffer_count);
    // Aligned, so image files are read with direct I/O (see `ImageFile::read_at`).
    let (free_tx, free_rx) = bounded::<AlignedBuf>(buffer_count);
    for _ in 0..buffer_count {
        free_tx.send(AlignedBuf::with_capacity(chunk_size)).expect("receiver alive");
    }
    let (blob_tx, blob_rx) = bounded::<NewBlob>(workers * 2);
    let (pack_tx, pack_rx) = bounded::<SealedPack>(1);
    let (spent_tx, spent_rx) = bounded::<AlignedBuf>(PACK_BUFFERS_SPARE_MAX);
    let (result_tx, result_rx) = bounded::<ChunkResult>(buffer_count * 2);
    // Any thread that fails records the error and cancels the others.
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let stop_token = CancelToken::new();
    let stop = &stop_token;
    let fail = &|e: Error| {
        failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        stop.cancel();
    };

    let mut chunks = vec![ChunkId::ZERO; chunk_count];
    let mut totals = Totals::default();
    let mut new_packs: Vec<PackEntry> = Vec::new();

    std::thread::scope(|scope| {
        for first in 0..READERS {
            let (free_rx, read_tx, data_ranges) = (free_rx.clone(), read_tx.clone(), &data_ranges);
            scope.spawn(move || {
                let reader = Reader { source, chunk_size, size_bytes, data_ranges, first, step: READERS };
                if let Err(e) = reader.run(chunk_count, &free_rx, &read_tx, cancel, stop) {
                    fail(e);
                }
            });
        }
        drop(read_tx);
        for _ in 0..workers {
            let (read_rx, free_tx, blob_tx, result_tx) =
                (read_rx.clone(), free_tx.clone(), blob_tx.clone(), result_tx.clone());
            let dedup = &dedup;
            scope.spawn(move || {
                let mut encoder = BlobEncoder::new(config.compression_level);
                for item in read_rx {
                    if stop.is_cancelled() {
                        break;
                    }
                    let result = process_chunk(repo, &mut encoder, dedup, item, &free_tx, &blob_tx);
                    if result_tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop((read_rx, free_tx, blob_tx, result_tx));
        scope.spawn(|| {
            // Buffers come back from the uploader once stored; a fresh one is made only when
            // none is free, so a backup runs on two pack buffers whose pages stay mapped instead
            // of faulting in (and zeroing) a new 32 MiB buffer for every pack.
            let next_writer = || match spent_rx.try_recv() {
                Ok(buffer) => PackWriter::reusing(buffer),
                Err(_) => PackWriter::new(pack_capacity(&config)),
            };
            // Started when its first blob arrives rather than when the last pack is sent, so by
            // then the uploader has usually handed back the buffer it stored.
            let mut writer: Option<PackWriter> = None;
            for blob in blob_rx {
                let filling = writer.get_or_insert_with(next_writer);
                filling.add(blob.id, blob.flags, blob.raw_len, &blob.sealed);
                if filling.len_bytes() >= config.pack_size_bytes_target as usize {
                    let full = writer.take().expect("filled just above");
                    if pack_tx.send(full.finish(repo.keys())).is_err() {
                        return;
                    }
                }
            }
            if let Some(last) = writer
                && !stop.is_cancelled()
            {
                let _ = pack_tx.send(last.finish(repo.keys()));
            }
            // Closing the channel is what ends the uploader's loop.
            drop(pack_tx);
        });
        let uploader = scope.spawn(|| {
            let mut unindexed: Vec<PackEntry> = Vec::new();
            let mut all = Vec::new();
            let store = || -> Result<()> {
                for pack in &pack_rx {
                    repo.storage().put(&layout::pack(&pack.id), &pack.bytes)?;
                    let entry = PackEntry { id: pack.id, size_bytes: pack.bytes.len() as u64, blobs: pack.entries };
                    // Full means the packer already has enough buffers: let this one go.
                    let _ = spent_tx.try_send(pack.bytes);
                    unindexed.push(entry.clone());
                    all.push(entry);
                    if unindexed.len() >= INDEX_PACKS_PER_FILE_MAX {
                        write_index(repo, std::mem::take(&mut unindexed))?;
                    }
                }
                if !stop.is_cancelled() && !unindexed.is_empty() {
                    write_index(repo, unindexed)?;
                }
                Ok(())
            };
            if let Err(e) = store() {
                fail(e);
                // Drain so the packer is not left blocked on a full channel.
                for _ in pack_rx.iter() {}
            }
            all
        });
        for result in result_rx {
            chunks[result.position] = result.id;
            totals.count(&result);
            progress.advance(result.raw_len as u64);
        }
        new_packs = uploader.join().expect("uploader thread does not panic");
    });

    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    cancel.check()?;

    let meta = SnapshotMeta {
        name: options.name.clone(),
        source: source.describe(),
        size_bytes,
        chunk_size_bytes: config.chunk_size_bytes,
        created_at: crate::time::now_rfc3339_precise(),
        duration_ms: started.elapsed().as_millis() as u64,
        tags: options.tags.clone(),
        parent: parent.map(|id| id.to_hex()),
        hostname: crate::time::hostname(),
        stored_bytes: new_packs.iter().map(|p| p.size_bytes).sum(),
        chunks_new: totals.new,
        chunks_zero: totals.zero,
    };
    let manifest = Manifest { meta, chunks };
    let (id, bytes) = manifest.encode(repo.keys());
    lease.check_valid()?;
    repo.storage().put(&layout::snapshot(&id), &bytes)?;
    lease.release()?;
    Ok(BackupReport { id, meta: manifest.meta })
}

#[derive(Default)]
struct Totals {
    new: u64,
    zero: u64,
}

impl Totals {
    fn count(&mut self, result: &ChunkResult) {
        self.new += result.new as u64;
        self.zero += result.id.is_zero() as u64;
    }
}

fn pack_capacity(config: &crate::config::RepoConfig) -> usize {
    // Room for the last blob that crosses the target, plus header and trailer.
    (config.pack_size_bytes_target + config.chunk_size_bytes) as usize + 64 * 1024
}

fn process_chunk(
    repo: &Repository,
    encoder: &mut BlobEncoder,
    dedup: &Dedup,
    item: ReadItem,
    free_tx: &Sender<AlignedBuf>,
    blob_tx: &Sender<NewBlob>,
) -> ChunkResult {
    let (position, buffer) = match item {
        ReadItem::Zero { position, len } => {
            return ChunkResult { position, id: ChunkId::ZERO, raw_len: len, new: false };
        }
        ReadItem::Data { position, buffer } => (position, buffer),
    };
    let raw_len = buffer.len();
    let mut result = ChunkResult { position, id: ChunkId::ZERO, raw_len, new: false };
    if !is_all_zero(&buffer) {
        result.id = repo.keys().chunk_id(&buffer);
        if dedup.claim(&result.id) {
            let encoded = encoder.encode(repo.keys(), &result.id, &buffer);
            result.new = true;
            let blob = NewBlob { id: result.id, flags: encoded.flags, raw_len: raw_len as u32, sealed: encoded.sealed };
            // A closed channel means the backup is failing; the error is reported elsewhere.
            let _ = blob_tx.send(blob);
        }
    }
    let _ = free_tx.send(buffer);
    result
}

fn is_all_zero(data: &[u8]) -> bool {
    // Word-wise comparison: the compiler vectorizes this; it runs at memory speed.
    let (prefix, words, suffix) = unsafe { data.align_to::<u128>() };
    prefix.iter().all(|&b| b == 0) && words.iter().all(|&w| w == 0) && suffix.iter().all(|&b| b == 0)
}

struct Reader<'a> {
    source: &'a dyn BlockSource,
    chunk_size: usize,
    size_bytes: u64,
    data_ranges: &'a [Range<u64>],
    /// This reader takes chunks `first`, `first + step`, `first + 2 step`, …
    first: usize,
    step: usize,
}

impl Reader<'_> {
    fn run(
        &self,
        chunk_count: usize,
        free_rx: &Receiver<AlignedBuf>,
        read_tx: &Sender<ReadItem>,
        cancel: &CancelToken,
        stop: &CancelToken,
    ) -> Result<()> {
        let mut ranges = self.data_ranges.iter().peekable();
        for position in (self.first..chunk_count).step_by(self.step) {
            cancel.check()?;
            if stop.is_cancelled() {
                return Ok(());
            }
            let start = position as u64 * self.chunk_size as u64;
            let len = (self.chunk_size as u64).min(self.size_bytes - start) as usize;
            let end = start + len as u64;
            while ranges.peek().is_some_and(|r| r.end <= start) {
                ranges.next();
            }
            let has_data = ranges.peek().is_some_and(|r| r.start < end);
            let item = if has_data {
                let Ok(mut buffer) = free_rx.recv() else { return Ok(()) };
                buffer.resize(len, 0);
                self.source
                    .read_at(&mut buffer, start)
                    .map_err(|e| Error::io(format!("reading {} at offset {start}", self.source.describe()), e))?;
                ReadItem::Data { position, buffer }
            } else {
                ReadItem::Zero { position, len }
            };
            if read_tx.send(item).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}

fn write_index(repo: &Repository, packs: Vec<PackEntry>) -> Result<()> {
    let (id, bytes) = IndexFile { packs }.encode(repo.keys());
    repo.storage().put(&layout::index(&id), &bytes)?;
    Ok(())
}

fn latest_with_name(repo: &Repository, name: &str) -> Result<Option<SnapshotId>> {
    let (snapshots, _) = repo.load_snapshot_metas_lenient()?;
    Ok(snapshots.into_iter().rfind(|(_, meta)| meta.name == name).map(|(id, _)| id))
}

/// Snapshot names appear in listings, messages and JSON: printable, one line, bounded.
pub fn validate_name(name: &str) -> Result<()> {
    const NAME_BYTES_MAX: usize = 255;
    if name.is_empty() || name.len() > NAME_BYTES_MAX || name.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "snapshot name {name:?} must be 1 to {NAME_BYTES_MAX} bytes without control characters"
        )));
    }
    Ok(())
}
