//! devmem: `/dev/mem`, physical memory by address. With no MMU, physical
//! is virtual, so a mapping at offset X *is* address X (spec §2.4, vector
//! 41); here "physical memory" is the arena and offsets are arena
//! addresses. Its mappings are I/O memory (no futexes, no ptrace).

use crate::flags::{available, cap, data_len, page_offset, vm};
use crate::mount::{check_device, device_open, MountPoint, DEVICE_OBJECT};
use crate::{answer, BackingDevice, DriverHost};
use core::ops::Range;
use protocol::{
    DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

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

    fn info(&self) -> ObjectInfo {
        ObjectInfo {
            object: DEVICE_OBJECT,
            ino: self.ino,
            kind: ObjectKind::CharDevice,
            mode: 0o640,
            size: 0,
            caps: Some(cap::DIRECT | cap::READ | cap::WRITE | cap::EXEC),
            ops: DriverOps(
                DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA,
            ),
            io_memory: true,
        }
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

    fn handle(
        &mut self,
        request: DriverRequest,
        host: &mut dyn DriverHost,
    ) -> Result<DriverReply, Errno> {
        match request {
            DriverRequest::Lookup { path, flags, .. } => {
                device_open(&path, flags)?;
                Ok(DriverReply::Opened(self.info()))
            }
            DriverRequest::Stat { object } => {
                check_device(object)?;
                Ok(DriverReply::Opened(self.info()))
            }
            DriverRequest::ReadData {
                object,
                offset,
                len,
            } => {
                check_device(object)?;
                let n = self.span(offset, data_len(len) as u64)?;
                let mut bytes =
                    crate::flags::zeroed_bytes(usize::try_from(n).map_err(|_| Errno::EIO)?)?;
                if n > 0 {
                    host.read_arena(offset, &mut bytes)?;
                }
                Ok(DriverReply::Data(bytes))
            }
            DriverRequest::Read {
                object,
                offset,
                len,
                dest,
            } => {
                check_device(object)?;
                let n = self.span(offset, len)?;
                host.copy_arena(offset, dest, n)?;
                Ok(DriverReply::Count(n))
            }
            DriverRequest::WriteData {
                object,
                offset,
                data,
            } => {
                check_device(object)?;
                let n = self.span(offset, data.len() as u64)?;
                let part = data
                    .get(..usize::try_from(n).map_err(|_| Errno::EIO)?)
                    .ok_or(Errno::EIO)?;
                host.write_arena(offset, part)?;
                Ok(DriverReply::Count(n))
            }
            DriverRequest::GetUnmappedArea {
                object, len, pgoff, ..
            } => {
                check_device(object)?;
                Ok(DriverReply::Address(self.range(len, pgoff)?))
            }
            DriverRequest::Mmap {
                object,
                len,
                pgoff,
                vm_flags,
                ..
            } => {
                check_device(object)?;
                if !vm::is_shareable(vm_flags) {
                    return Err(Errno::ENOSYS);
                }
                self.range(len, pgoff)?;
                Ok(DriverReply::Done)
            }
            DriverRequest::Truncate { object, .. } => {
                check_device(object)?;
                Err(Errno::EINVAL)
            }
            // Device names and read-mostly files are not removed through the server.
            DriverRequest::Unlink { .. } | DriverRequest::SetAttributes { .. } => Err(Errno::EPERM),
            DriverRequest::CloseVma { .. } | DriverRequest::Release { .. } => Ok(DriverReply::Done),
        }
    }
}

impl BackingDevice for DevMem {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("mem", false)
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        answer(self.handle(request, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::vm::{MAYOVERLAY, MAYSHARE, SHARED};
    use crate::testing::*;

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
        for (len, pgoff) in [
            (8192, pgoff + 15),
            (4096, pgoff - 1),
            (4096, pgoff + 16),
            (0, pgoff),
            (1, u64::MAX),
        ] {
            assert_eq!(
                error(m.serve(get_unmapped_area(1, len, pgoff), &mut host)),
                Errno::EINVAL,
                "len {len} pgoff {pgoff:#x}"
            );
        }
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
        assert_eq!(
            error(m.serve(mmap(1, 0x2000_0000, 4096, pgoff, 0x1 | 0x10), &mut host)),
            Errno::ENOSYS
        );
        assert_eq!(
            error(m.serve(mmap(1, 0x1000_0000, 4096, 0x10000, SHARED), &mut host)),
            Errno::EINVAL
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
        assert_eq!(
            count(m.serve(write_data(1, end - 2, b"abcd"), &mut host)),
            2
        );
        assert_eq!(
            error(m.serve(write_data(1, end, b"x"), &mut host)),
            Errno::EFAULT
        );
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
