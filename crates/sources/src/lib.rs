//! Disk images on this machine: what a backup reads ([`BlockSource`]) and where a restore
//! writes ([`RestoreTarget`]). Raw image files and block devices today; qcow2 and remote
//! agents later implement the same traits.

mod image_file;
mod target;

pub use image_file::ImageFile;
pub use target::{
    BlockDeviceTarget, FileTarget, PARTIAL_MARK, RestoreTarget, STREAM_REORDER_BYTES_MAX, StreamTarget, open_target,
};

use std::io;
use std::ops::Range;

/// A fixed-size image read by offset. Implementations must be usable from several threads at
/// once (reads are positioned, there is no shared cursor).
pub trait BlockSource: Send + Sync {
    /// Apparent size of the image in bytes.
    fn size_bytes(&self) -> u64;

    /// Fills `buf` from `offset`. Reading past the end is an error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Byte ranges that may hold data, sorted and disjoint; everything outside them reads as
    /// zeros and need not be read at all. A source that cannot tell returns the whole image.
    fn data_ranges(&self) -> io::Result<Vec<Range<u64>>>;

    /// How the source is named in messages and manifests.
    fn describe(&self) -> String;
}
