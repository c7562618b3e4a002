use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::BlockSource;

use crate::target::DIRECT_IO_ALIGN_BYTES;

/// A raw image file or a block device.
#[derive(Debug)]
pub struct ImageFile {
    file: File,
    /// The same file opened with O_DIRECT, for reads into aligned buffers (`None` where the
    /// filesystem refuses direct I/O). A backup reads each byte once, so the page cache only
    /// costs a kernel copy per byte and evicts what other programs cached.
    direct: Option<File>,
    path: PathBuf,
    size_bytes: u64,
    is_block_device: bool,
}

impl ImageFile {
    /// Opens `path` read-only. Directories, sockets and the like are refused with a message
    /// that names the path.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path).map_err(|e| annotate(path, e))?;
        let file_type = file.metadata().map_err(|e| annotate(path, e))?.file_type();
        let is_block_device = file_type.is_block_device();
        if !file_type.is_file() && !is_block_device {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not an image file or block device", path.display()),
            ));
        }
        // A block device reports length 0 in its metadata; seeking to the end gives its size.
        let size_bytes = if is_block_device {
            let end = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
            if end < 0 {
                return Err(annotate(path, io::Error::last_os_error()));
            }
            end as u64
        } else {
            file.metadata().map_err(|e| annotate(path, e))?.len()
        };
        // Reads are mostly sequential; a larger read-ahead window helps cold reads.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
        let direct = OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path).ok();
        Ok(ImageFile { file, direct, path: path.to_path_buf(), size_bytes, is_block_device })
    }

    pub fn is_block_device(&self) -> bool {
        self.is_block_device
    }

    /// Finds the next data or hole offset with lseek; `None` past the end of the data.
    fn seek(&self, offset: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
        let result = unsafe { libc::lseek(self.file.as_raw_fd(), offset as libc::off_t, whence) };
        if result >= 0 {
            return Ok(Some(result as u64));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Err(annotate(&self.path, err)),
        }
    }
}

impl BlockSource for ImageFile {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Reads the whole blocks of an aligned request directly and the rest (an unaligned tail,
    /// or everything for an unaligned buffer) through the page cache.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        if let Some(direct) = &self.direct
            && (buf.as_ptr() as usize).is_multiple_of(DIRECT_IO_ALIGN_BYTES)
            && offset.is_multiple_of(DIRECT_IO_ALIGN_BYTES as u64)
        {
            let direct_len = buf.len() - buf.len() % DIRECT_IO_ALIGN_BYTES;
            match direct.read_exact_at(&mut buf[..direct_len], offset) {
                Ok(()) => done = direct_len,
                // Stricter alignment than ours: the buffered read below does it all.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(annotate(&self.path, e)),
            }
        }
        self.file.read_exact_at(&mut buf[done..], offset + done as u64).map_err(|e| annotate(&self.path, e))
    }

    fn data_ranges(&self) -> io::Result<Vec<Range<u64>>> {
        if self.is_block_device || self.size_bytes == 0 {
            return Ok(std::iter::once(0..self.size_bytes).collect());
        }
        let mut ranges = Vec::new();
        let mut offset = 0;
        while offset < self.size_bytes {
            let start = match self.seek(offset, libc::SEEK_DATA) {
                Ok(Some(start)) => start,
                Ok(None) => break,
                // Filesystems without SEEK_DATA support: treat everything as data.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    return Ok(std::iter::once(0..self.size_bytes).collect());
                }
                Err(e) => return Err(e),
            };
            let end = self.seek(start, libc::SEEK_HOLE)?.unwrap_or(self.size_bytes).min(self.size_bytes);
            ranges.push(start..end);
            offset = end;
        }
        Ok(ranges)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

fn annotate(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {}", path.display(), err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sparse_file_reports_only_written_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.img");
        let file = File::create(&path).unwrap();
        file.set_len(64 << 20).unwrap();
        file.write_all_at(&[7u8; 1 << 20], 8 << 20).unwrap();
        file.sync_all().unwrap();
        let image = ImageFile::open(&path).unwrap();
        assert_eq!(image.size_bytes(), 64 << 20);
        let ranges = image.data_ranges().unwrap();
        let data_bytes: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        assert!(ranges.iter().any(|r| r.start <= 8 << 20 && r.end >= 9 << 20), "{ranges:?}");
        assert!(data_bytes < 16 << 20, "hole reported as data: {ranges:?}");
        let mut buf = vec![0u8; 4096];
        image.read_at(&mut buf, 8 << 20).unwrap();
        assert!(buf.iter().all(|&b| b == 7));
    }

    #[test]
    fn reads_match_the_file_whatever_the_buffer_alignment() {
        // Not a multiple of the block size, so the last read has an unaligned tail.
        let size_bytes = 3 * 65536 + 1234;
        let content: Vec<u8> = (0..size_bytes).map(|i| (i * 13 + i / 4096) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.img");
        File::create(&path).unwrap().write_all(&content).unwrap();
        let image = ImageFile::open(&path).unwrap();
        assert!(image.direct.is_some(), "tempdir filesystem refuses O_DIRECT");
        let mut buffer = vec![0u8; 65536 + 2 * DIRECT_IO_ALIGN_BYTES];
        let aligned = buffer.as_ptr().align_offset(DIRECT_IO_ALIGN_BYTES);
        // (offset, length, misalignment of the buffer)
        for (offset, len, shift) in
            [(0, 65536, 0), (65536, 65536, 1), (3 * 65536, 1234, 0), (2 * 65536, 65536 + 1234, 0), (4096, 100, 0)]
        {
            let mut whole = vec![0u8; len + DIRECT_IO_ALIGN_BYTES];
            let start = whole.as_ptr().align_offset(DIRECT_IO_ALIGN_BYTES) + shift;
            let buf = &mut whole[start..start + len];
            image.read_at(buf, offset as u64).unwrap();
            assert!(buf == &content[offset..offset + len], "read of {len} at {offset} (shift {shift}) differs");
        }
        // An aligned read that runs past the end still fails rather than returning short.
        assert!(image.read_at(&mut buffer[aligned..aligned + 65536], 3 * 65536).is_err());
    }

    #[test]
    fn directory_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = ImageFile::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let err = ImageFile::open(Path::new("/nonexistent/disk.img")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent/disk.img"), "{err}");
    }

    #[test]
    fn reading_past_the_end_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.img");
        File::create(&path).unwrap().write_all(&[1u8; 100]).unwrap();
        let image = ImageFile::open(&path).unwrap();
        let mut buf = vec![0u8; 200];
        assert!(image.read_at(&mut buf, 0).is_err());
    }
}
