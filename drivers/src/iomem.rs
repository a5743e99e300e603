//! iomem: a character device whose memory is device registers (a
//! memory-mapped I/O window), mapped in place and marked as I/O memory.
//!
//! The server refuses futexes and ptrace access on such mappings (spec §8,
//! §10.5): a register is not memory a process may sleep on or poke. The
//! window is arena memory standing for the registers, allocated at start.

use crate::device::{device_info, SingleDevice, IN_PLACE_OPS};
use crate::mount::MountPoint;
use crate::window::{Storage, Window};
use crate::{methods, DriverHost};
use protocol::{DriverOps, Errno, ObjectInfo, ObjectKind};

/// A register window of `size` bytes.
pub struct IoMem {
    mount: MountPoint,
    ino: u64,
    registers: Storage,
}

impl IoMem {
    pub fn new(mount: MountPoint, size: u64) -> Self {
        Self {
            mount,
            ino: 1,
            registers: Storage::new(Some(size)),
        }
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    /// The window's arena address, once started.
    pub fn base(&self) -> Option<u64> {
        self.registers.base()
    }
}

impl SingleDevice for IoMem {
    const NAME: &'static str = "iomem";

    fn mount(&self) -> &MountPoint {
        &self.mount
    }

    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        self.registers.start(host)
    }

    /// Default character-device capabilities (`DIRECT|READ|WRITE`), I/O memory.
    fn info(&self) -> Result<ObjectInfo, Errno> {
        let window = self.window()?;
        Ok(ObjectInfo {
            size: window.len,
            ops: DriverOps(IN_PLACE_OPS),
            io_memory: true,
            ..device_info(self.ino, ObjectKind::CharDevice, 0o660)
        })
    }

    fn window(&self) -> Result<Window, Errno> {
        self.registers.window()
    }

    /// The window + pgoff·P; a range outside it → `EINVAL`.
    fn get_unmapped_area(&self, len: u64, pgoff: u64) -> Result<u64, Errno> {
        self.window()?.range(len, pgoff)
    }

    /// Shareable mappings only (a register window is never copied).
    fn mmap(&self, _len: u64, _pgoff: u64, vm_flags: u32) -> Result<(), Errno> {
        self.window()?;
        methods::shareable_only(vm_flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::vm::{MAYOVERLAY, SHARED};
    use crate::testing::*;
    use crate::BackingDevice;
    use protocol::DriverReply;

    #[test]
    fn register_memory_is_direct_io_memory() {
        let (mut io, mut host) =
            started(IoMem::new(MountPoint::new("/dev/regs", (10, 1)).unwrap(), 8192).with_ino(77));
        let base = io.base().unwrap();
        let info = opened(io.serve(lookup("", 0o2, 0), &mut host));
        assert!(info.io_memory);
        assert_eq!(info.caps, None);
        assert_eq!(info.kind, ObjectKind::CharDevice);
        assert_eq!(info.ino, 77);
        assert_eq!(
            address(io.serve(get_unmapped_area(1, 4096, 1), &mut host)),
            base + 4096
        );
        assert_eq!(
            error(io.serve(get_unmapped_area(1, 8192, 1), &mut host)),
            Errno::EINVAL
        );
        assert_eq!(
            io.serve(mmap(1, base, 4096, 0, SHARED), &mut host),
            DriverReply::Done
        );
        assert_eq!(
            io.serve(mmap(1, base, 4096, 0, MAYOVERLAY), &mut host),
            DriverReply::Done
        );
        assert_eq!(
            error(io.serve(mmap(1, base, 4096, 0, 0x3), &mut host)),
            Errno::ENOSYS
        );
        assert_eq!(
            count(io.serve(write_data(1, 4, &[1, 2, 3, 4]), &mut host)),
            4
        );
        assert_eq!(host.read(base + 4, 4), [1, 2, 3, 4]);
        assert_eq!(io.registration().mount.as_str(), "/dev/regs");
    }
}
