//! Byte streams: a pipe or a socket as a backing device. Data written is
//! read back in order; the driver cannot block, so an empty or full stream
//! answers `EAGAIN` (as `O_NONBLOCK`). Neither has anything to map: what
//! differs between them is only what the server learns at lookup
//! ([`StreamFlavor`]), which decides the errno of a mapping (spec §2.2).

use crate::flags::data_len;
use crate::mount::{check_device, device_open, MountPoint, DEVICE_OBJECT};
use crate::{answer, BackingDevice, DriverHost};
use alloc::collections::VecDeque;
use core::marker::PhantomData;
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

/// What a stream tells the server about itself.
pub trait StreamFlavor {
    /// Driver name.
    const NAME: &'static str;
    const KIND: ObjectKind;
    const MODE: u32;
    /// Methods the object has (with or without an mmap method).
    const OPS: u8;
}

/// A pipe or a socket device.
pub struct ByteStream<F: StreamFlavor> {
    mount: MountPoint,
    ino: u64,
    queue: ByteQueue,
    flavor: PhantomData<F>,
}

impl<F: StreamFlavor> ByteStream<F> {
    pub fn new(mount: MountPoint) -> Self {
        Self {
            mount,
            ino: 1,
            queue: ByteQueue::new(),
            flavor: PhantomData,
        }
    }

    fn info(&self) -> ObjectInfo {
        ObjectInfo {
            object: DEVICE_OBJECT,
            ino: self.ino,
            kind: F::KIND,
            mode: F::MODE,
            size: 0,
            caps: None,
            ops: DriverOps(F::OPS),
            io_memory: false,
        }
    }

    fn handle(&mut self, request: DriverRequest) -> Result<DriverReply, Errno> {
        match request {
            DriverRequest::Lookup { path, flags, .. } => {
                device_open(&path, flags)?;
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
            // Nothing to map and nothing to copy from (a FIFO has no mmap
            // method; a socket's is Linux's `sock_no_mmap`).
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
            DriverRequest::Unlink { .. } | DriverRequest::SetAttributes { .. } => Err(Errno::EPERM),
            DriverRequest::CloseVma { .. } | DriverRequest::Release { .. } => Ok(DriverReply::Done),
        }
    }
}

impl<F: StreamFlavor> BackingDevice for ByteStream<F> {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration(F::NAME, false)
    }

    fn serve(&mut self, request: DriverRequest, _host: &mut dyn DriverHost) -> DriverReply {
        answer(self.handle(request))
    }
}
