//! The board image: boot, hand the RAM after the image to the task heap
//! and the arena, and start the init task, which starts everything else.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![no_main]

extern crate alloc;

use linked_list_allocator::LockedHeap;
use qemu_target::kernel::TaskStart;
use qemu_target::{console, kprintln, memory, tasks, trap};

/// Every task's Rust heap (stacks included). Its lock is a spin lock: a
/// task preempted while holding it only delays the others.
#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// The init task's stack (the only one not on the heap).
const INIT_STACK: usize = 256 << 10;
#[repr(align(16))]
struct Stack(#[allow(dead_code)] [u8; INIT_STACK]);
static mut INIT_STACK_MEM: Stack = Stack([0; INIT_STACK]);

#[no_mangle]
extern "C" fn kmain(hart: u64, _device_tree: u64) -> ! {
    let heap = memory::heap();
    let arena = memory::arena();
    kprintln!(
        "kernel: hart {hart}, paging off; image {:#x}..{:#x}, heap {:#x}..{:#x}, arena {:#x}..{:#x} ({} MiB)",
        memory::IMAGE_BASE,
        heap.start,
        heap.start,
        heap.end,
        arena.start,
        arena.end,
        (arena.end - arena.start) >> 20
    );
    // SAFETY: the heap range lies in RAM after the image and before the
    // arena, is used for nothing else, and is given to the allocator once,
    // before any task runs.
    unsafe {
        HEAP.lock()
            .init(heap.start as *mut u8, (heap.end - heap.start) as usize)
    };
    let stack_top = core::ptr::addr_of_mut!(INIT_STACK_MEM) as u64 + INIT_STACK as u64;
    trap::start(
        "init",
        TaskStart {
            entry: tasks::init::entry as *const () as usize as u64,
            arg: 0,
            stack_top,
            tls: 0,
            gp: 0,
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
