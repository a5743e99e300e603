//! `mremap` and the small memory calls of the host C surface
//! (`nommu_mremap`, `nommu_msync`, `nommu_mprotect`, `nommu_madvise`,
//! `nommu_mlock*`, `nommu_munlock*`, `nommu_mincore`), always exported;
//! `posix` re-exports them under their libc names.
//!
//! Addresses: a call on memory inside the arena goes to the memory server;
//! a call wholly outside it (the program's own stack, static data, memory
//! the host libc mapped) goes to the host kernel by system call, so
//! linking the library never breaks a program's calls on host memory.
//! `in_arena` decides, for futexes too. The host's calls are those of
//! [`crate::sys::host`].

use super::process::global;
use super::{fail, status};
use crate::abi::MAP_FAILED;
use crate::capi::signatures::c_fn;
use crate::client::Client;
use crate::sys::{host, user};
use crate::transport::DaemonConnection;
use core::ffi::{c_int, c_long, c_uint, c_void};
use protocol::{Errno, MemoryCall, PAGE_SIZE};

/// Whether `[addr, addr+len)` touches the arena (connecting if need be;
/// no daemon means no arena, and the host takes the call).
pub(crate) fn in_arena(addr: u64, len: u64) -> Option<&'static Client<DaemonConnection>> {
    let client = global().ok()?;
    let (base, size) = client.transport().arena();
    let end = addr.saturating_add(len.max(1));
    (addr < base.saturating_add(size) && end > base).then_some(client)
}

c_fn! {
    /// `void *mremap(void *old, size_t old_len, size_t new_len, int flags,
    /// ... /* void *new_address */)`: `new_address` is read only with
    /// `MREMAP_FIXED`. Arena mappings go to the server (which may move a
    /// private anonymous mapping with `MREMAP_MAYMOVE` unless it runs
    /// `--strict-mremap`); others to the host.
    #[no_mangle]
    pub [extern "C"] fn nommu_mremap as mremap(old, old_len, new_len, flags, new_address) {
        let new_address = super::super::mremap_new_address(flags, new_address);
        let Some(client) = in_arena(old as u64, old_len as u64) else {
            // SAFETY: host memory outside the arena is the C caller's own,
            // which it may move as with mremap(2); the kernel checks the
            // addresses.
            let moved = unsafe {
                host::mremap(old as usize, old_len, new_len, flags, new_address as usize)
            };
            return moved as *mut c_void;
        };
        match client.mremap(
            old as u64,
            old_len as u64,
            new_len as u64,
            flags as u32,
            new_address,
        ) {
            Ok(at) => at as usize as *mut c_void,
            Err(e) => fail(e, MAP_FAILED),
        }
    }
}

/// One small memory call: to the server for an arena range, else the host
/// system call `sys` with `(addr, len, arg)`.
fn memory_call(call: MemoryCall, sys: c_long, addr: *mut c_void, len: usize, arg: c_uint) -> c_int {
    match in_arena(addr as u64, len as u64) {
        Some(client) => status(client.memory_call(call, addr as u64, len as u64, arg)),
        // SAFETY: host memory outside the arena is the C caller's own, on
        // which it may call these as on the host; the kernel checks the
        // range and no memory of ours is passed.
        None => unsafe { host::range_call(sys, addr, len, arg) },
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
/// `vec` must be writable for one byte per page of `[addr, addr+len)`
/// (for an arena range, one that cannot be written fails `EFAULT`; the
/// host kernel checks its own).
#[no_mangle]
pub unsafe extern "C" fn nommu_mincore(addr: *mut c_void, len: usize, vec: *mut u8) -> c_int {
    let Some(client) = in_arena(addr as u64, len as u64) else {
        // SAFETY: the kernel writes the page bytes, checking `vec` itself.
        return unsafe { host::mincore(addr, len, vec) };
    };
    let pages = (len as u64).div_ceil(PAGE_SIZE);
    // A range longer than the arena cannot be all mapped (Linux: ENOMEM);
    // checked before the page bytes are allocated.
    let (_, arena_size) = client.transport().arena();
    let count = match usize::try_from(pages) {
        Ok(n) if pages <= arena_size / PAGE_SIZE + 1 => n,
        _ => return fail(Errno::ENOMEM, -1),
    };
    let mut out = vec![0u8; count];
    status(
        client
            .mincore(addr as u64, len as u64, PAGE_SIZE, &mut out)
            .and_then(|()| user::copy_to_user(vec.cast(), &out)),
    )
}
