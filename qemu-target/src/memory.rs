//! The board's physical memory: where things are, and the one place that
//! reads and writes it through raw addresses.
//!
//! ```text
//! 0x8000_0000  the kernel's state (task table, connections, frames, its
//!              stack): no task reaches it
//! 0x8020_0000  the image (text, rodata; data and bss: the runtime's statics,
//!              a copy per task)
//! __image_end  the task heap: init's, memsrv's and the drivers' stacks
//!              and allocations, then the region pool (each user task's
//!              region: its stack and its own heap), which drivers do not
//!              reach
//!              the arena: every page memsrv hands out, to the end of RAM
//! ```
//! With paging off an address is the same in every task; bounds checks
//! here keep the kernel and memsrv inside RAM and the flash window.

use crate::kernel::device_tree;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

pub const RAM_BASE: u64 = 0x8000_0000;
/// The board is started with `-m 128M`.
pub const RAM_SIZE: u64 = 128 << 20;
pub const RAM_END: u64 = RAM_BASE + RAM_SIZE;
/// Where the image begins (QEMU loads it here; the 2 MiB below are unused).
pub const IMAGE_BASE: u64 = 0x8020_0000;
/// The task heap, with the region pool at its end.
pub const HEAP_SIZE: u64 = 24 << 20;
/// The user tasks' and the drivers' regions (a region is at most a few
/// hundred KiB; the suites' sixteen drivers take 256 KiB each).
pub const REGION_POOL: u64 = 12 << 20;
pub const PAGE: u64 = 4096;
/// QEMU virt's two CFI flash banks (romfs in place, the MTD chip).
pub const FLASH_BASE: u64 = 0x2000_0000;
pub const FLASH_SIZE: u64 = 64 << 20;

/// QEMU virt's MMIO window the drivers reach: the UART and the
/// virtio-mmio slots (naturally aligned, for one PMP entry).
pub const DEVICES_BASE: u64 = 0x1000_0000;
pub const DEVICES_SIZE: u64 = 0x1_0000;

extern "C" {
    static __image_end: u8;
    static __text_end: u8;
    static __shared_end: u8;
}

fn image_end() -> u64 {
    // Only the address is taken: the linker script puts the symbol at the
    // page-aligned end of the image.
    core::ptr::addr_of!(__image_end) as u64
}

/// The task heap's range, the region pool included.
pub fn heap() -> Range<u64> {
    let start = image_end().next_multiple_of(PAGE);
    start..start + HEAP_SIZE
}

/// The heap init and memsrv allocate from: the task heap before the
/// region pool (no driver reaches it).
pub fn shared_heap() -> Range<u64> {
    heap().start..region_pool().start
}

/// Where user tasks' and drivers' regions come from: a heap of its own at
/// the end of the task heap.
pub fn region_pool() -> Range<u64> {
    heap().end - REGION_POOL..heap().end
}

/// The runtime's statics: the image's data and bss, of which every task
/// has its own copy (`kernel/pmp.rs`).
pub fn statics() -> Range<u64> {
    // Only the addresses are taken: the linker script's end of the text
    // and of the statics.
    let start = core::ptr::addr_of!(__text_end) as u64;
    start..core::ptr::addr_of!(__shared_end) as u64
}

/// The memory map as the tasks' PMP entries cut it
/// ([`Protection`](crate::kernel::pmp::Protection)).
pub fn pmp_layout() -> crate::kernel::pmp::Layout {
    let statics = statics();
    crate::kernel::pmp::Layout {
        flash: FLASH_BASE..FLASH_BASE + FLASH_SIZE,
        text: IMAGE_BASE..statics.start,
        data_end: statics.end,
        statics_copy: crate::heap::STATICS_COPY_AT,
        heap_start: heap().start,
        regions_start: region_pool().start,
        heap_end: heap().end,
        arena_end: RAM_END,
        devices: DEVICES_BASE..DEVICES_BASE + DEVICES_SIZE,
        device_windows: device_windows(),
    }
}

/// Each device a driver may claim (`kernel::pmp::device`), as one NAPOT
/// block: the UART's page, the virtio-mmio slots' pages (0x1000 apart
/// after it), the two flash banks.
fn device_windows() -> [(u64, u64); crate::kernel::pmp::DEVICES] {
    use crate::kernel::pmp::device;
    let bank = FLASH_SIZE / 2;
    let mut windows = [(DEVICES_BASE, PAGE); crate::kernel::pmp::DEVICES];
    for slot in 0..device::VIRTIO_SLOTS {
        windows[device::virtio(slot) as usize] = (DEVICES_BASE + PAGE * (1 + slot), PAGE);
    }
    windows[device::NOR_FLASH as usize] = (FLASH_BASE + bank, bank);
    windows[device::BOOT_FLASH as usize] = (FLASH_BASE, bank);
    windows
}

/// The arena's range: the rest of RAM.
pub fn arena() -> Range<u64> {
    heap().end..RAM_END
}

/// Memory the kernel copies to and from for tasks: all RAM above its own
/// state (which task gets what is [`Protection::may_touch`](crate::kernel::pmp::Protection::may_touch)).
pub fn task_memory() -> Range<u64> {
    IMAGE_BASE..RAM_END
}

fn within(range: &Range<u64>, addr: u64, len: usize) -> bool {
    addr >= range.start
        && addr
            .checked_add(len as u64)
            .is_some_and(|end| end <= range.end)
}

/// Whether `[addr, addr+len)` is RAM a task may use, or the flash window
/// (read only: writing flash takes its command sequence).
pub fn readable(addr: u64, len: usize) -> bool {
    within(&task_memory(), addr, len) || within(&(FLASH_BASE..FLASH_BASE + FLASH_SIZE), addr, len)
}

pub fn writable(addr: u64, len: usize) -> bool {
    within(&task_memory(), addr, len)
}

/// Copy `bytes` to physical `addr`; false (and nothing written) outside
/// task memory.
pub fn write(addr: u64, bytes: &[u8]) -> bool {
    if !writable(addr, bytes.len()) {
        return false;
    }
    // SAFETY: the range lies in RAM (checked above); with no MMU every
    // task may write any RAM, which is the machine this board models.
    // `bytes` may be the same memory (a task's own buffer) only if the
    // caller made it so; copy handles overlap.
    unsafe { core::ptr::copy(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
    true
}

/// Fill `out` from physical `addr`; false outside RAM and flash.
pub fn read(addr: u64, out: &mut [u8]) -> bool {
    if !readable(addr, out.len()) {
        return false;
    }
    // SAFETY: the range lies in RAM or the flash window (checked above),
    // both always readable on this board.
    unsafe { core::ptr::copy(addr as *const u8, out.as_mut_ptr(), out.len()) };
    true
}

/// Set `len` bytes at `addr`.
pub fn fill(addr: u64, byte: u8, len: u64) -> bool {
    let Ok(n) = usize::try_from(len) else {
        return false;
    };
    if !writable(addr, n) {
        return false;
    }
    let block = CBO_ZERO_BLOCK.load(Ordering::Relaxed);
    // A power of two (or 0): whole blocks, in runs of four.
    if byte == 0 && block != 0 && addr & (block - 1) == 0 && len & (4 * block - 1) == 0 && len != 0
    {
        // With Zicboz one `cbo.zero` clears a block (as Linux's riscv
        // `clear_page` does): about 140 instructions a 4 KiB page against
        // about 650 for the word loop below.
        // SAFETY: the range lies in RAM (checked above) and is whole runs
        // of four aligned blocks of the size `cbo.zero` clears, which the
        // kernel enabled for tasks before it set `CBO_ZERO_BLOCK`.
        unsafe { crate::arch::cbo_zero(addr, addr + len, block) };
        return true;
    }
    if byte == 0 && (addr | len) % ZERO_BLOCK == 0 {
        // memsrv zeroes an anonymous mapping's pages on every `mmap`: whole
        // words, eight stores a turn (`memset`'s loop spends three
        // instructions a word). Volatile, so that the compiler does not
        // turn the loop back into a call of `memset`.
        let mut at = addr as *mut u64;
        for _ in 0..len / ZERO_BLOCK {
            // SAFETY: the range lies in RAM (checked above) and is whole
            // aligned 64-byte blocks, this one among them.
            unsafe {
                for word in 0..8 {
                    at.add(word).write_volatile(0);
                }
                at = at.add(8);
            }
        }
        return true;
    }
    // SAFETY: the range lies in RAM (checked above).
    unsafe { core::ptr::write_bytes(addr as *mut u8, byte, n) };
    true
}

/// The bytes [`fill`] zeroes a turn when it can: eight words.
const ZERO_BLOCK: u64 = 64;

/// The bytes one `cbo.zero` clears, 0 where the hart has no Zicboz: set by
/// the kernel at boot ([`enable_cbo_zero`]), before any task runs, so every
/// task's copy of the statics starts with it. A task that overwrote its
/// copy could only make its own `fill`s fault or fall back.
static CBO_ZERO_BLOCK: AtomicU64 = AtomicU64::new(0);

/// Let [`fill`] zero with `cbo.zero` in blocks of `block` bytes (what the
/// device tree said; [`device_tree::cboz_block_size`] only gives a power of
/// two from 16 to 4096), after enabling it for user mode.
pub fn enable_cbo_zero(block: u64) {
    crate::arch::enable_cbo_zero();
    CBO_ZERO_BLOCK.store(block, Ordering::Relaxed);
}

/// Call `read` with the flattened device tree at `addr` (QEMU's reset code
/// passes its address in `a1`), if a blob with the device tree's magic
/// lies whole in RAM and is at most [`device_tree::MAX_BLOB`] long. Only at
/// boot: the blob sits in RAM that later becomes the arena.
pub fn with_device_tree<R>(addr: u64, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let ram = RAM_BASE..RAM_END;
    if !within(&ram, addr, 8) {
        return None;
    }
    let mut header = [0u8; 8];
    // SAFETY: the eight bytes lie in RAM (checked above).
    unsafe { core::ptr::copy(addr as *const u8, header.as_mut_ptr(), header.len()) };
    let len = device_tree::total_size(&header)?;
    if len > device_tree::MAX_BLOB || !within(&ram, addr, len) {
        return None;
    }
    // SAFETY: the blob lies in RAM (checked above), and nothing writes it
    // while the kernel reads it at boot.
    Some(read(unsafe {
        core::slice::from_raw_parts(addr as *const u8, len)
    }))
}

/// Copy `len` bytes from `src` to `dst` (may overlap).
pub fn copy(src: u64, dst: u64, len: u64) -> bool {
    let Ok(n) = usize::try_from(len) else {
        return false;
    };
    if !readable(src, n) || !writable(dst, n) {
        return false;
    }
    // SAFETY: both ranges are checked above; `copy` allows overlap.
    unsafe { core::ptr::copy(src as *const u8, dst as *mut u8, n) };
    true
}

/// One atomic load of the aligned word at `addr` (a futex word).
pub fn load_u32(addr: u64) -> Option<u32> {
    if addr % 4 != 0 || !readable(addr, 4) {
        return None;
    }
    // SAFETY: aligned and inside RAM or flash (checked above); an atomic
    // load because other tasks store to futex words concurrently.
    let word = unsafe { &*(addr as *const core::sync::atomic::AtomicU32) };
    Some(word.load(core::sync::atomic::Ordering::Acquire))
}

/// Replace the aligned word at `addr` by `f(old)` in one atomic step (a
/// `FUTEX_WAKE_OP`); the old value, or `None` outside task memory.
pub fn update_u32(addr: u64, f: &dyn Fn(u32) -> u32) -> Option<u32> {
    if addr % 4 != 0 || !writable(addr, 4) {
        return None;
    }
    // SAFETY: aligned and inside task RAM (checked above); atomic because
    // other tasks store to futex words concurrently.
    let word = unsafe { &*(addr as *const core::sync::atomic::AtomicU32) };
    let ord = core::sync::atomic::Ordering::AcqRel;
    let load = core::sync::atomic::Ordering::Acquire;
    match word.fetch_update(ord, load, |old| Some(f(old))) {
        Ok(old) | Err(old) => Some(old),
    }
}

/// Nothing answers at this physical address (past the end of RAM, no
/// device).
pub const NOTHING_THERE: u64 = 0x9000_0000;

/// Load the word at [`NOTHING_THERE`]: a load access fault, so the kernel
/// ends the calling task and this never returns to it (the robustness
/// suite's faulting task).
pub fn load_from_nothing() -> u64 {
    // SAFETY: no memory is read: the load traps, and the kernel kills the
    // task before the value could be used. Volatile so it is not elided.
    unsafe { core::ptr::read_volatile(NOTHING_THERE as *const u64) }
}
