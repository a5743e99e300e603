//! The page reserve in a connection's channel memory file, both sides'
//! mapping of it ([`ReserveMapping`]), and the client's local answers to
//! plain anonymous `mmap`/`munmap` ([`LocalReserve`]); the layout and the
//! protocol are `protocol::reserve`'s, the server's side memsrv's
//! `reserve`.
//!
//! A local `mmap` takes offered pages from the window, zeroes them and
//! posts an entry; a local `munmap` posts an entry. Both run under the
//! connection's lock, so never while a request of this connection is in
//! flight (the only time the server moves the window).

use super::channel_page::CHANNEL_LEN;
use super::mapping::SharedMapping;
use protocol::reserve::{Posted, ReserveArea, LOCAL_FLAGS, MAX_LOCAL_PAGES, WINDOW_PAGES};
use protocol::{Errno, PAGE_SIZE};
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

/// Where the reserve area starts in the channel memory file (after the
/// request and reply slots).
pub const RESERVE_OFFSET: usize = 8192;
const _: () = assert!(RESERVE_OFFSET + core::mem::size_of::<ReserveArea>() <= CHANNEL_LEN);

/// One side's mapping of a connection's reserve area.
#[derive(Debug)]
pub struct ReserveMapping {
    map: SharedMapping,
}

impl ReserveMapping {
    /// Map the reserve area of the channel memory file `fd` (the daemon
    /// created it [`CHANNEL_LEN`] bytes long and sealed it against
    /// shrinking; the client checked its size when it opened the channel).
    pub fn open(fd: BorrowedFd<'_>) -> Result<Self, Errno> {
        let (size, _, _) = crate::sys::file_identity(fd)?;
        if size < CHANNEL_LEN as u64 {
            return Err(Errno::EPROTO);
        }
        Ok(Self {
            map: SharedMapping::anywhere(fd, CHANNEL_LEN)?,
        })
    }

    pub fn area(&self) -> &ReserveArea {
        // SAFETY: the mapping is page aligned and CHANNEL_LEN bytes long,
        // so RESERVE_OFFSET + size_of::<ReserveArea> lies inside it
        // (asserted above) at 64-byte alignment; it lives as long as
        // `self`. Every field is an atomic, valid for any bytes and meant
        // for concurrent access, so a shared reference is sound while the
        // other process writes.
        unsafe { &*((self.map.addr() + RESERVE_OFFSET) as *const ReserveArea) }
    }
}

/// The local mappings of the current window: `pages[i]` is the size of
/// the one starting at window page `i` (0: none).
struct LocalMaps {
    window: u32,
    pages: [u8; WINDOW_PAGES as usize],
}

/// The client's side: answers local calls, remembers which mappings it
/// made itself so only their exact `munmap` is posted.
pub struct LocalReserve {
    mapping: ReserveMapping,
    arena_base: u64,
    arena_size: u64,
    maps: Mutex<LocalMaps>,
}

impl core::fmt::Debug for LocalReserve {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalReserve").finish_non_exhaustive()
    }
}

/// Pages of a local mapping of `len` bytes: a power of two up to
/// [`MAX_LOCAL_PAGES`] (so what the server keeps is what was asked).
fn local_pages(len: u64) -> Option<u32> {
    let pages = len.checked_add(PAGE_SIZE - 1)? / PAGE_SIZE;
    (pages.is_power_of_two() && pages <= u64::from(MAX_LOCAL_PAGES)).then_some(pages as u32)
}

impl LocalReserve {
    pub fn new(mapping: ReserveMapping, arena_base: u64, arena_size: u64) -> Self {
        Self {
            mapping,
            arena_base,
            arena_size,
            maps: Mutex::new(LocalMaps {
                window: u32::MAX,
                pages: [0; WINDOW_PAGES as usize],
            }),
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, LocalMaps> {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        let window = self
            .mapping
            .area()
            .server
            .window
            .load(core::sync::atomic::Ordering::Relaxed);
        if maps.window != window {
            // A new window: mappings of the old one are the server's to unmap.
            maps.window = window;
            maps.pages.fill(0);
        }
        maps
    }

    /// `mmap(hint, len, prot, flags, fd, offset)` answered here, if it is
    /// a plain anonymous private mapping that fits what is offered.
    /// Called with the connection's lock held.
    pub fn mmap(&self, len: u64, prot: u32, flags: u32, fd: i32, offset: u64) -> Option<u64> {
        if flags != LOCAL_FLAGS || fd != -1 || offset != 0 || prot > 7 || len == 0 {
            return None;
        }
        let pages = local_pages(len)?;
        let area = self.mapping.area();
        if !area.has_room() {
            return None;
        }
        let mut maps = self.maps();
        let first = area.take_pages(pages)?;
        let addr = self.arena_base + u64::from(first) * PAGE_SIZE;
        let bytes = u64::from(pages) * PAGE_SIZE;
        let offset = u64::from(first) * PAGE_SIZE;
        if offset
            .checked_add(bytes)
            .is_none_or(|end| end > self.arena_size)
        {
            // A window outside the arena: the server is broken; the pages
            // stay taken and the call goes the usual way.
            return None;
        }
        // SAFETY: [addr, addr + bytes) lies in the arena (checked above),
        // mapped read-write at that address in this process; the pages
        // were offered to this connection and are now taken by it, so
        // nothing else uses them until the mapping is unmapped.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, bytes as usize) };
        let posted = area.post(Posted::Mmap { first, pages, prot });
        debug_assert!(posted, "room was checked under the connection's lock");
        let slot = (first - maps.window) as usize;
        maps.pages[slot] = pages as u8;
        Some(addr)
    }

    /// `munmap(addr, len)` of a mapping made by [`Self::mmap`], posted;
    /// `false` (nothing done) for any other range.
    pub fn munmap(&self, addr: u64, len: u64) -> bool {
        let Some(pages) = local_pages(len) else {
            return false;
        };
        let area = self.mapping.area();
        let mut maps = self.maps();
        let Some(slot) = self.slot(&maps, addr) else {
            return false;
        };
        if u32::from(maps.pages[slot]) != pages || !area.has_room() {
            return false;
        }
        let first = maps.window + slot as u32;
        if !area.post(Posted::Munmap { first, pages }) {
            return false;
        }
        maps.pages[slot] = 0;
        true
    }

    /// A request is about to change `[addr, addr + len)`: local mappings
    /// there are no longer known exactly.
    pub fn forget(&self, addr: u64, len: u64) {
        let mut maps = self.maps();
        let end = addr.saturating_add(len.max(1));
        let window = self.arena_base + u64::from(maps.window) * PAGE_SIZE;
        if end <= window || addr >= window + u64::from(WINDOW_PAGES) * PAGE_SIZE {
            return;
        }
        for slot in 0..WINDOW_PAGES as usize {
            let pages = u64::from(maps.pages[slot]);
            let start = self.arena_base + (u64::from(maps.window) + slot as u64) * PAGE_SIZE;
            if pages != 0 && start < end && addr < start + pages * PAGE_SIZE {
                maps.pages[slot] = 0;
            }
        }
    }

    /// The window slot of `addr`, if it is a window page's address.
    fn slot(&self, maps: &LocalMaps, addr: u64) -> Option<usize> {
        let offset = addr.checked_sub(self.arena_base)?;
        if !offset.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        let slot = (offset / PAGE_SIZE).checked_sub(u64::from(maps.window))?;
        (slot < u64::from(WINDOW_PAGES)).then_some(slot as usize)
    }
}
