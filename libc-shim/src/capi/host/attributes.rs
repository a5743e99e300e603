//! `chmod`, `fchmodat`, `chown`, `lchown`, `fchownat` of the C ABI
//! (`nommu_*`, always exported), and the server half of `fchmod`/`fchown`
//! (`super::fsapi`): an absolute path under a server mount, or a server
//! descriptor, is changed by the server (`SetAttributes`, judged there as
//! Linux judges it); every other path and descriptor goes to the host
//! kernel. A relative path goes to the host, as `openat` sends it.
//!
//! The server's files have no symbolic links: `lchown` is `chown` there,
//! and `fchmodat(AT_SYMLINK_NOFOLLOW)` fails `EOPNOTSUPP` as glibc
//! answers where the kernel cannot change a link's mode (on the host it
//! is `fchmodat2`, and `EOPNOTSUPP` where the kernel lacks it).

use super::fail;
use super::files::{route_path, Route};
use super::paths::CallerPath;
use super::process::{global, FDS};
use crate::capi::signatures::c_fn;
use crate::client::Target;
use crate::sys::host;
use core::ffi::{c_char, c_int};
use protocol::Errno;

/// `-1` as `uid_t`/`gid_t`: leave it.
const UNCHANGED: u32 = u32::MAX;

/// What one call asks (`None`: leave it).
#[derive(Clone, Copy)]
struct Change {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
}

impl Change {
    fn mode(mode: u32) -> Self {
        Self {
            mode: Some(mode),
            uid: None,
            gid: None,
        }
    }

    fn owner(uid: u32, gid: u32) -> Self {
        Self {
            mode: None,
            uid: (uid != UNCHANGED).then_some(uid),
            gid: (gid != UNCHANGED).then_some(gid),
        }
    }
}

/// The status of a server `SetAttributes`.
fn on_server(target: Target<'_>, change: Change) -> c_int {
    let result =
        global().and_then(|c| c.set_attributes(target, change.mode, change.uid, change.gid));
    super::status(result)
}

/// `fchmod`/`fchown` of `fd`: the server's when it stands for a server
/// file (`None` otherwise: the caller asks the host).
pub(crate) fn on_server_fd(
    fd: c_int,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
) -> Option<c_int> {
    let server = FDS.server_fd(fd)?;
    let change = match (mode, owner) {
        (Some(mode), _) => Change::mode(mode),
        (None, Some((uid, gid))) => Change::owner(uid, gid),
        (None, None) => return Some(0),
    };
    Some(on_server(Target::Fd(server), change))
}

/// A path call: the server's for a path under a server mount, else
/// `host` with the caller's copy of the path.
///
/// # Safety
/// `path` must be a NUL-terminated string (a pointer that cannot be read
/// fails `EFAULT`).
unsafe fn by_path(
    path: *const c_char,
    change: Change,
    nofollow_refused: bool,
    host: impl FnOnce(*const c_char) -> c_int,
) -> c_int {
    let path = match CallerPath::copy_in(path) {
        Ok(p) => p,
        Err(e) => return fail(e, -1),
    };
    match route_path(path.as_bytes()) {
        Route::Host => host(path.as_ptr()),
        Route::Server(_, _) if nofollow_refused => fail(Errno::EOPNOTSUPP, -1),
        Route::Server(_, normal) => on_server(Target::Path(normal.as_bytes()), change),
    }
}

/// `chmod(path, mode)`.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_chmod(path: *const c_char, mode: u32) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_fchmodat(libc::AT_FDCWD, path, mode, 0) }
}

/// `fchmodat(dirfd, path, mode, flags)`: `flags` may be
/// `AT_SYMLINK_NOFOLLOW` alone (else `EINVAL`).
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_fchmodat(
    dirfd: c_int,
    path: *const c_char,
    mode: u32,
    flags: c_int,
) -> c_int {
    if flags & !libc::AT_SYMLINK_NOFOLLOW != 0 {
        return fail(Errno::EINVAL, -1);
    }
    let nofollow = flags != 0;
    // SAFETY: the caller's contract; the host calls get the copy, a
    // NUL-terminated string.
    unsafe {
        by_path(path, Change::mode(mode), nofollow, |copy| {
            if !nofollow {
                return host::fchmodat(dirfd, copy, mode);
            }
            match host::fchmodat2(dirfd, copy, mode, flags) {
                -1 if crate::sys::last_errno() == Errno::ENOSYS => fail(Errno::EOPNOTSUPP, -1),
                status => status,
            }
        })
    }
}

/// `chown(path, uid, gid)`.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_chown(path: *const c_char, uid: u32, gid: u32) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_fchownat(libc::AT_FDCWD, path, uid, gid, 0) }
}

/// `lchown(path, uid, gid)`: `chown` on the server (no symbolic links).
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_lchown(path: *const c_char, uid: u32, gid: u32) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_fchownat(libc::AT_FDCWD, path, uid, gid, libc::AT_SYMLINK_NOFOLLOW) }
}

c_fn! {
    /// `fchownat(dirfd, path, uid, gid, flags)`: `flags` may hold
    /// `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH` (else `EINVAL`); an empty
    /// path with `AT_EMPTY_PATH` changes `dirfd` itself, as `fchown`.
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    #[no_mangle]
    pub [unsafe extern "C"] fn nommu_fchownat as fchownat(dirfd, path, uid, gid, flags) {
        if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
            return fail(Errno::EINVAL, -1);
        }
        let change = Change::owner(uid, gid);
        if flags & libc::AT_EMPTY_PATH != 0 {
            let empty = match CallerPath::copy_in(path) {
                Ok(p) => p.as_bytes().is_empty(),
                Err(e) => return fail(e, -1),
            };
            if empty {
                if let Some(status) = on_server_fd(dirfd, None, Some((uid, gid))) {
                    return status;
                }
            }
        }
        // SAFETY: the caller's contract; the host call gets the copy.
        unsafe {
            by_path(path, change, false, |copy| {
                host::fchownat(dirfd, copy, uid, gid, flags)
            })
        }
    }
}
