//! Index files map chunks to where they are stored; the in-memory [`ChunkIndex`] merges them.
//!
//! Index file body (sealed with [`crate::format::seal_object`]):
//! `pack count u32, then per pack: pack id (32), pack size u64, blob count u32, then per blob:
//! chunk id (32), offset u32, stored length u32, raw length u32, flags u8`.

use std::collections::HashMap;

use crate::crypto::RepoKeys;
use crate::error::{Error, Result};
use crate::format::{self, MAGIC_INDEX, Reader};
use crate::id::{ChunkId, IndexId, PackId};
use crate::pack::BlobEntry;

pub const INDEX_VERSION: u16 = 1;

/// One pack as an index file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub id: PackId,
    pub size_bytes: u64,
    pub blobs: Vec<BlobEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    pub packs: Vec<PackEntry>,
}

impl IndexFile {
    pub fn encode(&self, keys: &RepoKeys) -> (IndexId, Vec<u8>) {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for pack in &self.packs {
            body.extend_from_slice(&pack.id.0);
            body.extend_from_slice(&pack.size_bytes.to_le_bytes());
            body.extend_from_slice(&(pack.blobs.len() as u32).to_le_bytes());
            for blob in &pack.blobs {
                body.extend_from_slice(&blob.id.0);
                body.extend_from_slice(&blob.offset.to_le_bytes());
                body.extend_from_slice(&blob.stored_len.to_le_bytes());
                body.extend_from_slice(&blob.raw_len.to_le_bytes());
                body.push(blob.flags);
            }
        }
        let bytes = format::seal_object(keys, MAGIC_INDEX, INDEX_VERSION, &body);
        (IndexId(*blake3::hash(&bytes).as_bytes()), bytes)
    }

    pub fn decode(keys: &RepoKeys, id: &IndexId, bytes: &[u8]) -> Result<IndexFile> {
        let object = format!("index {}", id.short());
        if IndexId(*blake3::hash(bytes).as_bytes()) != *id {
            return Err(Error::corrupt(&object, "contents do not match the index's name"));
        }
        let body = format::open_object(keys, MAGIC_INDEX, INDEX_VERSION, &object, bytes)?;
        let mut reader = Reader::new(&body, &object);
        let pack_count = reader.u32()?;
        let mut packs = Vec::with_capacity(pack_count.min(1 << 20) as usize);
        for _ in 0..pack_count {
            let id = PackId(reader.id()?);
            let size_bytes = reader.u64()?;
            let blob_count = reader.u32()?;
            let mut blobs = Vec::with_capacity(blob_count.min(1 << 20) as usize);
            for _ in 0..blob_count {
                blobs.push(BlobEntry {
                    id: ChunkId(reader.id()?),
                    offset: reader.u32()?,
                    stored_len: reader.u32()?,
                    raw_len: reader.u32()?,
                    flags: reader.u8()?,
                });
            }
            packs.push(PackEntry { id, size_bytes, blobs });
        }
        reader.finish()?;
        Ok(IndexFile { packs })
    }
}

/// Where a chunk is: a pack (by position in [`ChunkIndex::packs`]) and the blob inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub pack: u32,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
    pub flags: u8,
}

/// Every chunk the repository's index files know, with the packs they live in.
#[derive(Debug, Default)]
pub struct ChunkIndex {
    pub packs: Vec<PackId>,
    pub pack_sizes: Vec<u64>,
    pack_positions: HashMap<PackId, u32>,
    chunks: HashMap<ChunkId, Location>,
}

impl ChunkIndex {
    /// Adds a pack's blobs. A chunk already known keeps its first location: duplicates are
    /// harmless and gc removes them.
    pub fn add_pack(&mut self, pack: &PackEntry) {
        if self.pack_positions.contains_key(&pack.id) {
            return;
        }
        let position = self.packs.len() as u32;
        self.packs.push(pack.id);
        self.pack_sizes.push(pack.size_bytes);
        self.pack_positions.insert(pack.id, position);
        self.chunks.reserve(pack.blobs.len());
        for blob in &pack.blobs {
            self.chunks.entry(blob.id).or_insert(Location {
                pack: position,
                offset: blob.offset,
                stored_len: blob.stored_len,
                raw_len: blob.raw_len,
                flags: blob.flags,
            });
        }
    }

    pub fn get(&self, id: &ChunkId) -> Option<&Location> {
        self.chunks.get(id)
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    pub fn pack_id(&self, location: &Location) -> PackId {
        self.packs[location.pack as usize]
    }
}
