//! The C ABI for homes without an operating system underneath (feature
//! `c-abi`, `no_std`, no allocation): `mmap`, `munmap`, `mremap`, SysV and
//! POSIX shared memory, the file calls and a futex entry under their libc
//! names, for a C program linked with a freestanding libc (picolibc on the
//! riscv64 board).
//!
//! # Finding the client and `errno`
//!
//! A C function here has no arguments saying which process calls it, so
//! the home registers one [`Home`] once, before any C code runs
//! ([`set_home`]). The home answers two questions for *the calling task*:
//! [`Home::call`] carries one frame over that task's own connection to
//! memsrv (its process: one C task, one connection), and
//! [`Home::set_errno`] stores a value in that task's C `errno`. How the
//! home knows the calling task is its business; the board keeps the
//! connection id and reaches `errno` through the task's thread-local
//! block (picolibc's `errno` is `__thread`), so one registration serves
//! every C task. Each call builds a [`Client`] over the registered home on
//! the stack: the tag restarts per call, which is enough since a
//! connection carries one call at a time.
//!
//! # What the calls do
//!
//! Everything goes to the memory server; there is no other kernel to fall
//! back on. A descriptor is the server's own file descriptor, and a path
//! is the server's path (memsrv's mounts: `/rom`, `/data`, `/dev/shm`, ...).
//! Failures set `errno` to the Linux value (`protocol::Errno`; C code
//! compares with Linux numbers, not with a freestanding libc's own
//! `<errno.h>`, which numbers some differently) and return `MAP_FAILED` or
//! -1; with no home registered a call fails `ENOSYS` without touching
//! `errno` (there is nobody to ask where it is).
//!
//! `open` and `mremap` are variadic in C; they are defined with the mode
//! and the new address as fixed arguments, which the RISC-V and AArch64
//! calling conventions pass in the same register as a variadic one (read
//! only when `O_CREAT`/`O_TMPFILE` or `MREMAP_FIXED` says it was passed).
//! A `FUTEX_WAIT` blocks the calling task until it is woken or times out;
//! its timeout is relative, a `FUTEX_WAIT_BITSET`'s absolute on the
//! server's clock. `shmctl` knows `IPC_STAT`, `IPC_SET` and `IPC_RMID` with
//! the Linux 64-bit `struct shmid_ds` ([`ShmidDs`]). There is no `fstat`:
//! a freestanding libc's `struct stat` is its own, not Linux's.

#[cfg(feature = "host")]
compile_error!(
    "feature `c-abi` is for homes without an OS; a host program uses `host` (and `posix`)"
);

use super::offset_of;
use super::signatures::{c_fn, exported_as};
use crate::abi::{self, MAP_FAILED};
use crate::client::{Client, Transport};
use core::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr};
use core::sync::atomic::{AtomicPtr, Ordering};
use protocol::linux::{
    FUTEX_CMD_MASK, FUTEX_CMP_REQUEUE, FUTEX_REQUEUE, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAKE_OP,
    IPC_RMID, IPC_SET, IPC_STAT,
};
use protocol::{Errno, MAX_FRAME};

/// What the C ABI needs from the home it runs in, for the calling task.
pub trait Home: Sync {
    /// Carry `request` over the calling task's connection to memsrv and
    /// write the reply into `reply`; its length (`ENOTCONN` if the task
    /// has none).
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno>;

    /// Store `errno` (a Linux value) in the calling task's C `errno`.
    fn set_errno(&self, errno: Errno);

    /// The calling task's word for its own malloc state (null until its
    /// first allocation), when the home gives each task one; `None` (the
    /// default) keeps one state for the whole image. A home whose tasks
    /// are processes but share one data segment must give one: each
    /// process's mappings go when it ends.
    fn malloc_slot(&self) -> Option<*mut *mut core::ffi::c_void> {
        None
    }
}

static HOME: AtomicPtr<&'static dyn Home> = AtomicPtr::new(core::ptr::null_mut());

/// Register the home every C call asks (once, before C code runs; a
/// later registration replaces it). Takes a reference to a `&dyn Home` so
/// that one pointer word holds it: `static H: &dyn Home = &MyHome;
/// set_home(&H)`.
pub fn set_home(home: &'static &'static dyn Home) {
    HOME.store(home as *const _ as *mut _, Ordering::Release);
}

fn home() -> Option<&'static dyn Home> {
    let p = HOME.load(Ordering::Acquire);
    // SAFETY: a non-null pointer came from `set_home`, which only takes
    // `&'static` references; it is never written through.
    (!p.is_null()).then(|| unsafe { *p })
}

/// The registered home as a transport.
pub(crate) struct Current(&'static dyn Home);

/// A client for the calling task (the allocator's page source); `None`
/// with no home registered.
#[cfg(feature = "malloc")]
pub(crate) fn current_client() -> Option<Client<Current>> {
    home().map(|h| Client::new(Current(h)))
}

/// The calling task's malloc-state word, if the home gives tasks one.
#[cfg(feature = "malloc")]
pub(crate) fn current_malloc_slot() -> Option<*mut *mut core::ffi::c_void> {
    home().and_then(|h| h.malloc_slot())
}

/// Set the calling task's `errno` (nothing with no home registered).
#[cfg(feature = "malloc")]
pub(crate) fn set_current_errno(errno: Errno) {
    if let Some(home) = home() {
        home.set_errno(errno);
    }
}

impl Transport for Current {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        self.0.call(request, reply)
    }
}

/// Run `f` with a client for the calling task; its error sets `errno`
/// and gives `failed`.
fn with<R>(failed: R, f: impl FnOnce(&Client<Current>) -> Result<R, Errno>) -> R {
    let Some(home) = home() else {
        return failed;
    };
    match f(&Client::new(Current(home))) {
        Ok(v) => v,
        Err(e) => {
            home.set_errno(e);
            failed
        }
    }
}

fn status(result: Result<(), Errno>) -> Result<c_int, Errno> {
    result.map(|()| 0)
}

/// A C string argument as UTF-8 (the server's paths are text).
///
/// # Safety
/// `s` must be null or a NUL-terminated string.
unsafe fn text<'a>(s: *const c_char) -> Result<&'a str, Errno> {
    if s.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
    core::str::from_utf8(bytes).map_err(|_| Errno::ENOENT)
}

// ---- mappings ----

c_fn! {
    /// `void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)`.
    #[no_mangle]
    pub [extern "C"] fn mmap as mmap(addr, len, prot, flags, fd, offset) {
        with(MAP_FAILED, |c| {
            let offset = offset_of(offset)?;
            let at = c.mmap(
                addr as u64,
                len as u64,
                prot as u32,
                flags as u32,
                fd,
                offset,
            )?;
            Ok(at as usize as *mut c_void)
        })
    }
}

/// `int munmap(void *addr, size_t len)`.
#[no_mangle]
pub extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    with(-1, |c| status(c.munmap(addr as u64, len as u64)))
}

c_fn! {
    /// `void *mremap(void *old, size_t old_len, size_t new_len, int flags,
    /// ... /* void *new_address */)`.
    #[no_mangle]
    pub [extern "C"] fn mremap as mremap(old, old_len, new_len, flags, new_address) {
        let new_address = super::mremap_new_address(flags, new_address);
        with(MAP_FAILED, |c| {
            let at = c.mremap(
                old as u64,
                old_len as u64,
                new_len as u64,
                flags as u32,
                new_address,
            )?;
            Ok(at as usize as *mut c_void)
        })
    }
}

// ---- SysV shared memory ----

/// Linux's `struct ipc_perm` on 64-bit targets (asm-generic, as glibc
/// and musl lay it out for riscv64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IpcPerm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
    pub seq: u16,
    pub pad: u16,
    pub reserved: [u64; 2],
}

/// Linux's `struct shmid_ds` on 64-bit targets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ShmidDs {
    pub shm_perm: IpcPerm,
    pub shm_segsz: usize,
    pub shm_atime: i64,
    pub shm_dtime: i64,
    pub shm_ctime: i64,
    pub shm_cpid: i32,
    pub shm_lpid: i32,
    pub shm_nattch: u64,
    pub reserved: [u64; 2],
}

/// `int shmget(key_t key, size_t size, int shmflg)`.
#[no_mangle]
pub extern "C" fn shmget(key: c_int, size: usize, flags: c_int) -> c_int {
    with(-1, |c| c.shmget(key, size as u64, flags))
}

/// `void *shmat(int shmid, const void *shmaddr, int shmflg)`; `(void *)-1`
/// on failure.
#[no_mangle]
pub extern "C" fn shmat(shmid: c_int, addr: *const c_void, flags: c_int) -> *mut c_void {
    with(MAP_FAILED, |c| {
        Ok(c.shmat(shmid, addr as u64, flags)? as usize as *mut c_void)
    })
}

/// `int shmdt(const void *shmaddr)`.
#[no_mangle]
pub extern "C" fn shmdt(addr: *const c_void) -> c_int {
    with(-1, |c| status(c.shmdt(addr as u64)))
}

/// `int shmctl(int shmid, int cmd, struct shmid_ds *buf)`: `IPC_STAT`
/// fills `buf`, `IPC_SET` takes the owner and mode bits from it,
/// `IPC_RMID` ignores it; any other command fails `EINVAL`.
///
/// # Safety
/// `buf` must be null or point to one [`ShmidDs`] (writable for
/// `IPC_STAT`).
#[no_mangle]
pub unsafe extern "C" fn shmctl(shmid: c_int, cmd: c_int, buf: *mut ShmidDs) -> c_int {
    with(-1, |c| match abi::shmctl_cmd(cmd) {
        IPC_RMID => status(c.shm_remove(shmid)),
        IPC_STAT => {
            if buf.is_null() {
                return Err(Errno::EFAULT);
            }
            let stat = c.shm_stat(shmid)?;
            let ds = ShmidDs {
                shm_perm: IpcPerm {
                    key: stat.key,
                    uid: stat.uid,
                    gid: stat.gid,
                    cuid: stat.cuid,
                    cgid: stat.cgid,
                    mode: stat.mode,
                    ..IpcPerm::default()
                },
                shm_segsz: stat.size as usize,
                shm_atime: stat.atime as i64,
                shm_dtime: stat.dtime as i64,
                shm_ctime: stat.ctime as i64,
                shm_cpid: stat.cpid as i32,
                shm_lpid: stat.lpid as i32,
                shm_nattch: stat.nattch,
                reserved: [0; 2],
            };
            // SAFETY: the caller passes a writable struct shmid_ds.
            unsafe { buf.write_unaligned(ds) };
            Ok(0)
        }
        IPC_SET => {
            if buf.is_null() {
                return Err(Errno::EFAULT);
            }
            // SAFETY: the caller passes a readable struct shmid_ds.
            let perm = unsafe { buf.read_unaligned() }.shm_perm;
            status(c.shm_set(shmid, perm.uid, perm.gid, perm.mode & 0o777))
        }
        _ => Err(Errno::EINVAL),
    })
}

// ---- POSIX shared memory ----

/// The `/dev/shm` path of a `shm_open` name.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
unsafe fn shm_name(name: *const c_char) -> Result<([u8; abi::SHM_PATH_MAX], usize), Errno> {
    if name.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: the caller passes a NUL-terminated string.
    abi::shm_path(unsafe { CStr::from_ptr(name) }.to_bytes())
}

/// `int shm_open(const char *name, int oflag, mode_t mode)`: `open` of
/// `/dev/shm/NAME` with `O_NOFOLLOW|O_CLOEXEC` added (memsrv's
/// `/dev/shm` mount, a ramfs, makes `MAP_SHARED` one block for all).
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shm_open(name: *const c_char, oflag: c_int, mode: c_uint) -> c_int {
    with(-1, |c| {
        // SAFETY: the caller's contract, passed on.
        let (path, len) = unsafe { shm_name(name) }?;
        let path = core::str::from_utf8(&path[..len]).map_err(|_| Errno::EINVAL)?;
        let flags = oflag | abi::SHM_OPEN_FLAGS;
        c.open(path, flags as u32, abi::open_mode(flags, mode))
    })
}

/// `int shm_unlink(const char *name)`; mappings of the object stay valid
/// until unmapped.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shm_unlink(name: *const c_char) -> c_int {
    with(-1, |c| {
        // SAFETY: the caller's contract, passed on.
        let (path, len) = unsafe { shm_name(name) }?;
        let path = core::str::from_utf8(&path[..len]).map_err(|_| Errno::EINVAL)?;
        status(c.unlink(path))
    })
}

// ---- files ----

exported_as! {
    [open, open64]
    /// `int open(const char *path, int flags, ...)`, and `open64` with
    /// large-file support (the same call on a 64-bit target).
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    pub [unsafe extern "C"] fn(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
        with(-1, |c| {
            // SAFETY: the caller's contract, passed on.
            let path = unsafe { text(path) }?;
            c.open(path, flags as u32, abi::open_mode(flags, mode))
        })
    }
}

/// `int close(int fd)`.
#[no_mangle]
pub extern "C" fn close(fd: c_int) -> c_int {
    with(-1, |c| status(c.close(fd)))
}

/// `int unlink(const char *path)`.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    with(-1, |c| {
        // SAFETY: the caller's contract, passed on.
        status(c.unlink(unsafe { text(path) }?))
    })
}

/// The caller's buffer as a slice (`EFAULT` for null with a length).
///
/// # Safety
/// `buf` must be writable for `len` bytes when not null.
unsafe fn out<'a>(buf: *mut c_void, len: usize) -> Result<&'a mut [u8], Errno> {
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: the caller passes `len` writable bytes at `buf`.
    Ok(unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
}

/// # Safety
/// `buf` must be readable for `len` bytes when not null.
unsafe fn data<'a>(buf: *const c_void, len: usize) -> Result<&'a [u8], Errno> {
    if len == 0 {
        return Ok(&[]);
    }
    if buf.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: the caller passes `len` readable bytes at `buf`.
    Ok(unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) })
}

/// Linux's cap on one read or write (`MAX_RW_COUNT`).
const MAX_RW: usize = 0x7fff_f000;

/// `ssize_t read(int fd, void *buf, size_t len)`.
///
/// # Safety
/// `buf` must be writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    with(-1, |c| {
        // SAFETY: the caller's contract, passed on.
        let buf = unsafe { out(buf, len.min(MAX_RW)) }?;
        Ok(c.read(fd, buf)? as isize)
    })
}

/// `ssize_t write(int fd, const void *buf, size_t len)`.
///
/// # Safety
/// `buf` must be readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
    with(-1, |c| {
        // SAFETY: the caller's contract, passed on.
        let bytes = unsafe { data(buf, len.min(MAX_RW)) }?;
        Ok(c.write(fd, bytes)? as isize)
    })
}

/// `ssize_t pread(int fd, void *buf, size_t len, off_t offset)`.
///
/// # Safety
/// `buf` must be writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pread(fd: c_int, buf: *mut c_void, len: usize, offset: i64) -> isize {
    with(-1, |c| {
        let at = offset_of(offset)?;
        // SAFETY: the caller's contract, passed on.
        let buf = unsafe { out(buf, len.min(MAX_RW)) }?;
        Ok(c.pread(fd, buf, at)? as isize)
    })
}

/// `ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset)`.
///
/// # Safety
/// `buf` must be readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, len: usize, offset: i64) -> isize {
    with(-1, |c| {
        let at = offset_of(offset)?;
        // SAFETY: the caller's contract, passed on.
        let bytes = unsafe { data(buf, len.min(MAX_RW)) }?;
        Ok(c.pwrite(fd, bytes, at)? as isize)
    })
}

/// `off_t lseek(int fd, off_t offset, int whence)`.
#[no_mangle]
pub extern "C" fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64 {
    with(-1, |c| {
        let whence = u32::try_from(whence).map_err(|_| Errno::EINVAL)?;
        let pos = c.lseek(fd, offset, whence)?;
        i64::try_from(pos).map_err(|_| Errno::EOVERFLOW)
    })
}

exported_as! {
    [ftruncate, ftruncate64]
    /// `int ftruncate(int fd, off_t len)`, and `ftruncate64` with a 64-bit
    /// length.
    pub [extern "C"] fn(fd: c_int, len: i64) -> c_int {
        with(-1, |c| status(c.ftruncate(fd, offset_of(len)?)))
    }
}

// ---- futexes ----

/// Linux's `struct timespec` on 64-bit targets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: c_long,
}

/// `long nommu_futex(uint32_t *uaddr, int op, uint32_t val, const struct
/// timespec *timeout, uint32_t *uaddr2, uint32_t val3)`: the futex system
/// call's shape (a freestanding libc has no `syscall`). `timeout` is read
/// as a `struct timespec` for the waits and as the count `val2` for
/// `FUTEX_REQUEUE`/`FUTEX_CMP_REQUEUE`/`FUTEX_WAKE_OP`, as Linux reads it. Returns what
/// the server answered (0 for a wait, the number woken or requeued), or
/// -1 with `errno` (`EAGAIN`: the word did not hold `val`; `ETIMEDOUT`).
///
/// # Safety
/// `timeout` must be null or readable for one [`Timespec`] when the
/// operation reads it as one.
#[no_mangle]
pub unsafe extern "C" fn nommu_futex(
    uaddr: *mut u32,
    op: c_int,
    val: u32,
    timeout: *const Timespec,
    uaddr2: *mut u32,
    val3: u32,
) -> c_long {
    let cmd = op as u32 & FUTEX_CMD_MASK;
    with(-1, |c| {
        let (timeout_ns, val2) = match cmd {
            FUTEX_WAIT | FUTEX_WAIT_BITSET if !timeout.is_null() => {
                // SAFETY: the caller passes a readable timespec for a wait.
                let ts = unsafe { timeout.read_unaligned() };
                (Some(abi::timespec_ns(ts.tv_sec, ts.tv_nsec)?), 0)
            }
            FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP => (None, timeout as usize as u32),
            _ => (None, 0),
        };
        let v = c.futex(
            uaddr as u64,
            op as u32,
            val,
            timeout_ns,
            val2,
            uaddr2 as u64,
            val3,
        )?;
        Ok(v as c_long)
    })
}
