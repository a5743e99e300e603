//! The narrow hardware interface of a NOR flash chip (after Tock's
//! `hil::flash`): what [`crate::mtd::Mtd`] needs to run over real flash
//! instead of arena memory.
//!
//! A chip has two faces. In read-array mode it reads as plain memory at
//! [`FlashChip::read_array_addr`], which is what a direct mapping points
//! at. While it programs or erases it shows status words there instead;
//! the chip leaves that mode again before [`FlashChip::program`] or
//! [`FlashChip::erase_block`] returns. The driver brackets those calls
//! with the server's exclusive sections, so no mapping exists meanwhile.

use protocol::Errno;

/// One NOR flash chip (or bank), addressed by byte offsets from its start.
pub trait FlashChip {
    /// Bytes on the chip (a multiple of [`FlashChip::erase_size`]).
    fn size(&self) -> u64;
    /// Bytes of one erase block (> 0).
    fn erase_size(&self) -> u64;
    /// The physical address where offset 0 reads as memory in read-array
    /// mode; `None` if the chip cannot be mapped (then no direct mappings).
    fn read_array_addr(&self) -> Option<u64>;
    /// Fill `buf` with the bytes at `offset` (inside the chip).
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Program `bytes` at `offset`. NOR rules: programming can only clear
    /// bits; asking for a 0 → 1 change, or any failure the chip reports,
    /// is an error (`EIO` for the chip's own errors). Any offset and
    /// length inside the chip.
    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Errno>;
    /// Set the erase block that starts at `offset` to 0xFF.
    fn erase_block(&mut self, offset: u64) -> Result<(), Errno>;
}
