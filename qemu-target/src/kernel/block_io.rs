//! The virtio disk's requests ([`Sys::BlockIo`](super::Sys::BlockIo)):
//! a device's DMA is not checked by PMP, so the kernel keeps the disk's
//! queue and registers (set up when a driver claims the slot) and a
//! driver's request names only an operation, a sector and a buffer. The
//! buffer is checked as every system call's is
//! ([`pmp::Protection::may_touch`](super::pmp::Protection::may_touch):
//! the caller's region or the arena ranges memsrv named for it, a lent
//! page included), `EFAULT` otherwise, before the device is rung; the
//! queue's hardware side is the board's ([`Machine::disk_request`]).

use super::{Kernel, Machine, TaskId};
use protocol::Errno;

/// What a [`Sys::BlockIo`](super::Sys::BlockIo) asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOp {
    /// Fill `buf` from the disk (the device writes it) → 0.
    Read = 0,
    /// Write `buf` to the disk (the device reads it) → 0.
    Write = 1,
    /// → the disk's size in 512-byte sectors.
    Capacity = 2,
    /// → 1 if the device refuses writes, else 0.
    ReadOnly = 3,
}

impl BlockOp {
    fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            0 => Self::Read,
            1 => Self::Write,
            2 => Self::Capacity,
            3 => Self::ReadOnly,
            _ => return None,
        })
    }
}

impl Kernel {
    /// `BlockIo(op, sector, buf, len)` from task `id`.
    pub(super) fn block_io(
        &mut self,
        id: TaskId,
        [op, sector, buf, len]: [u64; 4],
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        let slot = self
            .protection
            .claimed_virtio_slot(id)
            .ok_or(Errno::ENODEV)?;
        let op = BlockOp::from_raw(op).ok_or(Errno::EINVAL)?;
        let moves = matches!(op, BlockOp::Read | BlockOp::Write);
        // A read lets the device write the buffer.
        if moves && !self.may_touch(id, buf, len, op == BlockOp::Read) {
            return Err(Errno::EFAULT);
        }
        machine.disk_request(slot, op, sector, buf, len)
    }
}
