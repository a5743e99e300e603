//! fbdev: a framebuffer character device. The screen (width × height × 4
//! bytes) is allocated at start; a shared mapping is the screen itself.
//!
//! It declares no capabilities (a character device's default
//! `DIRECT|READ|WRITE`), so only `MAP_SHARED` mappings are possible and
//! `PROT_EXEC` is refused (spec §2.4). `get_unmapped_area` is Linux's
//! `get_fb_unmapped_area` with the server decision of §11.2: the screen
//! base plus pgoff·P (Linux adds pgoff as bytes).

use crate::device::{device_info, SingleDevice, IN_PLACE_OPS};
use crate::flags::page_offset;
use crate::methods::WriteData;
use crate::mount::MountPoint;
use crate::window::{Storage, Window};
use crate::DriverHost;
use protocol::{DriverOps, Errno, ObjectInfo, ObjectKind};

const BYTES_PER_PIXEL: u64 = 4;

/// A framebuffer device.
pub struct Framebuffer {
    mount: MountPoint,
    ino: u64,
    /// The screen; no size when width × height × 4 overflows.
    screen: Storage,
}

impl Framebuffer {
    /// A `width` × `height` screen of 32-bit pixels.
    pub fn new(mount: MountPoint, width: u32, height: u32) -> Self {
        let size = u64::from(width)
            .checked_mul(u64::from(height))
            .and_then(|p| p.checked_mul(BYTES_PER_PIXEL));
        Self {
            mount,
            ino: 1,
            screen: Storage::new(size),
        }
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    /// The screen's arena address, once started.
    pub fn screen_base(&self) -> Option<u64> {
        self.screen.base()
    }
}

impl SingleDevice for Framebuffer {
    const NAME: &'static str = "fbdev";

    fn mount(&self) -> &MountPoint {
        &self.mount
    }

    /// Allocate the screen, contiguous and zeroed (black).
    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        self.screen.start(host)
    }

    fn info(&self) -> Result<ObjectInfo, Errno> {
        let window = self.window()?;
        Ok(ObjectInfo {
            size: window.len,
            ops: DriverOps(IN_PLACE_OPS),
            ..device_info(self.ino, ObjectKind::CharDevice, 0o666)
        })
    }

    fn window(&self) -> Result<Window, Errno> {
        self.screen.window()
    }

    /// `pgoff > size` or `len > size − pgoff·P` → `EINVAL`; else the
    /// screen base + pgoff·P.
    fn get_unmapped_area(&self, len: u64, pgoff: u64) -> Result<u64, Errno> {
        let window = self.window()?;
        let offset = page_offset(pgoff)?;
        if pgoff > window.len || offset > window.len || len > window.len.saturating_sub(offset) {
            return Err(Errno::EINVAL);
        }
        window.addr(offset)
    }

    /// Any mapping the server got this far with (only shared ones can).
    fn mmap(&self, _len: u64, _pgoff: u64, _vm_flags: u32) -> Result<(), Errno> {
        self.window()?;
        Ok(())
    }

    /// `fb_write`: past the end `EFBIG`, at the end `ENOSPC`, else short.
    fn write_data(&mut self, host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        let window = self.window()?;
        if req.offset > window.len {
            return Err(Errno::EFBIG);
        }
        window.write_data(host, req.offset, req.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::BackingDevice;
    use protocol::DriverReply;

    /// Spec §14.0's `/dev/fb0`: 1 MiB of screen.
    fn fb() -> (Framebuffer, TestHost) {
        started(Framebuffer::new(
            MountPoint::new("/dev/fb0", (29, 0)).unwrap(),
            512,
            512,
        ))
    }

    #[test]
    fn default_character_device_capabilities() {
        let (mut fb, mut host) = fb();
        let info = opened(fb.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.kind, ObjectKind::CharDevice);
        assert_eq!(info.caps, None);
        assert_eq!(info.size, 1 << 20);
        assert_eq!(
            info.ops.0,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA
        );
        assert!(!info.io_memory);
        assert_eq!(host.allocated_pages(), 256);
    }

    /// Vector 17, and the server's pgoff·P (not Linux's pgoff bytes).
    #[test]
    fn get_unmapped_area_is_the_screen() {
        let (mut fb, mut host) = fb();
        let base = fb.screen_base().unwrap();
        assert_eq!(
            address(fb.serve(get_unmapped_area(1, 8192, 0), &mut host)),
            base
        );
        assert_eq!(
            address(fb.serve(get_unmapped_area(1, 4096, 3), &mut host)),
            base + 3 * 4096
        );
        assert_eq!(
            address(fb.serve(get_unmapped_area(1, 1 << 20, 0), &mut host)),
            base
        );
        assert_bad_ranges(
            &mut fb,
            &mut host,
            1,
            &[
                ((1 << 20) + 1, 0),
                (4096, 256),
                (8192, 255),
                (1, (1 << 20) + 1),
                (1, u64::MAX),
            ],
        );
        assert_eq!(
            fb.serve(mmap(1, base, 8192, 0, 0x8 | 0x80), &mut host),
            DriverReply::Done
        );
    }

    #[test]
    fn writes_follow_fb_write() {
        let (mut fb, mut host) = fb();
        let base = fb.screen_base().unwrap();
        let end = 1u64 << 20;
        assert_eq!(count(fb.serve(write_data(1, 0, b"pixel"), &mut host)), 5);
        assert_eq!(host.read(base, 5), b"pixel");
        assert_eq!(count(fb.serve(write_data(1, end - 1, b"xy"), &mut host)), 1);
        assert_errors(
            &mut fb,
            &mut host,
            &[
                (write_data(1, end, b"x"), Errno::ENOSPC),
                (write_data(1, end + 1, b"x"), Errno::EFBIG),
            ],
        );
        host.store(base + 100, b"seen");
        assert_eq!(data(fb.serve(read_data(1, 100, 4), &mut host)), b"seen");
        assert_eq!(data(fb.serve(read_data(1, end, 4), &mut host)), b"");
    }

    #[test]
    fn impossible_screens_do_not_start() {
        let mut host = TestHost::new();
        let m = MountPoint::new("/dev/fb1", (29, 1)).unwrap();
        assert_eq!(
            BackingDevice::start(&mut Framebuffer::new(m.clone(), 0, 10), &mut host),
            Err(Errno::EINVAL)
        );
        let overflow = Framebuffer::new(m.clone(), u32::MAX, u32::MAX);
        assert_eq!(overflow.screen.size(), None);
        let mut huge = Framebuffer::new(m, 65536, 65536);
        assert_eq!(
            BackingDevice::start(&mut huge, &mut host),
            Err(Errno::ENOMEM)
        );
        assert_eq!(error(huge.serve(lookup("", 0, 0), &mut host)), Errno::EIO);
    }
}
