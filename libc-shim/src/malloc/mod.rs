//! `malloc` for ported C programs, with every byte from the memory server's
//! `mmap` (feature `malloc`).
//!
//! On a no-MMU machine there is no `brk` to grow: uClibc's no-MMU malloc
//! takes each block from `mmap` and gives it back with `munmap`. This
//! allocator keeps that rule but does not pay a server round trip per
//! small block: it is **Doug Lea's malloc** (2.8.6, as ported to Rust by
//! the `dlmalloc` crate, the allocator of Rust's std on wasm) configured
//! mmap-only, plus dlmalloc's own "large blocks mapped alone" path, which
//! the port leaves out and which is done here.
//!
//! Why dlmalloc: it is small, `no_std`, well exercised (Rust's wasm std
//! runs on it), its [`dlmalloc::Allocator`] trait is exactly an mmap-only
//! system layer (map a segment, remap it, free part of it, free it; no
//! `sbrk`), and its bins and coalescing keep fragmentation low, which
//! matters where the arena is all the memory there is. Writing our own
//! would mean a new allocator to debug; a C dlmalloc would need a C
//! toolchain for the board as well. The crate ships no C, so the library
//! stays one Rust build.
//!
//! # How memory is used
//!
//! * **Small requests** (under [`MMAP_THRESHOLD`]) come from dlmalloc
//!   segments: anonymous private mappings of at least 64 KiB (dlmalloc's
//!   granularity) asked with `MAP_PRIVATE | MAP_ANONYMOUS |
//!   MAP_UNINITIALIZED`. dlmalloc gives a segment back with `munmap` when
//!   nothing in it is used (checked periodically and on trim), and returns
//!   a free tail of the top segment above its trim threshold (2 MiB) with
//!   `munmap` of the tail (`free_part`). Each segment is exactly one
//!   server mapping: dlmalloc is kept from merging adjacent ones (see
//!   `System::segment_tag`), since a no-MMU `munmap` must not span two. [`Heap::trim`] releases what it
//!   can at once, and every segment when no small block is live.
//! * **Large requests** (from [`MMAP_THRESHOLD`] on, counting an
//!   alignment's slack) get a mapping of their own, freed with `munmap` at
//!   once, and `realloc` of one resizes it with `mremap(MREMAP_MAYMOVE)`:
//!   in place within the server's slack, else the server moves it (the
//!   project's documented extension). A server with `--strict-mremap`
//!   refuses the growth and `realloc` falls back to map + copy + unmap.
//!   Shrinking unmaps the tail (a no-MMU `mremap` shrink keeps the pages).
//!   The block header has dlmalloc's layout for a mapped chunk (the offset
//!   from the mapping's start, then the chunk size with both in-use bits
//!   clear), so `free` tells the two kinds apart by one word: a block
//!   dlmalloc hands out always has its in-use bit set.
//! * **`MAP_UNINITIALIZED`** is asked for every mapping: the allocator
//!   never relies on fresh memory being zero (dlmalloc is told
//!   `allocates_zeros() == false`), so a server that allows it (`memsrvd
//!   --allow-uninitialized`) skips the zero fill, and one that does not
//!   ignores the flag. `calloc` clears what it returns itself.
//!
//! Every request to the server goes through a [`PageSource`] (map, unmap,
//! remap) and is counted in its [`Stats`]: the host library's source is
//! the `memsrvd` connection, the board's the registered `capi::board::Home`. The
//! C names (`nommu_malloc`, ..., `include/nommu_malloc.h`) are in
//! [`capi`]; the heap is one per process behind a lock.

#[cfg(any(feature = "host", feature = "c-abi"))]
pub mod capi;

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};
use dlmalloc::Dlmalloc;

/// Requests of this many bytes or more get a mapping of their own.
pub const MMAP_THRESHOLD: usize = 64 * 1024;

/// The alignment of every block (`2 * sizeof(size_t)`, as glibc's).
pub const MALLOC_ALIGNMENT: usize = 2 * core::mem::size_of::<usize>();

/// The page size the server maps in.
pub const PAGE: usize = protocol::PAGE_SIZE as usize;

/// The header in front of a large block: two words, as dlmalloc's mapped
/// chunk.
const HEADER: usize = 2 * core::mem::size_of::<usize>();

/// dlmalloc's in-use bits of a chunk's size word.
const INUSE_BITS: usize = 0b11;

/// The requests an allocator made to the server, and what it holds.
#[derive(Debug, Default)]
pub struct Stats {
    pub mmap_calls: AtomicU64,
    pub munmap_calls: AtomicU64,
    pub mremap_calls: AtomicU64,
    pub mapped_bytes: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub mmap_calls: u64,
    pub munmap_calls: u64,
    pub mremap_calls: u64,
    pub mapped_bytes: u64,
}

impl Stats {
    pub const fn new() -> Self {
        Self {
            mmap_calls: AtomicU64::new(0),
            munmap_calls: AtomicU64::new(0),
            mremap_calls: AtomicU64::new(0),
            mapped_bytes: AtomicU64::new(0),
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            mmap_calls: self.mmap_calls.load(Ordering::Relaxed),
            munmap_calls: self.munmap_calls.load(Ordering::Relaxed),
            mremap_calls: self.mremap_calls.load(Ordering::Relaxed),
            mapped_bytes: self.mapped_bytes.load(Ordering::Relaxed),
        }
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn hold(&self, len: usize) {
        self.mapped_bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    fn release(&self, len: usize) {
        self.mapped_bytes.fetch_sub(len as u64, Ordering::Relaxed);
    }
}

/// Where the heap's pages come from: private anonymous mappings of whole
/// pages (lengths are page multiples, addresses page aligned). A source is
/// a cheap handle, copied into dlmalloc's system layer.
pub trait PageSource: Copy + Send {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
    /// MAP_ANONYMOUS | MAP_UNINITIALIZED, -1, 0)`; `None` on failure.
    fn map(&self, len: usize) -> Option<*mut u8>;
    /// `munmap(addr, len)`, which may be part of a mapping (its tail).
    fn unmap(&self, addr: *mut u8, len: usize) -> bool;
    /// `mremap(addr, old_len, new_len, may_move ? MREMAP_MAYMOVE : 0)`;
    /// the (possibly new) address, `None` on failure (nothing changed).
    fn remap(
        &self,
        addr: *mut u8,
        old_len: usize,
        new_len: usize,
        may_move: bool,
    ) -> Option<*mut u8>;
    /// The counters of this source's requests.
    fn stats(&self) -> &Stats;
}

/// A [`PageSource`] that counts, as dlmalloc's system layer.
struct System<P>(P, Cell<u32>);

impl<P: PageSource> System<P> {
    const fn new(source: P) -> Self {
        Self(source, Cell::new(0))
    }

    /// The flags of a new segment: a different tag each time, so that
    /// dlmalloc never merges two segments that happen to be adjacent.
    /// It would, given equal flags, and then unmap or trim across two
    /// server mappings at once, which a no-MMU `munmap` refuses (one
    /// call, one mapping). Bit 0 (dlmalloc's "extern") stays clear; the
    /// tag is `4c + 2`, which never equals another tag nor another tag
    /// shifted right by one (the port compares `stored >> 1` with the
    /// new flags).
    fn segment_tag(&self) -> u32 {
        let c = self.1.get().wrapping_add(1) & 0x3fff_ffff;
        self.1.set(c);
        (c << 2) | 2
    }

    fn map(&self, len: usize) -> Option<*mut u8> {
        let stats = self.0.stats();
        Stats::count(&stats.mmap_calls);
        let addr = self.0.map(len)?;
        stats.hold(len);
        Some(addr)
    }

    fn unmap(&self, addr: *mut u8, len: usize) -> bool {
        let stats = self.0.stats();
        Stats::count(&stats.munmap_calls);
        let done = self.0.unmap(addr, len);
        if done {
            stats.release(len);
        }
        done
    }

    fn remap(&self, addr: *mut u8, old: usize, new: usize, may_move: bool) -> Option<*mut u8> {
        let stats = self.0.stats();
        Stats::count(&stats.mremap_calls);
        let at = self.0.remap(addr, old, new, may_move)?;
        stats.release(old);
        stats.hold(new);
        Some(at)
    }
}

// SAFETY: segments are whole mappings of the page source, which hands out
// each address range once and keeps it until it is unmapped through here.
unsafe impl<P: PageSource> dlmalloc::Allocator for System<P> {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        match self.map(size) {
            Some(addr) => (addr, size, self.segment_tag()),
            None => (ptr::null_mut(), 0, 0),
        }
    }

    fn remap(&self, ptr: *mut u8, oldsize: usize, newsize: usize, can_move: bool) -> *mut u8 {
        System::remap(self, ptr, oldsize, newsize, can_move).unwrap_or(ptr::null_mut())
    }

    fn free_part(&self, ptr: *mut u8, oldsize: usize, newsize: usize) -> bool {
        // A no-MMU mremap shrink keeps the region's pages; unmapping the
        // tail gives them back.
        newsize < oldsize && self.unmap(ptr.wrapping_add(newsize), oldsize - newsize)
    }

    fn free(&self, ptr: *mut u8, size: usize) -> bool {
        self.unmap(ptr, size)
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        true
    }

    fn allocates_zeros(&self) -> bool {
        // The segments are asked with MAP_UNINITIALIZED.
        false
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// One heap: dlmalloc for small blocks, mappings of their own for large
/// ones. Not thread safe by itself ([`capi`] puts it behind a lock).
pub struct Heap<P: PageSource> {
    dl: Dlmalloc<System<P>>,
    source: P,
    /// Blocks dlmalloc handed out and not yet freed.
    live_small: usize,
}

fn page_round(len: usize) -> Option<usize> {
    Some(len.checked_add(PAGE - 1)? & !(PAGE - 1))
}

impl<P: PageSource> Heap<P> {
    pub const fn new(source: P) -> Self {
        Self {
            dl: Dlmalloc::new_with_allocator(System::new(source)),
            source,
            live_small: 0,
        }
    }

    /// The counters of the heap's page source.
    pub fn stats(&self) -> StatsSnapshot {
        self.source.stats().snapshot()
    }

    fn system(&self) -> System<P> {
        System::new(self.source)
    }

    /// Whether a request of `size` bytes at `align` gets its own mapping.
    fn is_large(size: usize, align: usize) -> bool {
        let slack = if align > MALLOC_ALIGNMENT { align } else { 0 };
        size.saturating_add(slack) >= MMAP_THRESHOLD
    }

    /// Whether `p` (a block of this heap) is a large block.
    ///
    /// # Safety
    /// `p` must be a live block of this heap.
    unsafe fn is_direct(p: *mut u8) -> bool {
        // SAFETY: every block has its chunk's size word just before it.
        let head = unsafe { p.cast::<usize>().sub(1).read() };
        head & INUSE_BITS == 0
    }

    /// A large block's mapping: (start, length, offset of the block from
    /// the start).
    ///
    /// # Safety
    /// `p` must be a live large block of this heap.
    unsafe fn direct_parts(p: *mut u8) -> (*mut u8, usize, usize) {
        // SAFETY: a large block's header is the two words before it.
        let (offset, size) = unsafe {
            let words = p.cast::<usize>();
            (words.sub(2).read(), words.sub(1).read())
        };
        let chunk = p.wrapping_sub(HEADER);
        (chunk.wrapping_sub(offset), offset + size, offset + HEADER)
    }

    /// A new large block of `size` bytes aligned to `align` (a power of
    /// two).
    fn alloc_direct(&mut self, size: usize, align: usize) -> *mut u8 {
        let slack = align.saturating_sub(MALLOC_ALIGNMENT);
        let Some(len) = size
            .checked_add(HEADER + slack)
            .and_then(page_round)
            .filter(|&l| l <= isize::MAX as usize)
        else {
            return ptr::null_mut();
        };
        let Some(base) = self.system().map(len) else {
            return ptr::null_mut();
        };
        let align = align.max(MALLOC_ALIGNMENT);
        let block = (base as usize + HEADER).next_multiple_of(align);
        let offset = block - HEADER - base as usize;
        let p = base.wrapping_add(offset + HEADER);
        // SAFETY: the header lies inside the new mapping, before `p`, and
        // `len - offset` is a multiple of 16 (so both in-use bits clear).
        unsafe { Self::write_header(p, offset, len - offset) };
        p
    }

    /// # Safety
    /// `p - 16 .. p` must be writable and aligned.
    unsafe fn write_header(p: *mut u8, offset: usize, chunk_size: usize) {
        // SAFETY: per the contract.
        unsafe {
            let words = p.cast::<usize>();
            words.sub(2).write(offset);
            words.sub(1).write(chunk_size);
        }
    }

    fn free_direct(&mut self, p: *mut u8) {
        // SAFETY: the caller's `p` is a live large block.
        let (base, len, _) = unsafe { Self::direct_parts(p) };
        self.system().unmap(base, len);
    }

    /// `malloc(size)`: null when out of memory.
    pub fn malloc(&mut self, size: usize) -> *mut u8 {
        if Self::is_large(size, MALLOC_ALIGNMENT) {
            return self.alloc_direct(size, MALLOC_ALIGNMENT);
        }
        // SAFETY: dlmalloc's c_malloc has no preconditions.
        let p = unsafe { self.dl.c_malloc(size) };
        if !p.is_null() {
            self.live_small += 1;
        }
        p
    }

    /// `memalign(align, size)`; `align` must be a power of two.
    pub fn memalign(&mut self, align: usize, size: usize) -> *mut u8 {
        debug_assert!(align.is_power_of_two());
        if align <= MALLOC_ALIGNMENT {
            return self.malloc(size);
        }
        if Self::is_large(size, align) {
            return self.alloc_direct(size, align);
        }
        // SAFETY: `align` is a power of two.
        let p = unsafe { self.dl.c_memalign(align, size) };
        if !p.is_null() {
            self.live_small += 1;
        }
        p
    }

    /// `calloc(n, size)`: zeroed, whatever the server gave.
    pub fn calloc(&mut self, n: usize, size: usize) -> *mut u8 {
        let Some(total) = n.checked_mul(size) else {
            return ptr::null_mut();
        };
        let p = self.malloc(total);
        if !p.is_null() {
            // SAFETY: `p` is a new block of at least `total` bytes.
            unsafe { p.write_bytes(0, total) };
        }
        p
    }

    /// `free(p)`.
    ///
    /// # Safety
    /// `p` must be null or a live block of this heap.
    pub unsafe fn free(&mut self, p: *mut u8) {
        if p.is_null() {
            return;
        }
        // SAFETY: `p` is a live block (contract).
        if unsafe { Self::is_direct(p) } {
            self.free_direct(p);
        } else {
            // SAFETY: a live dlmalloc block.
            unsafe { self.dl.c_free(p) };
            self.live_small = self.live_small.saturating_sub(1);
        }
    }

    /// The bytes usable at `p` (at least what was asked for).
    ///
    /// # Safety
    /// `p` must be null or a live block of this heap.
    pub unsafe fn usable_size(&self, p: *mut u8) -> usize {
        if p.is_null() {
            return 0;
        }
        // SAFETY: `p` is a live block (contract).
        let head = unsafe { p.cast::<usize>().sub(1).read() };
        if head & INUSE_BITS == 0 {
            // A large block: its chunk minus the header.
            head.saturating_sub(HEADER)
        } else {
            // A dlmalloc chunk in use: its size less the one-word overhead
            // (dlmalloc 2.8.6's malloc_usable_size).
            (head & !0b111).saturating_sub(core::mem::size_of::<usize>())
        }
    }

    /// `realloc(p, size)`. As glibc: a null `p` is `malloc`, a zero size
    /// frees `p` and returns null. On failure `p` is untouched and null is
    /// returned.
    ///
    /// # Safety
    /// `p` must be null or a live block of this heap.
    pub unsafe fn realloc(&mut self, p: *mut u8, size: usize) -> *mut u8 {
        if p.is_null() {
            return self.malloc(size);
        }
        if size == 0 {
            // SAFETY: per the contract.
            unsafe { self.free(p) };
            return ptr::null_mut();
        }
        // SAFETY: per the contract.
        let direct = unsafe { Self::is_direct(p) };
        let large = Self::is_large(size, MALLOC_ALIGNMENT);
        if direct && large {
            // SAFETY: a live large block.
            if let Some(q) = unsafe { self.resize_direct(p, size) } {
                return q;
            }
        } else if !direct && !large {
            // SAFETY: a live dlmalloc block.
            return unsafe { self.dl.c_realloc(p, size) };
        }
        // Between kinds, or a large block the server would not grow:
        // a new block, a copy, the old one freed.
        let q = self.malloc(size);
        if !q.is_null() {
            // SAFETY: both are live blocks; `q` holds at least `size`
            // bytes and `p` at least its usable size.
            unsafe {
                let keep = self.usable_size(p).min(size);
                ptr::copy_nonoverlapping(p, q, keep);
                self.free(p);
            }
        }
        q
    }

    /// Resize a large block in place or by `mremap`; `None` if the server
    /// refused to grow it.
    ///
    /// # Safety
    /// `p` must be a live large block of this heap.
    unsafe fn resize_direct(&mut self, p: *mut u8, size: usize) -> Option<*mut u8> {
        // SAFETY: per the contract.
        let (base, len, offset) = unsafe { Self::direct_parts(p) };
        let new_len = size
            .checked_add(offset)
            .and_then(page_round)
            .filter(|&l| l <= isize::MAX as usize)?;
        let system = self.system();
        let at = if new_len == len {
            return Some(p);
        } else if new_len < len {
            // Shrink: give the tail back (a no-MMU mremap would keep it).
            if !system.unmap(base.wrapping_add(new_len), len - new_len) {
                return Some(p);
            }
            base
        } else {
            system.remap(base, len, new_len, true)?
        };
        let q = at.wrapping_add(offset);
        // SAFETY: the header moved with the mapping's contents.
        unsafe { Self::write_header(q, offset - HEADER, new_len - (offset - HEADER)) };
        Some(q)
    }

    /// Give unused memory back to the server: with no small block live,
    /// every dlmalloc segment; else what dlmalloc can trim, keeping `pad`
    /// bytes free at the top. Whether anything was released.
    pub fn trim(&mut self, pad: usize) -> bool {
        if self.live_small == 0 {
            let fresh = Dlmalloc::new_with_allocator(self.system());
            let old = core::mem::replace(&mut self.dl, fresh);
            // SAFETY: no block of the old allocator is live.
            unsafe { old.destroy() != 0 }
        } else {
            // SAFETY: dlmalloc's trim has no preconditions.
            unsafe { self.dl.trim(pad) }
        }
    }
}

#[cfg(test)]
mod tests;
