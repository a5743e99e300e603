//! ramdisk: a block device whose N bytes are one contiguous run of arena
//! memory, allocated at start.
//!
//! Linux's ramdisk declares nothing (block devices default to `COPY`), so
//! every mapping of it is a private copy read through the driver. Spec
//! §11.2 lets a ramdisk server declare `DIRECT` instead and hand out its
//! array ([`RamdiskMapping::Direct`], vector 122).

use crate::device::{device_info, SingleDevice, IN_PLACE_OPS};
use crate::flags::{cap, vm};
use crate::mount::MountPoint;
use crate::window::{Storage, Window};
use crate::DriverHost;
use protocol::{DriverOps, Errno, ObjectInfo, ObjectKind};

/// How the ramdisk may be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamdiskMapping {
    /// No declared capabilities: a block device's default `COPY` (Linux).
    Copy,
    /// Declares `DIRECT|COPY|READ|WRITE`; `get_unmapped_area` returns the
    /// array address + pgoff·P (the server decision of spec §11.2).
    Direct,
}

/// A memory-backed block device.
pub struct Ramdisk {
    mount: MountPoint,
    mapping: RamdiskMapping,
    ino: u64,
    array: Storage,
}

impl Ramdisk {
    /// A ramdisk of `size` bytes (rounded up to pages in the arena).
    pub fn new(mount: MountPoint, size: u64, mapping: RamdiskMapping) -> Self {
        Self {
            mount,
            mapping,
            ino: 1,
            array: Storage::new(Some(size)),
        }
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    /// The array's arena address, once started.
    pub fn base(&self) -> Option<u64> {
        self.array.base()
    }
}

impl SingleDevice for Ramdisk {
    const NAME: &'static str = "ramdisk";

    fn mount(&self) -> &MountPoint {
        &self.mount
    }

    /// Allocate the whole array, contiguous and zeroed.
    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        self.array.start(host)
    }

    fn info(&self) -> Result<ObjectInfo, Errno> {
        let window = self.window()?;
        let (caps, ops) = match self.mapping {
            RamdiskMapping::Copy => (None, DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE),
            RamdiskMapping::Direct => (
                Some(cap::DIRECT | cap::COPY | cap::READ | cap::WRITE),
                IN_PLACE_OPS,
            ),
        };
        Ok(ObjectInfo {
            size: window.len,
            caps,
            ops: DriverOps(ops),
            ..device_info(self.ino, ObjectKind::BlockDevice, 0o660)
        })
    }

    fn window(&self) -> Result<Window, Errno> {
        self.array.window()
    }

    /// The array address of `[pgoff·P, pgoff·P + len)`; a range outside
    /// the device is a bad offset (`EINVAL`), as for MTD devices. Without
    /// `DIRECT` there is no such method (`ENOSYS`).
    fn get_unmapped_area(&self, len: u64, pgoff: u64) -> Result<u64, Errno> {
        let window = self.window()?;
        if self.mapping == RamdiskMapping::Copy {
            return Err(Errno::ENOSYS);
        }
        window.range(len, pgoff)
    }

    /// Shareable mappings of a direct ramdisk; everything else is the
    /// generic block-device answer, `ENOSYS`.
    fn mmap(&self, _len: u64, _pgoff: u64, vm_flags: u32) -> Result<(), Errno> {
        self.window()?;
        if self.mapping == RamdiskMapping::Direct && vm::is_shareable(vm_flags) {
            Ok(())
        } else {
            Err(Errno::ENOSYS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::vm::{MAYOVERLAY, SHARED};
    use crate::testing::*;
    use crate::BackingDevice;
    use protocol::{DriverReply, DriverRequest};

    fn disk(mapping: RamdiskMapping) -> (Ramdisk, TestHost) {
        started(Ramdisk::new(
            MountPoint::new("/dev/ram0", (1, 0)).unwrap(),
            3 * 4096,
            mapping,
        ))
    }

    /// Vector 122, first half: default capabilities, copies only.
    #[test]
    fn by_default_it_is_copy_only() {
        let (mut d, mut host) = disk(RamdiskMapping::Copy);
        let info = opened(d.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.kind, ObjectKind::BlockDevice);
        assert_eq!(info.caps, None);
        assert!(!info.ops.has(DriverOps::GET_UNMAPPED_AREA));
        assert!(info.ops.has(DriverOps::MMAP) && info.ops.has(DriverOps::READ));
        assert_eq!(info.size, 3 * 4096);
        assert_copy_only(&mut d, &mut host);
        assert_eq!(d.registration().name.as_str(), "ramdisk");
        assert_eq!(host.allocated_pages(), 3);
    }

    /// Vector 122, second half: declared DIRECT, the array address.
    #[test]
    fn declared_direct_hands_out_the_array() {
        let (mut d, mut host) = disk(RamdiskMapping::Direct);
        let base = d.base().unwrap();
        let info = opened(d.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.caps, Some(0x08 | 0x01 | 0x10 | 0x20));
        assert!(info.ops.has(DriverOps::GET_UNMAPPED_AREA));
        assert_eq!(
            address(d.serve(get_unmapped_area(1, 8192, 0), &mut host)),
            base
        );
        assert_eq!(
            address(d.serve(get_unmapped_area(1, 4096, 2), &mut host)),
            base + 8192
        );
        assert_bad_ranges(
            &mut d,
            &mut host,
            1,
            &[(8192, 2), (4096, 3), (0, 0), (4 * 4096, 0), (1, u64::MAX)],
        );
        assert_eq!(
            d.serve(mmap(1, base, 4096, 0, SHARED), &mut host),
            DriverReply::Done
        );
        assert_eq!(
            d.serve(mmap(1, base, 4096, 0, MAYOVERLAY), &mut host),
            DriverReply::Done
        );
        assert_eq!(
            error(d.serve(mmap(1, base, 4096, 0, 0x3), &mut host)),
            Errno::ENOSYS
        );
        // A store through the mapping is what reads see.
        host.store(base + 10, b"disk");
        assert_eq!(data(d.serve(read_data(1, 10, 4), &mut host)), b"disk");
    }

    #[test]
    fn reads_and_writes_clip_at_the_end() {
        let (mut d, mut host) = disk(RamdiskMapping::Copy);
        let end = 3 * 4096;
        assert_writes_stop_at(&mut d, &mut host, end, Errno::ENOSPC);
        assert_eq!(
            error(d.serve(write_data(1, u64::MAX, b"x"), &mut host)),
            Errno::ENOSPC
        );
        assert_eq!(
            data(d.serve(read_data(1, end - 4, 100), &mut host)),
            b"\0\0ab"
        );
        assert_eq!(data(d.serve(read_data(1, end, 100), &mut host)), b"");
        let dest = host.alloc_backing(1).unwrap();
        assert_eq!(
            count(d.serve(read_into(1, end - 10, 4096, dest), &mut host)),
            10
        );
        assert_eq!(&host.read(dest, 10)[8..], b"ab");
    }

    #[test]
    fn only_the_device_path_and_handle_exist() {
        let (mut d, mut host) = disk(RamdiskMapping::Copy);
        assert_errors(
            &mut d,
            &mut host,
            &[
                (lookup("x", 0, 0), Errno::ENOENT),
                (lookup("", 0o300, 0), Errno::EEXIST),
                (read_data(2, 0, 1), Errno::EBADF),
                (
                    DriverRequest::Truncate { object: 1, size: 0 },
                    Errno::EINVAL,
                ),
            ],
        );
        assert_eq!(BackingDevice::start(&mut d, &mut host), Err(Errno::EBUSY));
    }

    #[test]
    fn an_empty_or_unallocatable_disk_does_not_start() {
        let mut host = TestHost::new();
        let m = MountPoint::new("/dev/ram1", (1, 1)).unwrap();
        assert_eq!(
            BackingDevice::start(
                &mut Ramdisk::new(m.clone(), 0, RamdiskMapping::Copy),
                &mut host
            ),
            Err(Errno::EINVAL)
        );
        let mut big = Ramdisk::new(m, 1 << 40, RamdiskMapping::Copy);
        assert_eq!(
            BackingDevice::start(&mut big, &mut host),
            Err(Errno::ENOMEM)
        );
        // Not started: requests fail cleanly.
        assert_eq!(error(big.serve(lookup("", 0, 0), &mut host)), Errno::EIO);
    }
}
