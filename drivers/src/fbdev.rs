//! fbdev: a framebuffer character device. The screen (width × height × 4
//! bytes) is allocated at start; a shared mapping is the screen itself.
//!
//! It declares no capabilities (a character device's default
//! `DIRECT|READ|WRITE`), so only `MAP_SHARED` mappings are possible and
//! `PROT_EXEC` is refused (spec §2.4). `get_unmapped_area` is Linux's
//! `get_fb_unmapped_area` with the server decision of §11.2: the screen
//! base plus pgoff·P (Linux adds pgoff as bytes).

use crate::device::{self, WindowDevice};
use crate::flags::page_offset;
use crate::mount::{MountPoint, DEVICE_OBJECT};
use crate::window::Window;
use crate::{answer, BackingDevice, DriverHost};
use protocol::{
    DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

const BYTES_PER_PIXEL: u64 = 4;

/// A framebuffer device.
pub struct Framebuffer {
    mount: MountPoint,
    /// Screen bytes; `None` when width × height × 4 overflows.
    size: Option<u64>,
    ino: u64,
    window: Option<Window>,
}

impl Framebuffer {
    /// A `width` × `height` screen of 32-bit pixels.
    pub fn new(mount: MountPoint, width: u32, height: u32) -> Self {
        let size = u64::from(width)
            .checked_mul(u64::from(height))
            .and_then(|p| p.checked_mul(BYTES_PER_PIXEL));
        Self {
            mount,
            size,
            ino: 1,
            window: None,
        }
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    /// The screen's arena address, once started.
    pub fn screen_base(&self) -> Option<u64> {
        self.window.map(|w| w.base)
    }
}

impl WindowDevice for Framebuffer {
    fn contents(&self) -> Option<Window> {
        self.window
    }

    fn info(&self, window: Window) -> ObjectInfo {
        ObjectInfo {
            object: DEVICE_OBJECT,
            ino: self.ino,
            kind: ObjectKind::CharDevice,
            mode: 0o666,
            size: window.len,
            caps: None,
            ops: DriverOps(
                DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA,
            ),
            io_memory: false,
        }
    }

    /// `pgoff > size` or `len > size − pgoff·P` → `EINVAL`; else the
    /// screen base + pgoff·P.
    fn get_unmapped_area(&self, window: Window, len: u64, pgoff: u64) -> Result<u64, Errno> {
        let offset = page_offset(pgoff)?;
        if pgoff > window.len || offset > window.len || len > window.len.saturating_sub(offset) {
            return Err(Errno::EINVAL);
        }
        window.addr(offset)
    }

    /// Any mapping the server got this far with (only shared ones can).
    fn mmap(&self, _vm_flags: u32) -> Result<(), Errno> {
        Ok(())
    }

    /// `fb_write`: past the end `EFBIG`, at the end `ENOSPC`, else short.
    fn write(
        &mut self,
        host: &mut dyn DriverHost,
        window: Window,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, Errno> {
        if offset > window.len {
            return Err(Errno::EFBIG);
        }
        window.write_data(host, offset, data)
    }
}

impl BackingDevice for Framebuffer {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("fbdev", false)
    }

    /// Allocate the screen, contiguous and zeroed (black).
    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        if self.window.is_some() {
            return Err(Errno::EBUSY);
        }
        let size = self.size.ok_or(Errno::EINVAL)?;
        self.window = Some(Window::allocate(host, size)?);
        Ok(())
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        answer(device::serve(self, request, host))
    }
}
