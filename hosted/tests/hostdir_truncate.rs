//! `O_TRUNC` on a host directory mounted through memsrvd (`hostdir`, a
//! copy-only filesystem without `TRUNCATE`) empties the host file, as the
//! driver contract's lookup says; only a writer's open does; a private copy
//! taken before keeps its bytes; `ftruncate` stays refused (`EINVAL`), as on
//! every copy-only filesystem.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{Daemon, Scratch};
use protocol::linux::{O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};
use protocol::Errno;

const PROT_READ: u32 = 1;
const MAP_PRIVATE: u32 = 2;

#[test]
fn o_trunc_empties_a_host_directory_file() {
    let scratch = Scratch::new("hostdir-truncate");
    let data = format!("/data=hostdir:{}", scratch.path().display());
    let daemon = Daemon::start_with(&["--mount", &data]);
    let client = daemon.client();
    let host = scratch.path().join("f");
    std::fs::write(&host, b"0123456789").unwrap();

    // A reader's O_TRUNC truncates nothing (memsrv truncates for a writer).
    let fd = client.open("/data/f", O_RDONLY | O_TRUNC, 0).unwrap();
    assert_eq!(client.fstat(fd).unwrap().size, 10);
    assert_eq!(std::fs::read(&host).unwrap(), b"0123456789");
    // A private copy taken now keeps the bytes through the truncation.
    let addr = client.mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();

    let fd2 = client.open("/data/f", O_WRONLY | O_TRUNC, 0).unwrap();
    assert_eq!(std::fs::read(&host).unwrap(), b"", "O_TRUNC empties it");
    assert_eq!(client.fstat(fd).unwrap().size, 0);
    // SAFETY: the private mapping above, 4096 readable bytes.
    let copy = unsafe { std::slice::from_raw_parts(addr as usize as *const u8, 10) };
    assert_eq!(copy, b"0123456789");
    client.munmap(addr, 4096).unwrap();

    // Sizes are otherwise fixed: written bytes grow it, ftruncate is refused.
    assert_eq!(client.pwrite(fd2, b"abcdef", 0), Ok(6));
    assert_eq!(client.ftruncate(fd2, 0), Err(Errno::EINVAL));
    assert_eq!(std::fs::read(&host).unwrap(), b"abcdef");

    let fd3 = client.open("/data/f", O_RDWR | O_TRUNC, 0).unwrap();
    assert_eq!(std::fs::read(&host).unwrap(), b"");
    assert_eq!(client.fstat(fd3).unwrap().size, 0);
    // An empty file opened with O_TRUNC again stays as it is.
    let fd4 = client.open("/data/f", O_RDWR | O_TRUNC, 0).unwrap();
    for fd in [fd, fd2, fd3, fd4] {
        client.close(fd).unwrap();
    }
    daemon.assert_all_free();
}
