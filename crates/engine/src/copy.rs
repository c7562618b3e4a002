//! Copying a snapshot into another repository ("transfer to another region").
//!
//! Two repositories never share chunk ids (the ids are keyed per repository) nor keys, so
//! nothing can be copied as stored bytes: the snapshot is read back as an image through
//! [`SnapshotSource`] (every chunk authenticated and hash-checked, as a restore does) and backed
//! up into the destination by the ordinary [`backup`], whose deduplication skips every chunk the
//! destination already holds and whose commit order makes the copy appear whole or not at all.
//! The destination's chunk size may differ from the source's: the backup reads whatever byte
//! ranges it chunks by, and [`SnapshotSource`] maps them onto the source's chunks.

use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use drydock_sources::BlockSource;
use drydock_storage::ErrorKind;

use crate::backup::{self, BackupOptions, BackupReport};
use crate::blob;
use crate::control::{CancelToken, Progress};
use crate::error::{Error, Result};
use crate::id::{PackId, SnapshotId};
use crate::index::Location;
use crate::layout;
use crate::lease::Lease;
use crate::repo::Repository;
use crate::snapshot::Manifest;

/// Memory for source chunks decoded for reads that cover only part of one (the destination's
/// chunks are smaller than the source's, or their boundaries fall inside them): the cache has
/// one slot per chunk of this much. A chunk leaves its slot once all its bytes were read, so the
/// cache usually holds only the few chunks being read right now.
const PARTIAL_CACHE_BYTES_MAX: u64 = 64 << 20;
/// At least this many cached chunks, however large, so readers working on neighbouring source
/// chunks do not evict each other.
const PARTIAL_CACHE_SLOTS_MIN: usize = 4;
/// And at most this many: the backup reads a window of a few chunks per core at a time.
const PARTIAL_CACHE_SLOTS_MAX: usize = 64;

/// One snapshot of a repository, readable as an image: what a copy backs up.
///
/// Opening it puts a reader lease (operation `restore`) on the source repository before the
/// index is read, and holds it until [`SnapshotSource::release`] or drop, so gc never deletes a
/// pack this source may still read (docs/concurrency.md, R1). Every chunk is checked as a restore
/// checks it (authentication, length, keyed hash); a damaged or missing pack makes `read_at` fail
/// with an [`io::Error`] that wraps the engine's [`Error`] naming the pack.
///
/// Reads may come from several threads at once. A read covering whole source chunks takes no
/// lock; only a chunk read in parts goes through a small cache, locked per slot, so the threads
/// reading its parts fetch and decrypt it once.
pub struct SnapshotSource<'a> {
    repo: &'a Repository,
    manifest: Manifest,
    /// Where each chunk of the manifest is stored; `None` for zero chunks.
    locations: Vec<Option<Location>>,
    /// Packs by [`Location::pack`].
    packs: Vec<PackId>,
    /// "snapshot 1a2b3c4d (name) in local /srv/repo": how the source appears in messages.
    label: String,
    partial: Vec<Mutex<Option<PartialChunk>>>,
    lease: Option<Lease>,
}

/// A source chunk decoded for reads that each take part of it.
struct PartialChunk {
    position: usize,
    data: Arc<Vec<u8>>,
    /// Bytes handed out so far; the chunk is dropped once every byte has been.
    served_bytes: usize,
}

impl<'a> SnapshotSource<'a> {
    /// Takes a reader lease on `repo`, then loads the snapshot's manifest and the index, and
    /// checks that the index knows every chunk of the snapshot with its length, so a copy of a
    /// snapshot whose packs are gone fails before it starts.
    pub fn open(repo: &'a Repository, snapshot_id: &SnapshotId) -> Result<SnapshotSource<'a>> {
        let lease = Lease::acquire(repo.storage().clone(), "restore", repo.config().lease_ttl_secs)?;
        let manifest = repo.load_snapshot(snapshot_id)?;
        let label =
            format!("snapshot {} ({}) in {}", snapshot_id.short(), manifest.meta.name, repo.storage().describe());
        let (index, damaged_index_files) = repo.load_index_for_reading()?;
        let mut locations = Vec::with_capacity(manifest.chunks.len());
        for (position, id) in manifest.chunks.iter().enumerate() {
            if id.is_zero() {
                locations.push(None);
                continue;
            }
            let (start, len) = manifest.chunk_range(position);
            let Some(location) = index.get(id) else {
                // A chunk missing while an index file is damaged: the damage is the cause to report.
                return Err(damaged_index_files.into_iter().next().map_or_else(
                    || {
                        Error::corrupt(
                            &label,
                            format!("chunk {} at offset {start} is in no index (its pack is missing)", id.short()),
                        )
                    },
                    |(_, damage)| damage,
                ));
            };
            if location.raw_len as u64 != len {
                return Err(Error::corrupt(
                    &label,
                    format!("chunk {} has length {}, expected {len}", id.short(), location.raw_len),
                ));
            }
            locations.push(Some(*location));
        }
        let chunk_bytes = manifest.meta.chunk_size_bytes.max(1) as u64;
        let slots =
            ((PARTIAL_CACHE_BYTES_MAX / chunk_bytes) as usize).clamp(PARTIAL_CACHE_SLOTS_MIN, PARTIAL_CACHE_SLOTS_MAX);
        Ok(SnapshotSource {
            repo,
            manifest,
            locations,
            packs: index.packs,
            label,
            partial: (0..slots).map(|_| Mutex::new(None)).collect(),
            lease: Some(lease),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Ends the reader lease. Dropping the source does too, but cannot report a failure.
    pub fn release(mut self) -> Result<()> {
        match self.lease.take() {
            Some(lease) => lease.release(),
            None => Ok(()),
        }
    }

    /// Fetches and checks the source chunk at `position`, which must not be a zero chunk.
    fn fetch(&self, position: usize) -> Result<Vec<u8>> {
        let id = &self.manifest.chunks[position];
        let location = self.locations[position].expect("zero chunks are never fetched");
        let pack_id = self.packs[location.pack as usize];
        let object = format!("pack {} (needed by {})", pack_id.short(), self.label);
        let sealed = self
            .repo
            .storage()
            .get_range(&layout::pack(&pack_id), location.offset as u64, location.stored_len as u64)
            .map_err(|e| match e.kind {
                ErrorKind::NotFound => Error::corrupt(&object, "is missing"),
                ErrorKind::OutOfRange => Error::corrupt(&object, "is shorter than its index says (truncated)"),
                _ => e.into(),
            })?;
        blob::decode(self.repo.keys(), id, location.flags, location.raw_len, &sealed, &object)
    }

    /// Copies `out.len()` bytes from `within` bytes into the source chunk at `position` (of
    /// `chunk_len` bytes) into `out`.
    fn read_chunk(&self, position: usize, within: usize, chunk_len: usize, out: &mut [u8]) -> Result<()> {
        if self.locations[position].is_none() {
            out.fill(0);
            return Ok(());
        }
        if within == 0 && out.len() == chunk_len {
            out.copy_from_slice(&self.fetch(position)?);
            return Ok(());
        }
        // Part of a chunk: the other parts are usually being read by other threads right now.
        // The slot stays locked while the chunk is fetched, so they wait for this one fetch
        // instead of each making their own; chunks in other slots go on in parallel.
        let data = {
            let mut slot = self.partial[position % self.partial.len()].lock().unwrap_or_else(|e| e.into_inner());
            let cached = match slot.take() {
                Some(chunk) if chunk.position == position => chunk,
                _ => PartialChunk { position, data: Arc::new(self.fetch(position)?), served_bytes: 0 },
            };
            let data = cached.data.clone();
            let served_bytes = cached.served_bytes + out.len();
            if served_bytes < chunk_len {
                *slot = Some(PartialChunk { served_bytes, ..cached });
            }
            data
        };
        out.copy_from_slice(&data[within..within + out.len()]);
        Ok(())
    }
}

impl BlockSource for SnapshotSource<'_> {
    fn size_bytes(&self) -> u64 {
        self.manifest.meta.size_bytes
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let size_bytes = self.size_bytes();
        let end = offset.checked_add(buf.len() as u64).filter(|&end| end <= size_bytes).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} bytes at offset {offset} are past the end of {} ({size_bytes} bytes)",
                    buf.len(),
                    self.label
                ),
            )
        })?;
        let chunk_bytes = self.manifest.meta.chunk_size_bytes.max(1) as u64;
        let mut at = offset;
        while at < end {
            let position = (at / chunk_bytes) as usize;
            let (chunk_start, chunk_len) = self.manifest.chunk_range(position);
            let within = (at - chunk_start) as usize;
            let take = (chunk_len - within as u64).min(end - at) as usize;
            let from = (at - offset) as usize;
            self.read_chunk(position, within, chunk_len as usize, &mut buf[from..from + take])
                .map_err(io::Error::other)?;
            at += take as u64;
        }
        Ok(())
    }

    fn data_ranges(&self) -> io::Result<Vec<Range<u64>>> {
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for (position, location) in self.locations.iter().enumerate() {
            if location.is_none() {
                continue;
            }
            let (start, len) = self.manifest.chunk_range(position);
            match ranges.last_mut() {
                Some(last) if last.end == start => last.end = start + len,
                _ => ranges.push(start..start + len),
            }
        }
        Ok(ranges)
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

/// The engine error inside an I/O error from [`SnapshotSource::read_at`], so a caller reports
/// "pack 3fa1… (needed by snapshot …) is damaged: …" as the typed error it is, not as I/O.
/// Any other error comes back unchanged.
fn engine_error(error: Error) -> Error {
    match error {
        Error::Io { source, .. } if source.get_ref().is_some_and(|inner| inner.is::<Error>()) => {
            let inner = source.into_inner().expect("checked above");
            *inner.downcast::<Error>().expect("checked above")
        }
        other => other,
    }
}

/// Copies snapshot `snapshot_id` of `source` into `destination`, storing only the chunks the
/// destination lacks.
///
/// The copy is a backup of the snapshot's image into `destination` (see the module docs), so
/// it gets a new id and the destination's `created_at`, `hostname`, `parent` and chunk size;
/// its `source` names the snapshot it was copied from. Its name and tags are the original's,
/// unless `options` sets them: a non-empty `options.name` replaces the name, non-empty
/// `options.tags` replace the tags. A chunk of the source that fails its checks fails the copy
/// with the error naming its pack, and then no snapshot appears in `destination`. The reader
/// lease on `source` is released after the copy is committed; if that fails, the error is
/// returned although the copy exists (as a restore does: a lease left behind holds back gc).
pub fn copy_snapshot(
    source: &Repository,
    snapshot_id: &SnapshotId,
    destination: &Repository,
    options: &BackupOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<BackupReport> {
    let snapshot = SnapshotSource::open(source, snapshot_id)?;
    cancel.check()?;
    let meta = &snapshot.manifest().meta;
    let options = BackupOptions {
        name: if options.name.is_empty() { meta.name.clone() } else { options.name.clone() },
        tags: if options.tags.is_empty() { meta.tags.clone() } else { options.tags.clone() },
    };
    let report = backup::backup(destination, &snapshot, &options, progress, cancel).map_err(engine_error)?;
    snapshot.release()?;
    Ok(report)
}
