//! The POSIX names (`mmap`, `munmap`, the file, shared-memory, futex and
//! small memory calls; `mmap64` is in `capi::signatures`), exported only by
//! the static library built with feature `posix`: a C program linking it
//! gets the memory server's mapping calls in place of the host kernel's.

use super::mmap::{nommu_mmap, nommu_munmap};
use super::preload::{self, Call};
use crate::capi::signatures::{c_fn, exported_as};
use core::ffi::{c_int, c_void};

c_fn! {
    /// `void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)`:
    /// counted, traced, and passed to the host when
    /// [`preload::mmap_for_host`] says.
    #[no_mangle]
    pub [extern "C"] fn mmap as mmap(addr, len, prot, flags, fd, offset) {
        if preload::mmap_for_host(addr as u64, len as u64, flags as u32, fd) {
            // SAFETY: the C caller's own request, as mmap(2) would take it;
            // the kernel checks every argument.
            return unsafe { crate::sys::host::mmap(addr as usize, len, prot, flags, fd, offset) };
        }
        let got = nommu_mmap(addr, len, prot, flags, fd, offset);
        let request = || {
            format!(
                "mmap({:#x}, {len}, {}, {}, {}, {offset})",
                addr as usize,
                preload::prot_names(prot as u32),
                preload::map_names(flags as u32),
                preload::mmap_target(flags, fd)
            )
        };
        preload::pointer_call(Call::Mmap, request, got, flags as u32)
    }
}

/// `int munmap(void *addr, size_t len)`: arena memory to the server;
/// under `nommu-run`, memory outside the arena (which the host mapped) to
/// the host.
#[no_mangle]
pub extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    if preload::munmap_for_host(addr as u64, len as u64) {
        // SAFETY: host memory outside the arena, the C caller's own to
        // unmap as with munmap(2).
        return unsafe { crate::sys::host::munmap(addr as usize, len) };
    }
    let request = || format!("munmap({:#x}, {len})", addr as usize);
    preload::int_call(Call::Munmap, request, nommu_munmap(addr, len).into()) as c_int
}

// The file calls. A path under a server mount or a descriptor standing for
// a server file goes to the memory server, everything else to the host
// kernel (see `super::files`).
//
// `open` and `openat` are variadic in C (`int open(const char *, int,
// ...)`). Rust cannot define a variadic function, so they are defined with
// the mode as a fixed third (fourth) argument: on the Linux ABIs this
// library builds for (x86-64 System V, AArch64 AAPCS64) an integer
// variadic argument travels in the same register as the fixed one would,
// and the mode is only read when `O_CREAT` or `O_TMPFILE` says the caller
// passed it.

use super::fileapi::{
    nommu_close, nommu_fstat, nommu_ftruncate, nommu_lseek, nommu_open, nommu_openat, nommu_pread,
    nommu_pwrite, nommu_read, nommu_write,
};
use core::ffi::c_char;

exported_as! {
    [open, open64]
    /// `int open(const char *path, int flags, ...)`, and `open64` with
    /// large-file support (the same call on a 64-bit host).
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    pub [unsafe extern "C"] fn(path: *const c_char, flags: c_int, mode: u32) -> c_int {
        // SAFETY: the caller's contract, passed on.
        unsafe { preload::opened(path, nommu_open(path, flags, mode)) }
    }
}

exported_as! {
    [openat, openat64]
    /// `int openat(int dirfd, const char *path, int flags, ...)`, and
    /// `openat64` with large-file support.
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    pub [unsafe extern "C"] fn(
        dirfd: c_int,
        path: *const c_char,
        flags: c_int,
        mode: u32,
    ) -> c_int {
        // SAFETY: the caller's contract, passed on.
        unsafe { preload::opened(path, nommu_openat(dirfd, path, flags, mode)) }
    }
}

exported_as! {
    [__open_2, __open64_2]
    /// glibc's `_FORTIFY_SOURCE` forms of `open` and `open64` without a
    /// mode.
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    pub [unsafe extern "C"] fn(path: *const c_char, flags: c_int) -> c_int {
        if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
            // What glibc does: O_CREAT without a mode is a bug in the caller.
            std::process::abort();
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { nommu_open(path, flags, 0) }
    }
}

/// `int close(int fd)`.
#[no_mangle]
pub extern "C" fn close(fd: c_int) -> c_int {
    nommu_close(fd)
}

/// `ssize_t read(int fd, void *buf, size_t len)`.
///
/// # Safety
/// `buf` must be writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_read(fd, buf, len) }
}

/// `ssize_t write(int fd, const void *buf, size_t len)`.
///
/// # Safety
/// `buf` must be readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_write(fd, buf, len) }
}

// The large-file twins below take `off_t` and `struct stat` where C has
// `off64_t` and `struct stat64`: one type and one layout on the 64-bit
// hosts this library builds for.
const _: () = assert!(
    core::mem::size_of::<libc::off_t>() == core::mem::size_of::<libc::off64_t>(),
    "off64_t differs from off_t on this target"
);
const _: () = assert!(
    core::mem::size_of::<libc::stat>() == core::mem::size_of::<libc::stat64>(),
    "struct stat64 differs from struct stat on this target"
);

exported_as! {
    [pread, pread64]
    /// `ssize_t pread(int fd, void *buf, size_t len, off_t offset)`, and
    /// `pread64` with a 64-bit offset.
    ///
    /// # Safety
    /// `buf` must be writable for `len` bytes.
    pub [unsafe extern "C"] fn(
        fd: c_int,
        buf: *mut c_void,
        len: usize,
        offset: libc::off_t,
    ) -> isize {
        // SAFETY: the caller's contract, passed on.
        unsafe { nommu_pread(fd, buf, len, offset) }
    }
}

exported_as! {
    [pwrite, pwrite64]
    /// `ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset)`,
    /// and `pwrite64` with a 64-bit offset.
    ///
    /// # Safety
    /// `buf` must be readable for `len` bytes.
    pub [unsafe extern "C"] fn(
        fd: c_int,
        buf: *const c_void,
        len: usize,
        offset: libc::off_t,
    ) -> isize {
        // SAFETY: the caller's contract, passed on.
        unsafe { nommu_pwrite(fd, buf, len, offset) }
    }
}

exported_as! {
    [ftruncate, ftruncate64]
    /// `int ftruncate(int fd, off_t len)`, and `ftruncate64` with a 64-bit
    /// length.
    pub [extern "C"] fn(fd: c_int, len: libc::off_t) -> c_int {
        nommu_ftruncate(fd, len)
    }
}

exported_as! {
    [lseek, lseek64]
    /// `off_t lseek(int fd, off_t offset, int whence)`, and `lseek64` with
    /// 64-bit offsets.
    pub [extern "C"] fn(fd: c_int, offset: libc::off_t, whence: c_int) -> libc::off_t {
        nommu_lseek(fd, offset, whence)
    }
}

exported_as! {
    [fstat, fstat64]
    /// `int fstat(int fd, struct stat *st)`, and `fstat64` into a `struct
    /// stat64`.
    ///
    /// # Safety
    /// `st` must be writable for one `struct stat`.
    pub [unsafe extern "C"] fn(fd: c_int, st: *mut libc::stat) -> c_int {
        // SAFETY: the caller's contract, passed on.
        unsafe { nommu_fstat(fd, st) }
    }
}

// fcntl, the path calls and fsync (see `super::fsapi`).
//
// `fcntl` is variadic in C (`int fcntl(int fd, int cmd, ...)`): it is
// defined with the third argument as a fixed pointer-sized integer. glibc
// itself reads it as `va_arg(ap, void *)` whatever the command, and on
// x86-64 System V and AArch64 AAPCS64 (Linux) the first variadic integer
// or pointer argument travels in the register a fixed third argument
// would (rdx, x2); a command without an argument leaves it unread.
// glibc's headers name `fcntl64` when `_FILE_OFFSET_BITS=64` (SQLite's
// build), the same call on a 64-bit host. Since glibc 2.33 `stat`,
// `lstat` (and `stat64`, `lstat64`) are real symbols the headers call,
// not `__xstat` wrappers.

use super::fsapi::{
    nommu_access, nommu_fchmod, nommu_fchown, nommu_fcntl, nommu_fdatasync, nommu_fsync,
    nommu_lstat, nommu_stat, nommu_unlink,
};

const _: () = assert!(
    core::mem::size_of::<libc::flock>() == core::mem::size_of::<libc::flock64>(),
    "struct flock64 differs from struct flock on this target"
);

exported_as! {
    [fcntl, fcntl64]
    /// `int fcntl(int fd, int cmd, ...)`, and `fcntl64` with 64-bit locks
    /// (one `struct flock` layout here).
    ///
    /// # Safety
    /// As [`nommu_fcntl`].
    pub [unsafe extern "C"] fn(fd: c_int, cmd: c_int, arg: usize) -> c_int {
        // SAFETY: the caller's contract, passed on.
        unsafe { nommu_fcntl(fd, cmd, arg) }
    }
}

exported_as! {
    [stat, stat64]
    /// `int stat(const char *path, struct stat *st)`, and `stat64` into a
    /// `struct stat64`.
    ///
    /// # Safety
    /// As [`nommu_stat`].
    pub [unsafe extern "C"] fn(path: *const c_char, st: *mut libc::stat) -> c_int {
        // SAFETY: the caller's contract, passed on.
        unsafe { nommu_stat(path, st) }
    }
}

exported_as! {
    [lstat, lstat64]
    /// `int lstat(const char *path, struct stat *st)`, and `lstat64` into
    /// a `struct stat64`.
    ///
    /// # Safety
    /// As [`nommu_lstat`].
    pub [unsafe extern "C"] fn(path: *const c_char, st: *mut libc::stat) -> c_int {
        // SAFETY: the caller's contract, passed on.
        unsafe { nommu_lstat(path, st) }
    }
}

/// `int access(const char *path, int mode)`.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn access(path: *const c_char, mode: c_int) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_access(path, mode) }
}

/// `int unlink(const char *path)`.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_unlink(path) }
}

/// `int fsync(int fd)`.
#[no_mangle]
pub extern "C" fn fsync(fd: c_int) -> c_int {
    nommu_fsync(fd)
}

/// `int fdatasync(int fd)`.
#[no_mangle]
pub extern "C" fn fdatasync(fd: c_int) -> c_int {
    nommu_fdatasync(fd)
}

/// `int fchmod(int fd, mode_t mode)`.
#[no_mangle]
pub extern "C" fn fchmod(fd: c_int, mode: u32) -> c_int {
    nommu_fchmod(fd, mode)
}

/// `int fchown(int fd, uid_t uid, gid_t gid)`.
#[no_mangle]
pub extern "C" fn fchown(fd: c_int, uid: u32, gid: u32) -> c_int {
    nommu_fchown(fd, uid, gid)
}

use super::attributes::{nommu_chmod, nommu_chown, nommu_fchmodat, nommu_fchownat, nommu_lchown};

/// `int chmod(const char *path, mode_t mode)`.
///
/// # Safety
/// As [`nommu_chmod`].
#[no_mangle]
pub unsafe extern "C" fn chmod(path: *const c_char, mode: u32) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_chmod(path, mode) }
}

/// `int fchmodat(int dirfd, const char *path, mode_t mode, int flags)`.
///
/// # Safety
/// As [`nommu_fchmodat`].
#[no_mangle]
pub unsafe extern "C" fn fchmodat(
    dirfd: c_int,
    path: *const c_char,
    mode: u32,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_fchmodat(dirfd, path, mode, flags) }
}

/// `int chown(const char *path, uid_t uid, gid_t gid)`.
///
/// # Safety
/// As [`nommu_chown`].
#[no_mangle]
pub unsafe extern "C" fn chown(path: *const c_char, uid: u32, gid: u32) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_chown(path, uid, gid) }
}

/// `int lchown(const char *path, uid_t uid, gid_t gid)`.
///
/// # Safety
/// As [`nommu_lchown`].
#[no_mangle]
pub unsafe extern "C" fn lchown(path: *const c_char, uid: u32, gid: u32) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_lchown(path, uid, gid) }
}

c_fn! {
    /// `int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)`.
    ///
    /// # Safety
    /// As [`nommu_fchownat`].
    #[no_mangle]
    pub [unsafe extern "C"] fn fchownat as fchownat(dirfd, path, uid, gid, flags) {
        // SAFETY: the caller's contract, passed on.
        unsafe { nommu_fchownat(dirfd, path, uid, gid, flags) }
    }
}

// Shared memory, futexes, mremap and the small memory calls (see
// `super::shm`, `super::futex` and `super::memory`: arena addresses go to
// the server, others to the host).

use super::futex::nommu_futex;
use super::memory::{
    nommu_madvise, nommu_mincore, nommu_mlock, nommu_mlock2, nommu_mlockall, nommu_mprotect,
    nommu_mremap, nommu_msync, nommu_munlock, nommu_munlockall,
};
use super::shm::{
    nommu_shm_open, nommu_shm_unlink, nommu_shmat, nommu_shmctl, nommu_shmdt, nommu_shmget,
};
use core::ffi::c_uint;

/// `int shmget(key_t key, size_t size, int shmflg)`.
#[no_mangle]
pub extern "C" fn shmget(key: libc::key_t, size: usize, flags: c_int) -> c_int {
    let request = || format!("shmget({key:#x}, {size}, {flags:#o})");
    preload::int_call(Call::Shmget, request, nommu_shmget(key, size, flags).into()) as c_int
}

/// `void *shmat(int shmid, const void *shmaddr, int shmflg)`.
#[no_mangle]
pub extern "C" fn shmat(shmid: c_int, addr: *const c_void, flags: c_int) -> *mut c_void {
    let request = || format!("shmat({shmid}, {:#x}, {flags:#x})", addr as usize);
    preload::pointer_call(Call::Shmat, request, nommu_shmat(shmid, addr, flags), 0)
}

/// `int shmdt(const void *shmaddr)`.
#[no_mangle]
pub extern "C" fn shmdt(addr: *const c_void) -> c_int {
    let request = || format!("shmdt({:#x})", addr as usize);
    preload::int_call(Call::Shmdt, request, nommu_shmdt(addr).into()) as c_int
}

/// `int shmctl(int shmid, int cmd, struct shmid_ds *buf)`.
///
/// # Safety
/// As [`nommu_shmctl`].
#[no_mangle]
pub unsafe extern "C" fn shmctl(shmid: c_int, cmd: c_int, buf: *mut libc::shmid_ds) -> c_int {
    // SAFETY: the caller's contract, passed on.
    let rc = unsafe { nommu_shmctl(shmid, cmd, buf) };
    preload::int_call(
        Call::Shmctl,
        || format!("shmctl({shmid}, {cmd})"),
        rc.into(),
    ) as c_int
}

/// `int shm_open(const char *name, int oflag, mode_t mode)`.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shm_open(name: *const c_char, oflag: c_int, mode: u32) -> c_int {
    // SAFETY: the caller's contract, passed on.
    let fd = unsafe { nommu_shm_open(name, oflag, mode) };
    let request = || {
        // SAFETY: the caller's contract: a NUL-terminated string.
        let shown = unsafe { preload::c_text(name) };
        format!("shm_open(\"{shown}\", {oflag:#o})")
    };
    preload::int_call(Call::ShmOpen, request, fd.into()) as c_int
}

/// `int shm_unlink(const char *name)`.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shm_unlink(name: *const c_char) -> c_int {
    // SAFETY: the caller's contract, passed on.
    let rc = unsafe { nommu_shm_unlink(name) };
    let request = || {
        // SAFETY: the caller's contract: a NUL-terminated string.
        let shown = unsafe { preload::c_text(name) };
        format!("shm_unlink(\"{shown}\")")
    };
    preload::int_call(Call::ShmUnlink, request, rc.into()) as c_int
}

c_fn! {
    /// `int futex(int *uaddr, int op, int val, const struct timespec *timeout,
    /// int *uaddr2, int val3)` (glibc has no such function; this one is the
    /// system call's shape).
    ///
    /// # Safety
    /// As [`nommu_futex`].
    #[no_mangle]
    pub [unsafe extern "C"] fn futex as futex(uaddr, op, val, timeout, uaddr2, val3) {
        let served = super::memory::in_arena(uaddr as u64, 4).is_some();
        // SAFETY: the caller's contract, passed on.
        let rc = unsafe { nommu_futex(uaddr, op, val, timeout, uaddr2, val3) };
        if served {
            let request = || format!("futex({:#x}, {op}, {val})", uaddr as usize);
            preload::int_call(Call::Futex, request, rc.into());
        }
        rc
    }
}

c_fn! {
    /// `void *mremap(void *old, size_t old_len, size_t new_len, int flags,
    /// ...)`: counted and traced when the server takes it (arena memory).
    #[no_mangle]
    pub [extern "C"] fn mremap as mremap(old, old_len, new_len, flags, new_address) {
        let served = super::memory::in_arena(old as u64, old_len as u64).is_some();
        let got = nommu_mremap(old, old_len, new_len, flags, new_address);
        if served {
            let request = || {
                format!(
                    "mremap({:#x}, {old_len}, {new_len}, {flags:#x})",
                    old as usize
                )
            };
            preload::pointer_call(Call::Mremap, request, got, 0);
        }
        got
    }
}

/// `int msync(void *addr, size_t len, int flags)`.
#[no_mangle]
pub extern "C" fn msync(addr: *mut c_void, len: usize, flags: c_int) -> c_int {
    nommu_msync(addr, len, flags)
}

/// `int mprotect(void *addr, size_t len, int prot)`.
#[no_mangle]
pub extern "C" fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int {
    nommu_mprotect(addr, len, prot)
}

/// `int madvise(void *addr, size_t len, int advice)`.
#[no_mangle]
pub extern "C" fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int {
    nommu_madvise(addr, len, advice)
}

/// `int mlock(const void *addr, size_t len)`.
#[no_mangle]
pub extern "C" fn mlock(addr: *const c_void, len: usize) -> c_int {
    nommu_mlock(addr, len)
}

/// `int mlock2(const void *addr, size_t len, unsigned int flags)`.
#[no_mangle]
pub extern "C" fn mlock2(addr: *const c_void, len: usize, flags: c_uint) -> c_int {
    nommu_mlock2(addr, len, flags)
}

/// `int munlock(const void *addr, size_t len)`.
#[no_mangle]
pub extern "C" fn munlock(addr: *const c_void, len: usize) -> c_int {
    nommu_munlock(addr, len)
}

/// `int mlockall(int flags)`.
#[no_mangle]
pub extern "C" fn mlockall(flags: c_int) -> c_int {
    nommu_mlockall(flags)
}

/// `int munlockall(void)`.
#[no_mangle]
pub extern "C" fn munlockall() -> c_int {
    nommu_munlockall()
}

/// `int mincore(void *addr, size_t len, unsigned char *vec)`.
///
/// # Safety
/// As [`nommu_mincore`].
#[no_mangle]
pub unsafe extern "C" fn mincore(addr: *mut c_void, len: usize, vec: *mut u8) -> c_int {
    // SAFETY: the caller's contract, passed on.
    unsafe { nommu_mincore(addr, len, vec) }
}
