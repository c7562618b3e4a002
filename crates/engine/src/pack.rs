//! Pack files: many blobs in one object.
//!
//! ```text
//! header(16) ‖ blob … blob ‖ sealed pack header ‖ sealed header length (u32 LE) ‖ "drydpack"
//! ```
//! The pack header lists every blob (chunk id, offset, stored length, raw length, flags) and is
//! sealed with the 16-byte file header as associated data. It sits at the end so a pack can be
//! written front to back; the trailing magic makes truncation visible.

use crate::aligned::AlignedBuf;
use crate::crypto::RepoKeys;
use crate::error::{Error, Result};
use crate::format::{self, HEADER_BYTES, MAGIC_PACK, Reader};
use crate::id::{ChunkId, PackId};

pub const PACK_VERSION: u16 = 1;
pub const TRAILER_BYTES: usize = 4 + 8;
const ENTRY_BYTES: usize = 32 + 4 + 4 + 4 + 1;

/// Where a blob sits inside its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    pub id: ChunkId,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
    pub flags: u8,
}

/// Accumulates blobs in memory until the pack is full. The buffer is aligned so local storage
/// can write the pack with direct I/O, and reusable so a long backup does not fault in fresh
/// pages for every pack.
pub struct PackWriter {
    bytes: AlignedBuf,
    entries: Vec<BlobEntry>,
}

/// A finished pack, ready to store.
pub struct SealedPack {
    pub id: PackId,
    pub bytes: AlignedBuf,
    pub entries: Vec<BlobEntry>,
}

impl PackWriter {
    pub fn new(capacity_bytes: usize) -> Self {
        Self::reusing(AlignedBuf::with_capacity(capacity_bytes))
    }

    /// Starts a pack in `buffer` (typically a stored pack's, handed back), discarding its contents.
    pub fn reusing(mut buffer: AlignedBuf) -> Self {
        buffer.clear();
        buffer.extend_from_slice(&format::header(MAGIC_PACK, PACK_VERSION));
        PackWriter { bytes: buffer, entries: Vec::new() }
    }

    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn add(&mut self, id: ChunkId, flags: u8, raw_len: u32, sealed: &[u8]) {
        let offset = u32::try_from(self.bytes.len()).expect("packs stay far below 4 GiB");
        self.bytes.extend_from_slice(sealed);
        self.entries.push(BlobEntry { id, offset, stored_len: sealed.len() as u32, raw_len, flags });
    }

    pub fn finish(mut self, keys: &RepoKeys) -> SealedPack {
        let mut table = Vec::with_capacity(4 + self.entries.len() * ENTRY_BYTES);
        table.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for entry in &self.entries {
            table.extend_from_slice(&entry.id.0);
            table.extend_from_slice(&entry.offset.to_le_bytes());
            table.extend_from_slice(&entry.stored_len.to_le_bytes());
            table.extend_from_slice(&entry.raw_len.to_le_bytes());
            table.push(entry.flags);
        }
        let header = format::header(MAGIC_PACK, PACK_VERSION);
        // Sealed apart and appended: the header is small next to the blobs, and sealing wants a Vec.
        let sealed = keys.cipher.seal(&header, &table);
        self.bytes.extend_from_slice(&sealed);
        self.bytes.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(MAGIC_PACK.0);
        let id = PackId(*blake3::hash(&self.bytes).as_bytes());
        SealedPack { id, bytes: self.bytes, entries: self.entries }
    }
}

/// Length of the sealed pack header, read from a pack's last [`TRAILER_BYTES`].
pub fn header_len_from_trailer(trailer: &[u8], object: &str) -> Result<usize> {
    if trailer.len() != TRAILER_BYTES || &trailer[4..] != MAGIC_PACK.0 {
        return Err(Error::corrupt(object, "trailer is missing (truncated pack?)"));
    }
    Ok(u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes")) as usize)
}

/// Opens the sealed pack header and checks every entry lies inside the blob area.
pub fn decode_header(keys: &RepoKeys, sealed: &[u8], pack_size: u64, object: &str) -> Result<Vec<BlobEntry>> {
    let header = format::header(MAGIC_PACK, PACK_VERSION);
    let table =
        keys.cipher.open(&header, sealed).ok_or_else(|| Error::corrupt(object, "pack header failed authentication"))?;
    let mut reader = Reader::new(&table, object);
    let count = reader.u32()? as usize;
    if count.saturating_mul(ENTRY_BYTES) != reader.remaining() {
        return Err(Error::corrupt(object, "pack header has the wrong length"));
    }
    let blobs_end = pack_size - (sealed.len() + TRAILER_BYTES) as u64;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let entry = BlobEntry {
            id: ChunkId(reader.id()?),
            offset: reader.u32()?,
            stored_len: reader.u32()?,
            raw_len: reader.u32()?,
            flags: reader.u8()?,
        };
        if (entry.offset as u64) < HEADER_BYTES as u64 || entry.offset as u64 + entry.stored_len as u64 > blobs_end {
            return Err(Error::corrupt(object, format!("blob {} lies outside the pack", entry.id.short())));
        }
        entries.push(entry);
    }
    reader.finish()?;
    Ok(entries)
}

/// Checks a whole pack held in memory: its name, header, trailer, and returns its entries.
pub fn parse(keys: &RepoKeys, id: &PackId, bytes: &[u8], object: &str) -> Result<Vec<BlobEntry>> {
    if PackId(*blake3::hash(bytes).as_bytes()) != *id {
        return Err(Error::corrupt(object, "contents do not match the pack's name"));
    }
    format::check_header(bytes, MAGIC_PACK, PACK_VERSION, object)?;
    if bytes.len() < HEADER_BYTES + TRAILER_BYTES {
        return Err(Error::corrupt(object, "too short to be a pack"));
    }
    let header_len = header_len_from_trailer(&bytes[bytes.len() - TRAILER_BYTES..], object)?;
    let end = bytes.len() - TRAILER_BYTES;
    if header_len > end - HEADER_BYTES {
        return Err(Error::corrupt(object, "pack header length is impossible"));
    }
    decode_header(keys, &bytes[end - header_len..end], bytes.len() as u64, object)
}
