//! The daemon's arena: one sealed memory file, mapped here at the address
//! every client maps it at too.

use memsrv::PhysicalMemory;
use nommu::host::mapping::Mapping;
use nommu::host::sys::sealed_memfd;
use protocol::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The arena memory file and the daemon's mapping of it. memsrv fills it
/// (zeroing new anonymous mappings); clients read and write it directly.
#[derive(Debug)]
pub struct Arena {
    file: OwnedFd,
    map: Mapping,
    base: u64,
}

impl Arena {
    /// Create the memory file and map it exactly at `base` (never over an
    /// existing mapping).
    pub fn create(base: u64, size: u64) -> Result<Self, Errno> {
        let len = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
        let addr = usize::try_from(base).map_err(|_| Errno::EINVAL)?;
        let file = sealed_memfd(c"nommu-arena", size)?;
        let map = Mapping::exactly_at(file.as_fd(), len, addr)?;
        Ok(Self { file, map, base })
    }

    /// The memory file, handed to clients in the welcome.
    pub fn file(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }
}

impl PhysicalMemory for Arena {
    fn fill(&mut self, addr: u64, len: u64, byte: u8) {
        let inside = addr >= self.base
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.size());
        if !inside {
            // memsrv promises arena addresses; refuse anything else rather
            // than scribble on the daemon's own memory.
            return;
        }
        // SAFETY: `[addr, addr+len)` lies inside our mapping (checked
        // above), which lives as long as `self` and is backed by a memory
        // file sealed against shrinking. Clients may write the same bytes
        // concurrently; on no-MMU that is their business, and plain bytes
        // have no invalid values.
        unsafe { core::ptr::write_bytes(addr as usize as *mut u8, byte, len as usize) };
    }
}
