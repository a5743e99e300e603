//! A host directory mounted through memsrvd (`hostdir`) changes size as the
//! host file does: `O_TRUNC` empties the host file, `ftruncate` shortens and
//! lengthens it (zeros added), and a file mapped privately before keeps its
//! copy.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{Daemon, Scratch};
use protocol::linux::{O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};

const PROT_READ: u32 = 1;
const MAP_PRIVATE: u32 = 2;

#[test]
fn o_trunc_and_ftruncate_reach_the_host_file() {
    let scratch = Scratch::new("hostdir-truncate");
    let data = format!("/data=hostdir:{}", scratch.path().display());
    let daemon = Daemon::start_with(&["--mount", &data]);
    let client = daemon.client();
    let host = scratch.path().join("f");
    std::fs::write(&host, b"0123456789").unwrap();

    // Read-only with O_TRUNC truncates nothing (memsrv truncates only for
    // a writer).
    let fd = client.open("/data/f", O_RDONLY | O_TRUNC, 0).unwrap();
    assert_eq!(client.fstat(fd).unwrap().size, 10);
    // A private copy taken now keeps the bytes through the truncation.
    let addr = client.mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();

    let fd2 = client.open("/data/f", O_WRONLY | O_TRUNC, 0).unwrap();
    assert_eq!(std::fs::read(&host).unwrap(), b"", "O_TRUNC empties it");
    assert_eq!(client.fstat(fd).unwrap().size, 0);
    // SAFETY: the private mapping above, 4096 readable bytes.
    let copy = unsafe { std::slice::from_raw_parts(addr as usize as *const u8, 10) };
    assert_eq!(copy, b"0123456789");
    client.munmap(addr, 4096).unwrap();

    assert_eq!(client.pwrite(fd2, b"abcdef", 0), Ok(6));
    client.ftruncate(fd2, 3).unwrap();
    assert_eq!(std::fs::read(&host).unwrap(), b"abc");
    client.ftruncate(fd2, 5).unwrap();
    assert_eq!(std::fs::read(&host).unwrap(), b"abc\0\0");
    // Without write access: EINVAL, as Linux.
    assert_eq!(client.ftruncate(fd, 0), Err(protocol::Errno::EINVAL));
    assert_eq!(std::fs::read(&host).unwrap().len(), 5);

    let fd3 = client.open("/data/f", O_RDWR | O_TRUNC, 0).unwrap();
    assert_eq!(std::fs::read(&host).unwrap(), b"");
    for fd in [fd, fd2, fd3] {
        client.close(fd).unwrap();
    }
    daemon.assert_all_free();
}
