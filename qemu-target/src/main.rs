//! The board image: boot, hand the RAM after the image to the task heap
//! and the arena, and start the init task, which starts everything else.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![no_main]

extern crate alloc;

use qemu_target::kernel::{self, TaskStart};
use qemu_target::{console, heap, kprintln, memory, tasks, trap};

/// Every task's Rust allocations, from the heap its `gp` names.
#[global_allocator]
static HEAP: heap::TaskHeaps = heap::TaskHeaps;

/// The init task's stack, from the task heap.
const INIT_STACK: usize = 256 << 10;

#[no_mangle]
extern "C" fn kmain(hart: u64, device_tree: u64) -> ! {
    let heap = memory::shared_heap();
    let pool = memory::region_pool();
    let arena = memory::arena();
    kprintln!(
        "kernel: hart {hart}, paging off; image {:#x}..{:#x}, heap {:#x}..{:#x}, region pool {:#x}..{:#x}, arena {:#x}..{:#x} ({} MiB)",
        memory::IMAGE_BASE,
        heap.start,
        heap.start,
        heap.end,
        pool.start,
        pool.end,
        arena.start,
        arena.end,
        (arena.end - arena.start) >> 20
    );
    // Read before the heaps are made: the blob may lie anywhere in RAM.
    match memory::with_device_tree(device_tree, |blob| {
        kernel::device_tree::cboz_block_size(blob, hart)
    }) {
        Some(Some(block)) => {
            memory::enable_cbo_zero(block);
            kprintln!("kernel: Zicboz: pages zeroed with cbo.zero, {block}-byte blocks");
        }
        Some(None) => kprintln!("kernel: no Zicboz: pages zeroed a word at a time"),
        None => {
            kprintln!("kernel: no device tree at {device_tree:#x}: pages zeroed a word at a time")
        }
    }
    // SAFETY: the heap range lies in RAM after the image and before the
    // arena, page-aligned, is used for nothing else, and is made a heap
    // once, before any task runs.
    unsafe { heap::init(heap.start, heap.end - heap.start) };
    // SAFETY: as above: the pool follows that heap, up to the arena.
    unsafe { heap::init(pool.start, pool.end - pool.start) };
    // u128 words: the stack pointer must stay 16-byte aligned. Never
    // freed: init runs for the machine's life.
    let stack = heap::with_heap(heap.start, || {
        alloc::vec![0u128; INIT_STACK / 16].leak().as_ptr() as u64
    });
    let stack_top = stack + INIT_STACK as u64;
    trap::start(
        "init",
        TaskStart {
            entry: tasks::init::entry as *const () as usize as u64,
            arg: 0,
            stack_top,
            tls: 0,
            // init and the servers it starts allocate from the task heap.
            gp: heap.start,
            exit_trampoline: tasks::init::entry as *const () as usize as u64,
            privileged: true,
            stack_bottom: 0,
        },
    )
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if trap::in_kernel() {
        kprintln!("kernel panic: {info}");
        console::power_off(6);
    }
    qemu_target::println!("task panic: {info}");
    qemu_target::sys::exit(101)
}
