//! Snapshot manifests: what an image looked like at one moment.
//!
//! `header ‖ sealed metadata length u32 ‖ seal(aad = header, zstd(JSON metadata)) ‖
//! seal(aad = header ‖ BLAKE3(sealed metadata), zstd(chunk count u64 ‖ chunk ids))`: the chunk
//! ids are 32 bytes each, in image order, and the all-zero id marks a chunk of zeros. The
//! metadata comes first and apart so a listing reads a few hundred bytes per snapshot.
//!
//! Every manifest lists every chunk of its image: snapshots are logically full, so deleting one
//! never affects another.

use serde::{Deserialize, Serialize};

use crate::crypto::RepoKeys;
use crate::error::{Error, Result};
use crate::format::{self, HEADER_BYTES, MAGIC_SNAPSHOT, Reader};
use crate::id::{ChunkId, SnapshotId};

pub const SNAPSHOT_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub name: String,
    /// The path (or other description) of what was backed up.
    pub source: String,
    pub size_bytes: u64,
    pub chunk_size_bytes: u32,
    pub created_at: String,
    pub duration_ms: u64,
    pub tags: Vec<String>,
    /// The snapshot this one was taken after, by id (for display; nothing depends on it).
    pub parent: Option<String>,
    pub hostname: String,
    /// Bytes this snapshot added to the repository (compressed and sealed).
    pub stored_bytes: u64,
    pub chunks_new: u64,
    pub chunks_zero: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub meta: SnapshotMeta,
    pub chunks: Vec<ChunkId>,
}

/// Bytes of a manifest's start read to get its metadata without the chunk list; enough for the
/// metadata of any ordinary snapshot, so listing costs one small read per snapshot.
pub const META_PREFETCH_BYTES: u64 = 4096;
const META_LEN_OFFSET: usize = HEADER_BYTES;
const META_OFFSET: usize = HEADER_BYTES + 4;
/// Metadata larger than this is refused: names and tags are short.
const META_SEALED_BYTES_MAX: usize = 1 << 20;

impl Manifest {
    pub fn encode(&self, keys: &RepoKeys) -> (SnapshotId, Vec<u8>) {
        let header = format::header(MAGIC_SNAPSHOT, SNAPSHOT_VERSION);
        let json = serde_json::to_vec(&self.meta).expect("snapshot metadata serializes");
        let meta_sealed = format::seal_section(keys, &header, &json);
        let mut table = Vec::with_capacity(8 + self.chunks.len() * 32);
        table.extend_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        for chunk in &self.chunks {
            table.extend_from_slice(&chunk.0);
        }
        let chunks_sealed = format::seal_section(keys, &chunks_aad(&header, &meta_sealed), &table);
        let mut bytes = Vec::with_capacity(META_OFFSET + meta_sealed.len() + chunks_sealed.len());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&(meta_sealed.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&meta_sealed);
        bytes.extend_from_slice(&chunks_sealed);
        (SnapshotId(*blake3::hash(&bytes).as_bytes()), bytes)
    }

    pub fn decode(keys: &RepoKeys, id: &SnapshotId, bytes: &[u8]) -> Result<Manifest> {
        let object = format!("snapshot {}", id.short());
        if SnapshotId(*blake3::hash(bytes).as_bytes()) != *id {
            return Err(Error::corrupt(&object, "contents do not match the snapshot's name"));
        }
        let meta_end = META_OFFSET + sealed_meta_len(bytes, &object)?;
        let meta = decode_meta(keys, id, bytes)?;
        let (header, meta_sealed) = (&bytes[..HEADER_BYTES], &bytes[META_OFFSET..meta_end]);
        let table = format::open_section(keys, &chunks_aad(header, meta_sealed), &bytes[meta_end..], &object)?;
        let mut reader = Reader::new(&table, &object);
        let count = reader.u64()?;
        if count.checked_mul(32) != Some(reader.remaining() as u64) {
            return Err(Error::corrupt(&object, "chunk list has the wrong length"));
        }
        let chunks = (0..count).map(|_| reader.id().map(ChunkId)).collect::<Result<Vec<_>>>()?;
        reader.finish()?;
        let expected = meta.size_bytes.div_ceil(meta.chunk_size_bytes.max(1) as u64);
        if expected != count {
            return Err(Error::corrupt(&object, format!("lists {count} chunks, its size needs {expected}")));
        }
        Ok(Manifest { meta, chunks })
    }

    /// Byte range of chunk `position` in the image.
    pub fn chunk_range(&self, position: usize) -> (u64, u64) {
        let chunk = self.meta.chunk_size_bytes as u64;
        let start = position as u64 * chunk;
        (start, chunk.min(self.meta.size_bytes - start))
    }
}

/// The chunk list is sealed with the metadata's sealed bytes in its associated data, so the two
/// parts of one manifest cannot be paired with parts of another.
pub(crate) fn chunks_aad(header: &[u8], meta_sealed: &[u8]) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(blake3::hash(meta_sealed).as_bytes());
    aad
}

/// Length of the sealed metadata, from a manifest's first bytes.
fn sealed_meta_len(prefix: &[u8], object: &str) -> Result<usize> {
    format::check_header(prefix, MAGIC_SNAPSHOT, SNAPSHOT_VERSION, object)?;
    let len_bytes = prefix.get(META_LEN_OFFSET..META_OFFSET).ok_or_else(|| Error::corrupt(object, "truncated"))?;
    let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
    if len > META_SEALED_BYTES_MAX {
        return Err(Error::corrupt(object, format!("claims {len} bytes of metadata")));
    }
    Ok(len)
}

/// How many bytes from the start of a manifest [`decode_meta`] needs, given its first bytes.
pub fn meta_bytes_needed(prefix: &[u8], id: &SnapshotId) -> Result<usize> {
    Ok(META_OFFSET + sealed_meta_len(prefix, &format!("snapshot {}", id.short()))?)
}

/// Authenticates and reads only the metadata, from the first [`meta_bytes_needed`] bytes of a
/// manifest: listing snapshots never reads chunk lists (64 MiB for a 1 TiB image). The metadata
/// is authenticated; the rest of the manifest, and its name, are checked when it is loaded whole.
pub fn decode_meta(keys: &RepoKeys, id: &SnapshotId, prefix: &[u8]) -> Result<SnapshotMeta> {
    let object = format!("snapshot {}", id.short());
    let meta_end = META_OFFSET + sealed_meta_len(prefix, &object)?;
    let meta_sealed = prefix.get(META_OFFSET..meta_end).ok_or_else(|| Error::corrupt(&object, "truncated"))?;
    let json = format::open_section(keys, &prefix[..HEADER_BYTES], meta_sealed, &object)?;
    serde_json::from_slice(&json).map_err(|e| Error::corrupt(&object, format!("metadata unreadable: {e}")))
}
