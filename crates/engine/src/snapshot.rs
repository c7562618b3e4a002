//! Snapshot manifests: what an image looked like at one moment.
//!
//! Body (sealed with [`crate::format::seal_object`]): `JSON length u32 ‖ JSON metadata ‖
//! chunk count u64 ‖ chunk ids (32 bytes each, in image order; the all-zero id marks a chunk of
//! zeros)`. Every manifest lists every chunk of its image: snapshots are logically full, so
//! deleting one never affects another.

use serde::{Deserialize, Serialize};

use crate::crypto::RepoKeys;
use crate::error::{Error, Result};
use crate::format::{self, MAGIC_SNAPSHOT, Reader};
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

impl Manifest {
    pub fn encode(&self, keys: &RepoKeys) -> (SnapshotId, Vec<u8>) {
        let json = serde_json::to_vec(&self.meta).expect("snapshot metadata serializes");
        let mut body = Vec::with_capacity(4 + json.len() + 8 + self.chunks.len() * 32);
        body.extend_from_slice(&(json.len() as u32).to_le_bytes());
        body.extend_from_slice(&json);
        body.extend_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        for chunk in &self.chunks {
            body.extend_from_slice(&chunk.0);
        }
        let bytes = format::seal_object(keys, MAGIC_SNAPSHOT, SNAPSHOT_VERSION, &body);
        (SnapshotId(*blake3::hash(&bytes).as_bytes()), bytes)
    }

    pub fn decode(keys: &RepoKeys, id: &SnapshotId, bytes: &[u8]) -> Result<Manifest> {
        let object = format!("snapshot {}", id.short());
        if SnapshotId(*blake3::hash(bytes).as_bytes()) != *id {
            return Err(Error::corrupt(&object, "contents do not match the snapshot's name"));
        }
        let body = format::open_object(keys, MAGIC_SNAPSHOT, SNAPSHOT_VERSION, &object, bytes)?;
        let mut reader = Reader::new(&body, &object);
        let json_len = reader.u32()? as usize;
        let meta: SnapshotMeta = serde_json::from_slice(reader.take(json_len)?)
            .map_err(|e| Error::corrupt(&object, format!("metadata unreadable: {e}")))?;
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
