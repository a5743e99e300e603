//! Byte streams: a pipe or a socket as a backing device. Data written is
//! read back in order; the driver cannot block, so an empty or full stream
//! answers `EAGAIN` (as `O_NONBLOCK`). Neither has anything to map: what
//! differs between them is only what the server learns at lookup
//! ([`StreamFlavor`]), which decides the errno of a mapping (spec §2.2).

use crate::device::{device_info, SingleDevice};
use crate::flags::data_len;
use crate::methods::{ReadData, ReadInto, WriteData};
use crate::mount::MountPoint;
use crate::DriverHost;
use alloc::collections::VecDeque;
use core::marker::PhantomData;
use protocol::{Bytes, DriverOps, Errno, ObjectInfo, ObjectKind};

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
}

impl<F: StreamFlavor> SingleDevice for ByteStream<F> {
    const STRICT: bool = false;
    const NAME: &'static str = F::NAME;

    fn mount(&self) -> &MountPoint {
        &self.mount
    }

    fn info(&self) -> Result<ObjectInfo, Errno> {
        Ok(ObjectInfo {
            ops: DriverOps(F::OPS),
            ..device_info(self.ino, F::KIND, F::MODE)
        })
    }

    fn read_data(&mut self, _host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        self.queue.read(req.len)
    }

    /// Nothing to copy from, nor to map (a FIFO has no mmap method; a
    /// socket's is Linux's `sock_no_mmap`): `ENODEV`, here and below.
    fn read_into(&mut self, _host: &mut dyn DriverHost, _req: ReadInto) -> Result<u64, Errno> {
        Err(Errno::ENODEV)
    }

    fn write_data(&mut self, _host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        self.queue.write(req.data)
    }

    fn get_unmapped_area(&self, _len: u64, _pgoff: u64) -> Result<u64, Errno> {
        Err(Errno::ENODEV)
    }

    fn mmap(&self, _len: u64, _pgoff: u64, _vm_flags: u32) -> Result<(), Errno> {
        Err(Errno::ENODEV)
    }
}
