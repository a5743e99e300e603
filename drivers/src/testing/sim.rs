//! Simulated hardware for the drivers over real devices: a NOR chip that
//! enforces flash rules and a disk in RAM, each with shared counters a
//! test keeps after handing the device to a driver.

use crate::blockdev::BlockDevice;
use crate::flash::FlashChip;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use protocol::Errno;

/// What happened to a [`SimFlash`]; `exclusive` is set by the test's host
/// while the driver holds an exclusive section.
#[derive(Default, Debug)]
pub struct FlashStats {
    pub programs: AtomicU64,
    pub erases: AtomicU64,
    pub reads: AtomicU64,
    /// Program or erase calls made while `exclusive` was false.
    pub outside_exclusive: AtomicU64,
    pub exclusive: AtomicBool,
    /// The next program or erase fails `EIO` (as a chip's status error).
    pub fail_next: AtomicBool,
}

/// A NOR chip in RAM: programming a 0 → 1 fails `EIO` and changes
/// nothing; erasing sets a block to 0xFF.
pub struct SimFlash {
    data: Vec<u8>,
    erase_size: u64,
    addr: Option<u64>,
    pub stats: Arc<FlashStats>,
}

impl SimFlash {
    pub fn new(image: &[u8], erase_size: u64, addr: Option<u64>) -> Self {
        Self {
            data: image.to_vec(),
            erase_size,
            addr,
            stats: Arc::new(FlashStats::default()),
        }
    }

    fn range(&self, offset: u64, len: usize) -> Result<core::ops::Range<usize>, Errno> {
        let start = usize::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > self.data.len() {
            return Err(Errno::EINVAL);
        }
        Ok(start..end)
    }

    fn command(&self) -> Result<(), Errno> {
        if !self.stats.exclusive.load(SeqCst) {
            self.stats.outside_exclusive.fetch_add(1, SeqCst);
        }
        if self.stats.fail_next.swap(false, SeqCst) {
            return Err(Errno::EIO);
        }
        Ok(())
    }
}

impl FlashChip for SimFlash {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn erase_size(&self) -> u64 {
        self.erase_size
    }

    fn read_array_addr(&self) -> Option<u64> {
        self.addr
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let r = self.range(offset, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        self.stats.reads.fetch_add(1, SeqCst);
        Ok(())
    }

    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Errno> {
        let r = self.range(offset, bytes.len())?;
        self.command()?;
        self.stats.programs.fetch_add(1, SeqCst);
        if self.data[r.clone()]
            .iter()
            .zip(bytes)
            .any(|(old, new)| new & !old != 0)
        {
            return Err(Errno::EIO);
        }
        self.data[r].copy_from_slice(bytes);
        Ok(())
    }

    fn erase_block(&mut self, offset: u64) -> Result<(), Errno> {
        if self.erase_size == 0 || !offset.is_multiple_of(self.erase_size) {
            return Err(Errno::EINVAL);
        }
        let r = self.range(offset, self.erase_size as usize)?;
        self.command()?;
        self.stats.erases.fetch_add(1, SeqCst);
        self.data[r].fill(0xFF);
        Ok(())
    }
}

/// What happened to a [`SimDisk`].
#[derive(Default, Debug)]
pub struct DiskStats {
    /// Calls, and sectors moved.
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub sectors_read: AtomicU64,
    pub sectors_written: AtomicU64,
    /// Calls the driver should never make (outside the disk, partial sectors).
    pub bad_calls: AtomicU64,
    /// The next read or write fails `EIO`.
    pub fail_next: AtomicBool,
}

/// A disk in RAM.
pub struct SimDisk {
    data: Vec<u8>,
    sector: usize,
    pub stats: Arc<DiskStats>,
}

impl SimDisk {
    pub fn new(sector: usize, sectors: u64) -> Self {
        Self::with_contents(sector, vec![0; sector * sectors as usize])
    }

    pub fn with_contents(sector: usize, data: Vec<u8>) -> Self {
        Self {
            data,
            sector,
            stats: Arc::new(DiskStats::default()),
        }
    }

    fn range(&self, first: u64, len: usize) -> Result<core::ops::Range<usize>, Errno> {
        let start = usize::try_from(first)
            .ok()
            .and_then(|f| f.checked_mul(self.sector));
        match start {
            Some(start)
                if len.is_multiple_of(self.sector) && len > 0 && start + len <= self.data.len() =>
            {
                Ok(start..start + len)
            }
            _ => {
                self.stats.bad_calls.fetch_add(1, SeqCst);
                Err(Errno::EIO)
            }
        }
    }

    fn fail(&self) -> Result<(), Errno> {
        if self.stats.fail_next.swap(false, SeqCst) {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }
}

impl BlockDevice for SimDisk {
    fn sector_size(&self) -> usize {
        self.sector
    }

    fn sector_count(&self) -> u64 {
        (self.data.len() / self.sector.max(1)) as u64
    }

    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let r = self.range(first, buf.len())?;
        self.fail()?;
        buf.copy_from_slice(&self.data[r]);
        self.stats.reads.fetch_add(1, SeqCst);
        self.stats
            .sectors_read
            .fetch_add((buf.len() / self.sector) as u64, SeqCst);
        Ok(())
    }

    fn write_sectors(&mut self, first: u64, data: &[u8]) -> Result<(), Errno> {
        let r = self.range(first, data.len())?;
        self.fail()?;
        self.data[r].copy_from_slice(data);
        self.stats.writes.fetch_add(1, SeqCst);
        self.stats
            .sectors_written
            .fetch_add((data.len() / self.sector) as u64, SeqCst);
        Ok(())
    }
}
