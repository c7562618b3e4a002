//! Atomic, durable replacement of one file: the heart of `LocalStorage::put`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
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
    let file = match create_new(&temp) {
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            create_dir_durably(dir)?;
            create_new(&temp)?
        }
        other => other?,
    };
    let written = write_contents(&file, data).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&temp, path));
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

/// Direct I/O needs the memory address, the file offset and the length to be multiples of the
/// device's logical block size. 4096 covers every common device (512-byte and 4 KiB sectors);
/// the engine's `AlignedBuf` starts its buffers on this boundary so packs qualify.
pub(super) const DIRECT_IO_ALIGN_BYTES: usize = 4096;
/// Smaller objects (index files, manifests, leases) are written through the page cache: the copy
/// is negligible and direct I/O would only add a second write syscall for the tail.
pub(super) const DIRECT_WRITE_BYTES_MIN: usize = 256 << 10;

/// Writes `data` at the start of the empty file `file`.
///
/// Large writes bypass the page cache (O_DIRECT) for their aligned prefix: buffered writes cost
/// a kernel copy of every byte into freshly allocated page-cache folios, which profiles showed as
/// a quarter of a backup's CPU time, and the pages would only be written back by the fsync that
/// follows anyway. The unaligned tail (less than one block) goes through the page cache. Where
/// direct I/O is refused (a filesystem without it, stricter alignment than ours) everything is
/// written buffered; the result is the same bytes either way, and the caller's fsync makes both
/// durable.
pub(super) fn write_contents(file: &File, data: &[u8]) -> io::Result<()> {
    let direct_len = direct_prefix_len(data);
    let mut done = 0;
    if direct_len > 0 && set_direct(file, true).is_ok() {
        match file.write_all_at(&data[..direct_len], 0) {
            Ok(()) => done = direct_len,
            // EINVAL: alignment refused after all. Rewrite from the start without O_DIRECT (a
            // partial direct write left correct bytes, which are simply written again).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
        set_direct(file, false)?;
    }
    file.write_all_at(&data[done..], done as u64)
}

/// How many leading bytes of `data` may be written with O_DIRECT: the whole blocks, if the
/// slice starts on an aligned address and is large enough to be worth it; else none.
pub(super) fn direct_prefix_len(data: &[u8]) -> usize {
    if data.len() < DIRECT_WRITE_BYTES_MIN || !(data.as_ptr() as usize).is_multiple_of(DIRECT_IO_ALIGN_BYTES) {
        return 0;
    }
    data.len() - data.len() % DIRECT_IO_ALIGN_BYTES
}

/// Turns O_DIRECT on or off for an open file (Linux allows changing it with F_SETFL), so one
/// descriptor writes both the direct prefix and the buffered tail.
fn set_direct(file: &File, direct: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if direct { flags | libc::O_DIRECT } else { flags & !libc::O_DIRECT };
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
