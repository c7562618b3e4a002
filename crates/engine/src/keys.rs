//! Key slots: the master key wrapped under passphrases.
//!
//! Each slot is an object `keys/<name>`: `header ‖ JSON`. The JSON holds the Argon2id
//! parameters and salt, and the master key sealed with AES-256-GCM under the key Argon2id
//! derives from the passphrase (associated data: the header and the slot name, so a slot
//! cannot be swapped for another's ciphertext unnoticed). Several slots wrap the same master
//! key, so adding or removing a passphrase never re-encrypts data.

use serde::{Deserialize, Serialize};

use crate::crypto::{self, KEY_BYTES, MasterKey};
use crate::error::{Error, Result};
use crate::format::{self, HEADER_BYTES, MAGIC_KEY};
use crate::id;

pub const KEY_SLOT_VERSION: u16 = 1;

/// Argon2id cost. 64 MiB and 3 passes take about a quarter of a second here, which is the
/// usual interactive budget (RFC 9106 §4 "second recommended option" uses 64 MiB, t=3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 }
    }
}

/// Upper bounds on what a slot may ask for, so a hostile slot cannot make us allocate 100 GiB.
const KDF_MEMORY_KIB_MAX: u32 = 4 << 20;
const KDF_ITERATIONS_MAX: u32 = 64;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeySlot {
    pub created_at: String,
    pub hostname: String,
    pub username: String,
    pub kdf: KdfParams,
    pub salt: String,
    pub wrapped_master_key: String,
}

/// What `key list` shows about a slot.
#[derive(Clone, Debug, Serialize)]
pub struct KeySlotInfo {
    pub id: String,
    pub created_at: String,
    pub hostname: String,
    pub username: String,
    /// Whether this is the slot the current passphrase opened.
    pub current: bool,
}

fn derive_kek(passphrase: &[u8], salt: &[u8], kdf: &KdfParams) -> Result<[u8; KEY_BYTES]> {
    if kdf.memory_kib > KDF_MEMORY_KIB_MAX || kdf.iterations > KDF_ITERATIONS_MAX || kdf.parallelism == 0 {
        return Err(Error::corrupt("key slot", "asks for unreasonable argon2id parameters"));
    }
    let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(KEY_BYTES))
        .map_err(|e| Error::corrupt("key slot", format!("invalid argon2id parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = [0u8; KEY_BYTES];
    argon
        .hash_password_into(passphrase, salt, &mut kek)
        .map_err(|e| Error::InvalidInput(format!("cannot derive a key from this passphrase: {e}")))?;
    Ok(kek)
}

fn slot_aad(name: &str) -> Vec<u8> {
    let mut aad = format::header(MAGIC_KEY, KEY_SLOT_VERSION).to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn wrapping_cipher(kek: &[u8; KEY_BYTES]) -> crypto::Cipher {
    let key = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, kek).expect("32-byte key");
    crypto::Cipher::Aes256Gcm(Box::new(ring::aead::LessSafeKey::new(key)))
}

impl KeySlot {
    /// Wraps `master` under `passphrase` for the slot called `name`.
    pub fn seal(master: &MasterKey, passphrase: &[u8], name: &str, kdf: KdfParams) -> Result<KeySlot> {
        let salt: [u8; 32] = crypto::random_bytes();
        let kek = derive_kek(passphrase, &salt, &kdf)?;
        let wrapped = wrapping_cipher(&kek).seal(&slot_aad(name), &master.0);
        Ok(KeySlot {
            created_at: crate::time::now_rfc3339(),
            hostname: crate::time::hostname(),
            username: std::env::var("USER").unwrap_or_else(|_| "unknown".to_string()),
            kdf,
            salt: id::hex(&salt),
            wrapped_master_key: id::hex(&wrapped),
        })
    }

    /// The master key if `passphrase` opens this slot, `None` if it does not.
    pub fn open(&self, passphrase: &[u8], name: &str) -> Result<Option<MasterKey>> {
        let object = format!("key slot {name}");
        let salt = id::parse_hex(&self.salt).ok_or_else(|| Error::corrupt(&object, "salt is not hex"))?;
        let wrapped =
            id::parse_hex(&self.wrapped_master_key).ok_or_else(|| Error::corrupt(&object, "wrapped key is not hex"))?;
        let kek = derive_kek(passphrase, &salt, &self.kdf).map_err(|e| match e {
            Error::Corrupt { reason, .. } => Error::corrupt(&object, reason),
            other => other,
        })?;
        let Some(plain) = wrapping_cipher(&kek).open(&slot_aad(name), &wrapped) else {
            return Ok(None);
        };
        let bytes: [u8; KEY_BYTES] =
            plain.try_into().map_err(|_| Error::corrupt(&object, "wrapped key has the wrong length"))?;
        Ok(Some(MasterKey(bytes)))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format::header(MAGIC_KEY, KEY_SLOT_VERSION).to_vec();
        out.extend_from_slice(&serde_json::to_vec_pretty(self).expect("key slot serializes"));
        out
    }

    pub fn decode(bytes: &[u8], name: &str) -> Result<KeySlot> {
        let object = format!("key slot {name}");
        format::check_header(bytes, MAGIC_KEY, KEY_SLOT_VERSION, &object)?;
        serde_json::from_slice(&bytes[HEADER_BYTES..]).map_err(|e| Error::corrupt(&object, format!("unreadable: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn slot_opens_with_its_passphrase_only() {
        let master = MasterKey::generate();
        let slot = KeySlot::seal(&master, b"correct horse", "s1", CHEAP).unwrap();
        let decoded = KeySlot::decode(&slot.encode(), "s1").unwrap();
        assert_eq!(decoded.open(b"correct horse", "s1").unwrap().unwrap().0, master.0);
        assert!(decoded.open(b"wrong", "s1").unwrap().is_none());
        // Renaming a slot's object breaks its binding.
        assert!(decoded.open(b"correct horse", "s2").unwrap().is_none());
    }

    #[test]
    fn hostile_kdf_parameters_are_refused() {
        let master = MasterKey::generate();
        let mut slot = KeySlot::seal(&master, b"pw", "s1", CHEAP).unwrap();
        slot.kdf.memory_kib = u32::MAX;
        assert!(matches!(slot.open(b"pw", "s1"), Err(Error::Corrupt { .. })));
    }
}
