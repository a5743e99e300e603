//! Single-device mounts (`/dev/mem`, `/dev/zero`, a pipe, a disk, a
//! screen): one object, [`DEVICE_OBJECT`], reached by the empty path.
//! [`SingleDevice`] gives such a device the [`Methods`] every one of them
//! answers alike (the lookup, the handle check, stat, truncate) and the
//! lookup answer they share ([`device_info`]); a device whose contents
//! are one arena [`Window`] (ramdisk, framebuffer, register memory) also
//! gets its reads and writes from it. Its [`BackingDevice`] (registration
//! under its mount, start, every request through [`methods::serve`]) comes
//! from [`SingleDevice`] too.

use crate::flags::open;
use crate::methods::{self, Lookup, Methods, ReadData, ReadInto, WriteData};
use crate::mount::{check_device, device_open, MountPoint, DEVICE_OBJECT};
use crate::window::Window;
use crate::{BackingDevice, DriverHost};
use protocol::{
    Bytes, DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

/// A device that is its mount's only object; the handle is checked before
/// any of these is called (their requests' `object` is the device).
pub(crate) trait SingleDevice {
    /// Whether opening with `O_DIRECTORY` fails `ENOTDIR`, and `CloseVma`
    /// and `Release` check the handle (`EBADF`). `/dev/mem`, `/dev/zero`
    /// and the byte streams do neither.
    const STRICT: bool = true;
    /// The driver's name in its registration.
    const NAME: &'static str;
    /// Where the device is mounted.
    fn mount(&self) -> &MountPoint;
    /// [`BackingDevice::start`]. Default: nothing to allocate until asked.
    fn start(&mut self, _host: &mut dyn DriverHost) -> Result<(), Errno> {
        Ok(())
    }
    /// What lookup and stat tell the server (`EIO` before start).
    fn info(&self) -> Result<ObjectInfo, Errno>;
    /// The contents as one arena window (`EIO` before start; a device
    /// without one answers its reads and writes itself).
    fn window(&self) -> Result<Window, Errno> {
        Err(Errno::EIO)
    }
    /// Default: from the window.
    fn read_data(&mut self, host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        self.window()?.read_data(host, req.offset, req.len)
    }
    /// Default: from the window.
    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        self.window()?
            .read_into(host, req.offset, req.len, req.dest)
    }
    /// Default: into the window.
    fn write_data(&mut self, host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        self.window()?.write_data(host, req.offset, req.data)
    }
    /// Default: nothing lives in place (`ENOSYS`).
    fn get_unmapped_area(&self, _len: u64, _pgoff: u64) -> Result<u64, Errno> {
        Err(Errno::ENOSYS)
    }
    /// Default: no direct mapping is possible (`ENOSYS`).
    fn mmap(&self, _len: u64, _pgoff: u64, _vm_flags: u32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
}

/// The methods of a device mapped in place: `get_unmapped_area` besides
/// `mmap`, `read` and `write`.
pub(crate) const IN_PLACE_OPS: u8 =
    DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA;

/// What lookup tells of a single device, with what most devices share
/// (no size, no declared capabilities, `mmap`, `read` and `write`
/// methods, ordinary memory) for each to change what is its own.
pub(crate) fn device_info(ino: u64, kind: ObjectKind, mode: u32) -> ObjectInfo {
    ObjectInfo {
        object: DEVICE_OBJECT,
        ino,
        kind,
        mode,
        size: 0,
        caps: None,
        ops: DriverOps(DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE),
        io_memory: false,
    }
}

/// `CloseVma` and `Release`.
fn close<D: SingleDevice>(object: u64) -> Result<(), Errno> {
    if D::STRICT {
        check_device(object)?;
    }
    Ok(())
}

impl<D: SingleDevice> Methods for D {
    fn check(&mut self, object: u64) -> Result<(), Errno> {
        check_device(object)
    }

    fn lookup(&mut self, _host: &mut dyn DriverHost, req: Lookup<'_>) -> Result<ObjectInfo, Errno> {
        device_open(req.path, req.flags)?;
        if D::STRICT && req.flags & open::DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        self.info()
    }

    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        check_device(object)?;
        self.info()
    }

    fn read_data(&mut self, host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        check_device(req.object)?;
        SingleDevice::read_data(self, host, req)
    }

    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        check_device(req.object)?;
        SingleDevice::read_into(self, host, req)
    }

    fn write_data(&mut self, host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        check_device(req.object)?;
        SingleDevice::write_data(self, host, req)
    }

    fn get_unmapped_area(&mut self, object: u64, len: u64, pgoff: u64) -> Result<u64, Errno> {
        check_device(object)?;
        SingleDevice::get_unmapped_area(self, len, pgoff)
    }

    fn mmap(&mut self, object: u64, len: u64, pgoff: u64, vm_flags: u32) -> Result<(), Errno> {
        check_device(object)?;
        SingleDevice::mmap(self, len, pgoff, vm_flags)
    }

    fn close_vma(&mut self, object: u64) -> Result<(), Errno> {
        close::<D>(object)
    }

    fn release(&mut self, _host: &mut dyn DriverHost, object: u64) -> Result<(), Errno> {
        close::<D>(object)
    }
}

impl<D: SingleDevice> BackingDevice for D {
    fn registration(&self) -> DriverRegistration {
        self.mount().registration(D::NAME, false)
    }

    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        SingleDevice::start(self, host)
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        methods::serve(self, request, host)
    }
}
