//! Where each kind of object lives in storage (docs/format.md, "Layout").

use drydock_storage::ObjectKey;

use crate::id::{IndexId, PackId, SnapshotId};

pub const CONFIG: &str = "config";
pub const KEYS: &str = "keys/";
pub const PACKS: &str = "packs/";
pub const INDEX: &str = "index/";
pub const SNAPSHOTS: &str = "snapshots/";
pub const LEASES: &str = "leases/";
pub const PLANS: &str = "plans/";

fn key(text: String) -> ObjectKey {
    ObjectKey::new(text).expect("layout keys are valid by construction")
}

pub fn config() -> ObjectKey {
    key(CONFIG.to_string())
}

pub fn key_slot(slot: &str) -> ObjectKey {
    key(format!("{KEYS}{slot}"))
}

/// Packs are spread over 256 directories so no directory grows past what filesystems handle well.
pub fn pack(id: &PackId) -> ObjectKey {
    let hex = id.to_hex();
    key(format!("{PACKS}{}/{hex}", &hex[..2]))
}

pub fn index(id: &IndexId) -> ObjectKey {
    key(format!("{INDEX}{id}"))
}

pub fn snapshot(id: &SnapshotId) -> ObjectKey {
    key(format!("{SNAPSHOTS}{id}"))
}

pub fn lease(name: &str) -> ObjectKey {
    key(format!("{LEASES}{name}"))
}

pub fn plan(name: &str) -> ObjectKey {
    key(format!("{PLANS}{name}"))
}

/// A fresh random name for objects that are not content-addressed (key slots, leases, plans).
pub fn random_name() -> String {
    crate::id::hex(&crate::crypto::random_bytes::<16>())
}
