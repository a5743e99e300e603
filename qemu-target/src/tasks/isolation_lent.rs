//! Task isolation of the page lent to a driver for a `Read` (run with the
//! hardware checks, while memsrv has a mount point free): memsrv lends a copy-only driver the page it fills
//! only while it awaits that request. A disk that answers after memsrv
//! gave up on it (a time-out: the client's `mmap` fails `EIO`, the copy
//! is freed) is stopped when it writes the page; memsrv serves on.

use super::driver::mount;
use super::isolation::process;
use crate::kernel::Sys;
use crate::sys;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use drivers::blockdev::{BlockDev, BlockDevice};
use drivers::MountPoint;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ};
use protocol::Errno;

type Check = Result<(), String>;

const SECTOR: usize = 512;
const P: u64 = 4096;
const O_RDONLY: u32 = 0;
/// How long the disk takes for a sector of its second page: longer than
/// memsrv's driver time-out (2 s).
const SLOW_MS: u64 = 3000;

/// Two pages of sectors in memory; reading the second page takes
/// [`SLOW_MS`].
struct SlowDisk {
    bytes: Vec<u8>,
}

impl BlockDevice for SlowDisk {
    fn sector_size(&self) -> usize {
        SECTOR
    }

    fn sector_count(&self) -> u64 {
        (self.bytes.len() / SECTOR) as u64
    }

    fn read_sectors(&mut self, first: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let at = first as usize * SECTOR;
        let src = self.bytes.get(at..at + buf.len()).ok_or(Errno::EIO)?;
        if at as u64 >= P {
            sys::sleep_until(sys::now_ms() + SLOW_MS);
        }
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_sectors(&mut self, _first: u64, _data: &[u8]) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
}

/// A private mapping of the slow page fails `EIO` when memsrv's wait
/// ends; the disk's driver, filling the page afterwards, is stopped
/// (`stray store`) and ends; memsrv serves a mapping after it.
pub fn a_page_lent_to_a_driver_is_taken_back_when_memsrv_gives_up(memsrv: usize) -> Check {
    let point = MountPoint::new("/dev/slow", (254, 1)).map_err(|e| format!("{e:?}"))?;
    let make = |point| {
        let disk = SlowDisk {
            bytes: vec![0x5a; 2 * P as usize],
        };
        Ok(BlockDev::new(point, Box::new(disk)))
    };
    let (slow, ()) = mount(memsrv, point, make, |_| ()).map_err(|e| format!("mount: {e:?}"))?;
    let p = process(memsrv)?;
    let fd = p
        .open("/dev/slow", O_RDONLY, 0)
        .map_err(|e| format!("open /dev/slow: {e:?}"))?;
    match p.mmap(0, P, PROT_READ, MAP_PRIVATE, fd, P) {
        Err(Errno::EIO) => {}
        other => return Err(format!("mmap of the slow page: {other:?}, not EIO")),
    }
    // Its wait is over: the driver writes the page it was lent no more.
    let deadline = sys::now_ms() + 2 * SLOW_MS;
    match sys::raw_call(Sys::Join, &[slow.task as u64, deadline]) {
        Ok(_) => {}
        Err(Errno::ETIMEDOUT) => {
            return Err("the driver filled the page after memsrv gave up, and serves on".into())
        }
        Err(e) => return Err(format!("join the driver: {e:?}")),
    }
    let _ = p.close(fd);
    let mapped = p
        .mmap(0, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .map_err(|e| format!("memsrv after: {e:?}"))?;
    p.munmap(mapped, P).map_err(|e| format!("munmap: {e:?}"))
}
