//! The romfs on-disk format (Linux `Documentation/filesystems/romfs.rst`,
//! as Debian's genromfs writes it): every field big-endian, every header
//! 16-byte aligned, names NUL-terminated and padded to 16 bytes.
//!
//! ```text
//! superblock:  "-rom1fs-" | full size | checksum | volume name (padded)
//! file header: next|exec|type | spec.info | size | checksum | name (padded) | data
//! ```
//!
//! The superblock checksum makes the first min(512, full size) bytes sum
//! to zero as 32-bit words; a file header's makes the header and its name
//! sum to zero. Linux checks only the first; we check both, because an
//! image is untrusted input here.

use core::fmt;
use zerocopy::byteorder::big_endian::U32;
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

pub(super) const MAGIC: [u8; 8] = *b"-rom1fs-";
/// Longest name romfs reads (Linux `ROMFS_MAXFN`).
pub(super) const MAX_NAME: usize = 128;
/// Header fields before the name.
pub(super) const HEADER_LEN: usize = 16;
/// The low four bits of `next`: type and exec.
const TYPE_MASK: u32 = 0x7;
const EXEC_BIT: u32 = 0x8;
const OFFSET_MASK: u32 = !0xF;
/// Bytes of the superblock the checksum covers at most.
const SUPER_SUM_LEN: usize = 512;

/// The first 16 bytes of an image.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(super) struct SuperBlock {
    pub magic: [u8; 8],
    pub full_size: U32,
    pub checksum: U32,
}

/// The fixed part of a file header (the name follows).
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(super) struct FileHeader {
    pub next: U32,
    pub spec: U32,
    pub size: U32,
    pub checksum: U32,
}

/// What a file header describes (the low three bits of `next`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EntryType {
    HardLink,
    Directory,
    Regular,
    Symlink,
    BlockDev,
    CharDev,
    Socket,
    Fifo,
}

impl EntryType {
    fn from_bits(bits: u32) -> Self {
        match bits & TYPE_MASK {
            0 => Self::HardLink,
            1 => Self::Directory,
            2 => Self::Regular,
            3 => Self::Symlink,
            4 => Self::BlockDev,
            5 => Self::CharDev,
            6 => Self::Socket,
            _ => Self::Fifo,
        }
    }
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RomfsError {
    /// Shorter than a superblock.
    TooSmall,
    /// Not `-rom1fs-`.
    BadMagic,
    /// The full size is smaller than the superblock or larger than the image.
    BadSize { full_size: u32, image_len: usize },
    /// The first min(512, size) bytes do not sum to zero.
    BadSuperblockChecksum,
    /// The volume name is not terminated within 128 bytes of the image.
    BadVolumeName,
    /// A header (or its name) does not lie inside the image.
    HeaderOutOfBounds { offset: u32 },
    /// A name is not terminated within 128 bytes.
    BadName { offset: u32 },
    /// A header and its name do not sum to zero.
    BadChecksum { offset: u32 },
    /// A file's data does not lie inside the image.
    DataOutOfBounds { offset: u32 },
    /// Hard links that never reach a file.
    HardLinkLoop { offset: u32 },
    /// A directory chain that returns to an entry already in it.
    ChainLoop { offset: u32 },
    /// The first header is not a directory.
    RootNotDirectory,
    /// More chain steps than a valid image of this size can have.
    TooComplex,
}

impl fmt::Display for RomfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooSmall => f.write_str("image smaller than a romfs superblock"),
            Self::BadMagic => f.write_str("no -rom1fs- magic"),
            Self::BadSize {
                full_size,
                image_len,
            } => write!(
                f,
                "full size {full_size} does not fit the {image_len}-byte image"
            ),
            Self::BadSuperblockChecksum => f.write_str("superblock checksum mismatch"),
            Self::BadVolumeName => f.write_str("unterminated volume name"),
            Self::HeaderOutOfBounds { offset } => write!(f, "header at {offset:#x} out of bounds"),
            Self::BadName { offset } => write!(f, "unterminated name at {offset:#x}"),
            Self::BadChecksum { offset } => write!(f, "header checksum mismatch at {offset:#x}"),
            Self::DataOutOfBounds { offset } => write!(f, "data of {offset:#x} out of bounds"),
            Self::HardLinkLoop { offset } => write!(f, "hard link loop at {offset:#x}"),
            Self::ChainLoop { offset } => write!(f, "directory chain loops at {offset:#x}"),
            Self::RootNotDirectory => f.write_str("root is not a directory"),
            Self::TooComplex => f.write_str("more entries than the image can hold"),
        }
    }
}

impl From<RomfsError> for protocol::Errno {
    fn from(_: RomfsError) -> Self {
        protocol::Errno::EINVAL
    }
}

/// romfs's checksum: the wrapping sum of the big-endian 32-bit words
/// (a trailing partial word is ignored, as Linux ignores it).
pub(super) fn checksum(bytes: &[u8]) -> u32 {
    bytes.chunks_exact(4).fold(0u32, |sum, w| {
        let word = <[u8; 4]>::try_from(w).map_or(0, u32::from_be_bytes);
        sum.wrapping_add(word)
    })
}

/// Length of the NUL-terminated name at `at`, if it ends within
/// [`MAX_NAME`] bytes and the image.
fn name_len(fs: &[u8], at: usize) -> Option<usize> {
    let window = fs.get(at..)?;
    let window = window.get(..window.len().min(MAX_NAME))?;
    window.iter().position(|b| *b == 0)
}

/// `16 + name + NUL`, rounded up to 16.
fn padded_meta(name_len: usize) -> Option<usize> {
    let raw = HEADER_LEN.checked_add(name_len)?.checked_add(1)?;
    raw.checked_add(15).map(|n| n & !15)
}

/// The validated superblock: the filesystem bytes and the first header.
pub(super) struct Superblock<'a> {
    pub fs: &'a [u8],
    pub volume: &'a [u8],
    pub root: u32,
}

pub(super) fn superblock(image: &[u8]) -> Result<Superblock<'_>, RomfsError> {
    let (sb, _) = SuperBlock::ref_from_prefix(image).map_err(|_| RomfsError::TooSmall)?;
    if sb.magic != MAGIC {
        return Err(RomfsError::BadMagic);
    }
    let full_size = sb.full_size.get();
    let size = usize::try_from(full_size).map_err(|_| RomfsError::TooSmall)?;
    let bad_size = RomfsError::BadSize {
        full_size,
        image_len: image.len(),
    };
    let fs = image.get(..size).ok_or(bad_size)?;
    let summed = fs.get(..size.min(SUPER_SUM_LEN)).ok_or(bad_size)?;
    if checksum(summed) != 0 {
        return Err(RomfsError::BadSuperblockChecksum);
    }
    let len = name_len(fs, HEADER_LEN).ok_or(RomfsError::BadVolumeName)?;
    let volume = fs
        .get(HEADER_LEN..HEADER_LEN.saturating_add(len))
        .ok_or(RomfsError::BadVolumeName)?;
    let root = padded_meta(len).ok_or(RomfsError::BadVolumeName)?;
    let root = u32::try_from(root).map_err(|_| RomfsError::BadVolumeName)?;
    Ok(Superblock { fs, volume, root })
}

/// One validated file header.
#[derive(Clone, Debug)]
pub(super) struct Entry<'a> {
    pub offset: u32,
    pub next: u32,
    pub kind: EntryType,
    pub exec: bool,
    /// For directories the first entry, for hard links the target.
    pub spec: u32,
    pub size: u32,
    pub name: &'a [u8],
    /// Where the data starts (after the padded name).
    pub data: u32,
}

impl Entry<'_> {
    /// The data bytes (regular files and symlinks).
    pub fn data<'f>(&self, fs: &'f [u8]) -> Result<&'f [u8], RomfsError> {
        let out = RomfsError::DataOutOfBounds {
            offset: self.offset,
        };
        let start = usize::try_from(self.data).map_err(|_| out)?;
        let len = usize::try_from(self.size).map_err(|_| out)?;
        fs.get(start..start.checked_add(len).ok_or(out)?).ok_or(out)
    }
}

/// Read and check the header at `offset`.
pub(super) fn entry(fs: &[u8], offset: u32) -> Result<Entry<'_>, RomfsError> {
    let out = RomfsError::HeaderOutOfBounds { offset };
    let at = usize::try_from(offset).map_err(|_| out)?;
    // Header offsets are 16-aligned and never inside the superblock.
    if at % 16 != 0 || at < HEADER_LEN {
        return Err(out);
    }
    let (header, _) = FileHeader::ref_from_prefix(fs.get(at..).ok_or(out)?).map_err(|_| out)?;
    let name_at = at.checked_add(HEADER_LEN).ok_or(out)?;
    let len = name_len(fs, name_at).ok_or(RomfsError::BadName { offset })?;
    let meta = padded_meta(len).ok_or(out)?;
    let end = at.checked_add(meta).ok_or(out)?;
    let whole = fs.get(at..end).ok_or(out)?;
    if checksum(whole) != 0 {
        return Err(RomfsError::BadChecksum { offset });
    }
    let name = fs.get(name_at..name_at.saturating_add(len)).ok_or(out)?;
    let next = header.next.get();
    let entry = Entry {
        offset,
        next: next & OFFSET_MASK,
        kind: EntryType::from_bits(next),
        exec: next & EXEC_BIT != 0,
        spec: header.spec.get() & OFFSET_MASK,
        size: header.size.get(),
        name,
        data: u32::try_from(end).map_err(|_| out)?,
    };
    if matches!(entry.kind, EntryType::Regular | EntryType::Symlink) {
        entry.data(fs)?;
    }
    Ok(entry)
}
