//! devzero: `/dev/zero`. It declares `COPY` only, so every mapping is a
//! private copy full of zeros (spec §2.4, vector 43); reads give zeros
//! forever and writes are swallowed.

use crate::device::{device_info, SingleDevice};
use crate::flags::{cap, data_len, zeroed_bytes};
use crate::methods::{ReadData, ReadInto, WriteData};
use crate::mount::MountPoint;
use crate::DriverHost;
use protocol::{Bytes, Errno, ObjectInfo, ObjectKind};

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
}

impl SingleDevice for DevZero {
    const STRICT: bool = false;
    const NAME: &'static str = "zero";

    fn mount(&self) -> &MountPoint {
        &self.mount
    }

    fn info(&self) -> Result<ObjectInfo, Errno> {
        Ok(ObjectInfo {
            caps: Some(cap::COPY),
            ..device_info(self.ino, ObjectKind::CharDevice, 0o666)
        })
    }

    fn read_data(&mut self, _host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        zeroed_bytes(data_len(req.len))
    }

    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        host.fill_arena(req.dest, 0, req.len)?;
        Ok(req.len)
    }

    fn write_data(&mut self, _host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        Ok(req.data.len() as u64)
    }

    // No DIRECT: the server never asks for a mapping in place; the default
    // `ENOSYS` is Linux's mmap_zero on no-MMU.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::BackingDevice;
    use protocol::DriverOps;

    /// Vector 43: copies full of zeros, nothing direct.
    #[test]
    fn zeros_by_copy_only() {
        let (mut z, mut host) =
            started(DevZero::new(MountPoint::new("/dev/zero", (1, 5)).unwrap()));
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
        assert_copy_only(&mut z, &mut host);
    }
}
