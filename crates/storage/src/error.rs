use crate::ObjectKey;

pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, coarse enough for decorators to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// A ranged read asked for bytes past the end of the object.
    OutOfRange,
    /// The storage has no room left (ENOSPC, quota).
    NoSpace,
    /// Worth retrying: timeouts, throttling, connection resets, injected transient faults.
    Transient,
    /// Anything else: permissions, invalid keys, I/O errors that will not go away.
    Permanent,
}

/// A storage error. Its message names the object and the storage.
#[derive(Debug, thiserror::Error)]
#[error("{op} {key} in {storage}: {message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub op: &'static str,
    pub key: String,
    pub storage: String,
    pub message: String,
}

impl Error {
    pub fn new(
        kind: ErrorKind,
        op: &'static str,
        key: impl std::fmt::Display,
        storage: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error { kind, op, key: key.to_string(), storage: storage.into(), message: message.into() }
    }

    pub fn not_found(op: &'static str, key: &ObjectKey, storage: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, op, key, storage, "no such object")
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}
