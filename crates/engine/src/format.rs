//! The envelope every persisted object starts with, and sealed whole-file objects.
//!
//! Every object begins with a 16-byte header: an 8-byte magic naming its kind, a little-endian
//! u16 format version, and 6 reserved zero bytes. A published magic is never reused for a
//! different layout; a new layout gets a new version.

use crate::crypto::RepoKeys;
use crate::error::{Error, Result};

pub const HEADER_BYTES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Magic(pub &'static [u8; 8]);

pub const MAGIC_CONFIG: Magic = Magic(b"drydconf");
pub const MAGIC_KEY: Magic = Magic(b"drydkey_");
pub const MAGIC_PACK: Magic = Magic(b"drydpack");
pub const MAGIC_INDEX: Magic = Magic(b"drydindx");
pub const MAGIC_SNAPSHOT: Magic = Magic(b"drydsnap");
pub const MAGIC_LEASE: Magic = Magic(b"drydleas");
pub const MAGIC_PLAN: Magic = Magic(b"drydplan");

/// Level for metadata objects (indexes, manifests): small and written rarely.
const METADATA_ZSTD_LEVEL: i32 = 3;

pub fn header(magic: Magic, version: u16) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(magic.0);
    header[8..10].copy_from_slice(&version.to_le_bytes());
    header
}

/// Checks the header of `bytes` and returns the version. `object` names the object in errors.
pub fn check_header(bytes: &[u8], magic: Magic, version_max: u16, object: &str) -> Result<u16> {
    if bytes.len() < HEADER_BYTES {
        return Err(Error::corrupt(object, format!("truncated to {} bytes", bytes.len())));
    }
    if &bytes[..8] != magic.0 {
        return Err(Error::corrupt(object, "wrong magic number (not this kind of drydock object)"));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version == 0 || version > version_max {
        return Err(Error::UnsupportedVersion { object: object.to_string(), found: version, supported: version_max });
    }
    Ok(version)
}

/// `header ‖ seal(aad = header, zstd(body))`.
pub fn seal_object(keys: &RepoKeys, magic: Magic, version: u16, body: &[u8]) -> Vec<u8> {
    let header = header(magic, version);
    let mut out = header.to_vec();
    out.extend_from_slice(&seal_section(keys, &header, body));
    out
}

/// Checks, authenticates and decompresses an object made by [`seal_object`].
pub fn open_object(keys: &RepoKeys, magic: Magic, version_max: u16, object: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    check_header(bytes, magic, version_max, object)?;
    let (header, sealed) = bytes.split_at(HEADER_BYTES);
    open_section(keys, header, sealed, object)
}

/// `seal(aad, zstd(body))`: one compressed, authenticated part of a metadata object.
pub fn seal_section(keys: &RepoKeys, aad: &[u8], body: &[u8]) -> Vec<u8> {
    let compressed = zstd::bulk::compress(body, METADATA_ZSTD_LEVEL).expect("zstd compression into a Vec cannot fail");
    keys.cipher.seal(aad, &compressed)
}

/// Opens and decompresses a part made by [`seal_section`].
pub fn open_section(keys: &RepoKeys, aad: &[u8], sealed: &[u8], object: &str) -> Result<Vec<u8>> {
    let compressed = keys.cipher.open(aad, sealed).ok_or_else(|| {
        Error::corrupt(object, "failed authentication (altered, truncated or from another repository)")
    })?;
    decompress_bounded(&compressed, METADATA_BYTES_MAX, object)
}

/// Largest metadata object we will inflate: bounds memory against a hostile or damaged frame.
/// 1 GiB of manifest is a 16 TiB image at 512 KiB chunks.
pub const METADATA_BYTES_MAX: usize = 1 << 30;

pub fn decompress_bounded(compressed: &[u8], bytes_max: usize, object: &str) -> Result<Vec<u8>> {
    let size = zstd::bulk::Decompressor::upper_bound(compressed).unwrap_or(bytes_max).min(bytes_max);
    zstd::bulk::decompress(compressed, size).map_err(|e| Error::corrupt(object, format!("does not decompress: {e}")))
}

/// Little-endian readers over a byte slice that fail with a message instead of panicking.
pub struct Reader<'a> {
    bytes: &'a [u8],
    object: &'a str,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], object: &'a str) -> Self {
        Reader { bytes, object }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(Error::corrupt(self.object, "ends early"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub fn id(&mut self) -> Result<[u8; 32]> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub fn finish(self) -> Result<()> {
        if self.bytes.is_empty() { Ok(()) } else { Err(Error::corrupt(self.object, "has trailing bytes")) }
    }
}
