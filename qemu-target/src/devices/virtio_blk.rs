//! A virtio-blk disk as a driver task sees it: a
//! [`drivers::blockdev::BlockDevice`] whose requests go to the kernel
//! (`Sys::BlockIo`), which drives the disk's queue ([`super::virtio_queue`])
//! and checks each data buffer against the calling task before the
//! device moves it by DMA. The driver claims the slot (`Sys::Claim`) but
//! never reaches its registers.

use super::virtio_queue::{
    check_sectors, is_disk, slot_base, MAGIC, MAX_REQUEST, MMIO_SLOT, MMIO_SLOTS,
};
use super::Mmio;
use crate::kernel::block_io::BlockOp;
use crate::kernel::pmp::device;
use crate::kernel::Sys;
use crate::sys;
use drivers::blockdev::BlockDevice;
use protocol::Errno;

pub use super::virtio_queue::SECTOR;

/// `Sys::BlockIo(op, sector, buf, len)`.
pub fn block_io(op: BlockOp, sector: u64, buf: u64, len: u64) -> Result<u64, Errno> {
    sys::raw_call(Sys::BlockIo, &[op as u64, sector, buf, len])
}

/// The virtio disk in the slot the calling task claimed.
pub struct VirtioBlk {
    capacity: u64,
    read_only: bool,
}

impl VirtioBlk {
    /// Claim the first virtio-mmio slot with a block device, which the
    /// kernel then sets up (`EBUSY` while another task holds it).
    /// `ENODEV`: no disk, or one the kernel cannot drive.
    ///
    /// The kernel refuses the claim of a slot holding no disk (`ENODEV`),
    /// so the calling driver needs to read no register; a slot another
    /// driver holds is skipped.
    pub fn probe() -> Result<Self, Errno> {
        let mut busy = false;
        (0..MMIO_SLOTS as u64)
            .find(|&i| match super::claim(device::virtio(i)) {
                Ok(()) => true,
                Err(e) => {
                    busy |= e == Errno::EBUSY;
                    false
                }
            })
            .ok_or(if busy { Errno::EBUSY } else { Errno::ENODEV })?;
        Ok(Self {
            capacity: block_io(BlockOp::Capacity, 0, 0, 0)?,
            read_only: block_io(BlockOp::ReadOnly, 0, 0, 0)? != 0,
        })
    }

    /// Whether the device refuses writes (`VIRTIO_BLK_F_RO`).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// `len` bytes at `buf` from sector `first`, a request per
    /// [`MAX_REQUEST`] bytes.
    fn transfer(&self, op: BlockOp, first: u64, buf: u64, len: usize) -> Result<(), Errno> {
        // All of it checked first: no chunk moves if a later one could not.
        check_sectors(self.capacity, first, len)?;
        let mut sector = first;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_REQUEST);
            block_io(op, sector, buf + done as u64, n as u64)?;
            sector += (n / SECTOR) as u64;
            done += n;
        }
        Ok(())
    }
}

impl BlockDevice for VirtioBlk {
    fn sector_size(&self) -> usize {
        SECTOR
    }

    fn sector_count(&self) -> u64 {
        self.capacity
    }

    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), Errno> {
        // The device writes the buffer; we hold it exclusively meanwhile.
        self.transfer(BlockOp::Read, first, buf.as_mut_ptr() as u64, buf.len())
    }

    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        self.transfer(BlockOp::Write, first, data.as_ptr() as u64, data.len())
    }
}

/// The registers' address of the slot that holds the disk, read by a
/// task that reaches every slot (init): where the isolation suite aims
/// a stray driver.
pub fn disk_registers() -> Option<u64> {
    (0..MMIO_SLOTS)
        .map(slot_base)
        .find(|&base| is_disk(Mmio::fixed(base, MMIO_SLOT)))
        .map(|base| base as u64)
}

/// Read the magic register of the virtio-mmio slot at `base` (one of the
/// slots), as a stray driver would: no driver's PMP entries reach a slot
/// (the kernel drives the disk, even for the driver that claimed it), so
/// a driver takes an access fault and is ended (the isolation suite's
/// check). `None` if `base` is no slot.
pub fn read_slot(base: u64) -> Option<u32> {
    (0..MMIO_SLOTS)
        .map(slot_base)
        .find(|&b| b as u64 == base)
        .map(|b| Mmio::fixed(b, MMIO_SLOT).read32(MAGIC))
}
