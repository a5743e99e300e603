//! Single-device mounts (`/dev/mem`, `/dev/zero`, a pipe, a disk, a
//! screen): one object, [`crate::mount::DEVICE_OBJECT`], reached by the empty path.
//! [`SingleDevice`] gives such a device the [`Methods`] every one of them
//! answers alike (the lookup, the handle check, stat, truncate), and
//! [`WindowDevice`] goes one step further for devices whose contents are
//! one arena [`Window`] (ramdisk, framebuffer, register memory): read,
//! write and the mapping questions go to the window, with only what
//! differs left to each device.

use crate::flags::open;
use crate::methods::Methods;
use crate::mount::{check_device, device_open};
use crate::window::Window;
use crate::DriverHost;
use protocol::{Bytes, Errno, ObjectInfo};

/// A device that is its mount's only object; the handle is checked before
/// any of these is called.
pub(crate) trait SingleDevice {
    /// What lookup and stat tell the server (`EIO` before start).
    fn info(&self) -> Result<ObjectInfo, Errno>;
    /// Refusals at open beyond the path's (default: none).
    fn open(&self, _flags: u32) -> Result<(), Errno> {
        Ok(())
    }
    fn read_data(
        &mut self,
        host: &mut dyn DriverHost,
        offset: u64,
        len: u32,
    ) -> Result<Bytes, Errno>;
    fn read_into(
        &mut self,
        host: &mut dyn DriverHost,
        offset: u64,
        len: u64,
        dest: u64,
    ) -> Result<u64, Errno>;
    fn write_data(
        &mut self,
        host: &mut dyn DriverHost,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, Errno>;
    /// Default: nothing lives in place (`ENOSYS`).
    fn get_unmapped_area(&self, _len: u64, _pgoff: u64) -> Result<u64, Errno> {
        Err(Errno::ENOSYS)
    }
    /// Default: no direct mapping is possible (`ENOSYS`).
    fn mmap(&self, _len: u64, _pgoff: u64, _vm_flags: u32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// `CloseVma` and `Release`: default, the handle must be the device's.
    fn close(&mut self, object: u64) -> Result<(), Errno> {
        check_device(object)
    }
}

/// A device file refuses `O_DIRECTORY` (`ENOTDIR`).
pub(crate) fn not_a_directory(flags: u32) -> Result<(), Errno> {
    if flags & open::DIRECTORY != 0 {
        Err(Errno::ENOTDIR)
    } else {
        Ok(())
    }
}

impl<D: SingleDevice> Methods for D {
    fn check(&self, object: u64) -> Result<(), Errno> {
        check_device(object)
    }

    fn lookup(
        &mut self,
        _host: &mut dyn DriverHost,
        path: &str,
        flags: u32,
        _mode: u32,
    ) -> Result<ObjectInfo, Errno> {
        device_open(path, flags)?;
        self.open(flags)?;
        self.info()
    }

    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        check_device(object)?;
        self.info()
    }

    fn read_data(
        &mut self,
        host: &mut dyn DriverHost,
        object: u64,
        offset: u64,
        len: u32,
    ) -> Result<Bytes, Errno> {
        check_device(object)?;
        SingleDevice::read_data(self, host, offset, len)
    }

    fn read_into(
        &mut self,
        host: &mut dyn DriverHost,
        object: u64,
        offset: u64,
        len: u64,
        dest: u64,
    ) -> Result<u64, Errno> {
        check_device(object)?;
        SingleDevice::read_into(self, host, offset, len, dest)
    }

    fn write_data(
        &mut self,
        host: &mut dyn DriverHost,
        object: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, Errno> {
        check_device(object)?;
        SingleDevice::write_data(self, host, offset, data)
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
        self.close(object)
    }

    fn release(&mut self, _host: &mut dyn DriverHost, object: u64) -> Result<(), Errno> {
        self.close(object)
    }
}

/// A single device whose contents are one arena [`Window`].
pub(crate) trait WindowDevice {
    /// The contents, once started.
    fn contents(&self) -> Option<Window>;
    /// What the server learns at lookup.
    fn info(&self, window: Window) -> ObjectInfo;
    /// Where `[pgoff·P, pgoff·P + len)` lives.
    fn get_unmapped_area(&self, window: Window, len: u64, pgoff: u64) -> Result<u64, Errno>;
    /// Approve a direct mapping.
    fn mmap(&self, vm_flags: u32) -> Result<(), Errno>;
    /// `write()`.
    fn write(
        &mut self,
        host: &mut dyn DriverHost,
        window: Window,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, Errno> {
        window.write_data(host, offset, data)
    }

    /// The contents, or `EIO` before start.
    fn window(&self) -> Result<Window, Errno> {
        self.contents().ok_or(Errno::EIO)
    }
}

impl<D: WindowDevice> SingleDevice for D {
    fn info(&self) -> Result<ObjectInfo, Errno> {
        Ok(WindowDevice::info(self, self.window()?))
    }

    fn open(&self, flags: u32) -> Result<(), Errno> {
        not_a_directory(flags)
    }

    fn read_data(
        &mut self,
        host: &mut dyn DriverHost,
        offset: u64,
        len: u32,
    ) -> Result<Bytes, Errno> {
        self.window()?.read_data(host, offset, len)
    }

    fn read_into(
        &mut self,
        host: &mut dyn DriverHost,
        offset: u64,
        len: u64,
        dest: u64,
    ) -> Result<u64, Errno> {
        self.window()?.read_into(host, offset, len, dest)
    }

    fn write_data(
        &mut self,
        host: &mut dyn DriverHost,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, Errno> {
        let window = self.window()?;
        self.write(host, window, offset, data)
    }

    fn get_unmapped_area(&self, len: u64, pgoff: u64) -> Result<u64, Errno> {
        WindowDevice::get_unmapped_area(self, self.window()?, len, pgoff)
    }

    fn mmap(&self, _len: u64, _pgoff: u64, vm_flags: u32) -> Result<(), Errno> {
        self.window()?;
        WindowDevice::mmap(self, vm_flags)
    }
}
