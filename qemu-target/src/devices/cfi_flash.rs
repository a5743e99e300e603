//! QEMU virt's second flash bank as a NOR chip: `pflash_cfi01` (Intel
//! command set), 32 MiB at 0x2200_0000, 256 KiB erase blocks, a 4-byte
//! bank of two 16-bit devices side by side (hw/riscv/virt.c
//! `virt_flash_create1`: width 4, device-width 2).
//!
//! Each command is written as one 32-bit word with the command byte in
//! both devices' lanes; each status read checks both. Every operation
//! clears the status first and ends in read-array mode, so between calls
//! the bank reads as memory at its address.

use super::{Mmio, FLASH_BANK1, FLASH_BANK_SIZE};
use crate::kernel::pmp::device;
use drivers::flash::FlashChip;
use protocol::Errno;

/// Bytes per erase block (`VIRT_FLASH_SECTOR_SIZE`).
pub const SECTOR: u64 = 256 * 1024;
/// Bytes per bus word (the bank width).
const WORD: usize = 4;

const READ_ARRAY: u8 = 0xFF;
const READ_STATUS: u8 = 0x70;
const CLEAR_STATUS: u8 = 0x50;
const WORD_PROGRAM: u8 = 0x40;
const BLOCK_ERASE: u8 = 0x20;
const ERASE_CONFIRM: u8 = 0xD0;

/// Status bits: ready; erase, program, VPP and block-locked errors.
const READY: u32 = 0x80;
const ERRORS: u32 = 0x20 | 0x10 | 0x08 | 0x02;
/// Status polls before a busy chip counts as failed.
const POLLS: u32 = 1 << 24;

/// One value in both 16-bit devices' lanes.
const fn both(v: u32) -> u32 {
    v | (v << 16)
}

/// Flash bank 1 driven by its commands.
pub struct CfiFlash {
    bank: Mmio,
}

/// Send the chip its read-status command without claiming it, as a
/// stray driver would: were it let through, bank 1 would read the status
/// instead of its array until the next command. A driver that has not
/// claimed the chip takes an access fault and is ended (the isolation
/// suite's check).
pub fn command_unclaimed() {
    let bank = Mmio::fixed(FLASH_BANK1, FLASH_BANK_SIZE);
    bank.write32(0, both(u32::from(READ_STATUS)));
}

/// Put the chip back in read-array mode (a task that reaches the whole
/// flash, init, after [`command_unclaimed`] was let through).
pub fn read_array_mode() {
    let bank = Mmio::fixed(FLASH_BANK1, FLASH_BANK_SIZE);
    bank.write32(0, both(u32::from(READ_ARRAY)));
}

impl CfiFlash {
    /// The bank, once (`None` while a task holds it: two drivers must not
    /// interleave commands). QEMU gives it a backing file with `-blockdev
    /// driver=file,filename=nor.img,node-name=nor -machine virt,pflash1=nor`
    /// (exactly 32 MiB); without one it starts as zeroes in RAM. Not
    /// `-drive if=pflash,unit=1`: with a legacy pflash1 drive OpenSBI
    /// jumps into the flash instead of the kernel.
    /// The calling driver claims the chip from the kernel, which then
    /// lets it, and only it, write the bank, until it ends.
    pub fn take_bank1() -> Option<Self> {
        super::claim(device::NOR_FLASH).ok()?;
        Some(Self {
            bank: Mmio::fixed(FLASH_BANK1, FLASH_BANK_SIZE),
        })
    }

    fn command(&self, at: usize, cmd: u8) {
        self.bank.write32(at, both(u32::from(cmd)));
    }

    /// The word at byte `at` (aligned) in read-array mode.
    fn word(&self, at: usize) -> u32 {
        self.bank.read32(at)
    }

    /// Wait until both devices are ready, then judge their status; the
    /// chip is left in read-array mode either way.
    fn finish(&self, at: usize) -> Result<(), Errno> {
        self.command(at, READ_STATUS);
        let mut status = 0;
        let mut ready = false;
        for _ in 0..POLLS {
            status = self.bank.read32(at);
            if status & both(READY) == both(READY) {
                ready = true;
                break;
            }
            core::hint::spin_loop();
        }
        let failed = !ready || status & both(ERRORS) != 0;
        if failed {
            self.command(at, CLEAR_STATUS);
        }
        self.command(at, READ_ARRAY);
        if failed {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }

    /// `offset..offset + len` inside the bank, as byte indices.
    fn range(&self, offset: u64, len: usize) -> Result<(usize, usize), Errno> {
        let start = usize::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > FLASH_BANK_SIZE {
            return Err(Errno::EINVAL);
        }
        Ok((start, end))
    }
}

impl FlashChip for CfiFlash {
    fn size(&self) -> u64 {
        FLASH_BANK_SIZE as u64
    }

    fn erase_size(&self) -> u64 {
        SECTOR
    }

    fn read_array_addr(&self) -> Option<u64> {
        Some(self.bank.base() as u64)
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let (start, _) = self.range(offset, buf.len())?;
        for (i, byte) in buf.iter_mut().enumerate() {
            let at = start + i;
            let lane = at % WORD;
            *byte = self.word(at - lane).to_le_bytes()[lane];
        }
        Ok(())
    }

    /// Word by word: the bus word around the bytes is read, the new bytes
    /// merged in, and the word programmed (QEMU's model overwrites rather
    /// than clearing bits, so the untouched lanes must carry their current
    /// value; a real chip ignores 1 bits either way).
    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
        let (start, end) = self.range(offset, bytes.len())?;
        let mut at = start - start % WORD;
        while at < end {
            let old = self.word(at);
            let mut lanes = old.to_le_bytes();
            for (lane, slot) in lanes.iter_mut().enumerate() {
                let pos = at + lane;
                if pos >= start && pos < end {
                    *slot = bytes[pos - start];
                }
            }
            let new = u32::from_le_bytes(lanes);
            if new & !old != 0 {
                // NOR flash cannot set bits without an erase.
                return Err(Errno::EIO);
            }
            if new != old {
                self.command(at, CLEAR_STATUS);
                self.command(at, WORD_PROGRAM);
                self.bank.write32(at, new);
                self.finish(at)?;
            }
            at += WORD;
        }
        Ok(())
    }

    fn erase_block(&mut self, offset: u64) -> Result<(), Errno> {
        let (at, _) = self.range(offset, SECTOR as usize)?;
        if at % SECTOR as usize != 0 {
            return Err(Errno::EINVAL);
        }
        self.command(at, CLEAR_STATUS);
        self.command(at, BLOCK_ERASE);
        self.command(at, ERASE_CONFIRM);
        self.finish(at)
    }
}
