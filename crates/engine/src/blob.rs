//! One chunk as stored inside a pack: optionally zstd-compressed, then sealed with the chunk id
//! and flags as associated data, so a blob moved to another id or flag set fails to open.

use crate::aligned::AlignedBuf;
use crate::crypto::RepoKeys;
use crate::error::{Error, Result};
use crate::id::ChunkId;

/// The blob's bytes are zstd-compressed.
pub const FLAG_ZSTD: u8 = 1;

/// A compressed chunk is kept only if it saves at least 1/32 of the chunk; otherwise the
/// decompression cost on restore buys nothing.
const COMPRESSION_SAVING_MIN_DIVISOR: usize = 32;

/// Compresses (when worth it) and seals chunks; one per worker thread, reusing zstd's context.
pub struct BlobEncoder {
    compressor: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

pub struct EncodedBlob {
    pub flags: u8,
    pub sealed: Vec<u8>,
}

impl BlobEncoder {
    pub fn new(level: i32) -> Self {
        BlobEncoder {
            compressor: zstd::bulk::Compressor::new(level).expect("zstd accepts levels 1..=19"),
            scratch: Vec::new(),
        }
    }

    pub fn encode(&mut self, keys: &RepoKeys, id: &ChunkId, plaintext: &[u8]) -> EncodedBlob {
        let room = plaintext.len() - plaintext.len() / COMPRESSION_SAVING_MIN_DIVISOR;
        self.scratch.clear();
        self.scratch.reserve(room);
        // compress_to_buffer fails when the output does not fit in `room`: incompressible.
        let compressed = self.compressor.compress_to_buffer(plaintext, &mut self.scratch).is_ok();
        let (flags, payload) = if compressed { (FLAG_ZSTD, &self.scratch[..]) } else { (0, plaintext) };
        let mut sealed = Vec::with_capacity(payload.len() + keys.cipher.overhead());
        keys.cipher.seal_into(&aad(id, flags), payload, &mut sealed);
        EncodedBlob { flags, sealed }
    }
}

pub fn aad(id: &ChunkId, flags: u8) -> [u8; 33] {
    let mut aad = [0u8; 33];
    aad[..32].copy_from_slice(&id.0);
    aad[32] = flags;
    aad
}

/// Decodes blobs into a reused aligned buffer, reusing zstd's context: the restore hot path.
pub struct BlobDecoder {
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl BlobDecoder {
    pub fn new() -> Self {
        BlobDecoder { decompressor: zstd::bulk::Decompressor::new().expect("zstd context allocates") }
    }

    /// Like [`decode`], with the same checks, but decrypts in place inside `sealed` and leaves
    /// the chunk in `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn decode_into(
        &mut self,
        keys: &RepoKeys,
        id: &ChunkId,
        flags: u8,
        raw_len: u32,
        sealed: &mut [u8],
        object: &str,
        out: &mut AlignedBuf,
    ) -> Result<()> {
        let payload = keys
            .cipher
            .open_in_place(&aad(id, flags), sealed)
            .ok_or_else(|| Error::corrupt(object, format!("chunk {} failed authentication", id.short())))?;
        if flags & FLAG_ZSTD != 0 {
            // Growing only: a reused buffer already holds initialized bytes, no need to zero them.
            out.resize(raw_len as usize, 0);
            let n = self
                .decompressor
                .decompress_to_buffer(payload, &mut out[..])
                .map_err(|e| Error::corrupt(object, format!("chunk {} does not decompress: {e}", id.short())))?;
            out.resize(n, 0);
        } else {
            out.clear();
            out.extend_from_slice(payload);
        }
        if out.len() != raw_len as usize {
            return Err(Error::corrupt(
                object,
                format!("chunk {} has {} bytes, expected {raw_len}", id.short(), out.len()),
            ));
        }
        if keys.chunk_id(out) != *id {
            return Err(Error::corrupt(object, format!("chunk {} does not hash to its id", id.short())));
        }
        Ok(())
    }
}

/// Opens a blob and checks it is the chunk `id` names: authentication, then length, then the
/// keyed hash of the plaintext (checking data twice: as written and as read back).
pub fn decode(keys: &RepoKeys, id: &ChunkId, flags: u8, raw_len: u32, sealed: &[u8], object: &str) -> Result<Vec<u8>> {
    let payload = keys
        .cipher
        .open(&aad(id, flags), sealed)
        .ok_or_else(|| Error::corrupt(object, format!("chunk {} failed authentication", id.short())))?;
    let plaintext = if flags & FLAG_ZSTD != 0 {
        zstd::bulk::decompress(&payload, raw_len as usize)
            .map_err(|e| Error::corrupt(object, format!("chunk {} does not decompress: {e}", id.short())))?
    } else {
        payload
    };
    if plaintext.len() != raw_len as usize {
        return Err(Error::corrupt(
            object,
            format!("chunk {} has {} bytes, expected {raw_len}", id.short(), plaintext.len()),
        ));
    }
    if keys.chunk_id(&plaintext) != *id {
        return Err(Error::corrupt(object, format!("chunk {} does not hash to its id", id.short())));
    }
    Ok(plaintext)
}
