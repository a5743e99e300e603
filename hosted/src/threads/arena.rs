//! The arena: one page-aligned host allocation (an anonymous host `mmap`,
//! so it is zeroed lazily and costs nothing until touched) standing in for
//! the machine's physical memory. memsrv hands out addresses inside it, and they
//! are real pointers: every process handle can dereference them, exactly as
//! on a no-MMU machine where all processes share one address space.

use memsrv::PhysicalMemory;
use protocol::{Errno, PAGE_SIZE};
use std::sync::Arc;

/// The one host allocation. Its address is kept as an integer (with its
/// provenance exposed) so that the arena is plainly `Send + Sync`: nothing in
/// Rust's type system owns these bytes; they are touched only through raw
/// copies, as memory shared by several processes is.
#[derive(Debug)]
pub struct Arena {
    base: usize,
    size: usize,
}

impl Arena {
    /// Allocate `size` bytes (a non-zero multiple of the page size), zeroed
    /// and page aligned.
    pub fn new(size: u64) -> Result<Self, Errno> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let size = usize::try_from(size).map_err(|_| Errno::ENOMEM)?;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a fresh anonymous mapping with no address hint touches no
        // existing memory; the result is checked before use.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), size, prot, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::ENOMEM);
        }
        Ok(Self {
            base: ptr.expose_provenance(),
            size,
        })
    }

    /// Address of the first byte.
    pub fn base(&self) -> u64 {
        self.base as u64
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size as u64
    }

    /// A raw pointer to `[addr, addr+len)` if that range lies inside the
    /// arena; what the caller does with it is the caller's business, as with
    /// any pointer `mmap` returns.
    pub fn ptr(&self, addr: u64, len: u64) -> Option<*mut u8> {
        let offset = addr.checked_sub(self.base())?;
        if offset.checked_add(len)? > self.size() {
            return None;
        }
        Some(std::ptr::with_exposed_provenance_mut::<u8>(self.base).wrapping_add(offset as usize))
    }

    /// Copy `bytes` to `addr`; `EFAULT` if the range leaves the arena.
    pub fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let dst = self.ptr(addr, bytes.len() as u64).ok_or(Errno::EFAULT)?;
        // SAFETY: `ptr` checked that the range lies inside the live allocation;
        // `bytes` is a Rust slice, so it cannot overlap memory no reference owns.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        Ok(())
    }

    /// Copy from `addr` into `buf`; `EFAULT` if the range leaves the arena.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let src = self.ptr(addr, buf.len() as u64).ok_or(Errno::EFAULT)?;
        // SAFETY: as in `write`, the source range is inside the allocation and
        // `buf` is a distinct Rust slice.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy `len` bytes from `src` to `dest` (the ranges may overlap);
    /// `EFAULT` if either range leaves the arena.
    pub fn copy(&self, src: u64, dest: u64, len: u64) -> Result<(), Errno> {
        let from = self.ptr(src, len).ok_or(Errno::EFAULT)?;
        let to = self.ptr(dest, len).ok_or(Errno::EFAULT)?;
        // SAFETY: `ptr` checked that both ranges lie inside the allocation;
        // `copy` allows them to overlap.
        unsafe { std::ptr::copy(from, to, len as usize) };
        Ok(())
    }

    /// Set `[addr, addr+len)` to `byte`; `EFAULT` if the range leaves the arena.
    pub fn fill(&self, addr: u64, len: u64, byte: u8) -> Result<(), Errno> {
        let dst = self.ptr(addr, len).ok_or(Errno::EFAULT)?;
        // SAFETY: `ptr` checked that `[dst, dst+len)` is inside the allocation.
        unsafe { std::ptr::write_bytes(dst, byte, len as usize) };
        Ok(())
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let ptr = std::ptr::with_exposed_provenance_mut::<libc::c_void>(self.base);
        // SAFETY: `ptr` and `size` are exactly what `mmap` returned and was
        // given; the arena is dropped once, when its last handle goes.
        unsafe { libc::munmap(ptr, self.size) };
    }
}

/// memsrv's view of the arena: the server fills pages (zeroing anonymous
/// memory) through it. Shared with the process handles, which read and
/// write the same bytes.
#[derive(Clone, Debug)]
pub struct ArenaMemory(pub Arc<Arena>);

// memsrv promises every range lies inside the arena; a range that did not
// would be a server bug, refused by the arena's bounds checks rather than
// written (and caught in debug builds).
impl PhysicalMemory for ArenaMemory {
    fn fill(&mut self, addr: u64, len: u64, byte: u8) {
        let done = self.0.fill(addr, len, byte);
        debug_assert!(done.is_ok(), "memsrv filled outside the arena");
    }

    fn read(&self, addr: u64, buf: &mut [u8]) {
        let done = self.0.read(addr, buf);
        debug_assert!(done.is_ok(), "memsrv read outside the arena");
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) {
        let done = self.0.write(addr, bytes);
        debug_assert!(done.is_ok(), "memsrv wrote outside the arena");
    }

    fn copy(&mut self, src: u64, dst: u64, len: u64) {
        let done = self.0.copy(src, dst, len);
        debug_assert!(done.is_ok(), "memsrv copied outside the arena");
    }

    fn load_u32(&self, addr: u64) -> u32 {
        match self.0.ptr(addr, 4) {
            Some(word) if word.align_offset(4) == 0 => {
                // SAFETY: `ptr` checked the 4 bytes lie inside the live
                // allocation and the address is 4-byte aligned; clients
                // store to the word concurrently, hence the atomic load.
                let atomic = unsafe { std::sync::atomic::AtomicU32::from_ptr(word.cast()) };
                atomic.load(std::sync::atomic::Ordering::SeqCst)
            }
            _ => {
                debug_assert!(false, "memsrv loaded a futex word outside the arena");
                0
            }
        }
    }

    fn update_u32(&mut self, addr: u64, f: &dyn Fn(u32) -> u32) -> u32 {
        match self.0.ptr(addr, 4) {
            Some(word) if word.align_offset(4) == 0 => {
                // SAFETY: as in `load_u32`: inside the live allocation,
                // aligned, and stored to concurrently by clients.
                let atomic = unsafe { std::sync::atomic::AtomicU32::from_ptr(word.cast()) };
                let ord = std::sync::atomic::Ordering::SeqCst;
                match atomic.fetch_update(ord, ord, |old| Some(f(old))) {
                    Ok(old) | Err(old) => old,
                }
            }
            _ => {
                debug_assert!(false, "memsrv updated a futex word outside the arena");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_is_page_aligned_zeroed_and_bounds_checked() {
        let arena = Arena::new(4 * PAGE_SIZE).unwrap();
        assert_eq!(arena.base() % PAGE_SIZE, 0);
        let mut buf = [1u8; 8];
        arena.read(arena.base(), &mut buf).unwrap();
        assert_eq!(buf, [0; 8]);
        arena.write(arena.base() + 10, b"abc").unwrap();
        arena.read(arena.base() + 10, &mut buf[..3]).unwrap();
        assert_eq!(&buf[..3], b"abc");
        let end = arena.base() + arena.size();
        assert_eq!(arena.write(end - 2, b"abc"), Err(Errno::EFAULT));
        assert_eq!(arena.read(arena.base() - 1, &mut buf), Err(Errno::EFAULT));
        assert_eq!(arena.fill(end, 1, 0), Err(Errno::EFAULT));
        assert_eq!(arena.fill(end - 1, 1, 7), Ok(()));
        arena.copy(arena.base() + 10, arena.base() + 11, 3).unwrap();
        arena.read(arena.base() + 10, &mut buf[..4]).unwrap();
        assert_eq!(&buf[..4], b"aabc");
        assert_eq!(arena.copy(end - 2, arena.base(), 3), Err(Errno::EFAULT));
        assert_eq!(arena.copy(arena.base(), end - 2, 3), Err(Errno::EFAULT));
        assert!(arena.ptr(u64::MAX, 2).is_none());
        assert_eq!(Arena::new(100).unwrap_err(), Errno::EINVAL);
        assert_eq!(Arena::new(0).unwrap_err(), Errno::EINVAL);
    }
}
