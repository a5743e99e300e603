//! mtd: a flash chip's character device (`/dev/mtdN`), of one of three
//! types, with Linux's `mtdchar` answers (spec §11.2 MTD row):
//!
//! | type | caps | write | erase |
//! | --- | --- | --- | --- |
//! | [`MtdType::Rom`] | `COPY\|DIRECT\|READ\|EXEC` | refused (opened read-only) | refused |
//! | [`MtdType::Ram`] | `COPY\|DIRECT\|READ\|WRITE\|EXEC` | overwrites | sets 0xFF |
//! | [`MtdType::Nor`] | `COPY` | programs: can only clear bits | sets a block to 0xFF |
//!
//! The chip's memory is an arena window filled from an image at start.
//! Programming and erasing NOR flash change the chip's mode: while they
//! run, the window shows status words ([`STATUS`]) instead of data, as a
//! real CFI chip does. The driver therefore asks the server for exclusive
//! use first (`BeginExclusive`, refused with `EBUSY` while a direct mapping
//! of the device exists, which then fails the write or erase with
//! `EBUSY`), writes the status pattern over the blocks being changed,
//! computes the new contents from the data it saved before, writes them
//! back and ends the exclusive section. The driver serves one request at a
//! time and finishes each operation before answering, so no read it
//! serves can see the status words; and the server lets no direct mapping
//! exist meanwhile, so no process can either.
//!
//! Programming is `write()` on the device. Erasing is [`Mtd::erase`], or
//! from a client a `write()` of Linux's `struct erase_info_user` (`u32
//! start, u32 length`, little-endian; or the 64-bit pair) to the control
//! object `erase` beside the device (`/dev/mtd1/erase`), standing for the
//! `MEMERASE` ioctl.
//!
//! Mappings: current Linux approves only `MAP_SHARED` (`EACCES` otherwise,
//! vector 40); `get_unmapped_area` checks the range and "points" the chip:
//! ROM and RAM windows always can, NOR cannot (`ENODEV`) unless built with
//! [`Mtd::with_direct_window`] — not Linux: a NOR chip mapped in place,
//! kept safe by the exclusive sections above.
//!
//! Real flash: [`Mtd::on_chip`] runs the device over a [`FlashChip`]
//! instead of the arena. Reads and the copies for private mappings come
//! from the chip, programming and erasing are the chip's commands inside
//! the same exclusive sections (the chip itself shows the status words),
//! and a direct mapping is the chip's read-array address.

mod chip;

use crate::flags::{available, cap, open, P};
use crate::flash::FlashChip;
use crate::methods::{self, Lookup, Methods, ReadData, ReadInto, WriteData};
use crate::mount::{check_device, MountPoint, DEVICE_OBJECT};
use crate::window::Window;
use crate::{BackingDevice, DriverHost};
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use protocol::{
    Bytes, DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

/// What every byte of a block reads while it is programmed or erased
/// (the CFI status register with "ready" set, for want of a real chip).
pub const STATUS: u8 = 0x80;
/// Erased flash.
pub const ERASED: u8 = 0xFF;
/// The handle of the erase control object.
pub const ERASE_OBJECT: u64 = 2;
/// Its lookup path.
pub const ERASE_PATH: &str = "erase";

/// The kind of memory behind the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtdType {
    Rom,
    Ram,
    Nor,
}

enum Contents {
    Image(Vec<u8>),
    Blank(u64),
    /// The bytes live on a real chip, never in the arena.
    Chip(Box<dyn FlashChip + Send>),
}

/// An MTD character device.
pub struct Mtd {
    mount: MountPoint,
    kind: MtdType,
    erase_size: u64,
    size: u64,
    direct_nor: bool,
    ino: u64,
    contents: Contents,
    window: Option<Window>,
}

impl Mtd {
    /// A device holding `image`, erased in blocks of `erase_size` bytes
    /// (which must divide the image size).
    pub fn new(mount: MountPoint, kind: MtdType, image: &[u8], erase_size: u64) -> Self {
        Self {
            mount,
            kind,
            erase_size,
            size: image.len() as u64,
            direct_nor: false,
            ino: 1,
            contents: Contents::Image(image.to_vec()),
            window: None,
        }
    }

    /// A blank (erased) device of `size` bytes.
    pub fn blank(mount: MountPoint, kind: MtdType, size: u64, erase_size: u64) -> Self {
        Self {
            mount,
            kind,
            erase_size,
            size,
            direct_nor: false,
            ino: 1,
            contents: Contents::Blank(size),
            window: None,
        }
    }

    /// A device over a real chip: size and erase blocks are the chip's,
    /// nothing is copied into the arena. `kind` is [`MtdType::Nor`] (or
    /// [`MtdType::Rom`] for a chip never written); [`MtdType::Ram`] fails
    /// to start (`EINVAL`): flash cannot be overwritten in place.
    pub fn on_chip(mount: MountPoint, kind: MtdType, chip: Box<dyn FlashChip + Send>) -> Self {
        Self {
            mount,
            kind,
            erase_size: chip.erase_size(),
            size: chip.size(),
            direct_nor: false,
            ino: 1,
            contents: Contents::Chip(chip),
            window: None,
        }
    }

    /// NOR flash that can be mapped in place (`COPY|DIRECT|READ|EXEC`),
    /// protected by the exclusive sections. No effect on other types.
    pub fn with_direct_window(mut self) -> Self {
        self.direct_nor = true;
        self
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    /// The chip's address (in the arena, or a real chip's read-array
    /// address), once started.
    pub fn base(&self) -> Option<u64> {
        self.window.map(|w| w.base)
    }

    fn window(&self) -> Result<Window, Errno> {
        self.window.ok_or(Errno::EIO)
    }

    /// The real chip, if the device runs over one.
    fn chip(&mut self) -> Option<&mut (dyn FlashChip + Send + 'static)> {
        match &mut self.contents {
            Contents::Chip(chip) => Some(chip.as_mut()),
            _ => None,
        }
    }

    fn caps(&self) -> u8 {
        let mappable = match &self.contents {
            Contents::Chip(chip) => chip.read_array_addr().is_some(),
            _ => true,
        };
        if !mappable {
            return cap::COPY;
        }
        match self.kind {
            MtdType::Rom => cap::COPY | cap::DIRECT | cap::READ | cap::EXEC,
            MtdType::Ram => cap::COPY | cap::DIRECT | cap::READ | cap::WRITE | cap::EXEC,
            MtdType::Nor if self.direct_nor => cap::COPY | cap::DIRECT | cap::READ | cap::EXEC,
            MtdType::Nor => cap::COPY,
        }
    }

    fn info(&self, object: u64) -> Result<ObjectInfo, Errno> {
        let window = self.window()?;
        match object {
            DEVICE_OBJECT => Ok(ObjectInfo {
                object,
                ino: self.ino,
                kind: ObjectKind::CharDevice,
                mode: 0o660,
                size: window.len,
                caps: Some(self.caps()),
                ops: DriverOps(
                    DriverOps::MMAP
                        | DriverOps::READ
                        | DriverOps::WRITE
                        | DriverOps::GET_UNMAPPED_AREA,
                ),
                io_memory: false,
            }),
            ERASE_OBJECT if self.kind != MtdType::Rom => Ok(ObjectInfo {
                object,
                ino: self.ino,
                kind: ObjectKind::CharDevice,
                mode: 0o600,
                size: 0,
                caps: None,
                ops: DriverOps(DriverOps::WRITE),
                io_memory: false,
            }),
            _ => Err(Errno::EBADF),
        }
    }

    /// `write()` on the device: `ENOSPC` at the end, short before it.
    fn write(&mut self, host: &mut dyn DriverHost, offset: u64, data: &[u8]) -> Result<u64, Errno> {
        let window = self.window()?;
        match self.kind {
            MtdType::Rom => Err(Errno::EROFS),
            MtdType::Ram => window.write_data(host, offset, data),
            MtdType::Nor => self.program(host, offset, data),
        }
    }

    /// Program NOR flash: every byte becomes `old & new` (programming can
    /// only clear bits; only an erase sets them again). Returns the bytes
    /// programmed. `EBUSY` while the device is mapped in place.
    pub fn program(
        &mut self,
        host: &mut dyn DriverHost,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, Errno> {
        let window = self.window()?;
        if data.is_empty() {
            return Ok(0);
        }
        let n = available(offset, data.len() as u64, window.len);
        if n == 0 {
            return Err(Errno::ENOSPC);
        }
        let end = offset.saturating_add(n);
        if let Some(chip) = self.chip() {
            let part = data
                .get(..usize::try_from(n).map_err(|_| Errno::EIO)?)
                .ok_or(Errno::EIO)?;
            chip::program(chip, host, offset, part)?;
            return Ok(n);
        }
        let first = offset.checked_div(self.erase_size).ok_or(Errno::EINVAL)?;
        let last = pages_of(end, self.erase_size);
        self.exclusive(host, window, first..last, |block_start, block| {
            for (i, byte) in block.iter_mut().enumerate() {
                let at = block_start.saturating_add(i as u64);
                if at >= offset && at < end {
                    let k = usize::try_from(at.saturating_sub(offset)).unwrap_or(usize::MAX);
                    if let Some(new) = data.get(k) {
                        *byte &= *new;
                    }
                }
            }
        })?;
        Ok(n)
    }

    /// Erase `[offset, offset + len)`: whole erase blocks inside the
    /// device (`EINVAL` otherwise) become 0xFF.
    pub fn erase(&mut self, host: &mut dyn DriverHost, offset: u64, len: u64) -> Result<(), Errno> {
        let window = self.window()?;
        let end = offset.checked_add(len).ok_or(Errno::EINVAL)?;
        let aligned = |n: u64| self.erase_size != 0 && n.is_multiple_of(self.erase_size);
        if len == 0 || !aligned(offset) || !aligned(len) || end > window.len {
            return Err(Errno::EINVAL);
        }
        let block = |n: u64| n.checked_div(self.erase_size).unwrap_or(0);
        let blocks = block(offset)..block(end);
        let (erase_size, kind) = (self.erase_size, self.kind);
        if let (Some(chip), MtdType::Nor) = (self.chip(), kind) {
            return chip::erase(chip, host, offset..end, erase_size);
        }
        match self.kind {
            MtdType::Rom => Err(Errno::EROFS),
            MtdType::Ram => host.fill_arena(window.addr(offset)?, ERASED, len),
            MtdType::Nor => self.exclusive(host, window, blocks, |_, block| block.fill(ERASED)),
        }
    }

    /// Change the erase blocks `blocks` in program/erase mode: exclusive
    /// use, status words in the window while `change` computes each
    /// block's new contents from its old ones, then data again.
    fn exclusive(
        &mut self,
        host: &mut dyn DriverHost,
        window: Window,
        blocks: core::ops::Range<u64>,
        mut change: impl FnMut(u64, &mut [u8]),
    ) -> Result<(), Errno> {
        host.begin_exclusive(DEVICE_OBJECT)?;
        let block_len = usize::try_from(self.erase_size).map_err(|_| Errno::EINVAL);
        let mut result = block_len.map(|_| ());
        let mut block = vec![0u8; block_len.unwrap_or(0)];
        for index in blocks {
            if result.is_err() {
                break;
            }
            let start = index.saturating_mul(self.erase_size);
            result = window
                .addr(start)
                .and_then(|addr| one_block(host, addr, start, &mut block, &mut change));
        }
        let ended = host.end_exclusive(DEVICE_OBJECT);
        result.and(ended)
    }

    fn erase_command(&mut self, host: &mut dyn DriverHost, data: &[u8]) -> Result<u64, Errno> {
        let (start, length) = match data.len() {
            8 => (le(data, 0, 4)?, le(data, 4, 4)?),
            16 => (le(data, 0, 8)?, le(data, 8, 8)?),
            _ => return Err(Errno::EINVAL),
        };
        self.erase(host, start, length)?;
        Ok(data.len() as u64)
    }
}

impl Methods for Mtd {
    /// The device itself; the erase node answers only `WriteData`.
    fn check(&mut self, object: u64) -> Result<(), Errno> {
        check_device(object)
    }

    fn lookup(&mut self, _host: &mut dyn DriverHost, req: Lookup<'_>) -> Result<ObjectInfo, Errno> {
        let object = match crate::mount::text_path(req.path)? {
            "" => DEVICE_OBJECT,
            ERASE_PATH if self.kind != MtdType::Rom => ERASE_OBJECT,
            _ => return Err(Errno::ENOENT),
        };
        if open::creates_exclusively(req.flags) {
            return Err(Errno::EEXIST);
        }
        // mtdchar_open: a device that cannot be written cannot be opened
        // for writing.
        if self.kind == MtdType::Rom && open::wants_write(req.flags) {
            return Err(Errno::EACCES);
        }
        self.info(object)
    }

    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        self.info(object)
    }

    fn read_data(&mut self, host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        if req.object == ERASE_OBJECT {
            return Err(Errno::EINVAL);
        }
        self.check(req.object)?;
        let window = self.window()?;
        match self.chip() {
            Some(chip) => chip::read_data(chip, window.len, req.offset, req.len),
            None => window.read_data(host, req.offset, req.len),
        }
    }

    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        self.check(req.object)?;
        let window = self.window()?;
        match self.chip() {
            Some(chip) => chip::read_into(chip, host, window.len, req.offset, req.len, req.dest),
            None => window.read_into(host, req.offset, req.len, req.dest),
        }
    }

    fn write_data(&mut self, host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        match req.object {
            DEVICE_OBJECT => self.write(host, req.offset, req.data),
            ERASE_OBJECT if self.kind != MtdType::Rom => self.erase_command(host, req.data),
            _ => Err(Errno::EBADF),
        }
    }

    /// `mtdchar_get_unmapped_area`, then the chip's "point".
    fn get_unmapped_area(&mut self, object: u64, len: u64, pgoff: u64) -> Result<u64, Errno> {
        self.check(object)?;
        let window = self.window()?;
        if len > window.len || pgoff >= window.len / P {
            return Err(Errno::EINVAL);
        }
        let offset = pgoff.checked_mul(P).ok_or(Errno::EINVAL)?;
        if offset > window.len.saturating_sub(len) {
            return Err(Errno::EINVAL);
        }
        if self.caps() & cap::DIRECT == 0 {
            // The chip cannot be pointed at (Current: ENODEV).
            return Err(Errno::ENODEV);
        }
        window.addr(offset)
    }

    fn mmap(&mut self, object: u64, _len: u64, _pgoff: u64, vm_flags: u32) -> Result<(), Errno> {
        self.check(object)?;
        // Current mtdchar_mmap on no-MMU.
        if vm_flags & crate::flags::vm::SHARED != 0 {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// A flash device's size is the chip's (`EINVAL`, whatever the handle).
    fn truncate(
        &mut self,
        _host: &mut dyn DriverHost,
        _object: u64,
        _size: u64,
    ) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
}

/// One block through program/erase mode: save, show status, compute,
/// show the new data. On a failure after the status went up, the saved
/// data is put back (best effort) so the window never stays in status.
fn one_block(
    host: &mut dyn DriverHost,
    addr: u64,
    start: u64,
    block: &mut [u8],
    change: &mut impl FnMut(u64, &mut [u8]),
) -> Result<(), Errno> {
    host.read_arena(addr, block)?;
    if let Err(e) = host.fill_arena(addr, STATUS, block.len() as u64) {
        let _ = host.write_arena(addr, block);
        return Err(e);
    }
    change(start, block);
    host.write_arena(addr, block)
}

/// ⌈n / unit⌉ (unit > 0).
fn pages_of(n: u64, unit: u64) -> u64 {
    n.checked_div(unit)
        .unwrap_or(0)
        .saturating_add(u64::from(n.checked_rem(unit).unwrap_or(0) != 0))
}

/// A little-endian integer of `len` bytes at `at`.
fn le(data: &[u8], at: usize, len: usize) -> Result<u64, Errno> {
    let bytes = data.get(at..at.saturating_add(len)).ok_or(Errno::EINVAL)?;
    Ok(bytes
        .iter()
        .rev()
        .fold(0u64, |v, b| (v << 8) | u64::from(*b)))
}

impl BackingDevice for Mtd {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("mtd", false)
    }

    /// Put the chip's contents into the arena.
    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        if self.window.is_some() {
            return Err(Errno::EBUSY);
        }
        if self.erase_size == 0 || !self.size.is_multiple_of(self.erase_size) {
            return Err(Errno::EINVAL);
        }
        if let Contents::Chip(chip) = &self.contents {
            // Nothing to copy: the chip is its own storage.
            if self.kind == MtdType::Ram || self.size == 0 {
                return Err(Errno::EINVAL);
            }
            let base = chip.read_array_addr().unwrap_or(0);
            self.window = Some(Window {
                base,
                len: self.size,
            });
            return Ok(());
        }
        let window = Window::allocate_filled(host, self.size, |host, base| match &self.contents {
            Contents::Image(image) => host.write_arena(base, image),
            Contents::Blank(len) if self.kind != MtdType::Ram => {
                host.fill_arena(base, ERASED, *len)
            }
            Contents::Blank(_) | Contents::Chip(_) => Ok(()),
        })?;
        self.window = Some(window);
        self.contents = Contents::Blank(0);
        Ok(())
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        methods::serve(self, request, host)
    }
}

#[cfg(test)]
mod tests;
