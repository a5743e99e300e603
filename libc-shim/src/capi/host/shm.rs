//! Shared memory of the host C surface: SysV (`nommu_shmget`,
//! `nommu_shmat`, `nommu_shmdt`, `nommu_shmctl`) and POSIX
//! (`nommu_shm_open`, `nommu_shm_unlink`), always exported; `posix`
//! re-exports them under their libc names. SysV segments always live in
//! the server; a POSIX object is a server file when the server has a
//! `/dev/shm` mount, else a host file.

use super::fileapi::open_at;
use super::files::{route_path, Route};
use super::paths::CallerPath;
use super::process::global;
use super::{fail, status};
use crate::abi::{self, MAP_FAILED, SHM_PATH_MAX};
use crate::sys::{host, user};
use core::ffi::{c_char, c_int, c_void};
use protocol::Errno;

// ---- SysV shared memory ----

/// `int shmget(key_t key, size_t size, int shmflg)`.
#[no_mangle]
pub extern "C" fn nommu_shmget(key: libc::key_t, size: usize, flags: c_int) -> c_int {
    match global().and_then(|c| c.shmget(key, size as u64, flags)) {
        Ok(id) => id,
        Err(e) => fail(e, -1),
    }
}

/// `void *shmat(int shmid, const void *shmaddr, int shmflg)`; `(void *)-1`
/// on failure.
#[no_mangle]
pub extern "C" fn nommu_shmat(shmid: c_int, addr: *const c_void, flags: c_int) -> *mut c_void {
    match global().and_then(|c| c.shmat(shmid, addr as u64, flags)) {
        Ok(at) => at as usize as *mut c_void,
        Err(e) => fail(e, MAP_FAILED),
    }
}

/// `int shmdt(const void *shmaddr)`.
#[no_mangle]
pub extern "C" fn nommu_shmdt(addr: *const c_void) -> c_int {
    status(global().and_then(|c| c.shmdt(addr as u64)))
}

/// `int shmctl(int shmid, int cmd, struct shmid_ds *buf)`: `IPC_STAT`
/// fills `buf`, `IPC_SET` takes the owner and mode bits from it,
/// `IPC_RMID`, `SHM_LOCK` and `SHM_UNLOCK` ignore it; any other command
/// fails `EINVAL`.
///
/// # Safety
/// `buf` must be null or point to one `struct shmid_ds` (writable for
/// `IPC_STAT`); one that cannot be read or written fails `EFAULT`, as
/// from the kernel.
#[no_mangle]
pub unsafe extern "C" fn nommu_shmctl(shmid: c_int, cmd: c_int, buf: *mut libc::shmid_ds) -> c_int {
    let cmd = abi::shmctl_cmd(cmd);
    let client = match global() {
        Ok(c) => c,
        Err(e) => return fail(e, -1),
    };
    match cmd {
        libc::IPC_RMID => status(client.shm_remove(shmid)),
        libc::IPC_STAT => {
            let stat = match client.shm_stat(shmid) {
                Ok(s) => s,
                Err(e) => return fail(e, -1),
            };
            // SAFETY: shmid_ds is plain data (integers and padding) for
            // which all-zero bytes are a valid value.
            let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
            ds.shm_perm.__key = stat.key;
            ds.shm_perm.uid = stat.uid;
            ds.shm_perm.gid = stat.gid;
            ds.shm_perm.cuid = stat.cuid;
            ds.shm_perm.cgid = stat.cgid;
            ds.shm_perm.mode = stat.mode as u16;
            ds.shm_perm.__seq = 0;
            ds.shm_segsz = stat.size as usize;
            ds.shm_atime = stat.atime as libc::time_t;
            ds.shm_dtime = stat.dtime as libc::time_t;
            ds.shm_ctime = stat.ctime as libc::time_t;
            ds.shm_cpid = stat.cpid as libc::pid_t;
            ds.shm_lpid = stat.lpid as libc::pid_t;
            ds.shm_nattch = stat.nattch as libc::shmatt_t;
            // As the kernel: the segment is looked up first, then the
            // answer copied out (`EFAULT` for a `buf` it cannot write).
            status(user::write_to_user(buf, &ds))
        }
        libc::IPC_SET => {
            // As the kernel: `buf` is copied in before the segment is
            // looked up.
            // SAFETY: struct shmid_ds is plain integers.
            let ds = match unsafe { user::read_from_user(buf) } {
                Ok(ds) => ds,
                Err(e) => return fail(e, -1),
            };
            let perm = ds.shm_perm;
            status(client.shm_set(shmid, perm.uid, perm.gid, u32::from(perm.mode) & 0o777))
        }
        libc::SHM_LOCK | libc::SHM_UNLOCK => status(client.shm_lock(shmid, cmd == libc::SHM_LOCK)),
        _ => fail(Errno::EINVAL, -1),
    }
}

// ---- POSIX shared memory ----

/// `/dev/shm/NAME` for a C `shm_open` name ([`crate::abi::shm_path`]).
fn shm_path(name: *const c_char) -> Result<([u8; SHM_PATH_MAX], usize), Errno> {
    let name = CallerPath::copy_in(name)?;
    abi::shm_path(name.as_bytes())
}

/// `int shm_open(const char *name, int oflag, mode_t mode)`: `open` of
/// `/dev/shm/NAME` with `O_NOFOLLOW|O_CLOEXEC` added. When the server has
/// a `/dev/shm` mount (a ramfs: `memsrvd --mount /dev/shm=ramfs`) the
/// object is a server file whose `MAP_SHARED` mapping every process
/// shares; otherwise the path is the host's, as any path outside the
/// server's mounts (and `mmap` of it gives a private copy only).
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_shm_open(name: *const c_char, oflag: c_int, mode: u32) -> c_int {
    let (path, _) = match shm_path(name) {
        Ok(p) => p,
        Err(e) => return fail(e, -1),
    };
    let flags = oflag | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL terminated (zero filled past the name).
    unsafe { open_at(libc::AT_FDCWD, path.as_ptr().cast(), flags, mode) }
}

/// `int shm_unlink(const char *name)`: removes `/dev/shm/NAME` on the
/// server (when it has that mount) or on the host. Mappings of the object
/// stay valid until unmapped.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_shm_unlink(name: *const c_char) -> c_int {
    let (path, len) = match shm_path(name) {
        Ok(p) => p,
        Err(e) => return fail(e, -1),
    };
    match route_path(&path[..len]) {
        Route::Server(client, normal) => status(client.unlink(normal.as_bytes())),
        // SAFETY: `path` is NUL terminated (zero filled past the name).
        Route::Host => unsafe { host::unlink(path.as_ptr().cast()) },
    }
}
