//! Files in a program that links the shim: which calls go to the memory
//! server and which to the host.
//!
//! * **Paths.** An absolute path that lies under one of the server's
//!   mounts (asked once with `ListMounts`, after the connection is made,
//!   and kept by a forked child; [`super::process::refresh_mounts`] asks
//!   again) goes to the server; every other path — relative ones
//!   included — goes to the host kernel, without connecting once the
//!   mounts are known. The test is lexical:
//!   repeated `/` and `.` are dropped and `..` removes the component before
//!   it, then the longest mount that is the path itself or a prefix of it
//!   followed by `/` wins.
//! * **Descriptors.** A server file's descriptor belongs to the server's
//!   fd table, which the host knows nothing of. So that the numbers never
//!   collide with the host's, each server descriptor is given a real host
//!   descriptor (of `/dev/null`, close-on-exec) and the program sees only
//!   that one; a fixed table ([`super::fd_table::FdTable`], no heap) maps it to the server's
//!   number. A call on a descriptor found in the table goes to the server,
//!   every other descriptor to the host kernel (by `syscall`, never through
//!   the library's own exported names).
//! * **Host files in `mmap`.** A host descriptor given to `mmap` is handed
//!   to the daemon over the socket (`SCM_RIGHTS`, see
//!   `hosted::daemon::hostfile`), opened there as a server file, mapped,
//!   and closed again ([`super::mmap::nommu_mmap`]).
//!
//! The state this rests on (the connection, the tables, the mount list)
//! lives in [`super::process`]; the lexical path rules in [`super::paths`].

use super::fd_table::status_flags;
use super::paths::{normalise, NormalPath};
use super::process::{client_for_paths, global, is_mounted, mounts_known, FDS, FLAGS, HOST_FILES};
use crate::client::Client;
use crate::transport::DaemonConnection;
use protocol::Errno;

/// Where a path-based call goes.
// The path stays inline: the request path allocates nothing.
#[allow(clippy::large_enum_variant)]
pub enum Route {
    Host,
    Server(&'static Client<DaemonConnection>, NormalPath),
}

/// Decide where `path` goes (connecting if need be).
pub fn route_path(path: &[u8]) -> Route {
    let Some(normal) = normalise(path) else {
        return Route::Host;
    };
    // With the mount list known (loaded by this process, or by its parent
    // before a fork: the daemon's mounts are every process's), a path
    // outside them goes to the host without connecting. So a forked child
    // that opens host files, then switches user, still makes its first
    // server call, and so its connection, as the new user.
    if mounts_known() && !is_mounted(normal.as_bytes()) {
        return Route::Host;
    }
    let Some(client) = client_for_paths() else {
        return Route::Host;
    };
    if is_mounted(normal.as_bytes()) {
        Route::Server(client, normal)
    } else {
        Route::Host
    }
}

/// Open `path` on the server and give the program a host descriptor that
/// stands for it.
pub fn open_on_server(
    client: &Client<DaemonConnection>,
    path: &NormalPath,
    flags: i32,
    mode: u32,
) -> Result<i32, Errno> {
    // The kernel applies the process umask to a new file's mode; the
    // server cannot see it, so it is applied here.
    let mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        mode & !process_umask()
    } else {
        mode
    };
    let server = client.open(path.as_bytes(), flags as u32, mode)?;
    // SAFETY: a NUL-terminated literal.
    let host = unsafe {
        crate::sys::host::openat(
            libc::AT_FDCWD,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
        )
    };
    if host < 0 {
        let e = crate::sys::last_errno();
        let _ = client.close(server);
        return Err(e);
    }
    FLAGS.set(host, status_flags(flags));
    match FDS.bind(host, server) {
        Ok(stale) => {
            if let Some(stale) = stale {
                let _ = client.close(stale);
            }
            Ok(host)
        }
        Err(e) => {
            crate::sys::host::close(host);
            let _ = client.close(server);
            Err(e)
        }
    }
}

/// Close a descriptor: a server file's on the server (then its host
/// stand-in), any other on the host.
pub fn close(fd: i32) -> Result<(), Errno> {
    match FDS.unbind(fd) {
        Some(server) => {
            let result = global().and_then(|c| c.close(server));
            crate::sys::host::close(fd);
            result
        }
        None => {
            forget_host_file(fd);
            if crate::sys::host::close(fd) < 0 {
                Err(crate::sys::last_errno())
            } else {
                Ok(())
            }
        }
    }
}

/// Host descriptor `fd` is being closed: the daemon need not keep its
/// file open for the next mapping ([`super::host_files`]). Nothing to do
/// before this process has connected.
fn forget_host_file(fd: i32) {
    if !super::process::connected() {
        return;
    }
    if let Ok(client) = global() {
        if let Some(server) = HOST_FILES.forget(client.transport().welcome().pid, fd) {
            let _ = client.close(server);
        }
    }
}

/// The process umask, read from `/proc/self/status` (`Umask:`, Linux
/// 4.7+) without changing it; where that line is missing, `umask(2)` is
/// set and at once restored (another thread's `open` in between would see
/// a zero mask).
fn process_umask() -> u32 {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"));
        if let Some(mask) = line.and_then(|m| u32::from_str_radix(m.trim(), 8).ok()) {
            return mask & 0o777;
        }
    }
    crate::sys::umask()
}
