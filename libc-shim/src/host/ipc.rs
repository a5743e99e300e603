//! Shared memory, futexes, `mremap` and the small memory calls of the C
//! ABI (`nommu_shmget`, `nommu_futex`, `nommu_mremap`, ...), always
//! exported; `posix` re-exports them under their libc names.
//!
//! Addresses: a call on memory inside the arena goes to the memory server;
//! a call wholly outside it (the program's own stack, static data, memory
//! the host libc mapped) goes to the host kernel with a raw `syscall`, so
//! linking the library never breaks a program's calls on host memory.
//!
//! Futex waits. A `FUTEX_WAIT`/`FUTEX_WAIT_BITSET` is answered only when
//! the word is woken or the wait times out, and a connection carries one
//! call at a time. So a waiting thread never uses the process-wide
//! connection: it takes a connection of its own from a small pool of
//! secondary connections (making one the first time), waits on it and puts
//! it back. A secondary connection is made without a clone ticket from the
//! same host pid, so the daemon binds it to the same process (one address
//! space, one futex key space); it costs one daemon thread while it
//! exists, and the pool keeps at most as many as were ever waiting at
//! once. Every other call (wakes, requeues) goes over the main connection.

use super::capi::{global, open_connection};
use super::connection::Connection;
use super::fileapi::open_at;
use super::files::{route_path, Route};
use super::sys::set_errno;
use crate::abi::{self, MAP_FAILED, SHM_PATH_MAX};
use crate::client::Client;
use core::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr};
use protocol::linux::{
    FUTEX_CLOCK_REALTIME, FUTEX_CMD_MASK, FUTEX_CMP_REQUEUE, FUTEX_REQUEUE, FUTEX_WAIT,
    FUTEX_WAIT_BITSET, MREMAP_FIXED,
};
use protocol::{Errno, MemoryCall, PAGE_SIZE};
use std::sync::Mutex;

/// Idle secondary connections for futex waiters.
static WAITERS: Mutex<Vec<Client<Connection>>> = Mutex::new(Vec::new());

fn fail<T>(e: Errno, value: T) -> T {
    set_errno(e);
    value
}

fn status(result: Result<(), Errno>) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => fail(e, -1),
    }
}

/// Whether `[addr, addr+len)` touches the arena (connecting if need be;
/// no daemon means no arena, and the host takes the call).
fn in_arena(addr: u64, len: u64) -> Option<&'static Client<Connection>> {
    let client = global().ok()?;
    let (base, size) = client.transport().arena();
    let end = addr.saturating_add(len.max(1));
    (addr < base.saturating_add(size) && end > base).then_some(client)
}

/// A raw host syscall's result as the C call returns it (errno set by
/// `syscall` itself).
fn host_int(ret: c_long) -> c_int {
    ret as c_int
}

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
/// `IPC_STAT`).
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
            if buf.is_null() {
                return fail(Errno::EFAULT, -1);
            }
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
            // SAFETY: the caller passes a writable struct shmid_ds.
            unsafe { buf.write(ds) };
            0
        }
        libc::IPC_SET => {
            if buf.is_null() {
                return fail(Errno::EFAULT, -1);
            }
            // SAFETY: the caller passes a readable struct shmid_ds.
            let perm = unsafe { (*buf).shm_perm };
            status(client.shm_set(shmid, perm.uid, perm.gid, u32::from(perm.mode) & 0o777))
        }
        libc::SHM_LOCK | libc::SHM_UNLOCK => status(client.shm_lock(shmid, cmd == libc::SHM_LOCK)),
        _ => fail(Errno::EINVAL, -1),
    }
}

// ---- POSIX shared memory ----

/// `/dev/shm/NAME` for a C `shm_open` name ([`crate::abi::shm_path`]).
fn shm_path(name: *const c_char) -> Result<([u8; SHM_PATH_MAX], usize), Errno> {
    if name.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: the C caller passes a NUL-terminated name.
    abi::shm_path(unsafe { CStr::from_ptr(name) }.to_bytes())
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
        Route::Server(client, normal) => {
            let Some(text) = normal.as_str() else {
                return fail(Errno::ENOENT, -1);
            };
            status(client.unlink(text))
        }
        // SAFETY: the kernel reads the NUL-terminated path.
        Route::Host => {
            host_int(unsafe { libc::syscall(libc::SYS_unlinkat, libc::AT_FDCWD, path.as_ptr(), 0) })
        }
    }
}

// ---- futexes ----

fn timespec_ns(ts: &libc::timespec) -> Result<u64, Errno> {
    abi::timespec_ns(ts.tv_sec, ts.tv_nsec)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
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
    timespec_ns(&ts).unwrap_or(0)
}

/// `int futex(int *uaddr, int op, int val, const struct timespec *timeout,
/// int *uaddr2, int val3)`.
///
/// A word inside the arena goes to the memory server (so two processes
/// attached to one segment meet on it); any other word to the host
/// kernel. `timeout` is relative for `FUTEX_WAIT`, absolute for
/// `FUTEX_WAIT_BITSET` (`CLOCK_MONOTONIC`, or `CLOCK_REALTIME` with
/// `FUTEX_CLOCK_REALTIME`; sent to the server as an absolute
/// `CLOCK_MONOTONIC` time), and for `FUTEX_REQUEUE`/`FUTEX_CMP_REQUEUE`
/// carries `val2` as a number, as Linux reads it. A wait blocks only the
/// calling thread (see the module docs).
///
/// # Safety
/// `timeout` must be null or readable for one `struct timespec` when the
/// operation reads it as one.
#[no_mangle]
pub unsafe extern "C" fn nommu_futex(
    uaddr: *mut c_int,
    op: c_int,
    val: c_int,
    timeout: *const libc::timespec,
    uaddr2: *mut c_int,
    val3: c_int,
) -> c_int {
    let Some(client) = in_arena(uaddr as u64, 4) else {
        // SAFETY: the host kernel checks every pointer itself.
        return host_int(unsafe {
            libc::syscall(libc::SYS_futex, uaddr, op, val, timeout, uaddr2, val3)
        });
    };
    let cmd = op as u32 & FUTEX_CMD_MASK;
    let read_timeout = || -> Result<Option<u64>, Errno> {
        if timeout.is_null() {
            return Ok(None);
        }
        // SAFETY: the caller passes a readable timespec for a wait.
        let ts = unsafe { timeout.read_unaligned() };
        timespec_ns(&ts).map(Some)
    };
    let (timeout_ns, val2) = match cmd {
        FUTEX_WAIT => match read_timeout() {
            Ok(t) => (t, 0),
            Err(e) => return fail(e, -1),
        },
        FUTEX_WAIT_BITSET => match read_timeout() {
            Ok(Some(abs)) if op as u32 & FUTEX_CLOCK_REALTIME != 0 => {
                let (real, mono) = (
                    clock_ns(libc::CLOCK_REALTIME),
                    clock_ns(libc::CLOCK_MONOTONIC),
                );
                (Some(mono.saturating_add(abs.saturating_sub(real))), 0)
            }
            Ok(t) => (t, 0),
            Err(e) => return fail(e, -1),
        },
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => (None, timeout as usize as u32),
        _ => (None, 0),
    };
    let call = |c: &Client<Connection>| {
        c.futex(
            uaddr as u64,
            op as u32,
            val as u32,
            timeout_ns,
            val2,
            uaddr2 as u64,
            val3 as u32,
        )
    };
    let result = if cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET {
        wait_on_own_connection(call)
    } else {
        call(client)
    };
    match result {
        Ok(v) => v as c_int,
        Err(e) => fail(e, -1),
    }
}

/// Run a blocking call on a secondary connection of this process, taken
/// from the pool (or made) and put back afterwards unless it broke.
fn wait_on_own_connection(
    call: impl FnOnce(&Client<Connection>) -> Result<i64, Errno>,
) -> Result<i64, Errno> {
    let idle = WAITERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let client = match idle {
        Some(c) => c,
        None => Client::new(open_connection()?),
    };
    let result = call(&client);
    if result != Err(Errno::ENOTCONN) {
        WAITERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(client);
    }
    result
}

// ---- mremap and the small memory calls ----

/// `void *mremap(void *old, size_t old_len, size_t new_len, int flags,
/// ... /* void *new_address */)`: `new_address` is read only with
/// `MREMAP_FIXED`. Arena mappings go to the server (which may move a
/// private anonymous mapping with `MREMAP_MAYMOVE` unless it runs
/// `--strict-mremap`); others to the host.
#[no_mangle]
pub extern "C" fn nommu_mremap(
    old: *mut c_void,
    old_len: usize,
    new_len: usize,
    flags: c_int,
    new_address: *mut c_void,
) -> *mut c_void {
    let new_address = if flags as u32 & MREMAP_FIXED != 0 {
        new_address
    } else {
        core::ptr::null_mut()
    };
    let Some(client) = in_arena(old as u64, old_len as u64) else {
        // SAFETY: the host kernel checks the addresses itself.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mremap,
                old as usize,
                old_len,
                new_len,
                flags,
                new_address as usize,
            )
        };
        return if ret == -1 {
            MAP_FAILED
        } else {
            ret as usize as *mut c_void
        };
    };
    match client.mremap(
        old as u64,
        old_len as u64,
        new_len as u64,
        flags as u32,
        new_address as u64,
    ) {
        Ok(at) => at as usize as *mut c_void,
        Err(e) => fail(e, MAP_FAILED),
    }
}

/// One small memory call: to the server for an arena range, else the host
/// syscall `sys` with `(addr, len, arg)`.
fn memory_call(call: MemoryCall, sys: c_long, addr: *mut c_void, len: usize, arg: c_uint) -> c_int {
    match in_arena(addr as u64, len as u64) {
        Some(client) => status(client.memory_call(call, addr as u64, len as u64, arg)),
        // SAFETY: the host kernel checks the range itself; no memory of
        // ours is passed.
        None => host_int(unsafe { libc::syscall(sys, addr, len, arg) }),
    }
}

/// `int msync(void *addr, size_t len, int flags)`.
#[no_mangle]
pub extern "C" fn nommu_msync(addr: *mut c_void, len: usize, flags: c_int) -> c_int {
    memory_call(
        MemoryCall::Msync,
        libc::SYS_msync,
        addr,
        len,
        flags as c_uint,
    )
}

/// `int mprotect(void *addr, size_t len, int prot)`.
#[no_mangle]
pub extern "C" fn nommu_mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int {
    memory_call(
        MemoryCall::Mprotect,
        libc::SYS_mprotect,
        addr,
        len,
        prot as c_uint,
    )
}

/// `int madvise(void *addr, size_t len, int advice)`.
#[no_mangle]
pub extern "C" fn nommu_madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int {
    memory_call(
        MemoryCall::Madvise,
        libc::SYS_madvise,
        addr,
        len,
        advice as c_uint,
    )
}

/// `int mlock(const void *addr, size_t len)`.
#[no_mangle]
pub extern "C" fn nommu_mlock(addr: *const c_void, len: usize) -> c_int {
    memory_call(MemoryCall::Mlock, libc::SYS_mlock, addr.cast_mut(), len, 0)
}

/// `int mlock2(const void *addr, size_t len, unsigned int flags)`.
#[no_mangle]
pub extern "C" fn nommu_mlock2(addr: *const c_void, len: usize, flags: c_uint) -> c_int {
    memory_call(
        MemoryCall::Mlock2,
        libc::SYS_mlock2,
        addr.cast_mut(),
        len,
        flags,
    )
}

/// `int munlock(const void *addr, size_t len)`.
#[no_mangle]
pub extern "C" fn nommu_munlock(addr: *const c_void, len: usize) -> c_int {
    memory_call(
        MemoryCall::Munlock,
        libc::SYS_munlock,
        addr.cast_mut(),
        len,
        0,
    )
}

/// `int mlockall(int flags)`: the server's mappings of this process only
/// (host memory is not locked).
#[no_mangle]
pub extern "C" fn nommu_mlockall(flags: c_int) -> c_int {
    status(global().and_then(|c| c.memory_call(MemoryCall::Mlockall, 0, 0, flags as u32)))
}

/// `int munlockall(void)`: the server's mappings of this process only.
#[no_mangle]
pub extern "C" fn nommu_munlockall() -> c_int {
    status(global().and_then(|c| c.memory_call(MemoryCall::Munlockall, 0, 0, 0)))
}

/// `int mincore(void *addr, size_t len, unsigned char *vec)`: one byte a
/// page (bit 0 set: resident — always, on no-MMU).
///
/// # Safety
/// `vec` must be writable for one byte per page of `[addr, addr+len)`.
#[no_mangle]
pub unsafe extern "C" fn nommu_mincore(addr: *mut c_void, len: usize, vec: *mut u8) -> c_int {
    let Some(client) = in_arena(addr as u64, len as u64) else {
        // SAFETY: the kernel writes the page bytes, checking `vec` itself.
        return host_int(unsafe { libc::syscall(libc::SYS_mincore, addr, len, vec) });
    };
    let pages = (len as u64).div_ceil(PAGE_SIZE);
    if vec.is_null() && pages != 0 {
        return fail(Errno::EFAULT, -1);
    }
    let Ok(count) = usize::try_from(pages) else {
        return fail(Errno::ENOMEM, -1);
    };
    let out: &mut [u8] = if count == 0 {
        &mut []
    } else {
        // SAFETY: the caller passes one writable byte per page.
        unsafe { core::slice::from_raw_parts_mut(vec, count) }
    };
    status(client.mincore(addr as u64, len as u64, PAGE_SIZE, out))
}
