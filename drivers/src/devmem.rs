//! devmem: `/dev/mem`, physical memory by address. With no MMU, physical
//! is virtual, so a mapping at offset X *is* address X (spec §2.4, vector
//! 41); here "physical memory" is the arena and offsets are arena
//! addresses. Its mappings are I/O memory (no futexes, no ptrace).

use crate::device::{device_info, SingleDevice, IN_PLACE_OPS};
use crate::flags::{available, cap, data_len, page_offset, zeroed_bytes};
use crate::methods::{self, ReadData, ReadInto, WriteData};
use crate::mount::MountPoint;
use crate::DriverHost;
use core::ops::Range;
use protocol::{Bytes, DriverOps, Errno, ObjectInfo, ObjectKind};

/// `/dev/mem` over the physical range `valid` (the arena).
pub struct DevMem {
    mount: MountPoint,
    valid: Range<u64>,
    ino: u64,
}

impl DevMem {
    /// Offsets in `valid` may be read, written and mapped.
    pub fn new(mount: MountPoint, valid: Range<u64>) -> Self {
        Self {
            mount,
            valid,
            ino: 1,
        }
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    /// `[pgoff·P, pgoff·P + len)` is valid physical memory: its address.
    fn range(&self, len: u64, pgoff: u64) -> Result<u64, Errno> {
        let start = page_offset(pgoff)?;
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if len == 0 || start < self.valid.start || end > self.valid.end {
            return Err(Errno::EINVAL);
        }
        Ok(start)
    }

    /// How many of `len` bytes at physical `offset` may be accessed;
    /// `EFAULT` when `offset` is not valid memory.
    fn span(&self, offset: u64, len: u64) -> Result<u64, Errno> {
        if len == 0 {
            return Ok(0);
        }
        if !self.valid.contains(&offset) {
            return Err(Errno::EFAULT);
        }
        Ok(available(offset, len, self.valid.end))
    }
}

impl SingleDevice for DevMem {
    const STRICT: bool = false;
    const NAME: &'static str = "mem";

    fn mount(&self) -> &MountPoint {
        &self.mount
    }

    fn info(&self) -> Result<ObjectInfo, Errno> {
        Ok(ObjectInfo {
            caps: Some(cap::DIRECT | cap::READ | cap::WRITE | cap::EXEC),
            ops: DriverOps(IN_PLACE_OPS),
            io_memory: true,
            ..device_info(self.ino, ObjectKind::CharDevice, 0o640)
        })
    }

    fn read_data(&mut self, host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        let n = self.span(req.offset, data_len(req.len) as u64)?;
        let mut bytes = zeroed_bytes(usize::try_from(n).map_err(|_| Errno::EIO)?)?;
        if n > 0 {
            host.read_arena(req.offset, &mut bytes)?;
        }
        Ok(bytes)
    }

    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        let n = self.span(req.offset, req.len)?;
        host.copy_arena(req.offset, req.dest, n)?;
        Ok(n)
    }

    fn write_data(&mut self, host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        let n = self.span(req.offset, req.data.len() as u64)?;
        let part = req
            .data
            .get(..usize::try_from(n).map_err(|_| Errno::EIO)?)
            .ok_or(Errno::EIO)?;
        host.write_arena(req.offset, part)?;
        Ok(n)
    }

    fn get_unmapped_area(&self, len: u64, pgoff: u64) -> Result<u64, Errno> {
        self.range(len, pgoff)
    }

    fn mmap(&self, len: u64, pgoff: u64, vm_flags: u32) -> Result<(), Errno> {
        methods::shareable_only(vm_flags)?;
        self.range(len, pgoff)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::vm::{MAYOVERLAY, MAYSHARE, SHARED};
    use crate::testing::*;
    use crate::BackingDevice;
    use protocol::DriverReply;

    /// Spec §14.0-like: physical memory from 0x2000_0000 (the arena).
    fn mem() -> (DevMem, TestHost) {
        let host = TestHost::with_arena(0x2000_0000, 16).permissive();
        let valid = host.base()..host.base() + host.size();
        (
            DevMem::new(MountPoint::new("/dev/mem", (1, 1)).unwrap(), valid),
            host,
        )
    }

    /// Vectors 41 and 42.
    #[test]
    fn the_offset_is_the_address() {
        let (mut m, mut host) = mem();
        let info = opened(m.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.caps, Some(0x08 | 0x10 | 0x20 | 0x40));
        assert!(info.io_memory);
        assert_eq!(info.mode, 0o640);
        let pgoff = 0x2000_0000 / 4096;
        assert_eq!(
            address(m.serve(get_unmapped_area(1, 4096, pgoff), &mut host)),
            0x2000_0000
        );
        assert_eq!(
            address(m.serve(get_unmapped_area(1, 4096, pgoff + 15), &mut host)),
            0x2000_F000
        );
        assert_bad_ranges(
            &mut m,
            &mut host,
            1,
            &[
                (8192, pgoff + 15),
                (4096, pgoff - 1),
                (4096, pgoff + 16),
                (0, pgoff),
                (1, u64::MAX),
            ],
        );
        assert_eq!(
            m.serve(
                mmap(1, 0x2000_0000, 4096, pgoff, SHARED | MAYSHARE),
                &mut host
            ),
            DriverReply::Done
        );
        assert_eq!(
            m.serve(mmap(1, 0x2000_0000, 4096, pgoff, MAYOVERLAY), &mut host),
            DriverReply::Done
        );
        assert_errors(
            &mut m,
            &mut host,
            &[
                (mmap(1, 0x2000_0000, 4096, pgoff, 0x1 | 0x10), Errno::ENOSYS),
                (mmap(1, 0x1000_0000, 4096, 0x10000, SHARED), Errno::EINVAL),
            ],
        );
    }

    #[test]
    fn reads_and_writes_go_to_physical_addresses() {
        let (mut m, mut host) = mem();
        assert_eq!(
            count(m.serve(write_data(1, 0x2000_0010, b"phys"), &mut host)),
            4
        );
        assert_eq!(host.read(0x2000_0010, 4), b"phys");
        assert_eq!(
            data(m.serve(read_data(1, 0x2000_0010, 4), &mut host)),
            b"phys"
        );
        let end = 0x2000_0000 + 16 * 4096;
        assert_writes_stop_at(&mut m, &mut host, end, Errno::EFAULT);
        assert_eq!(
            error(m.serve(read_data(1, 0x1000, 4), &mut host)),
            Errno::EFAULT
        );
        assert_eq!(data(m.serve(read_data(1, 0x1000, 0), &mut host)), b"");
        assert_eq!(
            count(m.serve(read_into(1, 0x2000_0010, 4, 0x2000_1000), &mut host)),
            4
        );
        assert_eq!(host.read(0x2000_1000, 4), b"phys");
    }
}
