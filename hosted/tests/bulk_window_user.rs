//! The C `read`/`write`/`pread`/`pwrite` of a server file with a buffer
//! outside the arena (the host's heap, a host mapping) move through the
//! connection's bulk window: bytes round-trip exactly for requests larger
//! than the window; a pointer that cannot be read or written is `EFAULT`,
//! never a crash, and leaves the file position where it was; a buffer that
//! ends in unmapped memory gives a short count of what it took, and the
//! position moves by that much alone.
//!
//! One test: the C surface has one connection per process, found through
//! `NOMMU_SOCKET` at its first call.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::Daemon;
use nommu::capi::host::fileapi::{
    nommu_close, nommu_lseek, nommu_open, nommu_pread, nommu_pwrite, nommu_read, nommu_write,
};
use protocol::BULK_WINDOW;
use std::ffi::c_void;

const WINDOW: usize = BULK_WINDOW as usize;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add((i >> 12) as u8) ^ seed)
        .collect()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

fn position(fd: i32) -> i64 {
    nommu_lseek(fd, 0, libc::SEEK_CUR)
}

#[test]
fn buffers_outside_the_arena_move_through_the_window_and_fault_cleanly() {
    let daemon = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]);
    std::env::set_var("NOMMU_SOCKET", &daemon.socket);
    // SAFETY: a NUL-terminated path.
    let fd = unsafe {
        nommu_open(
            c"/dev/shm/window".as_ptr(),
            libc::O_RDWR | libc::O_CREAT,
            0o600,
        )
    };
    assert!(fd >= 0, "open: errno {}", errno());

    // Larger than the window, not a multiple of it, from the host heap.
    let len = 2 * WINDOW + 4097;
    let data = pattern(len, 1);
    // SAFETY: `data` is readable for `len` bytes.
    let wrote = unsafe { nommu_write(fd, data.as_ptr().cast(), len) };
    assert_eq!(wrote, len as isize);
    assert_eq!(nommu_lseek(fd, 0, libc::SEEK_SET), 0);
    let mut back = vec![0u8; len];
    // SAFETY: `back` is writable for `len` bytes.
    assert_eq!(
        unsafe { nommu_read(fd, back.as_mut_ptr().cast(), len) },
        len as isize
    );
    assert!(back == data, "read back differs");

    // pwrite/pread at an odd offset.
    let at = 12_345;
    let more = pattern(WINDOW + 3, 2);
    // SAFETY: as above.
    let n = unsafe { nommu_pwrite(fd, more.as_ptr().cast(), more.len(), at) };
    assert_eq!(n, more.len() as isize);
    let mut got = vec![0u8; more.len()];
    // SAFETY: as above.
    let n = unsafe { nommu_pread(fd, got.as_mut_ptr().cast(), got.len(), at) };
    assert_eq!(n, more.len() as isize);
    assert!(got == more, "pread back differs");

    // A pointer nothing is mapped at: EFAULT both ways, the position kept.
    let bad = 0x10 as *mut c_void;
    assert_eq!(nommu_lseek(fd, 100, libc::SEEK_SET), 100);
    // SAFETY: the shim must not touch `bad` but through checked copies.
    assert_eq!(unsafe { nommu_write(fd, bad, WINDOW) }, -1);
    assert_eq!(errno(), libc::EFAULT);
    // SAFETY: as above.
    assert_eq!(unsafe { nommu_read(fd, bad, WINDOW) }, -1);
    assert_eq!(errno(), libc::EFAULT);
    assert_eq!(position(fd), 100);
    // SAFETY: as above.
    assert_eq!(unsafe { nommu_pread(fd, bad, WINDOW, 0) }, -1);
    assert_eq!(errno(), libc::EFAULT);

    // A buffer whose last window's worth is unmapped: the first two
    // windows' worth are read, and the position moves by that much.
    // SAFETY: a fresh anonymous host mapping, the tail unmapped at once.
    let buf = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            3 * WINDOW,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(
            libc::munmap(p.cast::<u8>().add(2 * WINDOW).cast(), WINDOW),
            0
        );
        p
    };
    assert_eq!(nommu_lseek(fd, 0, libc::SEEK_SET), 0);
    // SAFETY: as for `bad`: the tail is reached only through checked copies.
    let n = unsafe { nommu_read(fd, buf, 3 * WINDOW) };
    assert_eq!(n, 2 * WINDOW as isize);
    assert_eq!(position(fd), 2 * WINDOW as i64);
    // SAFETY: the first two windows' worth is mapped and was just written.
    let head = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), 2 * WINDOW) };
    assert_eq!(&head[..at as usize], &data[..at as usize]);
    // The same buffer written: two windows' worth go, the rest is not read.
    assert_eq!(nommu_lseek(fd, 0, libc::SEEK_SET), 0);
    // SAFETY: as above.
    let n = unsafe { nommu_write(fd, buf, 3 * WINDOW) };
    assert_eq!(n, 2 * WINDOW as isize);
    assert_eq!(position(fd), 2 * WINDOW as i64);
    // SAFETY: the mapped head of the buffer.
    assert_eq!(unsafe { libc::munmap(buf, 2 * WINDOW) }, 0);

    assert_eq!(nommu_close(fd), 0);
    // The daemon kept serving throughout.
    assert!(daemon.ctl(&["meminfo"]).contains("MemTotal"));
}
