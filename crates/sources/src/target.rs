use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// Where a restore writes. Writes may arrive from several threads and in any order; a target
/// that needs order (a stream) reassembles it.
pub trait RestoreTarget: Send + Sync {
    /// Writes `data` at `offset`.
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()>;

    /// Makes `length` bytes at `offset` read as zeros (a hole where the target allows it).
    fn zero_range(&self, offset: u64, length: u64) -> io::Result<()>;

    /// Makes the result durable and visible under its final name. Until `finish` returns,
    /// nothing at the target's path looks like a complete image.
    fn finish(self: Box<Self>) -> io::Result<()>;

    fn describe(&self) -> String;
}

/// Direct I/O needs the buffer address, the offset and the length to be multiples of the
/// device's logical block size; 4096 covers 512-byte and 4 KiB sectors alike.
pub(crate) const DIRECT_IO_ALIGN_BYTES: usize = 4096;

/// Chooses the target for `path`: `-` is standard output, an existing block device is written
/// in place (only with `overwrite`), anything else is a regular file.
pub fn open_target(path: &Path, size_bytes: u64, overwrite: bool) -> io::Result<Box<dyn RestoreTarget>> {
    if path == Path::new("-") {
        return Ok(Box::new(StreamTarget::new(io::stdout(), STREAM_REORDER_BYTES_MAX)));
    }
    match fs::metadata(path) {
        Ok(meta) if meta.file_type().is_block_device() => {
            Ok(Box::new(BlockDeviceTarget::open(path, size_bytes, overwrite)?))
        }
        _ => Ok(Box::new(FileTarget::create(path, size_bytes, overwrite)?)),
    }
}

/// What a file target's temporary name adds to the target's: `<file>.drydock-partial-<pid>`.
/// A file so named whose process is gone is a leftover of an interrupted restore.
pub const PARTIAL_MARK: &str = ".drydock-partial-";

/// Most bytes a stream target holds while waiting for an earlier piece.
pub const STREAM_REORDER_BYTES_MAX: u64 = 64 << 20;

/// A regular file, written under a temporary sibling name and renamed into place by `finish`,
/// so an interrupted restore never leaves a file at `path` that looks complete.
#[derive(Debug)]
pub struct FileTarget {
    file: File,
    /// The partial file opened again with O_DIRECT (`None` where the filesystem refuses it).
    /// Restore writes every byte once and fsyncs at the end, so the page cache buys nothing and
    /// costs a kernel copy per byte plus, with several writer threads, contention on the inode
    /// lock that ext4 holds across every buffered write.
    direct: Option<File>,
    path: PathBuf,
    partial_path: PathBuf,
}

impl FileTarget {
    pub fn create(path: &Path, size_bytes: u64, overwrite: bool) -> io::Result<Self> {
        let replaced = fs::metadata(path).ok();
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("restore target {} is a directory", path.display()),
                ));
            }
            Ok(_) if !overwrite => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("restore target {} already exists (use --overwrite to replace it)", path.display()),
                ));
            }
            _ => {}
        }
        let file_name = path.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("restore target {} has no file name", path.display()))
        })?;
        let mut partial_name = file_name.to_os_string();
        partial_name.push(format!("{PARTIAL_MARK}{}", std::process::id()));
        let partial_path = path.with_file_name(partial_name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&partial_path)
            .map_err(|e| annotate(&partial_path, e))?;
        // A replaced disk keeps its owner and mode: the hypervisor's user must still open it.
        if let Some(meta) = &replaced {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let kept = file
                .set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
                .and_then(|()| std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())));
            if let Err(e) = kept {
                let _ = fs::remove_file(&partial_path);
                return Err(annotate(&partial_path, e));
            }
        }
        let direct = OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(&partial_path).ok();
        let target = FileTarget { file, direct, path: path.to_path_buf(), partial_path };
        // A fresh file of the final length is all holes: zero chunks need no writes at all.
        target.file.set_len(size_bytes).map_err(|e| annotate(&target.partial_path, e))?;
        Ok(target)
    }
}

impl FileTarget {
    /// Writes the whole blocks of an aligned `data` with direct I/O and returns how many bytes
    /// it wrote (0 when the request or the filesystem does not allow it).
    fn write_direct(&self, data: &[u8], offset: u64) -> io::Result<usize> {
        let Some(direct) = &self.direct else { return Ok(0) };
        let direct_len = data.len() - data.len() % DIRECT_IO_ALIGN_BYTES;
        if direct_len == 0
            || !(data.as_ptr() as usize).is_multiple_of(DIRECT_IO_ALIGN_BYTES)
            || !offset.is_multiple_of(DIRECT_IO_ALIGN_BYTES as u64)
        {
            return Ok(0);
        }
        match direct.write_all_at(&data[..direct_len], offset) {
            Ok(()) => Ok(direct_len),
            // Stricter alignment than ours: the caller writes it all through the page cache.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl FileTarget {
    /// Whether block-aligned writes from block-aligned buffers bypass the page cache here (the
    /// filesystem accepted O_DIRECT); restore decodes into aligned buffers for this.
    pub fn writes_directly(&self) -> bool {
        self.direct.is_some()
    }
}

impl RestoreTarget for FileTarget {
    /// Aligned whole blocks go straight to the device; an unaligned buffer, and the tail of an
    /// image whose size is not a multiple of the block size, go through the page cache.
    ///
    /// Mixing the two is safe because the direct blocks of one write never share a page with
    /// another write: they are whole blocks inside this write's range, starting at an aligned
    /// offset, and this write's own buffered tail is written only after they have completed.
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let done = self.write_direct(data, offset).map_err(|e| annotate(&self.partial_path, e))?;
        self.file.write_all_at(&data[done..], offset + done as u64).map_err(|e| annotate(&self.partial_path, e))
    }

    fn zero_range(&self, _offset: u64, _length: u64) -> io::Result<()> {
        Ok(())
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.file.sync_all().map_err(|e| annotate(&self.partial_path, e))?;
        fs::rename(&self.partial_path, &self.path).map_err(|e| annotate(&self.path, e))?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| annotate(dir, e))?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for FileTarget {
    fn drop(&mut self) {
        // After a successful finish the partial path no longer exists; otherwise this removes
        // the unfinished image.
        let _ = fs::remove_file(&self.partial_path);
    }
}

/// A block device, written in place. Zero chunks are written as zeros because the device
/// still holds old data.
#[derive(Debug)]
pub struct BlockDeviceTarget {
    file: File,
    path: PathBuf,
}

impl BlockDeviceTarget {
    pub fn open(path: &Path, size_bytes: u64, overwrite: bool) -> io::Result<Self> {
        if !overwrite {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "restore target {} is a block device with data on it (use --overwrite to replace it)",
                    path.display()
                ),
            ));
        }
        let file = OpenOptions::new().write(true).open(path).map_err(|e| annotate(path, e))?;
        let device_bytes = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
        if device_bytes < 0 || (device_bytes as u64) < size_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("block device {} holds {device_bytes} bytes, the image needs {size_bytes}", path.display()),
            ));
        }
        Ok(BlockDeviceTarget { file, path: path.to_path_buf() })
    }
}

impl RestoreTarget for BlockDeviceTarget {
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(data, offset).map_err(|e| annotate(&self.path, e))
    }

    fn zero_range(&self, offset: u64, length: u64) -> io::Result<()> {
        let zeroed =
            unsafe { libc::fallocate(self.file.as_raw_fd(), libc::FALLOC_FL_ZERO_RANGE, offset as i64, length as i64) };
        if zeroed == 0 {
            return Ok(());
        }
        // Devices without write-zeroes support: write them.
        let zeros = vec![0u8; length.min(1 << 20) as usize];
        let mut done = 0;
        while done < length {
            let n = (length - done).min(zeros.len() as u64) as usize;
            self.write_at(&zeros[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.file.sync_all().map_err(|e| annotate(&self.path, e))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A byte stream (standard output, a pipe): pieces are reassembled in order, holding at most
/// `reorder_bytes_max` ahead of the next byte to emit; writers further ahead wait.
pub struct StreamTarget<W: Write + Send> {
    state: Mutex<StreamState<W>>,
    progressed: Condvar,
    reorder_bytes_max: u64,
}

struct StreamState<W> {
    writer: W,
    next_offset: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    failed: Option<String>,
}

impl<W: Write + Send> StreamTarget<W> {
    pub fn new(writer: W, reorder_bytes_max: u64) -> Self {
        StreamTarget {
            state: Mutex::new(StreamState { writer, next_offset: 0, pending: BTreeMap::new(), failed: None }),
            progressed: Condvar::new(),
            reorder_bytes_max,
        }
    }

    fn submit(&self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while offset > state.next_offset + self.reorder_bytes_max && state.failed.is_none() {
            state = self.progressed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if let Some(message) = &state.failed {
            return Err(io::Error::other(message.clone()));
        }
        state.pending.insert(offset, data);
        let state = &mut *state;
        while let Some(entry) = state.pending.first_entry() {
            if *entry.key() != state.next_offset {
                break;
            }
            let piece = entry.remove();
            if let Err(e) = state.writer.write_all(&piece) {
                state.failed = Some(format!("writing the restored image to the output stream: {e}"));
                self.progressed.notify_all();
                return Err(e);
            }
            state.next_offset += piece.len() as u64;
        }
        self.progressed.notify_all();
        Ok(())
    }

    /// Gives back the writer once everything has been written (used by tests).
    pub fn into_inner(self) -> W {
        self.state.into_inner().unwrap_or_else(|e| e.into_inner()).writer
    }
}

impl<W: Write + Send> RestoreTarget for StreamTarget<W> {
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.submit(offset, data.to_vec())
    }

    fn zero_range(&self, offset: u64, length: u64) -> io::Result<()> {
        self.submit(offset, vec![0u8; length as usize])
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        let mut state = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        if !state.pending.is_empty() {
            return Err(io::Error::other("output stream has a gap: a piece of the image was never written"));
        }
        state.writer.flush()
    }

    fn describe(&self) -> String {
        "standard output".to_string()
    }
}

fn annotate(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {}", path.display(), err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn file_target_appears_only_after_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.img");
        let target = Box::new(FileTarget::create(&path, 8192, false).unwrap());
        target.write_at(&[5u8; 4096], 4096).unwrap();
        assert!(!path.exists());
        target.finish().unwrap();
        let data = fs::read(&path).unwrap();
        assert_eq!(data.len(), 8192);
        assert!(data[..4096].iter().all(|&b| b == 0) && data[4096..].iter().all(|&b| b == 5));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "partial file left behind");
    }

    /// A buffer of `len` pattern bytes at `&buffer[start..]`, `shift` bytes past an aligned
    /// address (so `shift > 0` gives a misaligned slice).
    fn pattern_at(len: usize, shift: usize, seed: u8) -> (Vec<u8>, usize) {
        let mut buffer = vec![0u8; len + shift + DIRECT_IO_ALIGN_BYTES];
        let start = buffer.as_ptr().align_offset(DIRECT_IO_ALIGN_BYTES) + shift;
        for (i, byte) in buffer[start..start + len].iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(31).wrapping_add(seed) | 1;
        }
        (buffer, start)
    }

    #[test]
    fn file_target_writes_aligned_unaligned_and_tail_chunks_and_keeps_holes() {
        const CHUNK: usize = 64 << 10;
        // Seven chunks, the last one short and not a multiple of the block size; chunks 1, 3
        // and 4 are zero and never written.
        let size_bytes = 6 * CHUNK + 5000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.img");
        let target = Box::new(FileTarget::create(&path, size_bytes as u64, false).unwrap());
        assert!(target.writes_directly(), "tempdir filesystem refuses O_DIRECT");
        let mut expected = vec![0u8; size_bytes];
        // (chunk, misalignment of the source slice)
        for (chunk, shift) in [(0, 0), (2, 1), (5, 0), (6, 0)] {
            let len = CHUNK.min(size_bytes - chunk * CHUNK);
            let (buffer, start) = pattern_at(len, shift, chunk as u8);
            let data = &buffer[start..start + len];
            target.write_at(data, (chunk * CHUNK) as u64).unwrap();
            expected[chunk * CHUNK..][..len].copy_from_slice(data);
        }
        target.finish().unwrap();
        assert!(fs::read(&path).unwrap() == expected, "restored bytes differ");
        use std::os::unix::fs::MetadataExt;
        let allocated_bytes = fs::metadata(&path).unwrap().blocks() * 512;
        assert!(allocated_bytes <= (4 * CHUNK + 8192) as u64, "zero chunks were allocated: {allocated_bytes} bytes");
    }

    #[test]
    fn dropped_file_target_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.img");
        let target = FileTarget::create(&path, 8192, false).unwrap();
        target.write_at(&[1u8; 10], 0).unwrap();
        drop(target);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn existing_file_is_refused_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.img");
        fs::write(&path, b"keep me").unwrap();
        let err = FileTarget::create(&path, 10, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("out.img"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"keep me");
        let target = Box::new(FileTarget::create(&path, 3, true).unwrap());
        target.write_at(b"new", 0).unwrap();
        target.finish().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn an_overwritten_file_keeps_its_mode_and_owner() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&path, Some(4242), Some(4343)).unwrap(); // the tests run as root
        let target = Box::new(FileTarget::create(&path, 3, true).unwrap());
        target.write_at(b"new", 0).unwrap();
        target.finish().unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.uid(), meta.gid()), (0o640, 4242, 4343));
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn stream_target_reorders_out_of_order_pieces() {
        let target = Arc::new(StreamTarget::new(Vec::new(), 1 << 20));
        let writers: Vec<_> = (0..8u8)
            .rev()
            .map(|i| {
                let target = target.clone();
                std::thread::spawn(move || {
                    if i % 3 == 0 {
                        target.zero_range(i as u64 * 100, 100).unwrap();
                    } else {
                        target.write_at(&[i; 100], i as u64 * 100).unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        let out = Arc::try_unwrap(target).ok().unwrap().into_inner();
        for i in 0..8u8 {
            let expected = if i % 3 == 0 { 0 } else { i };
            assert!(out[i as usize * 100..][..100].iter().all(|&b| b == expected));
        }
    }
}
