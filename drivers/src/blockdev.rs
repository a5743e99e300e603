//! blockdev: a disk behind a narrow sector interface ([`BlockDevice`]:
//! a virtio-blk device, an SD card), mounted as a device node like
//! [`crate::ramdisk`].
//!
//! Its bytes are not memory, so it is copy only: it declares
//! `COPY|READ|WRITE` and has no `get_unmapped_area`; a private (or
//! read-only shared) mapping is a copy the server allocates and the
//! driver fills sector by sector (`Read { dest }`). `read`/`write` go
//! through sectors too; a range that starts or ends inside a sector reads
//! that sector, patches it and writes it back. Like Linux's block devices:
//! a read at or past the end returns nothing, a write there fails
//! `ENOSPC`, a write across it is short.

use crate::device::{device_info, SingleDevice};
use crate::flags::{available, cap, data_len, zeroed_bytes};
use crate::methods::{ReadData, ReadInto, WriteData};
use crate::mount::MountPoint;
use crate::DriverHost;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use protocol::{Bytes, Errno, ObjectInfo, ObjectKind};

/// A disk addressed in whole sectors.
pub trait BlockDevice {
    /// Bytes per sector (> 0; 512 for virtio-blk).
    fn sector_size(&self) -> usize;
    /// Sectors on the disk.
    fn sector_count(&self) -> u64;
    /// Read `buf.len() / sector_size` sectors from sector `first`
    /// (`buf.len()` is a multiple of the sector size).
    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Write `data.len() / sector_size` sectors at sector `first`.
    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), Errno>;
}

/// Largest sector this driver accepts (keeps its buffers small).
pub const MAX_SECTOR: usize = 64 * 1024;
/// Bytes a mapping copy moves per step (whole sectors, at least one).
const STAGE: usize = 4096;

/// A block device served copy only.
pub struct BlockDev {
    mount: MountPoint,
    ino: u64,
    disk: Box<dyn BlockDevice + Send>,
    size: u64,
    started: bool,
    /// One sector, for read-modify-write.
    sector: Vec<u8>,
    /// Whole sectors, for the copies into the arena.
    stage: Vec<u8>,
}

impl BlockDev {
    /// The device node at `mount` (e.g. `/dev/vda`) over `disk`.
    pub fn new(mount: MountPoint, disk: Box<dyn BlockDevice + Send>) -> Self {
        Self {
            mount,
            ino: 1,
            disk,
            size: 0,
            started: false,
            sector: Vec::new(),
            stage: Vec::new(),
        }
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    /// The disk size in bytes, once started.
    pub fn size(&self) -> Option<u64> {
        self.started.then_some(self.size)
    }
}

impl SingleDevice for BlockDev {
    const NAME: &'static str = "blockdev";

    fn mount(&self) -> &MountPoint {
        &self.mount
    }

    /// Check the geometry and allocate the sector buffers (nothing in the
    /// arena: the disk is its own storage).
    fn start(&mut self, _host: &mut dyn DriverHost) -> Result<(), Errno> {
        if self.started {
            return Err(Errno::EBUSY);
        }
        let sector = self.disk.sector_size();
        if sector == 0 || sector > MAX_SECTOR {
            return Err(Errno::EINVAL);
        }
        self.size = self
            .disk
            .sector_count()
            .checked_mul(sector as u64)
            .ok_or(Errno::EFBIG)?;
        if self.size == 0 {
            return Err(Errno::EINVAL);
        }
        let per_stage = STAGE.checked_div(sector).unwrap_or(0).max(1);
        self.sector = vec![0; sector];
        self.stage = vec![0; sector.saturating_mul(per_stage)];
        self.started = true;
        Ok(())
    }

    fn info(&self) -> Result<ObjectInfo, Errno> {
        if !self.started {
            return Err(Errno::EIO);
        }
        Ok(ObjectInfo {
            size: self.size,
            caps: Some(cap::COPY | cap::READ | cap::WRITE),
            ..device_info(self.ino, ObjectKind::BlockDevice, 0o660)
        })
    }

    fn read_data(&mut self, _host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        self.info()?;
        let n = available(req.offset, data_len(req.len) as u64, self.size);
        let mut bytes = zeroed_bytes(usize::try_from(n).map_err(|_| Errno::EIO)?)?;
        read_bytes(self.disk.as_mut(), &mut self.sector, req.offset, &mut bytes)?;
        Ok(bytes)
    }

    /// Fill the arena copy at `dest` from `offset`; short at the end.
    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        self.info()?;
        let n = available(req.offset, req.len, self.size);
        let mut done = 0u64;
        while done < n {
            let step = usize::try_from(n.saturating_sub(done))
                .map_or(self.stage.len(), |r| r.min(self.stage.len()));
            let part = self.stage.get_mut(..step).ok_or(Errno::EIO)?;
            let at = req.offset.checked_add(done).ok_or(Errno::EINVAL)?;
            read_bytes(self.disk.as_mut(), &mut self.sector, at, part)?;
            host.write_arena(req.dest.checked_add(done).ok_or(Errno::EFAULT)?, part)?;
            done = done.saturating_add(step as u64);
        }
        Ok(n)
    }

    fn write_data(&mut self, _host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        self.info()?;
        if req.data.is_empty() {
            return Ok(0);
        }
        let n = available(req.offset, req.data.len() as u64, self.size);
        if n == 0 {
            return Err(Errno::ENOSPC);
        }
        let part = req
            .data
            .get(..usize::try_from(n).map_err(|_| Errno::EIO)?)
            .ok_or(Errno::EIO)?;
        write_bytes(self.disk.as_mut(), &mut self.sector, req.offset, part)?;
        Ok(n)
    }

    // Never direct: the default `ENOSYS` is the generic block-device answer.
}

/// The next run of an I/O that is `done` bytes past byte `offset` with
/// `left` bytes to go: whole sectors straight to or from the caller's
/// buffer when it starts on a sector boundary and spans at least one,
/// else the part of one sector that goes through the sector buffer.
enum Run {
    Whole {
        sector: u64,
        len: usize,
    },
    Part {
        sector: u64,
        within: usize,
        len: usize,
    },
}

fn next_run(offset: u64, done: usize, left: usize, size: usize) -> Result<Run, Errno> {
    let at = offset.checked_add(done as u64).ok_or(Errno::EINVAL)?;
    let size64 = size as u64;
    let sector = at.checked_div(size64).ok_or(Errno::EINVAL)?;
    let within =
        usize::try_from(at.checked_rem(size64).ok_or(Errno::EINVAL)?).map_err(|_| Errno::EINVAL)?;
    let whole = left.checked_div(size).unwrap_or(0).saturating_mul(size);
    Ok(if within == 0 && whole > 0 {
        Run::Whole { sector, len: whole }
    } else {
        let len = size.saturating_sub(within).min(left);
        Run::Part {
            sector,
            within,
            len,
        }
    })
}

/// Walk an I/O of `len` bytes at byte `offset` run by run ([`next_run`]
/// with sectors of `size` bytes), handing `step` each run and how many
/// bytes went before it.
fn each_run(
    offset: u64,
    len: usize,
    size: usize,
    mut step: impl FnMut(usize, Run) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut done = 0usize;
    while done < len {
        let run = next_run(offset, done, len.saturating_sub(done), size)?;
        let moved = match run {
            Run::Whole { len, .. } | Run::Part { len, .. } => len,
        };
        step(done, run)?;
        done = done.saturating_add(moved);
    }
    Ok(())
}

/// Read `buf.len()` bytes at byte `offset` (inside the disk): whole
/// sectors straight into `buf`, partial ones through `sector`.
fn read_bytes(
    disk: &mut dyn BlockDevice,
    sector: &mut [u8],
    offset: u64,
    buf: &mut [u8],
) -> Result<(), Errno> {
    each_run(offset, buf.len(), sector.len(), |done, run| {
        let rest = buf.get_mut(done..).ok_or(Errno::EIO)?;
        match run {
            Run::Whole { sector: index, len } => {
                disk.read_sectors(index, rest.get_mut(..len).ok_or(Errno::EIO)?)
            }
            Run::Part {
                sector: index,
                within,
                len,
            } => {
                disk.read_sectors(index, sector)?;
                let part = sector.get(within..within.saturating_add(len));
                rest.get_mut(..len)
                    .ok_or(Errno::EIO)?
                    .copy_from_slice(part.ok_or(Errno::EIO)?);
                Ok(())
            }
        }
    })
}

/// Write `data` at byte `offset` (inside the disk): whole sectors
/// straight from `data`, partial ones read, patched and written back.
fn write_bytes(
    disk: &mut dyn BlockDevice,
    sector: &mut [u8],
    offset: u64,
    data: &[u8],
) -> Result<(), Errno> {
    each_run(offset, data.len(), sector.len(), |done, run| {
        let rest = data.get(done..).ok_or(Errno::EIO)?;
        match run {
            Run::Whole { sector: index, len } => {
                disk.write_sectors(index, rest.get(..len).ok_or(Errno::EIO)?)
            }
            Run::Part {
                sector: index,
                within,
                len,
            } => {
                disk.read_sectors(index, sector)?;
                sector
                    .get_mut(within..within.saturating_add(len))
                    .ok_or(Errno::EIO)?
                    .copy_from_slice(rest.get(..len).ok_or(Errno::EIO)?);
                disk.write_sectors(index, sector)
            }
        }
    })
}

#[cfg(test)]
mod tests;
