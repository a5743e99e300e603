//! The daemon's arena: one sealed memory file, mapped here at the address
//! every client maps it at too.

use memsrv::PhysicalMemory;
use nommu::sys::sealed_memfd;
use nommu::transport::mapping::SharedMapping;
use protocol::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The arena memory file and the daemon's mapping of it. memsrv fills it
/// (zeroing new anonymous mappings); clients read and write it directly.
#[derive(Debug)]
pub struct ArenaFile {
    file: OwnedFd,
    map: SharedMapping,
    base: u64,
}

impl ArenaFile {
    /// Create the memory file and map it exactly at `base` (never over an
    /// existing mapping).
    pub fn create(base: u64, size: u64) -> Result<Self, Errno> {
        let len = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
        let addr = usize::try_from(base).map_err(|_| Errno::EINVAL)?;
        let file = sealed_memfd(c"nommu-arena", size)?;
        let map = SharedMapping::exactly_at(file.as_fd(), len, addr)?;
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

impl ArenaFile {
    /// A pointer to `[addr, addr+len)` if it lies inside the arena.
    fn span(&self, addr: u64, len: u64) -> Option<*mut u8> {
        let end = addr.checked_add(len)?;
        (addr >= self.base && end <= self.base + self.size())
            .then(|| std::ptr::with_exposed_provenance_mut::<u8>(addr as usize))
    }
}

// memsrv promises arena addresses; anything else is refused rather than
// scribbled on the daemon's own memory. Clients may touch the same bytes
// concurrently; on no-MMU that is their business, and plain bytes have no
// invalid values. The mapping lives as long as `self` and is backed by a
// memory file sealed against shrinking.
impl PhysicalMemory for ArenaFile {
    fn fill(&mut self, addr: u64, len: u64, byte: u8) {
        if let Some(dst) = self.span(addr, len) {
            // SAFETY: `span` checked the range lies inside our mapping.
            unsafe { core::ptr::write_bytes(dst, byte, len as usize) };
        }
    }

    fn read(&self, addr: u64, buf: &mut [u8]) {
        if let Some(src) = self.span(addr, buf.len() as u64) {
            // SAFETY: `span` checked the range; `buf` is a distinct slice.
            unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        }
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) {
        if let Some(dst) = self.span(addr, bytes.len() as u64) {
            // SAFETY: `span` checked the range; `bytes` is a distinct slice.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        }
    }

    fn copy(&mut self, src: u64, dst: u64, len: u64) {
        if let (Some(from), Some(to)) = (self.span(src, len), self.span(dst, len)) {
            // SAFETY: `span` checked both ranges; `copy` allows overlap.
            unsafe { core::ptr::copy(from, to, len as usize) };
        }
    }

    fn load_u32(&self, addr: u64) -> u32 {
        match self.span(addr, 4) {
            Some(word) if addr.is_multiple_of(4) => {
                // SAFETY: `span` checked the word lies inside the mapping and
                // it is 4-byte aligned; clients store to it concurrently,
                // hence the atomic load.
                let atomic = unsafe { std::sync::atomic::AtomicU32::from_ptr(word.cast()) };
                atomic.load(std::sync::atomic::Ordering::SeqCst)
            }
            _ => 0,
        }
    }

    fn update_u32(&mut self, addr: u64, f: &dyn Fn(u32) -> u32) -> u32 {
        match self.span(addr, 4) {
            Some(word) if addr.is_multiple_of(4) => {
                // SAFETY: as in `load_u32`: inside the mapping, aligned, and
                // stored to concurrently by clients.
                let atomic = unsafe { std::sync::atomic::AtomicU32::from_ptr(word.cast()) };
                let ord = std::sync::atomic::Ordering::SeqCst;
                match atomic.fetch_update(ord, ord, |old| Some(f(old))) {
                    Ok(old) | Err(old) => old,
                }
            }
            _ => 0,
        }
    }
}
