//! pipe: a FIFO. It has no mmap method at all, so every mapping of it
//! fails `ENODEV` before capabilities are looked at (spec §2.2 step 6,
//! vector 10).

use crate::stream::{ByteStream, StreamFlavor};
use protocol::{DriverOps, ObjectKind};

pub use crate::stream::PIPE_CAPACITY;

/// A FIFO's lookup answer: read and write, no mmap method.
pub enum Fifo {}

impl StreamFlavor for Fifo {
    const NAME: &'static str = "pipe";
    const KIND: ObjectKind = ObjectKind::Fifo;
    const MODE: u32 = 0o666;
    const OPS: u8 = DriverOps::READ | DriverOps::WRITE;
}

/// A FIFO device.
pub type Pipe = ByteStream<Fifo>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::MountPoint;
    use crate::stream::ByteQueue;
    use crate::testing::*;
    use crate::BackingDevice;
    use protocol::Errno;

    #[test]
    fn a_fifo_has_no_mmap_method() {
        let (mut p, mut host) = started(Pipe::new(MountPoint::new("/dev/fifo", (0, 5)).unwrap()));
        let info = opened(p.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.kind, ObjectKind::Fifo);
        assert!(!info.ops.has(DriverOps::MMAP));
        assert_eq!(info.caps, None);
        assert_errors(
            &mut p,
            &mut host,
            &[
                (mmap(1, 0, 4096, 0, 0x8), Errno::ENODEV),
                (read_into(1, 0, 10, 0), Errno::ENODEV),
                (read_data(1, 0, 10), Errno::EAGAIN),
            ],
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
