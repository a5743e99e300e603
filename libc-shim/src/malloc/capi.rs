//! The C names of the allocator (`include/nommu_malloc.h`): one heap per
//! process behind a lock, its pages from the process's memory-server
//! connection (feature `host`: the `memsrvd` connection of
//! [`crate::capi::host::process::global`]; feature `c-abi`: the registered
//! `crate::capi::board::Home` of the calling task).
//!
//! The names carry a `nommu_` prefix so that linking the library never
//! replaces the host libc's own `malloc`; a port opts in, per file, with
//! `include/nommu_malloc_names.h`. The shim's own Rust code allocates with
//! Rust's global allocator (the host libc's `malloc`), never with these, so
//! a request to the server made while the heap's lock is held cannot come
//! back here. Nothing here panics: sizes are checked, a poisoned lock is
//! taken over.

use super::{Heap, PageSource, Stats, StatsSnapshot, MALLOC_ALIGNMENT};
use core::ffi::{c_int, c_void};
use core::ptr;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, MAP_UNINITIALIZED, PROT_READ, PROT_WRITE};
use protocol::Errno;

/// The flags of every mapping the allocator asks for.
const MAP_FLAGS: u32 = MAP_PRIVATE | MAP_ANONYMOUS | MAP_UNINITIALIZED;
const PROT: u32 = PROT_READ | PROT_WRITE;

/// `MREMAP_MAYMOVE` when the mapping may move.
fn remap_flags(may_move: bool) -> u32 {
    if may_move {
        protocol::linux::MREMAP_MAYMOVE
    } else {
        0
    }
}

static STATS: Stats = Stats::new();

/// The process's page source: its connection to the memory server.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerPages;

#[cfg(feature = "host")]
mod platform {
    use super::{Heap, ServerPages};
    use crate::client::Client;
    use crate::transport::DaemonConnection;
    use protocol::Errno;
    use std::sync::Mutex;

    static HEAP: Mutex<Heap<ServerPages>> = Mutex::new(Heap::new(ServerPages));

    pub(super) fn with_heap<R>(f: impl FnOnce(&mut Heap<ServerPages>) -> R) -> Option<R> {
        let mut heap = HEAP.lock().unwrap_or_else(|e| e.into_inner());
        Some(f(&mut heap))
    }

    pub(super) fn with_client<R>(
        f: impl FnOnce(&Client<DaemonConnection>) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        f(crate::capi::host::process::global()?)
    }

    pub(super) fn set_errno(errno: Errno) {
        crate::sys::set_errno(errno);
    }
}

#[cfg(all(feature = "c-abi", not(feature = "host")))]
mod platform {
    use super::{Heap, ServerPages};
    use crate::capi::board as c_abi;
    use crate::client::Client;
    use protocol::Errno;
    use spinning_top::{const_spinlock, Spinlock};

    /// The image's one state, for homes that give tasks no slot.
    static HEAP: Spinlock<Heap<ServerPages>> = const_spinlock(Heap::new(ServerPages));

    /// The calling task's own state, made on first use in a page of its
    /// process (so it goes with the process, like the segments it names).
    /// A task is one thread: no lock.
    fn own_heap(slot: *mut *mut core::ffi::c_void) -> Option<*mut Heap<ServerPages>> {
        // SAFETY: the home's slot is the calling task's word, valid while
        // it runs; only this task reads or writes it.
        let current = unsafe { *slot };
        if !current.is_null() {
            return Some(current.cast());
        }
        // Not through the page source: the state is not one of the heap's
        // segments (and stays out of its counts).
        let size = core::mem::size_of::<Heap<ServerPages>>().next_multiple_of(4096) as u64;
        let page = with_client(|c| c.mmap(0, size, super::PROT, super::MAP_FLAGS, -1, 0)).ok()?;
        let heap = page as usize as *mut Heap<ServerPages>;
        // SAFETY: a fresh private mapping of at least `size` bytes, page
        // aligned (more than the state's alignment), owned by this task.
        unsafe {
            heap.write(Heap::new(ServerPages));
            *slot = heap.cast();
        }
        Some(heap)
    }

    pub(super) fn with_heap<R>(f: impl FnOnce(&mut Heap<ServerPages>) -> R) -> Option<R> {
        match c_abi::current_malloc_slot() {
            // SAFETY: the state lives in the task's page until its process
            // ends, and only this task (one thread) uses it.
            Some(slot) => own_heap(slot).map(|heap| f(unsafe { &mut *heap })),
            None => Some(f(&mut HEAP.lock())),
        }
    }

    pub(super) fn with_client<R>(
        f: impl FnOnce(&Client<c_abi::Current>) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        let client = c_abi::current_client().ok_or(Errno::ENOSYS)?;
        f(&client)
    }

    pub(super) fn set_errno(errno: Errno) {
        c_abi::set_current_errno(errno);
    }
}

use platform::{set_errno, with_client, with_heap};

fn addr(p: *mut u8) -> u64 {
    p as usize as u64
}

impl PageSource for ServerPages {
    fn map(&self, len: usize) -> Option<*mut u8> {
        with_client(|c| c.mmap(0, len as u64, PROT, MAP_FLAGS, -1, 0))
            .ok()
            .map(|a| a as usize as *mut u8)
    }

    fn unmap(&self, p: *mut u8, len: usize) -> bool {
        with_client(|c| c.munmap(addr(p), len as u64)).is_ok()
    }

    fn remap(&self, p: *mut u8, old: usize, new: usize, may_move: bool) -> Option<*mut u8> {
        with_client(|c| c.mremap(addr(p), old as u64, new as u64, remap_flags(may_move), 0))
            .ok()
            .map(|a| a as usize as *mut u8)
    }

    fn stats(&self) -> &Stats {
        &STATS
    }
}

/// A block or null with `errno` ENOMEM.
fn block(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(Errno::ENOMEM);
    }
    p.cast()
}

/// `void *nommu_malloc(size_t size)`.
#[no_mangle]
pub extern "C" fn nommu_malloc(size: usize) -> *mut c_void {
    block(with_heap(|h| h.malloc(size)).unwrap_or(ptr::null_mut()))
}

/// `void nommu_free(void *p)`.
///
/// # Safety
/// `p` must be null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn nommu_free(p: *mut c_void) {
    // SAFETY: per the contract.
    with_heap(|h| unsafe { h.free(p.cast()) });
}

/// `void *nommu_calloc(size_t n, size_t size)`: zeroed even when the server
/// honours `MAP_UNINITIALIZED`.
#[no_mangle]
pub extern "C" fn nommu_calloc(n: usize, size: usize) -> *mut c_void {
    block(with_heap(|h| h.calloc(n, size)).unwrap_or(ptr::null_mut()))
}

/// `void *nommu_realloc(void *p, size_t size)`.
///
/// # Safety
/// `p` must be null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn nommu_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: per the contract.
    let q = with_heap(|h| unsafe { h.realloc(p.cast(), size) }).unwrap_or(ptr::null_mut());
    // realloc(p, 0) freed p: a null answer is no failure then.
    if q.is_null() && (size != 0 || p.is_null()) {
        set_errno(Errno::ENOMEM);
    }
    q.cast()
}

/// `int nommu_posix_memalign(void **out, size_t align, size_t size)`: 0, or
/// EINVAL (`align` not a power of two multiple of `sizeof(void *)`) or
/// ENOMEM, `*out` untouched then.
///
/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn nommu_posix_memalign(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return Errno::EINVAL.as_i32();
    }
    if out.is_null() {
        return Errno::EFAULT.as_i32();
    }
    let p = with_heap(|h| h.memalign(align, size)).unwrap_or(ptr::null_mut());
    if p.is_null() {
        return Errno::ENOMEM.as_i32();
    }
    // SAFETY: the caller passes a writable pointer.
    unsafe { *out = p.cast() };
    0
}

/// `void *nommu_aligned_alloc(size_t align, size_t size)`: null with
/// `errno` EINVAL unless `align` is a power of two.
#[no_mangle]
pub extern "C" fn nommu_aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(Errno::EINVAL);
        return ptr::null_mut();
    }
    block(with_heap(|h| h.memalign(align.max(MALLOC_ALIGNMENT), size)).unwrap_or(ptr::null_mut()))
}

/// `size_t nommu_malloc_usable_size(void *p)`: 0 for null.
///
/// # Safety
/// `p` must be null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn nommu_malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: per the contract.
    with_heap(|h| unsafe { h.usable_size(p.cast()) }).unwrap_or(0)
}

/// `struct nommu_malloc_stats` of `nommu_malloc.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NommuMallocStats {
    pub mmap_calls: u64,
    pub munmap_calls: u64,
    pub mremap_calls: u64,
    pub mapped_bytes: u64,
}

impl From<StatsSnapshot> for NommuMallocStats {
    fn from(s: StatsSnapshot) -> Self {
        Self {
            mmap_calls: s.mmap_calls,
            munmap_calls: s.munmap_calls,
            mremap_calls: s.mremap_calls,
            mapped_bytes: s.mapped_bytes,
        }
    }
}

/// `void nommu_malloc_stats(struct nommu_malloc_stats *out)`: the requests
/// the allocator made to the server so far and the bytes it holds.
///
/// # Safety
/// `out` must be null (ignored) or writable.
#[no_mangle]
pub unsafe extern "C" fn nommu_malloc_stats(out: *mut NommuMallocStats) {
    if out.is_null() {
        return;
    }
    let stats = NommuMallocStats::from(STATS.snapshot());
    // SAFETY: the caller passes a writable pointer.
    unsafe { out.write(stats) };
}

/// `int nommu_malloc_trim(size_t pad)`: give unused memory back to the
/// server now (every segment when no small block is live); 1 if anything
/// was released, else 0.
#[no_mangle]
pub extern "C" fn nommu_malloc_trim(pad: usize) -> c_int {
    c_int::from(with_heap(|h| h.trim(pad)).unwrap_or(false))
}
