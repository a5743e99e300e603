//! socket: a socket-like object (a connected loopback: what is written is
//! read back). Sockets have an mmap method but are neither regular files
//! nor devices, so without declared capabilities every mapping fails
//! `EINVAL` (spec §1.1, vector 11); the driver's own mmap is Linux's
//! `sock_no_mmap`, `ENODEV`.

use crate::stream::{ByteStream, StreamFlavor};
use protocol::{DriverOps, ObjectKind};

/// A socket's lookup answer: an mmap method, no capabilities.
pub enum SocketFlavor {}

impl StreamFlavor for SocketFlavor {
    const NAME: &'static str = "socket";
    const KIND: ObjectKind = ObjectKind::Socket;
    const MODE: u32 = 0o777;
    const OPS: u8 = DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE;
}

/// A loopback socket device.
pub type Socket = ByteStream<SocketFlavor>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::MountPoint;
    use crate::testing::*;
    use crate::BackingDevice;
    use protocol::Errno;

    #[test]
    fn a_socket_has_an_mmap_method_but_nothing_to_map() {
        let (mut s, mut host) = started(Socket::new(MountPoint::new("/dev/sock", (0, 6)).unwrap()));
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
        assert_errors(
            &mut s,
            &mut host,
            &[
                (read_data(1, 0, 10), Errno::EAGAIN),
                (read_data(2, 0, 10), Errno::EBADF),
            ],
        );
        assert_eq!(s.registration().name.as_str(), "socket");
    }
}
