//! Atomic, durable replacement of one file: the heart of `LocalStorage::put`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Start of every temporary file name. `~` is outside the key alphabet, so no object key can
/// ever name (or be mistaken for) a temporary file, and cleaning them up can never delete an
/// object. The leading dot hides them from a casual `ls`.
pub(super) const TEMP_PREFIX: &str = ".tmp~";

/// Separates writers in this process; the pid separates processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other live writer can pick: pid and counter separate concurrent writers, the clock
/// separates this writer from a crashed one whose pid was recycled.
pub(super) fn temp_name() -> String {
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{TEMP_PREFIX}{}-{counter}-{nanos}", std::process::id())
}

/// Replaces `path` with `data` so that an error or a crash leaves either the old file or the new
/// one, whole, and `Ok` means the new one is on stable storage.
pub(super) fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let temp = dir.join(temp_name());
    // Try the common case (directory exists) first: one syscall instead of a walk up the tree.
    let mut file = match create_new(&temp) {
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            create_dir_durably(dir)?;
            create_new(&temp)?
        }
        other => other?,
    };
    let written = file.write_all(data).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&temp, path));
    drop(file);
    if let Err(e) = written {
        // Best effort: if this fails too, the file is left for `remove_stale_temp_files`, and the
        // write's own error is the one worth reporting.
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // The rename is only durable once the directory is. If this fails the new object is in place
    // and whole, but the caller must not count on it surviving a crash.
    sync_dir(dir)
}

fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Creates `dir` and its missing parents, syncing each new directory's parent so that the new
/// entry itself survives a crash (a synced file in an unsynced directory can vanish).
pub(super) fn create_dir_durably(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cursor = dir;
    loop {
        match fs::metadata(cursor) {
            Ok(metadata) if metadata.is_dir() => break,
            Ok(_) => {
                return Err(io::Error::other(format!("{} exists and is not a directory", cursor.display())));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(cursor),
            Err(e) => return Err(e),
        }
        match cursor.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => cursor = parent,
            // Reached the top of a relative path: the working directory exists.
            _ => break,
        }
    }
    for new_dir in missing.iter().rev() {
        match fs::create_dir(new_dir) {
            Ok(()) => {}
            // A concurrent put created it; still sync below, since that put may not have yet.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && new_dir.is_dir() => {}
            Err(e) => return Err(e),
        }
        sync_parent_dir(new_dir)?;
    }
    Ok(())
}

pub(super) fn sync_parent_dir(path: &Path) -> io::Result<()> {
    sync_dir(parent_dir(path))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory holding `path`; `.` for a bare relative name, whose parent is "".
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}
