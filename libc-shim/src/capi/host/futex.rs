//! Futexes of the host C surface (`nommu_futex`, always exported; `posix`
//! re-exports it as `futex`): a word inside the arena goes to the memory
//! server (so two processes attached to one segment meet on it), any
//! other word to the host kernel. An operation on two words (`FUTEX_REQUEUE`,
//! `FUTEX_CMP_REQUEUE`, `FUTEX_WAKE_OP`) goes to the server when either
//! lies in the arena: the server's waiters and the host kernel's never
//! meet, so it answers `EFAULT` for a word outside the caller's mappings
//! rather than let the host requeue or wake on one side only.
//!
//! The host maps the whole arena read-write, so it cannot tell a
//! `PROT_NONE` mapping (or a hole) in it from good memory; a wait's
//! timeout in the arena is therefore checked with the server before it is
//! read or handed to the host kernel ([`arena_readable`]), as the kernel's
//! copy of it would fault.
//!
//! Waits. A `FUTEX_WAIT`/`FUTEX_WAIT_BITSET` is answered only when
//! the word is woken or the wait times out, and a connection carries one
//! call at a time. So a waiting thread never uses the process-wide
//! connection: it takes a connection of its own from a small pool of
//! secondary connections (making one the first time), waits on it and puts
//! it back. A secondary connection is made without a clone ticket from the
//! same host pid, so the daemon binds it to the same process (one address
//! space, one futex key space); it costs one daemon thread while it
//! exists, and the pool keeps at most as many as were ever waiting at
//! once. Every other call (wakes, requeues) goes over the main connection.

use super::fail;
use super::memory::in_arena;
use super::process::{discard_waiter, give_back_waiter, take_waiter};
use crate::abi;
use crate::capi::signatures::c_fn;
use crate::client::Client;
use crate::sys::host;
use crate::transport::DaemonConnection;
use core::ffi::c_int;
use protocol::linux::{
    FUTEX_CLOCK_REALTIME, FUTEX_CMD_MASK, FUTEX_CMP_REQUEUE, FUTEX_PRIVATE_FLAG, FUTEX_REQUEUE,
    FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAKE_OP,
};
use protocol::Errno;

fn timespec_ns(ts: &libc::timespec) -> Result<u64, Errno> {
    abi::timespec_ns(ts.tv_sec, ts.tv_nsec)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    timespec_ns(&crate::sys::clock_now(clock)).unwrap_or(0)
}

/// Whether the operation reads a second word at `uaddr2`.
fn two_words(cmd: u32) -> bool {
    matches!(cmd, FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP)
}

/// `EFAULT` unless the `len` bytes at `addr` (at most a page, inside the
/// arena) lie in mappings of this process the server lets it read. Asked
/// with a private `FUTEX_CMP_REQUEUE` from each end's word to itself that
/// wakes and moves nobody: its one effect is the server's mapping check of
/// a futex word (`docs/futex.md`); `EAGAIN` (the word differs from
/// `val3`) means the word was read.
fn arena_readable(client: &Client<DaemonConnection>, addr: u64, len: u64) -> Result<(), Errno> {
    let last = addr.saturating_add(len.max(1) - 1);
    for word in [addr & !3, last & !3] {
        let op = FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG;
        match client.futex(word, op, 0, None, 0, word, 0) {
            Ok(_) | Err(Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

c_fn! {
    /// `int futex(int *uaddr, int op, int val, const struct timespec *timeout,
    /// int *uaddr2, int val3)`.
    ///
    /// A word inside the arena goes to the memory server (so two processes
    /// attached to one segment meet on it); any other word to the host
    /// kernel. `timeout` is relative for `FUTEX_WAIT`, absolute for
    /// `FUTEX_WAIT_BITSET` (`CLOCK_MONOTONIC`, or `CLOCK_REALTIME` with
    /// `FUTEX_CLOCK_REALTIME`; sent to the server as an absolute
    /// `CLOCK_MONOTONIC` time), and for `FUTEX_REQUEUE`/`FUTEX_CMP_REQUEUE`/
    /// `FUTEX_WAKE_OP` carries `val2` as a number, as Linux reads it. A wait
    /// blocks only the calling thread (see the module docs).
    ///
    /// # Safety
    /// `timeout` must be null or readable for one `struct timespec` when the
    /// operation reads it as one (for a word in the arena, one that cannot be
    /// read fails `EFAULT`; the host kernel checks its own).
    #[no_mangle]
    pub [unsafe extern "C"] fn nommu_futex as futex(uaddr, op, val, timeout, uaddr2, val3) {
        let cmd = op as u32 & FUTEX_CMD_MASK;
        // Checked first, for host words too: the kernel copies the timeout
        // before it looks at the word.
        if matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET) && !timeout.is_null() {
            let len = size_of::<libc::timespec>() as u64;
            if let Some(c) = in_arena(timeout as u64, len) {
                if let Err(e) = arena_readable(c, timeout as u64, len) {
                    return fail(e, -1);
                }
            }
        }
        let second = || two_words(cmd).then(|| in_arena(uaddr2 as u64, 4)).flatten();
        let Some(client) = in_arena(uaddr as u64, 4).or_else(second) else {
            // SAFETY: a word outside the arena is host memory, the C caller's
            // business as with futex(2); the kernel checks every pointer.
            return unsafe { host::futex(uaddr, op, val, timeout, uaddr2, val3) };
        };
        let read_timeout = || -> Result<Option<u64>, Errno> {
            if timeout.is_null() {
                return Ok(None);
            }
            // SAFETY: struct timespec is plain integers; one that cannot be
            // read fails EFAULT, as from the kernel.
            let ts = unsafe { crate::sys::user::read_from_user(timeout) }?;
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
            FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP => (None, timeout as usize as u32),
            _ => (None, 0),
        };
        let call = |c: &Client<DaemonConnection>| {
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
}

/// Run a blocking call on a secondary connection of this process, taken
/// from the pool (or made) and put back afterwards unless it broke.
fn wait_on_own_connection(
    call: impl FnOnce(&Client<DaemonConnection>) -> Result<i64, Errno>,
) -> Result<i64, Errno> {
    let client = take_waiter()?;
    let result = call(&client);
    if result == Err(Errno::ENOTCONN) {
        discard_waiter(client);
    } else {
        give_back_waiter(client);
    }
    result
}
