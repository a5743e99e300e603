//! The C `mmap` of a host descriptor through memsrvd keeps the server
//! descriptor it opened for the next mapping of the same file, and never
//! maps the wrong bytes for it: a file changed in place or grown is copied
//! as it is now, a descriptor number closed behind the library's back and
//! reused for another file maps that file, one reused write-only is
//! refused; and what the daemon keeps open for it goes when the program
//! closes the descriptor.
//!
//! One test: the C surface has one connection per process, found through
//! `NOMMU_SOCKET` at its first call.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{Daemon, Scratch};
use nommu::capi::host::fileapi::nommu_close;
use nommu::capi::host::mmap::{nommu_mmap, nommu_munmap};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

const LEN: usize = 64 << 10;

/// `len` bytes of a pattern seeded by `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

/// Map `len` bytes of host descriptor `fd` privately, read-only, through
/// the shim: the bytes, or the errno.
fn map_bytes(fd: i32, len: usize) -> Result<Vec<u8>, i32> {
    let ptr = map_private(fd, len);
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    // SAFETY: a fresh readable mapping of `len` bytes, unmapped below.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec();
    assert_eq!(nommu_munmap(ptr, len), 0);
    Ok(bytes)
}

/// `mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)` through the shim.
fn map_private(fd: i32, len: usize) -> *mut std::ffi::c_void {
    nommu_mmap(
        std::ptr::null_mut(),
        len,
        libc::PROT_READ,
        libc::MAP_PRIVATE,
        fd,
        0,
    )
}

/// How many of the daemon's descriptors are open on `path`, once that is
/// `want` (a release reaches the driver thread a moment after the close
/// is answered) or after a few seconds.
fn daemon_opens(daemon: &Daemon, path: &Path, want: usize) -> usize {
    let real = std::fs::canonicalize(path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = std::fs::read_dir(format!("/proc/{}/fd", daemon.pid))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| *target == real)
            .count();
        if open == want || Instant::now() > deadline {
            return open;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn host_files_are_kept_for_the_next_mapping_but_never_trusted_stale() {
    let daemon = Daemon::start();
    std::env::set_var("NOMMU_SOCKET", &daemon.socket);
    let dir = Scratch::new("host-fd-cache");
    let first = dir.path().join("first");
    let other = dir.path().join("other");
    std::fs::write(&first, pattern(LEN, 1)).unwrap();
    std::fs::write(&other, pattern(LEN, 2)).unwrap();
    let file = File::open(&first).unwrap();
    let fd = file.as_raw_fd();

    assert_eq!(map_bytes(fd, LEN).unwrap(), pattern(LEN, 1));
    assert_eq!(daemon_opens(&daemon, &first, 1), 1, "kept after munmap");
    assert_eq!(map_bytes(fd, LEN).unwrap(), pattern(LEN, 1));
    assert_eq!(
        daemon_opens(&daemon, &first, 1),
        1,
        "mapped again, still one"
    );

    // Changed in place, same size: the copy is of the bytes as they are now.
    let writer = OpenOptions::new().write(true).open(&first).unwrap();
    writer.write_all_at(&pattern(LEN, 3), 0).unwrap();
    assert_eq!(map_bytes(fd, LEN).unwrap(), pattern(LEN, 3));

    // A copy already taken is a snapshot: a later change is not in it.
    let ptr = map_private(fd, LEN);
    assert_ne!(ptr, libc::MAP_FAILED);
    writer.write_all_at(&pattern(LEN, 4), 0).unwrap();
    // SAFETY: the mapping above, readable for LEN bytes until unmapped.
    let held = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), LEN) };
    assert_eq!(held, &pattern(LEN, 3)[..]);
    assert_eq!(nommu_munmap(ptr, LEN), 0);

    // Grown: the whole new length is there (memsrv learns the new size).
    writer.write_all_at(&pattern(LEN, 5), LEN as u64).unwrap();
    let grown = map_bytes(fd, 2 * LEN).unwrap();
    assert_eq!(&grown[..LEN], &pattern(LEN, 4)[..]);
    assert_eq!(&grown[LEN..], &pattern(LEN, 5)[..]);

    // The number closed behind the library's back and reused for another
    // file: that file is mapped.
    let number = file.into_raw_fd();
    // SAFETY: our own descriptor, closed once.
    assert_eq!(unsafe { libc::close(number) }, 0);
    let reused = File::open(&other).unwrap().into_raw_fd();
    assert_eq!(reused, number, "the lowest free number is reused");
    assert_eq!(map_bytes(reused, LEN).unwrap(), pattern(LEN, 2));

    // Reused again for the same file opened write-only: refused, as any
    // write-only descriptor is.
    let write_only = OpenOptions::new().write(true).open(&other).unwrap();
    // SAFETY: both descriptors are ours; dup2 replaces `reused` atomically.
    assert_eq!(
        unsafe { libc::dup2(write_only.as_raw_fd(), reused) },
        reused
    );
    assert_eq!(map_bytes(reused, LEN), Err(libc::EACCES));

    // Reused for the readable file again, then closed through the shim:
    // the daemon lets go of the file.
    let readable = File::open(&other).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::dup2(readable.as_raw_fd(), reused) }, reused);
    assert_eq!(map_bytes(reused, LEN).unwrap(), pattern(LEN, 2));
    assert_eq!(daemon_opens(&daemon, &other, 1), 1);
    assert_eq!(nommu_close(reused), 0);
    drop(readable);
    drop(write_only);
    assert_eq!(
        daemon_opens(&daemon, &other, 0),
        0,
        "closed: the daemon let go"
    );
    daemon.assert_all_free();
}
