//! The Linux numbers drivers judge requests by: capability bits (spec
//! §1.1), `vm_flags` bits (§1.2) and `open` flags (asm-generic values, as
//! the wire carries them raw).

use protocol::{Bytes, Errno, PAGE_SIZE};

/// Capability bits a driver declares in [`protocol::ObjectInfo::caps`].
pub mod cap {
    /// `NOMMU_MAP_COPY`: contents may be copied into private memory.
    pub const COPY: u8 = 0x01;
    /// `NOMMU_MAP_DIRECT`: the object can be mapped where it lives.
    pub const DIRECT: u8 = 0x08;
    /// A direct mapping may be readable.
    pub const READ: u8 = 0x10;
    /// A direct mapping may be writable.
    pub const WRITE: u8 = 0x20;
    /// A direct mapping may be executable.
    pub const EXEC: u8 = 0x40;
}

/// `vm_flags` bits of a [`protocol::DriverRequest::Mmap`].
pub mod vm {
    /// A `MAP_SHARED` mapping.
    pub const SHARED: u32 = 0x08;
    /// A shareable region (Current Linux: only `MAP_SHARED`).
    pub const MAYSHARE: u32 = 0x80;
    /// A read-only private mapping that may overlay an existing region.
    pub const MAYOVERLAY: u32 = 0x200;

    /// Spec §1.2's shareable predicate: the only mappings a backing may
    /// approve for direct use (§11.1 item 3).
    pub const fn is_shareable(vm_flags: u32) -> bool {
        vm_flags & (SHARED | MAYSHARE | MAYOVERLAY) != 0
    }
}

/// `open` flags (asm-generic numbering, which x86-64, arm64 and riscv share).
pub mod open {
    pub const ACCMODE: u32 = 0o3;
    pub const RDONLY: u32 = 0o0;
    pub const WRONLY: u32 = 0o1;
    pub const RDWR: u32 = 0o2;
    pub const CREAT: u32 = 0o100;
    pub const EXCL: u32 = 0o200;
    pub const TRUNC: u32 = 0o1000;
    pub const APPEND: u32 = 0o2000;
    pub const DIRECTORY: u32 = 0o200000;
    pub const NOFOLLOW: u32 = 0o400000;

    /// The descriptor will be able to write.
    pub const fn wants_write(flags: u32) -> bool {
        flags & ACCMODE != RDONLY
    }

    /// `O_CREAT|O_EXCL`: the name must not exist yet (`EEXIST` if it does).
    pub const fn creates_exclusively(flags: u32) -> bool {
        flags & (CREAT | EXCL) == CREAT | EXCL
    }
}

/// `ELOOP`: too many symbolic links (the protocol has no name for it yet).
pub const ELOOP: Errno = Errno(40);

/// The page size.
pub const P: u64 = PAGE_SIZE;

/// `pages(x)` = ⌈x / P⌉ (no overflow: computed without adding first).
pub const fn pages(bytes: u64) -> u64 {
    (bytes / P).saturating_add(if bytes.is_multiple_of(P) { 0 } else { 1 })
}

/// `pgoff · P`, or `EINVAL` when it does not fit.
pub fn page_offset(pgoff: u64) -> Result<u64, Errno> {
    pgoff.checked_mul(P).ok_or(Errno::EINVAL)
}

/// How many of `want` bytes lie before `end` starting at `offset`.
pub const fn available(offset: u64, want: u64, end: u64) -> u64 {
    let room = end.saturating_sub(offset);
    if want < room {
        want
    } else {
        room
    }
}

/// A `ReadData` answer may carry at most [`protocol::DATA_CHUNK`] bytes.
pub(crate) fn data_len(len: u32) -> usize {
    usize::try_from(len).map_or(protocol::DATA_CHUNK, |l| l.min(protocol::DATA_CHUNK))
}

/// A zeroed wire buffer of `n` (≤ `DATA_CHUNK`) bytes.
pub(crate) fn zeroed_bytes(n: usize) -> Result<Bytes, Errno> {
    let mut bytes = Bytes::new();
    bytes.resize(n, 0).map_err(|()| Errno::EIO)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_rounds_up_without_overflow() {
        assert_eq!(pages(0), 0);
        assert_eq!(pages(1), 1);
        assert_eq!(pages(4096), 1);
        assert_eq!(pages(4097), 2);
        assert_eq!(pages(u64::MAX), u64::MAX / 4096 + 1);
    }

    #[test]
    fn available_clips_at_the_end() {
        assert_eq!(available(0, 10, 5), 5);
        assert_eq!(available(5, 10, 5), 0);
        assert_eq!(available(9, 10, 5), 0);
        assert_eq!(available(1, 2, 5), 2);
        assert_eq!(available(u64::MAX, u64::MAX, u64::MAX), 0);
    }

    #[test]
    fn shareable_is_any_of_the_three_bits() {
        assert!(vm::is_shareable(vm::SHARED));
        assert!(vm::is_shareable(vm::MAYSHARE));
        assert!(vm::is_shareable(vm::MAYOVERLAY));
        assert!(!vm::is_shareable(0x1 | 0x10));
    }
}
