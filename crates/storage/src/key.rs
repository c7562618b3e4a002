use std::fmt;

/// A validated object key: relative, `/`-separated segments of `[a-z0-9._-]`, no empty,
/// `.` or `..` segments. The restriction keeps keys portable to every filesystem and object
/// store, and makes path traversal impossible by construction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

/// Longest key accepted; far above what the engine writes, well below S3's 1024-byte limit.
pub const OBJECT_KEY_LENGTH_MAX: usize = 512;

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidKey> {
        let key = key.into();
        if key.is_empty() || key.len() > OBJECT_KEY_LENGTH_MAX {
            return Err(InvalidKey(key));
        }
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !key.split('/').all(segment_ok) {
            return Err(InvalidKey(key));
        }
        Ok(ObjectKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment ("packs/ab/abcd…" → "abcd…").
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid object key {0:?}")]
pub struct InvalidKey(pub String);
