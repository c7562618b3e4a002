//! [`LocalStorage`]: objects as files under a root directory.

mod atomic_write;
#[cfg(test)]
mod tests;
mod walk;

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, ErrorKind, ObjectInfo, ObjectKey, Result, Storage};

/// Objects as files under a root directory: key `packs/ab/abcd…` is the file
/// `<root>/packs/ab/abcd…`.
///
/// `put` writes a temporary file next to the final one and renames it into place, because a
/// rename within a directory is atomic on POSIX filesystems; it fsyncs the file before the
/// rename and the directory after it, so a returned `Ok` survives a power cut. Temporary names
/// contain a character no [`ObjectKey`] may contain, so no key can ever collide with one and
/// `list` can never report one.
///
/// As on every filesystem, a path cannot be both a file and a directory: after putting `a/b`,
/// putting `a/b/c` fails with a permanent error. The engine's key layout never needs both.
///
/// Empty directories left behind by `delete` are kept: removing them would race with a
/// concurrent `put` that has just created one.
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
    description: String,
}

/// Stands in for the key in errors about the root directory itself.
const ROOT_NAME: &str = "root directory";

impl LocalStorage {
    /// Opens an existing root directory. A missing root is an error rather than created, so a
    /// mistyped path or an unmounted disk is noticed before anything is written to the wrong place.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let storage = Self::at(root.into());
        match fs::metadata(&storage.root) {
            Ok(metadata) if metadata.is_dir() => Ok(storage),
            Ok(_) => Err(Error::new(ErrorKind::Permanent, "open", ROOT_NAME, storage.describe(), "not a directory")),
            Err(e) => Err(storage.io_error("open", ROOT_NAME, e)),
        }
    }

    /// Creates the root directory and its missing parents, then opens it.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let storage = Self::at(root.into());
        atomic_write::create_dir_durably(&storage.root).map_err(|e| storage.io_error("create", ROOT_NAME, e))?;
        Ok(storage)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Deletes temporary files that writers which crashed mid-`put` left behind, if they were
    /// last modified at least `older_than` ago, and returns how many it deleted. `older_than`
    /// must exceed the longest a live `put` can take, or this deletes a file being written
    /// (that `put` then fails; no object is harmed).
    pub fn remove_stale_temp_files(&self, older_than: Duration) -> Result<usize> {
        walk::remove_stale_temp_files(&self.root, older_than)
            .map_err(|e| self.io_error("remove_stale_temp_files", "temporary files", e))
    }

    fn at(root: PathBuf) -> Self {
        let description = format!("local {}", root.display());
        LocalStorage { root, description }
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        // Safe to join: a valid key has no `..`, no empty segment and no leading `/`.
        self.root.join(key.as_str())
    }

    /// Opens an object for reading and returns its size. A directory (a key that is only a
    /// prefix of other keys) is not an object, so it reads as missing.
    fn open_object(&self, op: &'static str, key: &ObjectKey) -> Result<(File, u64)> {
        let file = File::open(self.path_of(key)).map_err(|e| self.io_error(op, key, e))?;
        let metadata = file.metadata().map_err(|e| self.io_error(op, key, e))?;
        if !metadata.is_file() {
            return Err(Error::not_found(op, key, &self.description));
        }
        Ok((file, metadata.len()))
    }

    fn io_error(&self, op: &'static str, key: impl std::fmt::Display, e: io::Error) -> Error {
        Error::new(kind_of(&e), op, key, &self.description, e.to_string())
    }
}

/// Sorts an io error into the coarse kinds decorators act on.
fn kind_of(e: &io::Error) -> ErrorKind {
    use io::ErrorKind as Io;
    match e.kind() {
        _ if names_no_object(e) => ErrorKind::NotFound,
        Io::StorageFull | Io::QuotaExceeded => ErrorKind::NoSpace,
        Io::Interrupted | Io::TimedOut | Io::WouldBlock => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    }
}

/// Whether the error says the path leads to nothing: ENOENT, or ENOTDIR (some segment of the
/// key is a file, so nothing exists below it).
fn names_no_object(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

impl Storage for LocalStorage {
    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<()> {
        atomic_write::write_atomically(&self.path_of(key), data).map_err(|e| self.io_error("put", key, e))
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>> {
        let (mut file, size_bytes) = self.open_object("get", key)?;
        let mut data = Vec::with_capacity(usize::try_from(size_bytes).unwrap_or(0));
        file.read_to_end(&mut data).map_err(|e| self.io_error("get", key, e))?;
        Ok(data)
    }

    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> Result<Vec<u8>> {
        let (file, size_bytes) = self.open_object("get_range", key)?;
        if offset.checked_add(length).is_none_or(|end| end > size_bytes) {
            return Err(Error::new(
                ErrorKind::OutOfRange,
                "get_range",
                key,
                &self.description,
                format!("range {offset}+{length} past the end ({size_bytes} bytes)"),
            ));
        }
        // Checked rather than `as`: a truncated length would be exactly the silent short read
        // the contract forbids.
        let length_usize = usize::try_from(length).map_err(|_| {
            Error::new(ErrorKind::Permanent, "get_range", key, &self.description, "range larger than memory")
        })?;
        let mut data = vec![0; length_usize];
        file.read_exact_at(&mut data, offset).map_err(|e| self.io_error("get_range", key, e))?;
        Ok(data)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        walk::list_objects(&self.root, prefix).map_err(|e| self.io_error("list", format_args!("prefix {prefix:?}"), e))
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        let path = self.path_of(key);
        match fs::remove_file(&path) {
            // Sync the directory too: a delete undone by a crash could resurrect, say, an index
            // that names packs whose own deletes did persist.
            Ok(()) => atomic_write::sync_parent_dir(&path).map_err(|e| self.io_error("delete", key, e)),
            // Already gone, or never an object (a directory, or below a file): delete is idempotent.
            Err(e) if names_no_object(&e) || e.kind() == io::ErrorKind::IsADirectory => Ok(()),
            Err(e) => Err(self.io_error("delete", key, e)),
        }
    }

    fn stat(&self, key: &ObjectKey) -> Result<ObjectInfo> {
        let metadata = fs::metadata(self.path_of(key)).map_err(|e| self.io_error("stat", key, e))?;
        if !metadata.is_file() {
            return Err(Error::not_found("stat", key, &self.description));
        }
        Ok(ObjectInfo { key: key.clone(), size_bytes: metadata.len() })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
