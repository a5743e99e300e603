//! `fcntl`, the path calls (`stat`, `lstat`, `access`, `unlink`) and
//! `fsync`/`fdatasync`, `fchmod`/`fchown` of the C ABI (`nommu_*`, always
//! exported): what SQLite's default `unix` VFS asks of a file besides
//! reading and writing it. A descriptor standing for a server file, or an
//! absolute path under a server mount, is answered here (the server where
//! it must be asked); every other descriptor and path goes to the host
//! kernel unchanged (by `syscall`, never through the exported names).
//!
//! * **Record locks.** `F_GETLK`, `F_SETLK`, `F_SETLKW` on a server file
//!   are POSIX record locks of *this process*. POSIX locks belong to the
//!   process: one process's locks never conflict with each other (a new
//!   lock over an old one of the same process replaces it), whatever
//!   descriptor or open file description they were taken through. So
//!   within one process there is nothing to arbitrate: the request is
//!   checked as Linux checks it (`EINVAL` for a bad type, whence or range,
//!   `EBADF` for a read lock on a descriptor not open for reading or a
//!   write lock on one not open for writing, `EFAULT` for a null
//!   `struct flock`), then `F_SETLK`/`F_SETLKW` succeed and `F_GETLK`
//!   answers `F_UNLCK`. The server keeps no locks: two *processes* do not
//!   exclude each other. The open-file-description locks (`F_OFD_*`),
//!   which could conflict within a process, are not served: `EINVAL`, as
//!   from a kernel without them. The host stand-in (`/dev/null`) is never
//!   locked.
//! * **Descriptor and status flags.** `F_GETFL` answers the access mode
//!   and status flags the file was opened with; `F_SETFL` may change
//!   `O_NONBLOCK`, `O_ASYNC`, `O_DIRECT`, `O_NOATIME` (recorded; no server
//!   call blocks) but not `O_APPEND`, which the server fixed at open
//!   (`EINVAL`). `F_GETFD`/`F_SETFD` act on the stand-in, which keeps
//!   `FD_CLOEXEC`: a server file does not survive `exec`. Every other
//!   command goes to the host, on the stand-in.
//! * **Paths.** `stat`/`lstat` of a path under a server mount open it on
//!   the server (read-only; write-only when reading is refused), `fstat`
//!   it and close it: the server's files have no symbolic links, so both
//!   answer alike. `access` opens it with the access asked (`X_OK` looks
//!   at the mode bits). `unlink` is the server's `Unlink`.
//! * **`fsync`/`fdatasync`** of a server file are the server's `Fsync`,
//!   as Linux's `do_fsync`: nothing is left to flush from this process
//!   (the server's writes have reached the driver when `write` returns),
//!   but the driver may keep the bytes in a cache — a host directory's
//!   files sit in the host's page cache after `pwrite` — so the server
//!   asks a driver that has an fsync method, and its error (`EIO`,
//!   `ENOSPC`) is the caller's. A memory filesystem's file (tmpfs,
//!   `/dev/shm`) succeeds at once in the server; a pipe, a socket or a
//!   character device without the method fails `EINVAL`.
//! * **`fchmod`/`fchown`** of a server file are the server's
//!   `SetAttributes` (`super::attributes`, with the path forms); the
//!   stand-in is never changed.

use super::attributes::on_server_fd;
use super::fail;
use super::fileapi::host_stat;
use super::files::{route_path, Route};
use super::paths::CallerPath;
use super::process::{global, FDS, FLAGS};
use crate::sys::{host, user};
use core::ffi::{c_char, c_int};
use protocol::{Errno, FileStat};

// ---- fcntl ----

/// `fcntl(fd, cmd, arg)`. `arg` is the third argument as the C caller
/// passed it: an integer or a pointer, read as a pointer-sized value
/// (see `posix::fcntl`).
///
/// # Safety
/// For the lock commands `arg` must point to a `struct flock`; for any
/// other command on a host descriptor, as the kernel's `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn nommu_fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    let Some(server) = FDS.server_fd(fd) else {
        // SAFETY: the caller's contract, passed on.
        return unsafe { host::fcntl(fd, cmd, arg) };
    };
    match cmd {
        libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW => {
            // SAFETY: the caller passes a struct flock for these commands.
            match unsafe { record_lock(fd, server, cmd, arg as *mut libc::flock) } {
                Ok(()) => 0,
                Err(e) => fail(e, -1),
            }
        }
        libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW => fail(Errno::EINVAL, -1),
        libc::F_GETFL => FLAGS.get(fd),
        libc::F_SETFL => {
            let old = FLAGS.get(fd);
            let settable = libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME;
            let new = arg as c_int;
            if (new ^ old) & libc::O_APPEND != 0 {
                return fail(Errno::EINVAL, -1);
            }
            FLAGS.set(fd, (old & !settable) | (new & settable));
            0
        }
        // SAFETY: integers only.
        libc::F_SETFD => unsafe {
            host::fcntl(fd, cmd, (arg as c_int | libc::FD_CLOEXEC) as usize)
        },
        // SAFETY: the caller's contract, passed on (the stand-in is an
        // ordinary host descriptor).
        _ => unsafe { host::fcntl(fd, cmd, arg) },
    }
}

/// A POSIX record-lock request on a server file (see the module text):
/// checked as Linux checks it; within one process it always succeeds.
///
/// # Safety
/// `lock` must be null or point to a `struct flock`.
unsafe fn record_lock(
    fd: c_int,
    server: i32,
    cmd: c_int,
    lock: *mut libc::flock,
) -> Result<(), Errno> {
    // SAFETY: struct flock is plain integers.
    let mut request = unsafe { user::read_from_user(lock) }?;
    let kind = c_int::from(request.l_type);
    let getlk = cmd == libc::F_GETLK;
    let valid = if getlk {
        kind == libc::F_RDLCK || kind == libc::F_WRLCK
    } else {
        kind == libc::F_RDLCK || kind == libc::F_WRLCK || kind == libc::F_UNLCK
    };
    if !valid {
        return Err(Errno::EINVAL);
    }
    let base: i64 = match c_int::from(request.l_whence) {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => {
            let pos = global()?.lseek(server, 0, libc::SEEK_CUR as u32)?;
            i64::try_from(pos).map_err(|_| Errno::EOVERFLOW)?
        }
        libc::SEEK_END => i64::try_from(global()?.fstat(server)?.size).unwrap_or(i64::MAX),
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(request.l_start).ok_or(Errno::EOVERFLOW)?;
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    if request.l_len < 0 && start.checked_add(request.l_len).is_none_or(|s| s < 0) {
        return Err(Errno::EINVAL);
    }
    if request.l_len > 0 && start.checked_add(request.l_len - 1).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    if getlk {
        // No lock of another owner can exist: the range is free.
        request.l_type = libc::F_UNLCK as libc::c_short;
        return user::write_to_user(lock, &request);
    }
    let access = FLAGS.get(fd) & libc::O_ACCMODE;
    let readable = access == libc::O_RDONLY || access == libc::O_RDWR;
    let writable = access == libc::O_WRONLY || access == libc::O_RDWR;
    if (kind == libc::F_RDLCK && !readable) || (kind == libc::F_WRLCK && !writable) {
        return Err(Errno::EBADF);
    }
    Ok(())
}

// ---- stat, lstat, access, unlink ----

/// The server's attributes of `path`: open (read-only, else write-only),
/// `fstat`, close.
fn stat_on_server(
    client: &crate::client::Client<crate::transport::DaemonConnection>,
    path: &[u8],
) -> Result<FileStat, Errno> {
    let fd = match client.open(path, libc::O_RDONLY as u32, 0) {
        Err(Errno::EACCES) => client.open(path, libc::O_WRONLY as u32, 0)?,
        other => other?,
    };
    let stat = client.fstat(fd);
    let _ = client.close(fd);
    stat
}

/// `stat`/`lstat` (`flags` 0 or `AT_SYMLINK_NOFOLLOW` for the host).
///
/// # Safety
/// `path` a NUL-terminated string, `st` writable for one `struct stat`
/// (for a server path, pointers that cannot be read or written fail
/// `EFAULT`; the host kernel checks its own).
unsafe fn stat_path(path: *const c_char, st: *mut libc::stat, flags: c_int) -> c_int {
    let path = match CallerPath::copy_in(path) {
        Ok(p) => p,
        Err(e) => return fail(e, -1),
    };
    match route_path(path.as_bytes()) {
        // SAFETY: the copy is NUL terminated; `st` is the caller's, which
        // the kernel checks.
        Route::Host => unsafe { host::stat_at(path.as_ptr(), st, flags) },
        Route::Server(client, normal) => {
            let result = stat_on_server(client, normal.as_bytes())
                .and_then(|stat| user::write_to_user(st, &host_stat(&stat)));
            match result {
                Ok(()) => 0,
                Err(e) => fail(e, -1),
            }
        }
    }
}

/// `stat(path, st)`: a path under a server mount is answered by the
/// server, any other by the host.
///
/// # Safety
/// `path` must be a NUL-terminated string and `st` writable for one
/// `struct stat`.
#[no_mangle]
pub unsafe extern "C" fn nommu_stat(path: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { stat_path(path, st, 0) }
}

/// `lstat(path, st)`: as [`nommu_stat`] (server files are never symbolic
/// links); a host path is not followed.
///
/// # Safety
/// As [`nommu_stat`].
#[no_mangle]
pub unsafe extern "C" fn nommu_lstat(path: *const c_char, st: *mut libc::stat) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { stat_path(path, st, libc::AT_SYMLINK_NOFOLLOW) }
}

/// `access(path, mode)`: on the server, `F_OK` is an existence test,
/// `R_OK`/`W_OK` an open with that access, `X_OK` a look at the mode bits
/// (some execute bit set).
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_access(path: *const c_char, mode: c_int) -> c_int {
    let path = match CallerPath::copy_in(path) {
        Ok(p) => p,
        Err(e) => return fail(e, -1),
    };
    match route_path(path.as_bytes()) {
        // SAFETY: the copy is a NUL-terminated string.
        Route::Host => unsafe { host::access(path.as_ptr(), mode) },
        Route::Server(client, normal) => {
            let result = access_on_server(client, normal.as_bytes(), mode);
            match result {
                Ok(()) => 0,
                Err(e) => fail(e, -1),
            }
        }
    }
}

fn access_on_server(
    client: &crate::client::Client<crate::transport::DaemonConnection>,
    path: &[u8],
    mode: c_int,
) -> Result<(), Errno> {
    if mode & !(libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
        return Err(Errno::EINVAL);
    }
    let stat = stat_on_server(client, path)?;
    let rw = mode & (libc::R_OK | libc::W_OK);
    if rw != 0 {
        let flags = match rw {
            libc::R_OK => libc::O_RDONLY,
            libc::W_OK => libc::O_WRONLY,
            _ => libc::O_RDWR,
        };
        let fd = client.open(path, flags as u32, 0)?;
        let _ = client.close(fd);
    }
    if mode & libc::X_OK != 0 && stat.mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// `unlink(path)`: the server's `Unlink` for a path under a server mount
/// (the driver decides: ramfs removes the name, a driver without names to
/// remove answers `EPERM`), the host's for any other.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_unlink(path: *const c_char) -> c_int {
    let path = match CallerPath::copy_in(path) {
        Ok(p) => p,
        Err(e) => return fail(e, -1),
    };
    match route_path(path.as_bytes()) {
        // SAFETY: the copy is a NUL-terminated string.
        Route::Host => unsafe { host::unlink(path.as_ptr()) },
        Route::Server(client, normal) => {
            let result = client.unlink(normal.as_bytes());
            match result {
                Ok(()) => 0,
                Err(e) => fail(e, -1),
            }
        }
    }
}

// ---- fsync, fchmod, fchown ----

/// `fsync(fd)`: the server's for a server file, the host's for any other
/// descriptor.
#[no_mangle]
pub extern "C" fn nommu_fsync(fd: c_int) -> c_int {
    sync_fd(fd, false)
}

/// `fdatasync(fd)`: as [`nommu_fsync`], the data alone.
#[no_mangle]
pub extern "C" fn nommu_fdatasync(fd: c_int) -> c_int {
    sync_fd(fd, true)
}

/// `fsync` (`fdatasync` with `data_only`) of `fd`.
fn sync_fd(fd: c_int, data_only: bool) -> c_int {
    let Some(server) = FDS.server_fd(fd) else {
        return host::fsync(fd, data_only);
    };
    match global().and_then(|client| client.fsync(server, data_only)) {
        Ok(()) => 0,
        Err(e) => fail(e, -1),
    }
}

/// `fchmod(fd, mode)`: the server changes a server file's mode (owner or
/// root, as Linux), the host any other descriptor's.
#[no_mangle]
pub extern "C" fn nommu_fchmod(fd: c_int, mode: u32) -> c_int {
    on_server_fd(fd, Some(mode), None).unwrap_or_else(|| host::fchmod(fd, mode))
}

/// `fchown(fd, uid, gid)`: the server changes a server file's owner and
/// group (-1 leaves one), the host any other descriptor's.
#[no_mangle]
pub extern "C" fn nommu_fchown(fd: c_int, uid: u32, gid: u32) -> c_int {
    on_server_fd(fd, None, Some((uid, gid))).unwrap_or_else(|| host::fchown(fd, uid, gid))
}
