//! devzero: `/dev/zero`. It declares `COPY` only, so every mapping is a
//! private copy full of zeros (spec §2.4, vector 43); reads give zeros
//! forever and writes are swallowed.

use crate::flags::{cap, data_len, zeroed_bytes};
use crate::mount::{check_device, device_open, MountPoint, DEVICE_OBJECT};
use crate::{answer, BackingDevice, DriverHost};
use protocol::{
    DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

pub struct DevZero {
    mount: MountPoint,
    ino: u64,
}

impl DevZero {
    pub fn new(mount: MountPoint) -> Self {
        Self { mount, ino: 1 }
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
            mode: 0o666,
            size: 0,
            caps: Some(cap::COPY),
            ops: DriverOps(DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE),
            io_memory: false,
        }
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
            DriverRequest::ReadData { object, len, .. } => {
                check_device(object)?;
                Ok(DriverReply::Data(zeroed_bytes(data_len(len))?))
            }
            DriverRequest::Read {
                object, len, dest, ..
            } => {
                check_device(object)?;
                host.fill_arena(dest, 0, len)?;
                Ok(DriverReply::Count(len))
            }
            DriverRequest::WriteData { object, data, .. } => {
                check_device(object)?;
                Ok(DriverReply::Count(data.len() as u64))
            }
            // No DIRECT: the server never asks; Linux's mmap_zero on
            // no-MMU answers ENOSYS.
            DriverRequest::GetUnmappedArea { object, .. } | DriverRequest::Mmap { object, .. } => {
                check_device(object)?;
                Err(Errno::ENOSYS)
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

impl BackingDevice for DevZero {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("zero", false)
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        answer(self.handle(request, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    /// Vector 43: copies full of zeros, nothing direct.
    #[test]
    fn zeros_by_copy_only() {
        let mut host = TestHost::new();
        let mut z = DevZero::new(MountPoint::new("/dev/zero", (1, 5)).unwrap());
        z.start(&mut host).unwrap();
        let info = opened(z.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.caps, Some(0x01));
        assert!(info.ops.has(DriverOps::MMAP) && info.ops.has(DriverOps::READ));
        let dest = host.alloc_backing(2).unwrap();
        host.store(dest, &[0xEE; 8192]);
        assert_eq!(count(z.serve(read_into(1, 0, 8192, dest), &mut host)), 8192);
        assert!(host.read(dest, 8192).iter().all(|b| *b == 0));
        assert_eq!(
            data(z.serve(read_data(1, 12345, 2000), &mut host)),
            [0; 1024]
        );
        assert_eq!(count(z.serve(write_data(1, 0, b"gone"), &mut host)), 4);
        assert_eq!(
            error(z.serve(mmap(1, 0, 4096, 0, 0x8), &mut host)),
            Errno::ENOSYS
        );
        assert_eq!(
            error(z.serve(get_unmapped_area(1, 4096, 0), &mut host)),
            Errno::ENOSYS
        );
    }
}
