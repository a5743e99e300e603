//! Task heaps: the board's global allocator, and the header that starts
//! every heap. Each task's `gp` names the header of the heap its Rust
//! allocations come from: init and memsrv share the task heap's
//! (gp = its start), and each user task and each driver has its own in
//! its region (a naturally aligned power-of-two block of the region pool:
//! the header, its heap, its stack at the top; one PMP entry,
//! `kernel/pmp.rs`). So a user task's or a driver's allocations, and the
//! allocator's bookkeeping for them, stay in memory only that task may
//! touch.
//!
//! After the header, before the heap, is room for a copy of the
//! runtime's statics (the image's `.data`/`.bss`): the kernel keeps the
//! copy of the heap's tasks there while another task's copy is in place
//! (`kernel/pmp.rs`), so each user task's statics are its own, in its
//! region.
//!
//! The kernel copies `gp` from the spawner to the child and never changes
//! it; Rust and C code never use it (no `__global_pointer$`, so the linker
//! relaxes nothing against it). A spawner fills a child's heap by running
//! with the child's `gp` for a moment ([`with_heap`]).

use core::alloc::{GlobalAlloc, Layout};
use core::arch::asm;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;
use linked_list_allocator::Heap;
use spinning_top::Spinlock;

/// Words at the start of a user task's region that its spawner reads and
/// writes too: how a task and the privileged task that started it share
/// a few words without any memory both may write ([`Header::mailbox`]).
pub const MAILBOX_WORDS: usize = 4;

/// The start of every heap.
#[repr(C, align(16))]
pub struct Header {
    /// The heap after the header. Its lock is a spin lock: a task
    /// preempted while holding it only delays the others (the shared heap
    /// is the only one several tasks use).
    heap: Spinlock<Heap>,
    pub mailbox: [AtomicU64; MAILBOX_WORDS],
}

const HEADER: usize = core::mem::size_of::<Header>();

/// Where a heap's copy of the statics starts, from its header's address.
pub const STATICS_COPY_AT: u64 = HEADER as u64;

/// What a heap keeps before its allocations: the header and room for a
/// copy of the statics (whole pages: one in the suites' image, more for
/// a C program with large globals).
pub fn reserved() -> usize {
    let statics = crate::memory::statics();
    HEADER + (statics.end - statics.start) as usize
}

/// Make a heap of `[base, base + size)`: its header at `base`, then the
/// room for the statics' copy (left to the kernel), the rest allocatable.
///
/// # Safety
///
/// The range is memory nothing else uses, at least [`reserved`] and a
/// page, 16-byte aligned, and stays so while the heap is used.
pub unsafe fn init(base: u64, size: u64) {
    let header = base as *mut Header;
    let mut heap = Heap::empty();
    // SAFETY: the caller gives the range; the header and the copy take
    // its first bytes and the heap the rest.
    unsafe {
        heap.init(
            (base as usize + reserved()) as *mut u8,
            size as usize - reserved(),
        );
        header.write(Header {
            heap: Spinlock::new(heap),
            mailbox: [const { AtomicU64::new(0) }; MAILBOX_WORDS],
        });
    }
}

/// The header `gp` names: the calling task's heap.
pub fn current() -> &'static Header {
    // SAFETY: every task runs with gp at a header `init` made (init's by
    // kmain, the rest inherited or set by `with_heap`), which outlives it.
    unsafe { &*(gp() as *const Header) }
}

/// The calling task's `gp` (a spawner's, passed on to its child; 0 in
/// the kernel before the first task).
pub fn gp() -> u64 {
    let gp: u64;
    // SAFETY: reads a register, nothing else.
    unsafe { asm!("mv {}, gp", out(reg) gp, options(nomem, nostack)) };
    gp
}

/// Set `gp` (see [`with_heap`]).
fn set_gp(gp: u64) {
    // SAFETY: only gp changes, which compiled code never uses; every
    // caller gives it a header `init` made.
    // Not `nomem`: no memory access moves across the switch.
    unsafe { asm!("mv gp, {}", in(reg) gp, options(nostack)) };
}

/// Run `f` with its allocations in the heap at `base` (made by [`init`]),
/// then switch back: how a spawner puts a child's closure and
/// thread-local block in the child's own heap. What `f` allocates must be
/// freed by the child, or with the region.
pub fn with_heap<R>(base: u64, f: impl FnOnce() -> R) -> R {
    let own = gp();
    set_gp(base);
    let result = f();
    set_gp(own);
    result
}

/// The global allocator: every allocation from the calling task's heap.
pub struct TaskHeaps;

// SAFETY: each heap hands out only its own free memory, under its lock.
unsafe impl GlobalAlloc for TaskHeaps {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        current()
            .heap
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
            // `layout`, in this task's heap (a task frees only what it
            // allocated, or what was put in its heap for it).
            unsafe { current().heap.lock().deallocate(ptr, layout) };
        }
    }
}
