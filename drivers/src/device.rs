//! The request loop shared by single-object devices whose contents are one
//! arena [`Window`] (ramdisk, framebuffer, register memory, flash,
//! `/dev/mem`): lookup of the empty path, stat, read, write and the
//! mapping questions, with only what differs left to each device.

use crate::flags::open;
use crate::mount::{check_device, device_open, DEVICE_OBJECT};
use crate::window::Window;
use crate::DriverHost;
use protocol::{DriverReply, DriverRequest, Errno, ObjectInfo};

pub(crate) trait WindowDevice {
    /// The contents, once started.
    fn contents(&self) -> Option<Window>;
    /// What the server learns at lookup (for [`DEVICE_OBJECT`]).
    fn info(&self, window: Window) -> ObjectInfo;
    /// May the device be opened with `flags`?
    fn open(&self, _flags: u32) -> Result<(), Errno> {
        Ok(())
    }
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
}

pub(crate) fn serve<D: WindowDevice>(
    device: &mut D,
    request: DriverRequest,
    host: &mut dyn DriverHost,
) -> Result<DriverReply, Errno> {
    let window = |device: &D, object: u64| -> Result<Window, Errno> {
        check_device(object)?;
        device.contents().ok_or(Errno::EIO)
    };
    match request {
        DriverRequest::Lookup { path, flags, .. } => {
            device_open(&path, flags)?;
            if flags & open::DIRECTORY != 0 {
                return Err(Errno::ENOTDIR);
            }
            device.open(flags)?;
            let w = window(device, DEVICE_OBJECT)?;
            Ok(DriverReply::Opened(device.info(w)))
        }
        DriverRequest::Stat { object } => {
            let w = window(device, object)?;
            Ok(DriverReply::Opened(device.info(w)))
        }
        DriverRequest::ReadData {
            object,
            offset,
            len,
        } => Ok(DriverReply::Data(
            window(device, object)?.read_data(host, offset, len)?,
        )),
        DriverRequest::Read {
            object,
            offset,
            len,
            dest,
        } => Ok(DriverReply::Count(
            window(device, object)?.read_into(host, offset, len, dest)?,
        )),
        DriverRequest::WriteData {
            object,
            offset,
            data,
        } => {
            let w = window(device, object)?;
            Ok(DriverReply::Count(device.write(host, w, offset, &data)?))
        }
        DriverRequest::GetUnmappedArea {
            object, len, pgoff, ..
        } => {
            let w = window(device, object)?;
            Ok(DriverReply::Address(
                device.get_unmapped_area(w, len, pgoff)?,
            ))
        }
        DriverRequest::Mmap {
            object, vm_flags, ..
        } => {
            window(device, object)?;
            device.mmap(vm_flags)?;
            Ok(DriverReply::Done)
        }
        DriverRequest::Truncate { object, .. } => {
            check_device(object)?;
            Err(Errno::EINVAL)
        }
        // Device names and read-mostly files are not removed through the server.
        DriverRequest::Unlink { .. } | DriverRequest::SetAttributes { .. } => Err(Errno::EPERM),
        DriverRequest::CloseVma { object, .. } | DriverRequest::Release { object } => {
            check_device(object)?;
            Ok(DriverReply::Done)
        }
    }
}
