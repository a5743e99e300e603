//! The C library's allocator names (`malloc`, `free`, `calloc`, `realloc`,
//! `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc`,
//! `malloc_usable_size`) over the mmap-only allocator, exported only with
//! feature `preload-malloc`: `libnommu-malloc.so`, which `nommu-run
//! --malloc` preloads, so an unmodified program's heap comes from memsrv
//! and fragments as it would on the board. These are the names glibc's
//! manual lists for replacing its `malloc`; glibc's own functions
//! (`strdup`, `fopen`, ...) then allocate through them too.
//!
//! The library's own Rust code must not allocate through them (a request
//! made while the heap's lock is held would come back for the lock): with
//! this feature its global allocator is the C library's own `malloc`
//! under its internal names (`__libc_malloc`, ...).

use crate::malloc::capi::{
    nommu_aligned_alloc, nommu_calloc, nommu_free, nommu_malloc, nommu_malloc_usable_size,
    nommu_posix_memalign, nommu_realloc,
};
use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_int, c_void};
use protocol::PAGE_SIZE;

/// `void *malloc(size_t size)`.
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    nommu_malloc(size)
}

/// `void free(void *p)`.
///
/// # Safety
/// `p` must be null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_free(p) }
}

/// `void *calloc(size_t n, size_t size)`.
#[no_mangle]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    nommu_calloc(n, size)
}

/// `void *realloc(void *p, size_t size)`.
///
/// # Safety
/// `p` must be null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_realloc(p, size) }
}

/// `int posix_memalign(void **out, size_t align, size_t size)`.
///
/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_posix_memalign(out, align, size) }
}

/// `void *aligned_alloc(size_t align, size_t size)`.
#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    nommu_aligned_alloc(align, size)
}

/// `void *memalign(size_t align, size_t size)` (obsolete, still called).
#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    nommu_aligned_alloc(align, size)
}

/// `void *valloc(size_t size)`: page aligned.
#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    nommu_aligned_alloc(PAGE_SIZE as usize, size)
}

/// `void *pvalloc(size_t size)`: page aligned, rounded up to whole pages.
#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = PAGE_SIZE as usize;
    match size.checked_next_multiple_of(page) {
        Some(rounded) => nommu_aligned_alloc(page, rounded.max(page)),
        None => nommu_malloc(usize::MAX),
    }
}

/// `size_t malloc_usable_size(void *p)`.
///
/// # Safety
/// `p` must be null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_malloc_usable_size(p) }
}

extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
}

/// The C library's own allocator, for the library's Rust code.
struct HostAllocator;

// SAFETY: glibc's `__libc_malloc`/`__libc_memalign` return blocks of at
// least the size asked, aligned as asked (malloc: 16 bytes on the 64-bit
// hosts this builds for), or null; `__libc_free` takes them back.
unsafe impl GlobalAlloc for HostAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C calls; sizes are the layout's.
        unsafe {
            if layout.align() <= 16 {
                __libc_malloc(layout.size()).cast()
            } else {
                __libc_memalign(layout.align(), layout.size()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above (GlobalAlloc's contract).
        unsafe { __libc_free(ptr.cast()) }
    }
}

#[global_allocator]
static HOST_ALLOCATOR: HostAllocator = HostAllocator;
