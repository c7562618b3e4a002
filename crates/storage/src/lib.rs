//! Where repository objects live.
//!
//! [`Storage`] is deliberately small so that a local directory, memory and an object store
//! (S3, in [`S3Storage`]) all fit it. The contract, which every implementation must honour and
//! which the conformance suite in [`conformance`] checks:
//!
//! - **Keys** are [`ObjectKey`]s: relative, `/`-separated, made of `[a-z0-9._-]` segments.
//! - **put is atomic and whole**: after `put` returns `Ok`, a `get` returns exactly the bytes
//!   written; a crash or error during `put` leaves either no object or the previous one, never a
//!   prefix. `put` on an existing key replaces it (callers avoid relying on this for data
//!   objects: those are content-addressed, so a replacement has identical bytes).
//! - **No rename, no append**: objects are written once, whole.
//! - **get after put is consistent** for the same key (true of every modern object store).
//! - **list may lag**: a `list` may miss objects put very recently or still show objects
//!   deleted very recently. The engine's ordering rules (docs/concurrency.md) never rely on
//!   list for the safety of data that a committed snapshot references.
//! - **delete is idempotent**: deleting a missing key is `Ok`.
//! - Errors carry a [`ErrorKind`] so decorators can tell transient from permanent.

pub mod conformance;
mod error;
mod faults;
mod key;
mod local;
mod memory;
mod retry;
mod s3;

pub use error::{Error, ErrorKind, Result};
pub use faults::{Fault, FaultPlan, Faulty, Op};
pub use key::ObjectKey;
pub use local::LocalStorage;
pub use memory::MemoryStorage;
pub use retry::{Retry, RetryPolicy};
pub use s3::{Credentials, MULTIPART_THRESHOLD_DEFAULT, PART_SIZE_MIN, PendingUpload, S3Config, S3Storage};

/// What `list` and `stat` report about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: ObjectKey,
    pub size_bytes: u64,
}

/// A flat namespace of immutable objects. See the crate documentation for the contract.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Stores `data` under `key`, atomically and durably.
    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<()>;

    /// Returns the whole object. A missing object is an error of kind [`ErrorKind::NotFound`].
    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>>;

    /// Returns `length` bytes starting at `offset`. Reading past the end is an error of kind
    /// [`ErrorKind::OutOfRange`]; a short object never yields a short read silently.
    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> Result<Vec<u8>>;

    /// Every object whose key starts with `prefix`, in no particular order. May lag.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    /// Removes the object; `Ok` if it does not exist.
    fn delete(&self, key: &ObjectKey) -> Result<()>;

    /// Size of the object, or an error of kind [`ErrorKind::NotFound`].
    fn stat(&self, key: &ObjectKey) -> Result<ObjectInfo>;

    /// A short human description for messages ("local /srv/repo", "memory").
    fn describe(&self) -> String;
}

impl<S: Storage + ?Sized> Storage for std::sync::Arc<S> {
    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<()> {
        (**self).put(key, data)
    }
    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>> {
        (**self).get(key)
    }
    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> Result<Vec<u8>> {
        (**self).get_range(key, offset, length)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        (**self).list(prefix)
    }
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        (**self).delete(key)
    }
    fn stat(&self, key: &ObjectKey) -> Result<ObjectInfo> {
        (**self).stat(key)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
