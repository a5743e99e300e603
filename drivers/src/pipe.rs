//! pipe: a FIFO. It has no mmap method at all, so every mapping of it
//! fails `ENODEV` before capabilities are looked at (spec §2.2 step 6,
//! vector 10). Data written is read back in order; the driver cannot
//! block, so an empty or full pipe answers `EAGAIN` (as `O_NONBLOCK`).

use crate::flags::{data_len, open};
use crate::mount::{check_device, device_lookup, MountPoint, DEVICE_OBJECT};
use crate::{answer, BackingDevice, DriverHost};
use alloc::collections::VecDeque;
use protocol::{
    Bytes, DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

/// Bytes a pipe holds (Linux's default pipe buffer).
pub const PIPE_CAPACITY: usize = 65536;

/// The bytes in flight through a pipe or socket.
pub(crate) struct ByteQueue {
    bytes: VecDeque<u8>,
}

impl ByteQueue {
    pub fn new() -> Self {
        Self {
            bytes: VecDeque::new(),
        }
    }

    /// Take up to `len` bytes; `EAGAIN` when there are none.
    pub fn read(&mut self, len: u32) -> Result<Bytes, Errno> {
        if self.bytes.is_empty() && len > 0 {
            return Err(Errno::EAGAIN);
        }
        let n = data_len(len).min(self.bytes.len());
        let mut out = Bytes::new();
        for b in self.bytes.drain(..n) {
            out.push(b).map_err(|_| Errno::EIO)?;
        }
        Ok(out)
    }

    /// Queue as much of `data` as fits; `EAGAIN` when nothing does.
    pub fn write(&mut self, data: &[u8]) -> Result<u64, Errno> {
        let room = PIPE_CAPACITY.saturating_sub(self.bytes.len());
        if room == 0 && !data.is_empty() {
            return Err(Errno::EAGAIN);
        }
        let n = data.len().min(room);
        self.bytes.extend(data.iter().take(n));
        Ok(n as u64)
    }
}

/// A FIFO device.
pub struct Pipe {
    mount: MountPoint,
    ino: u64,
    queue: ByteQueue,
}

impl Pipe {
    pub fn new(mount: MountPoint) -> Self {
        Self {
            mount,
            ino: 1,
            queue: ByteQueue::new(),
        }
    }

    fn info(&self) -> ObjectInfo {
        ObjectInfo {
            object: DEVICE_OBJECT,
            ino: self.ino,
            kind: ObjectKind::Fifo,
            mode: 0o666,
            size: 0,
            caps: None,
            ops: DriverOps(DriverOps::READ | DriverOps::WRITE),
            io_memory: false,
        }
    }

    fn handle(&mut self, request: DriverRequest) -> Result<DriverReply, Errno> {
        match request {
            DriverRequest::Lookup { path, flags, .. } => {
                device_lookup(&path)?;
                if flags & (open::CREAT | open::EXCL) == open::CREAT | open::EXCL {
                    return Err(Errno::EEXIST);
                }
                Ok(DriverReply::Opened(self.info()))
            }
            DriverRequest::Stat { object } => {
                check_device(object)?;
                Ok(DriverReply::Opened(self.info()))
            }
            DriverRequest::ReadData { object, len, .. } => {
                check_device(object)?;
                Ok(DriverReply::Data(self.queue.read(len)?))
            }
            DriverRequest::WriteData { object, data, .. } => {
                check_device(object)?;
                Ok(DriverReply::Count(self.queue.write(&data)?))
            }
            // No mmap method: nothing to map, nothing to copy from.
            DriverRequest::Read { object, .. }
            | DriverRequest::GetUnmappedArea { object, .. }
            | DriverRequest::Mmap { object, .. } => {
                check_device(object)?;
                Err(Errno::ENODEV)
            }
            DriverRequest::Truncate { object, .. } => {
                check_device(object)?;
                Err(Errno::EINVAL)
            }
            // Device names and read-mostly files are not removed through the server.
            DriverRequest::Unlink { .. } => Err(Errno::EPERM),
            DriverRequest::CloseVma { .. } | DriverRequest::Release { .. } => Ok(DriverReply::Done),
        }
    }
}

impl BackingDevice for Pipe {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("pipe", false)
    }

    fn start(&mut self, _host: &mut dyn DriverHost) -> Result<(), Errno> {
        Ok(())
    }

    fn serve(&mut self, request: DriverRequest, _host: &mut dyn DriverHost) -> DriverReply {
        answer(self.handle(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn a_fifo_has_no_mmap_method() {
        let mut host = TestHost::new();
        let mut p = Pipe::new(MountPoint::new("/dev/fifo", (0, 5)).unwrap());
        p.start(&mut host).unwrap();
        let info = opened(p.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.kind, ObjectKind::Fifo);
        assert!(!info.ops.has(DriverOps::MMAP));
        assert_eq!(info.caps, None);
        assert_eq!(
            error(p.serve(mmap(1, 0, 4096, 0, 0x8), &mut host)),
            Errno::ENODEV
        );
        assert_eq!(
            error(p.serve(read_into(1, 0, 10, 0), &mut host)),
            Errno::ENODEV
        );
        assert_eq!(
            error(p.serve(read_data(1, 0, 10), &mut host)),
            Errno::EAGAIN
        );
        assert_eq!(count(p.serve(write_data(1, 0, b"first"), &mut host)), 5);
        assert_eq!(count(p.serve(write_data(1, 0, b"second"), &mut host)), 6);
        assert_eq!(data(p.serve(read_data(1, 0, 7), &mut host)), b"firstse");
        assert_eq!(data(p.serve(read_data(1, 0, 100), &mut host)), b"cond");
        assert_eq!(data(p.serve(read_data(1, 0, 0), &mut host)), b"");
    }

    #[test]
    fn a_full_pipe_takes_what_fits() {
        let mut q = ByteQueue::new();
        let chunk = [7u8; 1024];
        for _ in 0..PIPE_CAPACITY / 1024 {
            assert_eq!(q.write(&chunk), Ok(1024));
        }
        assert_eq!(q.write(b"x"), Err(Errno::EAGAIN));
        assert_eq!(q.read(10).unwrap().len(), 10);
        assert_eq!(q.write(&chunk), Ok(10));
        assert_eq!(q.write(b""), Ok(0));
    }
}
