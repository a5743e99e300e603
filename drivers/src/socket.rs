//! socket: a socket-like object (a connected loopback: what is written is
//! read back). Sockets have an mmap method but are neither regular files
//! nor devices, so without declared capabilities every mapping fails
//! `EINVAL` (spec §1.1, vector 11); the driver's own mmap is Linux's
//! `sock_no_mmap`, `ENODEV`.

use crate::flags::open;
use crate::mount::{check_device, device_lookup, MountPoint, DEVICE_OBJECT};
use crate::pipe::ByteQueue;
use crate::{answer, BackingDevice, DriverHost};
use protocol::{
    DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

pub struct Socket {
    mount: MountPoint,
    ino: u64,
    queue: ByteQueue,
}

impl Socket {
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
            kind: ObjectKind::Socket,
            mode: 0o777,
            size: 0,
            caps: None,
            ops: DriverOps(DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE),
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

impl BackingDevice for Socket {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("socket", false)
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
    fn a_socket_has_an_mmap_method_but_nothing_to_map() {
        let mut host = TestHost::new();
        let mut s = Socket::new(MountPoint::new("/dev/sock", (0, 6)).unwrap());
        s.start(&mut host).unwrap();
        let info = opened(s.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.kind, ObjectKind::Socket);
        assert!(info.ops.has(DriverOps::MMAP));
        assert_eq!(info.caps, None);
        assert_eq!(
            error(s.serve(mmap(1, 0, 4096, 0, 0x8), &mut host)),
            Errno::ENODEV
        );
        assert_eq!(count(s.serve(write_data(1, 0, b"ping"), &mut host)), 4);
        assert_eq!(data(s.serve(read_data(1, 0, 10), &mut host)), b"ping");
        assert_eq!(
            error(s.serve(read_data(1, 0, 10), &mut host)),
            Errno::EAGAIN
        );
        assert_eq!(error(s.serve(read_data(2, 0, 10), &mut host)), Errno::EBADF);
        assert_eq!(s.registration().name.as_str(), "socket");
    }
}
