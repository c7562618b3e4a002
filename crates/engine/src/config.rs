//! The repository's `config` object: the parameters every writer must agree on.
//!
//! Stored as `header ‖ JSON ‖ 32-byte MAC`. The JSON is readable without the key (a client
//! must learn whether the repository is encrypted before asking for a passphrase); the MAC,
//! keyed from the master key, is checked right after unlocking so that a tampered chunk size
//! or compression level is refused.

use serde::{Deserialize, Serialize};

use crate::crypto::RepoKeys;
use crate::error::{Error, Result};
use crate::format::{self, HEADER_BYTES, MAGIC_CONFIG};

pub const CONFIG_VERSION: u16 = 1;

/// The default chunk size; docs/benchmarks.md has the measurements behind it.
pub const CHUNK_SIZE_BYTES_DEFAULT: u32 = 512 << 10;
pub const CHUNK_SIZE_BYTES_MIN: u32 = 64 << 10;
pub const CHUNK_SIZE_BYTES_MAX: u32 = 16 << 20;
/// Packs close once they reach this size: large enough for few objects per GiB on an object
/// store, small enough that a backup holds only a couple in memory.
pub const PACK_SIZE_BYTES_TARGET_DEFAULT: u32 = 32 << 20;
pub const COMPRESSION_LEVEL_DEFAULT: i32 = 1;
/// A lease not refreshed for this long belongs to a dead writer (docs/concurrency.md).
pub const LEASE_TTL_SECS_DEFAULT: u64 = 30 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encryption {
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    #[serde(rename = "none")]
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub repository_id: String,
    pub created_at: String,
    pub encryption: Encryption,
    pub chunk_size_bytes: u32,
    pub pack_size_bytes_target: u32,
    pub compression_level: i32,
    pub lease_ttl_secs: u64,
    /// Only in repositories created without encryption: the master key, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_master_key: Option<String>,
}

impl RepoConfig {
    pub fn validate(&self) -> Result<()> {
        if !(CHUNK_SIZE_BYTES_MIN..=CHUNK_SIZE_BYTES_MAX).contains(&self.chunk_size_bytes) {
            return Err(Error::InvalidInput(format!(
                "chunk size {} is outside {CHUNK_SIZE_BYTES_MIN}..={CHUNK_SIZE_BYTES_MAX} bytes",
                self.chunk_size_bytes
            )));
        }
        if !(1..=19).contains(&self.compression_level) {
            return Err(Error::InvalidInput(format!("compression level {} is outside 1..=19", self.compression_level)));
        }
        if self.pack_size_bytes_target < self.chunk_size_bytes || self.pack_size_bytes_target > 1 << 30 {
            return Err(Error::InvalidInput(format!("pack size {} is not sensible", self.pack_size_bytes_target)));
        }
        Ok(())
    }

    pub fn encode(&self, keys: &RepoKeys) -> Vec<u8> {
        let mut out = format::header(MAGIC_CONFIG, CONFIG_VERSION).to_vec();
        out.extend_from_slice(&serde_json::to_vec_pretty(self).expect("config serializes"));
        let mac = keys.config_mac(&out);
        out.extend_from_slice(&mac);
        out
    }

    /// Parses without checking the MAC (the key is not known yet).
    pub fn decode_unverified(bytes: &[u8]) -> Result<Self> {
        format::check_header(bytes, MAGIC_CONFIG, CONFIG_VERSION, "config")?;
        if bytes.len() < HEADER_BYTES + 32 {
            return Err(Error::corrupt("config", "truncated"));
        }
        let json = &bytes[HEADER_BYTES..bytes.len() - 32];
        let config: RepoConfig =
            serde_json::from_slice(json).map_err(|e| Error::corrupt("config", format!("unreadable: {e}")))?;
        config.validate().map_err(|e| Error::corrupt("config", e.to_string()))?;
        Ok(config)
    }

    pub fn verify_mac(bytes: &[u8], keys: &RepoKeys) -> Result<()> {
        let (body, mac) = bytes.split_at(bytes.len() - 32);
        if !crate::crypto::constant_time_eq(&keys.config_mac(body), mac) {
            return Err(Error::corrupt("config", "failed authentication (altered or from another repository)"));
        }
        Ok(())
    }
}
