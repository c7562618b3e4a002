//! [`AlignedBuf`]: a growable byte buffer whose first byte sits on a [`DIRECT_IO_ALIGN_BYTES`]
//! boundary.
//!
//! Storage and targets write large slices with O_DIRECT (no kernel copy into the page cache)
//! only when the slice starts on such a boundary; a `Vec<u8>` from the allocator never does
//! (glibc returns 16-byte aligned blocks). Packs, read buffers and restore buffers are therefore
//! `AlignedBuf`s. It is deliberately small: only what those users need.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Alignment of every buffer: the largest logical block size in common use (4 KiB sectors), so
/// direct I/O accepts the buffer on any device. Storage and sources use the same value.
pub const DIRECT_IO_ALIGN_BYTES: usize = 4096;

/// A byte buffer like `Vec<u8>` (length ≤ capacity, grows on demand), but aligned.
pub struct AlignedBuf {
    /// Start of an allocation of `capacity` bytes with `layout(capacity)`; bytes `..len` are
    /// initialized.
    ptr: NonNull<u8>,
    len: usize,
    capacity: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads the initialized bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// An empty buffer with room for at least `capacity` bytes (always at least one block, so
    /// there is always a real, aligned allocation behind `ptr`).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1).next_multiple_of(DIRECT_IO_ALIGN_BYTES);
        let layout = layout(capacity);
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc::alloc(layout) }).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, len: 0, capacity }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the buffer and keeps its allocation, so reusing it touches no fresh pages.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        // SAFETY: `reserve` made room for `data.len()` bytes after `len`; `data` cannot overlap
        // our allocation because we hold `&mut self`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(self.len), data.len()) };
        self.len += data.len();
    }

    /// Sets the length to `new_len`, filling new bytes with `value` (like `Vec::resize`).
    pub fn resize(&mut self, new_len: usize, value: u8) {
        if new_len > self.len {
            self.reserve(new_len - self.len);
            // SAFETY: `reserve` made room up to `new_len`.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), value, new_len - self.len) };
        }
        self.len = new_len;
    }

    /// Makes room for `additional` more bytes, at least doubling so appends stay amortized O(1).
    fn reserve(&mut self, additional: usize) {
        let needed = self.len.checked_add(additional).expect("buffer length overflows usize");
        if needed <= self.capacity {
            return;
        }
        let mut grown = AlignedBuf::with_capacity(needed.max(self.capacity * 2));
        grown.extend_from_slice(self);
        *self = grown;
    }
}

fn layout(capacity: usize) -> Layout {
    Layout::from_size_align(capacity, DIRECT_IO_ALIGN_BYTES).expect("buffer sizes stay far below isize::MAX")
}

impl Deref for AlignedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: bytes `..len` are initialized and owned by us.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `with_capacity` with exactly this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout(self.capacity)) };
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf").field("len", &self.len).field("capacity", &self.capacity).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_aligned(buffer: &AlignedBuf) -> bool {
        (buffer.as_ptr() as usize).is_multiple_of(DIRECT_IO_ALIGN_BYTES)
    }

    #[test]
    fn starts_aligned_and_stays_aligned_when_it_grows() {
        let mut buffer = AlignedBuf::with_capacity(0);
        assert!(is_aligned(&buffer) && buffer.is_empty() && buffer.capacity() >= 1);
        let mut expected = Vec::new();
        for i in 0..5000u32 {
            let piece = i.to_le_bytes();
            buffer.extend_from_slice(&piece);
            expected.extend_from_slice(&piece);
            assert!(is_aligned(&buffer));
        }
        assert_eq!(&buffer[..], &expected[..]);
        assert!(buffer.capacity() >= buffer.len());
    }

    #[test]
    fn resize_fills_and_truncates_like_vec() {
        let mut buffer = AlignedBuf::with_capacity(10);
        buffer.extend_from_slice(b"abc");
        buffer.resize(10_000, 7);
        assert_eq!(&buffer[..3], b"abc");
        assert!(buffer[3..].iter().all(|&b| b == 7) && buffer.len() == 10_000);
        buffer.resize(2, 0);
        assert_eq!(&buffer[..], b"ab");
        buffer[1] = b'z';
        assert_eq!(&buffer[..], b"az");
    }

    #[test]
    fn clear_keeps_the_allocation() {
        let mut buffer = AlignedBuf::with_capacity(1 << 20);
        buffer.resize(1 << 20, 1);
        let (ptr, capacity) = (buffer.as_ptr(), buffer.capacity());
        buffer.clear();
        assert!(buffer.is_empty());
        buffer.extend_from_slice(&[2u8; 1000]);
        assert_eq!((buffer.as_ptr(), buffer.capacity()), (ptr, capacity));
        assert_eq!(&buffer[..], &[2u8; 1000][..]);
    }
}
