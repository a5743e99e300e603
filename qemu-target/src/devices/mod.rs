//! QEMU `virt` devices behind the drivers crate's hardware interfaces:
//! the second CFI flash bank as a [`drivers::flash::FlashChip`]
//! ([`cfi_flash`]) and a virtio-blk disk as a
//! [`drivers::blockdev::BlockDevice`] ([`virtio_blk`], its queue driven
//! by the kernel in [`virtio_queue`]), plus a romfs image
//! in the first flash bank for [`drivers::romfs::Romfs::in_place`].
//!
//! Paging is off, so device registers and DMA buffers are at their
//! physical addresses. Every register access goes through [`Mmio`], the
//! only place with `unsafe`; it can be built only for the fixed device
//! windows named in this module tree.

pub mod cfi_flash;
pub mod virtio_blk;
pub mod virtio_queue;

pub use cfi_flash::CfiFlash;
pub use virtio_blk::VirtioBlk;

use crate::kernel::pmp::device;
use crate::kernel::Sys;
use crate::sys;
use protocol::Errno;

/// QEMU virt's flash: two CFI banks of 32 MiB (hw/riscv/virt.c
/// `VIRT_FLASH`, split in halves by `virt_flash_map`).
pub const FLASH_BANK0: usize = 0x2000_0000;
pub const FLASH_BANK1: usize = 0x2200_0000;
pub const FLASH_BANK_SIZE: usize = 32 << 20;
/// Where the romfs image starts in bank 0. Bank 0 is the boot flash: with
/// a pflash0 image and `-bios none` QEMU's reset code jumps to 0x2000_0000
/// in M-mode, so its first sector holds a two-instruction
/// stub that jumps on to the image at 0x8020_0000, and the romfs image
/// follows in the next sector.
pub const ROMFS_OFFSET: usize = 256 << 10;

/// A device's register window: `len` bytes at `base`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mmio {
    base: usize,
    len: usize,
}

impl Mmio {
    /// Only ever called with the fixed QEMU `virt` windows above and in
    /// the device modules (flash banks, virtio-mmio slots).
    pub(crate) const fn fixed(base: usize, len: usize) -> Self {
        Self { base, len }
    }

    pub(crate) fn base(self) -> usize {
        self.base
    }

    /// The address of the aligned word at `offset`, if inside.
    fn word(self, offset: usize) -> Option<*mut u32> {
        let end = offset.checked_add(4)?;
        (offset.is_multiple_of(4) && end <= self.len)
            .then(|| self.base.wrapping_add(offset) as *mut u32)
    }

    /// A 32-bit register read; outside the window reads all ones (a bus
    /// with nothing there).
    pub(crate) fn read32(self, offset: usize) -> u32 {
        match self.word(offset) {
            // SAFETY: an aligned word inside a fixed device window of QEMU virt, mapped (paging off, PMP open) for the whole run.
            Some(p) => unsafe { core::ptr::read_volatile(p) },
            None => u32::MAX,
        }
    }

    /// A 32-bit register write; ignored outside the window.
    pub(crate) fn write32(self, offset: usize, value: u32) {
        if let Some(p) = self.word(offset) {
            // SAFETY: as in `read32`; device registers have no Rust-visible aliases.
            unsafe { core::ptr::write_volatile(p, value) }
        }
    }
}

/// Claim `device` (`kernel::pmp::device`) for the calling task: the
/// kernel grants a driver that device's registers alone, and no other
/// task may claim it until this one gives it back or ends (`EBUSY`).
pub(crate) fn claim(device: u64) -> Result<(), Errno> {
    sys::raw_call(Sys::Claim, &[device, 0]).map(drop)
}

/// Give back a device [`claim`] took.
pub(crate) fn release(device: u64) -> Result<(), Errno> {
    sys::raw_call(Sys::Claim, &[device, 1]).map(drop)
}

/// A romfs image found in flash, for [`drivers::romfs::Romfs::in_place`].
#[derive(Clone, Copy, Debug)]
pub struct RomImage {
    /// The image and the rest of the bank after it (the medium).
    pub image: &'static [u8],
    /// Its physical address (a direct mapping of a file is this + the
    /// file's data offset).
    pub addr: u64,
}

/// The romfs image at the start of flash bank 0 (0x2000_0000), if the
/// bank holds one; `None` also on a second call (the calling task claims
/// the bank from the kernel, which allows one holder). Bank 0 is never
/// programmed by anything here (only bank 1 has a [`CfiFlash`]), so it
/// stays in read-array mode and the slice stays valid.
///
/// QEMU: attach the image with `-blockdev
/// driver=file,filename=rom.img,node-name=rom,read-only=on -machine
/// virt,pflash0=rom` (the file padded to exactly 32 MiB). Not `-drive
/// if=pflash,unit=0`: with a legacy pflash0 drive QEMU starts the machine
/// from flash instead of OpenSBI.
pub fn romfs_in_bank0() -> Option<RomImage> {
    let base = FLASH_BANK0 + ROMFS_OFFSET;
    let bank = Mmio::fixed(base, FLASH_BANK_SIZE - ROMFS_OFFSET);
    let mut header = [0u8; 12];
    for (i, chunk) in header.chunks_mut(4).enumerate() {
        chunk.copy_from_slice(&bank.read32(i * 4).to_le_bytes());
    }
    let size = usize::try_from(drivers::romfs::image_size(&header)?).ok()?;
    if size > FLASH_BANK_SIZE - ROMFS_OFFSET {
        return None;
    }
    claim(device::BOOT_FLASH).ok()?;
    // The medium is the rest of the bank, not just the image: like Linux's
    // romfs on an MTD partition, a mapping may run past the image's end
    // as long as it stays on the device.
    let medium = FLASH_BANK_SIZE - ROMFS_OFFSET;
    // SAFETY: the rest of flash bank 0 from the image on (inside the bank,
    // checked above), plain readable memory in read-array mode, never
    // written while the program runs.
    let image = unsafe { core::slice::from_raw_parts(base as *const u8, medium) };
    Some(RomImage {
        image,
        addr: base as u64,
    })
}
