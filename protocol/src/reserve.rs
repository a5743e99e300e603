//! The page reserve a server grants one connection, and the ring its
//! client posts locally made mappings into: the layout both sides share in
//! the connection's channel memory file, and the encoding of a posted entry.
//!
//! Linux answers most page allocations from per-CPU lists without touching
//! the zone lock; Bonwick's magazines do the same for slabs. Here the server
//! hands a connection a *window* of free pages ahead of time; the client
//! answers a plain anonymous private `mmap` from it without a round trip and
//! posts what it did (and its matching `munmap`s) into the ring. The server
//! applies a connection's posted entries, in order, before anything that
//! could observe them, so every `/proc` view and every answer stays exact.
//!
//! Who writes what:
//! * `free` — bit `i` of word `w` set: page `64·w + i` of the window is the
//!   client's to take. The client takes pages by clearing bits
//!   (compare-and-swap); the server gives pages by setting bits and takes
//!   every untaken page back at once by swapping a word to 0 (a revoke), so
//!   each page is either taken or revoked, never both.
//! * `window`, `window_pages` — written by the server only while the client
//!   waits for the reply to a request (so never while it carves).
//! * `head` — the client's count of posted entries; `tail` — the server's
//!   count of applied ones (the server keeps its own copy and never trusts
//!   the shared one).
//!
//! Every word is an atomic, valid for any bit pattern: a client may write
//! anything here, and the server validates every entry it reads.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Words of the free mask: a window holds at most `64 · MASK_WORDS` pages.
pub const MASK_WORDS: usize = 4;
/// Most pages in one window.
pub const WINDOW_PAGES: u32 = 64 * MASK_WORDS as u32;
/// Entries the ring holds.
pub const RING_LEN: u32 = 512;
/// Largest local mapping, in pages (a power of two, so the pages kept are
/// the pages asked for whatever `nr_trim_pages` says).
pub const MAX_LOCAL_PAGES: u32 = 16;
/// The `mmap` flags a local mapping has (no others are answered locally).
pub const LOCAL_FLAGS: u32 = crate::linux::MAP_PRIVATE | crate::linux::MAP_ANONYMOUS;

/// Words the client writes.
#[repr(C, align(64))]
pub struct ClientWords {
    pub head: AtomicU32,
}

/// Words the server writes.
#[repr(C, align(64))]
pub struct ServerWords {
    /// Arena page index of the window's first page.
    pub window: AtomicU32,
    /// Pages in the window (0: no window).
    pub window_pages: AtomicU32,
    pub tail: AtomicU32,
}

/// The free mask, written by both sides (its own cache line).
#[repr(C, align(64))]
pub struct FreeMask {
    pub words: [AtomicU64; MASK_WORDS],
}

/// The shared reserve area.
#[repr(C)]
pub struct ReserveArea {
    pub client: ClientWords,
    pub server: ServerWords,
    pub free: FreeMask,
    pub ring: [AtomicU64; RING_LEN as usize],
}

/// One posted entry, as the client meant it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posted {
    /// `mmap(.., pages · PAGE_SIZE, prot, LOCAL_FLAGS, -1, 0)` returned the
    /// address of arena page `first`.
    Mmap { first: u32, pages: u32, prot: u32 },
    /// `munmap` of the local mapping of `pages` pages at arena page `first`
    /// returned 0.
    Munmap { first: u32, pages: u32 },
}

const KIND_MMAP: u64 = 1;
const KIND_MUNMAP: u64 = 2;

impl Posted {
    /// The entry's word: arena page in bits 0–31, pages in 32–39, prot in
    /// 40–47, kind in 60–63.
    pub fn encode(self) -> u64 {
        let (kind, first, pages, prot) = match self {
            Self::Mmap { first, pages, prot } => (KIND_MMAP, first, pages, prot),
            Self::Munmap { first, pages } => (KIND_MUNMAP, first, pages, 0),
        };
        u64::from(first) | u64::from(pages & 0xff) << 32 | u64::from(prot & 0xff) << 40 | kind << 60
    }

    /// The entry a word stands for; `None` for a word no client of this
    /// layout writes (unknown kind, stray bits, a size out of range, a
    /// protection other than `PROT_READ | PROT_WRITE | PROT_EXEC` bits).
    pub fn decode(word: u64) -> Option<Self> {
        let first = word as u32;
        let pages = (word >> 32) as u32 & 0xff;
        let prot = (word >> 40) as u32 & 0xff;
        let stray = word & 0x0fff_0000_0000_0000;
        if stray != 0 || !pages.is_power_of_two() || pages > MAX_LOCAL_PAGES || prot > 7 {
            return None;
        }
        match word >> 60 {
            KIND_MMAP => Some(Self::Mmap { first, pages, prot }),
            KIND_MUNMAP if prot == 0 => Some(Self::Munmap { first, pages }),
            _ => None,
        }
    }
}

/// The client's side of the area (the server's is memsrv's `reserve`).
/// One thread at a time (the connection's lock) posts and takes.
impl ReserveArea {
    /// A zeroed area: no window, nothing posted (tests and models own one
    /// on the heap; a home maps it from the connection's memory file).
    pub fn new() -> Self {
        Self {
            client: ClientWords {
                head: AtomicU32::new(0),
            },
            server: ServerWords {
                window: AtomicU32::new(0),
                window_pages: AtomicU32::new(0),
                tail: AtomicU32::new(0),
            },
            free: FreeMask {
                words: core::array::from_fn(|_| AtomicU64::new(0)),
            },
            ring: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Whether the ring has room for one more entry.
    pub fn has_room(&self) -> bool {
        let head = self.client.head.load(Ordering::Relaxed);
        let tail = self.server.tail.load(Ordering::Acquire);
        head.wrapping_sub(tail) < RING_LEN
    }

    /// Post `entry`; `false` (nothing posted) if the ring is full.
    pub fn post(&self, entry: Posted) -> bool {
        if !self.has_room() {
            return false;
        }
        let head = self.client.head.load(Ordering::Relaxed);
        self.ring[(head % RING_LEN) as usize].store(entry.encode(), Ordering::Relaxed);
        self.client
            .head
            .store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Take `pages` (a power of two up to [`MAX_LOCAL_PAGES`]) offered
    /// pages in a row, aligned to their count; the arena page index of the
    /// first. `None` if no such run is offered (or the server revoked it
    /// meanwhile: a bit is taken by the client or revoked, never both).
    pub fn take_pages(&self, pages: u32) -> Option<u32> {
        if !pages.is_power_of_two() || pages > MAX_LOCAL_PAGES {
            return None;
        }
        let window = self.server.window.load(Ordering::Relaxed);
        let limit = self
            .server
            .window_pages
            .load(Ordering::Relaxed)
            .min(WINDOW_PAGES);
        let run = (1u64 << pages) - 1;
        for (i, word) in self.free.words.iter().enumerate() {
            let mut cur = word.load(Ordering::Acquire);
            'retry: loop {
                let mut k = 0;
                while k < 64 && (i as u32) * 64 + k + pages <= limit {
                    if (cur >> k) & run == run {
                        match word.compare_exchange(
                            cur,
                            cur & !(run << k),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => return window.checked_add(i as u32 * 64 + k),
                            Err(now) => {
                                cur = now;
                                continue 'retry;
                            }
                        }
                    }
                    k += pages;
                }
                break;
            }
        }
        None
    }
}

impl Default for ReserveArea {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_is_refused() {
        for e in [
            Posted::Mmap {
                first: 7,
                pages: 1,
                prot: 3,
            },
            Posted::Mmap {
                first: u32::MAX,
                pages: 16,
                prot: 0,
            },
            Posted::Munmap { first: 9, pages: 4 },
        ] {
            assert_eq!(Posted::decode(e.encode()), Some(e));
        }
        let good = Posted::Munmap { first: 9, pages: 4 }.encode();
        assert_eq!(Posted::decode(0), None);
        assert_eq!(Posted::decode(u64::MAX), None);
        assert_eq!(Posted::decode(good | 1 << 50), None);
        assert_eq!(Posted::decode(good | 1 << 40), None, "prot on a munmap");
        assert_eq!(Posted::decode((good & !(0xff << 32)) | 3 << 32), None);
        assert_eq!(Posted::decode((good & !(0xff << 32)) | 32 << 32), None);
        assert_eq!(Posted::decode(good & !(0xf << 60) | 3 << 60), None);
    }
}
