//! ramdisk: a block device whose N bytes are one contiguous run of arena
//! memory, allocated at start.
//!
//! Linux's ramdisk declares nothing (block devices default to `COPY`), so
//! every mapping of it is a private copy read through the driver. Spec
//! §11.2 lets a ramdisk server declare `DIRECT` instead and hand out its
//! array ([`RamdiskMapping::Direct`], vector 122).

use crate::device::{self, WindowDevice};
use crate::flags::{cap, page_offset, vm};
use crate::mount::{MountPoint, DEVICE_OBJECT};
use crate::window::Window;
use crate::{answer, BackingDevice, DriverHost};
use protocol::{
    DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

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
    size: u64,
    mapping: RamdiskMapping,
    ino: u64,
    window: Option<Window>,
}

impl Ramdisk {
    /// A ramdisk of `size` bytes (rounded up to pages in the arena).
    pub fn new(mount: MountPoint, size: u64, mapping: RamdiskMapping) -> Self {
        Self {
            mount,
            size,
            mapping,
            ino: 1,
            window: None,
        }
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    /// The array's arena address, once started.
    pub fn base(&self) -> Option<u64> {
        self.window.map(|w| w.base)
    }
}

impl WindowDevice for Ramdisk {
    fn contents(&self) -> Option<Window> {
        self.window
    }

    fn info(&self, window: Window) -> ObjectInfo {
        let (caps, ops) = match self.mapping {
            RamdiskMapping::Copy => (None, DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE),
            RamdiskMapping::Direct => (
                Some(cap::DIRECT | cap::COPY | cap::READ | cap::WRITE),
                DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA,
            ),
        };
        ObjectInfo {
            object: DEVICE_OBJECT,
            ino: self.ino,
            kind: ObjectKind::BlockDevice,
            mode: 0o660,
            size: window.len,
            caps,
            ops: DriverOps(ops),
            io_memory: false,
        }
    }

    /// The array address of `[pgoff·P, pgoff·P + len)`; a range outside
    /// the device is a bad offset (`EINVAL`), as for MTD devices. Without
    /// `DIRECT` there is no such method (`ENOSYS`).
    fn get_unmapped_area(&self, window: Window, len: u64, pgoff: u64) -> Result<u64, Errno> {
        if self.mapping == RamdiskMapping::Copy {
            return Err(Errno::ENOSYS);
        }
        let offset = page_offset(pgoff)?;
        if len == 0 || offset >= window.len || len > window.len.saturating_sub(offset) {
            return Err(Errno::EINVAL);
        }
        window.addr(offset)
    }

    /// Shareable mappings of a direct ramdisk; everything else is the
    /// generic block-device answer, `ENOSYS`.
    fn mmap(&self, vm_flags: u32) -> Result<(), Errno> {
        if self.mapping == RamdiskMapping::Direct && vm::is_shareable(vm_flags) {
            Ok(())
        } else {
            Err(Errno::ENOSYS)
        }
    }
}

impl BackingDevice for Ramdisk {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("ramdisk", false)
    }

    /// Allocate the whole array, contiguous and zeroed.
    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        if self.window.is_some() {
            return Err(Errno::EBUSY);
        }
        self.window = Some(Window::allocate(host, self.size)?);
        Ok(())
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        answer(device::serve(self, request, host))
    }
}
