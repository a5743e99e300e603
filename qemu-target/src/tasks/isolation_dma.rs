//! The disk's DMA (part of the device checks, before `/dev/vda` is
//! mounted): PMP does not check a device's DMA, so the kernel drives the
//! virtio disk's queue and checks each request's buffer against the
//! driver that names it (`Sys::BlockIo`, `kernel/block_io.rs`). A
//! driver-role task holding the disk's slot reads sectors into its own
//! memory, but a read into memsrv's heap or the kernel's state, or a
//! write from memsrv's heap, is refused `EFAULT` and the heap holds; one
//! that touches the slot's registers it claimed is reported and stopped.
//! `/dev/vda` is mounted and served after (the `virtio-blk` check).

use super::hardware::disk_byte;
use super::isolation::KILLED_BY_LOAD_FAULT;
use super::isolation_devices::stray_driver;
use crate::devices::virtio_blk::{self, block_io, SECTOR};
use crate::devices::VirtioBlk;
use crate::kernel::block_io::BlockOp;
use crate::memory;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use protocol::Errno;

type Check = Result<(), String>;

/// What memsrv's heap holds where the driver aims.
const PATTERN: u8 = 0x5a;

/// The start of the kernel's state, below the image (`link.ld`): the
/// disk's queue is there.
const KERNEL_STATE: u64 = 0x8000_0000;

/// A driver-role task that claims the disk and asks for requests with
/// buffers in `victim` (memsrv's heap) and the kernel's state: a bit per
/// request that went otherwise than it should, 0 if none.
fn disk_reader(victim: u64) -> i64 {
    if VirtioBlk::probe().is_err() {
        return 1;
    }
    let mut code = 0;
    // Its own stack: in its region, read as the disk holds it.
    let mut own = [0u8; SECTOR];
    let read = block_io(BlockOp::Read, 1, own.as_mut_ptr() as u64, SECTOR as u64);
    let matches = (0..SECTOR).all(|i| own[i] == disk_byte((SECTOR + i) as u64));
    if read.is_err() || !matches {
        code |= 2;
    }
    let len = SECTOR as u64;
    for (bit, op, buf) in [
        (4, BlockOp::Read, victim),
        (8, BlockOp::Read, KERNEL_STATE),
        (16, BlockOp::Write, victim),
    ] {
        if block_io(op, 0, buf, len) != Err(Errno::EFAULT) {
            code |= bit;
        }
    }
    code
}

/// A driver-role task that claims the disk and reads the magic register
/// of its slot at `base`: the kernel holds the registers, so it is
/// stopped. 1 if its claim failed.
fn slot_reader(base: u64) -> i64 {
    match VirtioBlk::probe() {
        Ok(_) => i64::from(virtio_blk::read_slot(base).is_some()) + 1,
        Err(_) => 1,
    }
}

/// A driver's disk requests into memory not its own are refused
/// `EFAULT` (memsrv's heap holds), and the disk's registers are out of
/// even its holder's reach.
pub fn a_drivers_disk_request_into_another_tasks_memory_is_refused(_memsrv: usize) -> Check {
    let victim = Box::new([PATTERN; SECTOR]);
    let at = victim.as_ptr() as u64;
    if !memory::shared_heap().contains(&at) {
        return Err(format!("the buffer at {at:#x} is not in memsrv's heap"));
    }
    match stray_driver("disk-reader", disk_reader, at)? {
        0 => {}
        code => return Err(format!("the disk reader's requests went wrong ({code:#b})")),
    }
    if core::hint::black_box(&*victim)
        .iter()
        .any(|b| *b != PATTERN)
    {
        return Err("memsrv's heap was written by the disk".into());
    }
    let regs = virtio_blk::disk_registers().ok_or("no virtio disk")?;
    match stray_driver("slot-reader", slot_reader, regs)? {
        KILLED_BY_LOAD_FAULT => Ok(()),
        code => Err(format!("the disk's holder read its registers ({code})")),
    }
}
