//! Every system call the shim makes, and every other call into the host C
//! library, goes through this module: no other module of the crate calls a
//! `libc` function (they use its types, constants and pure helpers such as
//! `makedev` only). Callers get safe functions over integers, atomics and
//! owned descriptors where the call can be made safe, and small
//! `unsafe fn`s with their contract written down where it cannot (the
//! [`host`] calls on a C caller's pointers). [`socket`] holds the
//! `SOCK_SEQPACKET` calls, [`user`] the copies from and to memory a C
//! caller handed the shim (`EFAULT` for a bad pointer, never a fault).
//!
//! System calls are made with `syscall(SYS_..)`, never through the libc
//! symbol of the same name, wherever the library exports that name itself:
//! with feature `posix` this library *is* `mmap`, `open`, `read`, `write`,
//! `fstat`, `fcntl`, `ftruncate`, `lseek`, `close`, `futex`, `mremap`, ...,
//! and calling one of those would come back into the library (or recurse).
//! The calls made through libc symbols (`getenv`, `sched_getcpu`, `poll`
//! and the socket calls) are names the library does not export. One
//! exception is deliberate: a descriptor the library owns is closed by
//! `OwnedFd`'s drop through the `close` symbol, which is the library's own
//! `close` when it exports it, and that hands any descriptor that is not
//! a server file straight to the host.

pub mod socket;
pub mod user;

use core::sync::atomic::AtomicU32;
use protocol::Errno;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// The calling thread's `errno` as a protocol errno.
pub fn last_errno() -> Errno {
    let raw = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    Errno(u16::try_from(raw).unwrap_or(Errno::EIO.0))
}

/// The value of environment variable `name`, read with the C library's
/// `getenv` (no allocation, no lock: usable from inside the C entry
/// points before anything else is set up).
pub fn getenv(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: `name` is NUL terminated; getenv returns null or a
    // NUL-terminated string owned by the environment.
    let raw = unsafe { libc::getenv(name.as_ptr()) };
    if raw.is_null() {
        return None;
    }
    // SAFETY: non-null, so a NUL-terminated string. The environment keeps
    // it while no one calls `setenv`/`putenv` on this name; the shim reads
    // its variables once per connection and copies them at once.
    Some(unsafe { CStr::from_ptr(raw) }.to_bytes())
}

/// Store `errno` for a C caller.
pub(crate) fn set_errno(errno: Errno) {
    // SAFETY: `__errno_location` returns the calling thread's errno slot,
    // valid for the life of the thread.
    unsafe { *libc::__errno_location() = errno.as_i32() };
}

fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

fn owned(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Map `len` bytes of `fd` shared and read-write, anywhere or exactly at
/// `at`. A fixed address is asked for with `MAP_FIXED_NOREPLACE`, so an
/// existing mapping is never replaced: a taken address fails with `EEXIST`.
pub fn map_shared(fd: BorrowedFd<'_>, len: usize, at: Option<usize>) -> Result<usize, Errno> {
    let (hint, extra) = match at {
        Some(addr) => (addr, libc::MAP_FIXED_NOREPLACE),
        None => (0, 0),
    };
    // SAFETY: without MAP_FIXED the kernel only places the mapping in free
    // address space (MAP_FIXED_NOREPLACE fails instead of replacing), so no
    // memory anyone uses is touched.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mmap,
            hint,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | extra,
            fd.as_raw_fd(),
            0usize,
        )
    };
    let addr = check(ret)? as usize;
    if at.is_some_and(|want| want != addr) {
        // A kernel older than 4.17 ignores MAP_FIXED_NOREPLACE and treats
        // the address as a hint: undo and report the address as taken.
        // SAFETY: `[addr, addr+len)` is the mapping just created above.
        unsafe { unmap(addr, len) };
        return Err(Errno::EEXIST);
    }
    Ok(addr)
}

/// Remove a mapping made by [`map_shared`].
///
/// # Safety
/// `[addr, addr+len)` must be a mapping the caller owns and nothing may use
/// it afterwards.
pub(crate) unsafe fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller owns the range (this function's contract).
    unsafe { libc::syscall(libc::SYS_munmap, addr, len) };
}

/// This process's effective uid and gid, as the host kernel has them now.
pub fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid/getegid cannot fail and touch no memory.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// The process's file mode creation mask, read without changing it (the
/// host has no call that only reads it: set and put back at once).
pub fn umask() -> u32 {
    // SAFETY: umask cannot fail and touches no memory.
    unsafe {
        let old = libc::umask(0);
        libc::umask(old);
        old & 0o777
    }
}

/// The next definition of the C symbol `name` after this library's in
/// lookup order (`dlsym(RTLD_NEXT, name)`), null if there is none.
pub fn next_symbol(name: &CStr) -> *mut core::ffi::c_void {
    // SAFETY: a lookup of a symbol by NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

/// A memory file of `len` bytes, sealed against shrinking and growing so a
/// peer holding it cannot pull pages out from under our mapping (which
/// would turn our next access into SIGBUS).
pub fn sealed_memfd(name: &CStr, len: u64) -> Result<OwnedFd, Errno> {
    // SAFETY: `name` is a valid NUL-terminated string.
    let fd = owned(unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            name.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        ) as libc::c_int
    })?;
    let size = libc::off_t::try_from(len).map_err(|_| Errno::EINVAL)?;
    // SAFETY: plain calls on a descriptor we own.
    unsafe {
        check(libc::syscall(libc::SYS_ftruncate, fd.as_raw_fd(), size))?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        check(libc::syscall(
            libc::SYS_fcntl,
            fd.as_raw_fd(),
            libc::F_ADD_SEALS,
            seals,
        ))?;
    }
    Ok(fd)
}

/// Size, device and inode of an open file.
pub fn file_identity(fd: BorrowedFd<'_>) -> Result<(u64, u64, u64), Errno> {
    let mut st = core::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a writable stat buffer; fstat fills it on success.
    check(unsafe { libc::syscall(libc::SYS_fstat, fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so the buffer is initialised (it was zeroed
    // before in any case).
    let st = unsafe { st.assume_init() };
    Ok((st.st_size as u64, st.st_dev, st.st_ino))
}

/// A non-blocking eventfd: the doorbell a client rings to wake a daemon
/// thread that flagged itself asleep.
pub fn eventfd() -> Result<OwnedFd, Errno> {
    // SAFETY: plain call; the result is checked by `owned`.
    owned(unsafe {
        libc::syscall(
            libc::SYS_eventfd2,
            0,
            libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
        ) as libc::c_int
    })
}

/// Ring an eventfd doorbell.
pub fn eventfd_ring(fd: BorrowedFd<'_>) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live local buffer. A full counter
    // (EAGAIN) already means "ringing", so the result does not matter.
    unsafe { libc::syscall(libc::SYS_write, fd.as_raw_fd(), one.as_ptr(), one.len()) };
}

/// Reset an eventfd doorbell.
pub fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live local buffer; the fd is
    // non-blocking, and an empty counter (EAGAIN) is the expected outcome.
    unsafe { libc::syscall(libc::SYS_read, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
}

/// Sleep while `word` holds `expected`, at most `timeout`. Works across
/// processes (a non-private futex on a shared mapping). Returns on a wake,
/// a changed value, a signal or the timeout alike; the caller rechecks.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the kernel only reads the word (alive for the borrow) and
    // the timespec (a live local).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

/// Wake every thread sleeping in [`futex_wait`] on `word`, in any process.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the word's address as a key.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// The time on `clock` (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`, ...).
pub fn clock_now(clock: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the kernel writes one timespec into a live local.
    unsafe {
        libc::syscall(
            libc::SYS_clock_gettime,
            clock,
            &mut ts as *mut libc::timespec,
        )
    };
    ts
}

/// The CPU the calling thread runs on, `None` where the host cannot tell.
pub fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu takes no arguments and only reads the vDSO.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// `poll` over `fds` for at most `timeout_ms` (-1: no limit); returns how
/// many descriptors are ready. `EINTR` counts as "none ready".
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    // SAFETY: `fds` is a live, writable slice of pollfd of the given length.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    match check(ret.into()) {
        Ok(n) => Ok(n as usize),
        Err(Errno(e)) if i32::from(e) == libc::EINTR => Ok(0),
        Err(e) => Err(e),
    }
}

/// Register handlers the C library runs around `fork()`: `prepare` in
/// the forking thread before the fork, `parent` in it after, `child` in
/// the child's only thread after.
pub fn at_fork(
    prepare: unsafe extern "C" fn(),
    parent: unsafe extern "C" fn(),
    child: unsafe extern "C" fn(),
) -> Result<(), Errno> {
    // SAFETY: three functions that live as long as the program (they are
    // `fn` items of this library).
    let ret = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if ret == 0 {
        Ok(())
    } else {
        Err(Errno(u16::try_from(ret).unwrap_or(Errno::EIO.0)))
    }
}

/// The host kernel's calls that the C surface passes a C caller's
/// arguments on to (file calls, futexes, `mremap`, the small memory
/// calls), reached with `syscall` (never through the library's own
/// exported names). Each returns what the kernel returned, -1 with `errno`
/// set on failure, like the libc call of the same name.
pub mod host {
    use core::ffi::{c_char, c_int, c_void};

    /// `openat(dirfd, path, flags, mode)`.
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string (or a pointer the kernel may
    /// fault on: it then fails `EFAULT`).
    pub unsafe fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: u32) -> c_int {
        // SAFETY: the kernel reads the path (the caller's contract) and
        // takes the rest as integers.
        unsafe { libc::syscall(libc::SYS_openat, dirfd, path, flags, mode) as c_int }
    }

    /// `close(fd)`.
    pub fn close(fd: c_int) -> c_int {
        // SAFETY: closing a descriptor touches no memory of ours; closing
        // one that is in use is the caller's business, as with close(2).
        unsafe { libc::syscall(libc::SYS_close, fd) as c_int }
    }

    /// `read(fd, buf, len)`.
    ///
    /// # Safety
    /// `buf` must be writable for `len` bytes.
    pub unsafe fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
        // SAFETY: the kernel writes at most `len` bytes at `buf`.
        unsafe { libc::syscall(libc::SYS_read, fd, buf, len) as isize }
    }

    /// `write(fd, buf, len)`.
    ///
    /// # Safety
    /// `buf` must be readable for `len` bytes.
    pub unsafe fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
        // SAFETY: the kernel reads at most `len` bytes at `buf`.
        unsafe { libc::syscall(libc::SYS_write, fd, buf, len) as isize }
    }

    /// `pread(fd, buf, len, offset)`.
    ///
    /// # Safety
    /// As [`read()`].
    pub unsafe fn pread(fd: c_int, buf: *mut c_void, len: usize, offset: i64) -> isize {
        // SAFETY: as `read`.
        unsafe { libc::syscall(libc::SYS_pread64, fd, buf, len, offset) as isize }
    }

    /// `pwrite(fd, buf, len, offset)`.
    ///
    /// # Safety
    /// As [`write()`].
    pub unsafe fn pwrite(fd: c_int, buf: *const c_void, len: usize, offset: i64) -> isize {
        // SAFETY: as `write`.
        unsafe { libc::syscall(libc::SYS_pwrite64, fd, buf, len, offset) as isize }
    }

    /// `ftruncate(fd, len)`.
    pub fn ftruncate(fd: c_int, len: i64) -> c_int {
        // SAFETY: integers only.
        unsafe { libc::syscall(libc::SYS_ftruncate, fd, len) as c_int }
    }

    /// `lseek(fd, offset, whence)`.
    pub fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64 {
        // SAFETY: integers only.
        unsafe { libc::syscall(libc::SYS_lseek, fd, offset, whence) as i64 }
    }

    /// `fstat(fd, st)`.
    ///
    /// # Safety
    /// `st` must be writable for one `struct stat`.
    pub unsafe fn fstat(fd: c_int, st: *mut libc::stat) -> c_int {
        // SAFETY: the kernel writes one struct stat at `st`.
        unsafe { libc::syscall(libc::SYS_fstat, fd, st) as c_int }
    }

    /// `fcntl(fd, F_GETFL)`.
    pub fn getfl(fd: c_int) -> c_int {
        // SAFETY: integers only.
        unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) as c_int }
    }

    /// `fcntl(fd, cmd, arg)`: `arg` as the kernel takes it (an integer or
    /// a pointer, pointer-sized).
    ///
    /// # Safety
    /// When `cmd` takes a pointer, `arg` must point to what the command
    /// reads or writes.
    pub unsafe fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
        // SAFETY: the caller's contract for pointer commands.
        unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, arg) as c_int }
    }

    /// `fstatat(AT_FDCWD, path, st, flags)` (`stat`, or `lstat` with
    /// `AT_SYMLINK_NOFOLLOW`).
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string and `st` writable for one
    /// `struct stat`.
    pub unsafe fn stat_at(path: *const c_char, st: *mut libc::stat, flags: c_int) -> c_int {
        // SAFETY: the kernel reads the path and writes one struct stat.
        unsafe { libc::syscall(libc::SYS_newfstatat, libc::AT_FDCWD, path, st, flags) as c_int }
    }

    /// `access(path, mode)`.
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    pub unsafe fn access(path: *const c_char, mode: c_int) -> c_int {
        // SAFETY: the kernel reads the path.
        unsafe { libc::syscall(libc::SYS_faccessat, libc::AT_FDCWD, path, mode) as c_int }
    }

    /// `unlink(path)`.
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    pub unsafe fn unlink(path: *const c_char) -> c_int {
        // SAFETY: the kernel reads the path.
        unsafe { libc::syscall(libc::SYS_unlinkat, libc::AT_FDCWD, path, 0) as c_int }
    }

    /// `fsync(fd)`, or `fdatasync(fd)` when `data_only`.
    pub fn fsync(fd: c_int, data_only: bool) -> c_int {
        let nr = if data_only {
            libc::SYS_fdatasync
        } else {
            libc::SYS_fsync
        };
        // SAFETY: integers only.
        unsafe { libc::syscall(nr, fd) as c_int }
    }

    /// `fchmod(fd, mode)`.
    pub fn fchmod(fd: c_int, mode: u32) -> c_int {
        // SAFETY: integers only.
        unsafe { libc::syscall(libc::SYS_fchmod, fd, mode) as c_int }
    }

    /// `fchown(fd, uid, gid)`.
    pub fn fchown(fd: c_int, uid: u32, gid: u32) -> c_int {
        // SAFETY: integers only.
        unsafe { libc::syscall(libc::SYS_fchown, fd, uid, gid) as c_int }
    }

    /// `fchmodat(dirfd, path, mode)` (no flags: the system call has none).
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    pub unsafe fn fchmodat(dirfd: c_int, path: *const c_char, mode: u32) -> c_int {
        // SAFETY: the kernel reads the path.
        unsafe { libc::syscall(libc::SYS_fchmodat, dirfd, path, mode) as c_int }
    }

    /// `fchmodat2(dirfd, path, mode, flags)` (Linux 6.6; `ENOSYS` before).
    ///
    /// # Safety
    /// `path` must be a NUL-terminated string.
    pub unsafe fn fchmodat2(dirfd: c_int, path: *const c_char, mode: u32, flags: c_int) -> c_int {
        /// Its number on every architecture (the asm-generic table).
        const SYS_FCHMODAT2: libc::c_long = 452;
        // SAFETY: the kernel reads the path.
        unsafe { libc::syscall(SYS_FCHMODAT2, dirfd, path, mode, flags) as c_int }
    }

    crate::capi::signatures::c_fn! {
        /// `fchownat(dirfd, path, uid, gid, flags)`.
        ///
        /// # Safety
        /// `path` must be a NUL-terminated string.
        pub [unsafe] fn fchownat as fchownat(dirfd, path, uid, gid, flags) {
            // SAFETY: the kernel reads the path.
            unsafe { libc::syscall(libc::SYS_fchownat, dirfd, path, uid, gid, flags) as c_int }
        }
    }

    crate::capi::signatures::c_fn! {
        /// `futex(uaddr, op, val, timeout, uaddr2, val3)` on host memory.
        ///
        /// # Safety
        /// The pointers must be what `op` reads or writes (the kernel checks
        /// that they are mapped and fails `EFAULT` otherwise; a wait or wake
        /// touches only the words).
        pub [unsafe] fn futex as futex(uaddr, op, val, timeout, uaddr2, val3) {
            // SAFETY: the caller's contract; the kernel checks every pointer.
            unsafe {
                libc::syscall(libc::SYS_futex, uaddr, op, val, timeout, uaddr2, val3) as c_int
            }
        }
    }

    /// The host kernel's own `mmap(addr, len, prot, flags, fd, offset)`.
    ///
    /// # Safety
    /// With `MAP_FIXED` the mapping replaces whatever lay at `addr`: the
    /// caller must own that range, as with mmap(2).
    pub unsafe fn mmap(
        addr: usize,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        offset: i64,
    ) -> *mut c_void {
        // SAFETY: the caller's contract; the kernel checks every argument.
        let got = unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, offset) };
        got as usize as *mut c_void
    }

    /// The host kernel's own `munmap(addr, len)`.
    ///
    /// # Safety
    /// Nothing may use `[addr, addr+len)` afterwards: the caller must own
    /// it, as with munmap(2).
    pub unsafe fn munmap(addr: usize, len: usize) -> c_int {
        // SAFETY: the caller's contract; the kernel checks the range.
        unsafe { libc::syscall(libc::SYS_munmap, addr, len) as c_int }
    }

    /// `mremap(old, old_len, new_len, flags, new_address)`; the new
    /// address, or `usize::MAX` (`MAP_FAILED`) with `errno` set.
    ///
    /// # Safety
    /// Moving or shrinking a mapping invalidates whatever pointed into
    /// the old range: the caller must own it, as with mremap(2).
    pub unsafe fn mremap(
        old: usize,
        old_len: usize,
        new_len: usize,
        flags: c_int,
        new_address: usize,
    ) -> usize {
        // SAFETY: the caller owns the range (this function's contract);
        // the kernel checks the addresses.
        unsafe {
            libc::syscall(libc::SYS_mremap, old, old_len, new_len, flags, new_address) as usize
        }
    }

    /// One of the small memory calls on host memory: `nr` is
    /// `SYS_msync`, `SYS_mprotect`, `SYS_madvise`, `SYS_mlock`,
    /// `SYS_mlock2` or `SYS_munlock`, called as `(addr, len, arg)`.
    ///
    /// # Safety
    /// `mprotect` and `madvise` change what the range's memory does: the
    /// caller must own `[addr, addr+len)`, as with those calls.
    pub unsafe fn range_call(nr: libc::c_long, addr: *mut c_void, len: usize, arg: u32) -> c_int {
        // SAFETY: the caller's contract; no memory of ours is passed.
        unsafe { libc::syscall(nr, addr, len, arg) as c_int }
    }

    /// `mincore(addr, len, vec)`.
    ///
    /// # Safety
    /// `vec` must be writable for one byte per page of the range (the
    /// kernel faults `EFAULT` on an unmapped one).
    pub unsafe fn mincore(addr: *mut c_void, len: usize, vec: *mut u8) -> c_int {
        // SAFETY: the kernel writes one byte a page at `vec`.
        unsafe { libc::syscall(libc::SYS_mincore, addr, len, vec) as c_int }
    }
}
