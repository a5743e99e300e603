//! Futexes on arena words slept and woken in the host kernel (spec §8.3
//! keys; Linux `futex_wait`/`futex_wake`), for every participant of one
//! `memsrvd`: the client's connection ([`super::DaemonConnection`]) and the
//! daemon's connection threads (for a wait that reached the daemon as a
//! frame) run this same code, so a waiter on either side meets a waker on
//! the other.
//!
//! Why the host kernel's futex gives memsrv's meetings: the arena is one
//! memory file mapped `MAP_SHARED` at one address in the daemon and in
//! every client, so the host's non-private futex key of an arena word is
//! (memory file, offset) — the same in every process, and one arena
//! address is one word. In memsrv's single address space its keys coincide
//! with that address: a shareable mapping's (object, page, offset) names
//! the one place the object's page lies, and a private mapping's (address
//! space, address) the one process whose mapping holds that address.
//!
//! A `FUTEX_PRIVATE_FLAG` call keys on (address space, address) whatever
//! the mapping (spec §8.2; Linux's `get_futex_key` with `FLAGS_SHARED`
//! clear), so two processes using the private flag on one segment never
//! meet. The client carries every private call itself, requeues and
//! `FUTEX_WAKE_OP` included, on the host's private futex: its key is the
//! client's own host address space, which is its memsrv process (numbered
//! by its host pid; a `vfork` child shares both until it execs). The
//! daemon never carries a private call on the host (its own address space
//! would join every process's): memsrv answers one sent as a frame from
//! its own queues, under the same key. (With `--process-per-connection`
//! several memsrv processes share one host address space, and their
//! private futexes meet as threads of that host process.)
//!
//! memsrv keeps judging the call: which words may hold a futex (EINVAL,
//! EFAULT, EACCES, EPERM) is its answer to a check (a `FUTEX_REQUEUE`
//! moving nothing from the word to itself: it looks the word up exactly as
//! a wait or a wake does, and changes nothing). Only the sleep and the
//! wake are the host's. A client caches a positive answer per word until
//! the daemon's map generation ([`MapGeneration`]) moves: the daemon
//! advances it after every call that may change any mapping.

use super::mapping::SharedMapping;
use core::ffi::c_int;
use core::sync::atomic::{AtomicU64, Ordering};
use protocol::linux::{
    futex_op, FUTEX_BITSET_MATCH_ANY, FUTEX_CLOCK_REALTIME, FUTEX_CMD_MASK, FUTEX_CMP_REQUEUE,
    FUTEX_OP_ADD, FUTEX_OP_CMP_EQ, FUTEX_PRIVATE_FLAG, FUTEX_REQUEUE, FUTEX_WAIT,
    FUTEX_WAIT_BITSET, FUTEX_WAKE, FUTEX_WAKE_BITSET, FUTEX_WAKE_OP,
};
use protocol::{Errno, Request};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

/// `ETIMEDOUT`.
pub const ETIMEDOUT: Errno = Errno(110);

/// A futex call the host kernel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostFutex {
    /// Sleep while the word holds `val`, until `deadline` (ns of
    /// `CLOCK_MONOTONIC`), woken by a wake whose bitset meets `bitset`.
    Wait {
        val: u32,
        bitset: u32,
        deadline: Option<u64>,
    },
    /// Wake up to `n` waiters whose bitset meets `bitset`.
    Wake { n: i32, bitset: u32 },
}

/// What the host kernel carries of `Request::Futex`: `None` for what the
/// server keeps (requeues and anything else), `Some(Err)` for an error
/// memsrv would give before looking at the word (in its order: a clock
/// flag on anything but `FUTEX_WAIT_BITSET`, then an empty bitset).
/// `timeout_ns` is relative for `FUTEX_WAIT`, absolute `CLOCK_MONOTONIC`
/// for `FUTEX_WAIT_BITSET`, as the protocol carries it.
pub fn host_call(
    op: u32,
    val: u32,
    timeout_ns: Option<u64>,
    val3: u32,
) -> Option<Result<HostFutex, Errno>> {
    // Bits beside the private and clock flags are part of the command:
    // an unknown one is memsrv's to answer.
    let cmd = op & FUTEX_CMD_MASK;
    if !matches!(
        cmd,
        FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_WAKE | FUTEX_WAKE_BITSET
    ) {
        return None;
    }
    if op & FUTEX_CLOCK_REALTIME != 0 && cmd != FUTEX_WAIT_BITSET {
        return Some(Err(Errno::ENOSYS));
    }
    let bitset = match cmd {
        FUTEX_WAIT | FUTEX_WAKE => FUTEX_BITSET_MATCH_ANY,
        _ => val3,
    };
    if bitset == 0 {
        return Some(Err(Errno::EINVAL));
    }
    Some(Ok(match cmd {
        FUTEX_WAIT => HostFutex::Wait {
            val,
            bitset,
            deadline: timeout_ns.map(|ns| now_ns().saturating_add(ns)),
        },
        FUTEX_WAIT_BITSET => HostFutex::Wait {
            val,
            bitset,
            deadline: timeout_ns,
        },
        _ => HostFutex::Wake {
            n: val as i32,
            bitset,
        },
    }))
}

/// [`host_call`] of a `Request::Futex`, with the word's address and the
/// operation; `None` for any other request and for what the server keeps.
pub fn host_request(request: &Request) -> Option<(u64, u32, Result<HostFutex, Errno>)> {
    let Request::Futex {
        uaddr,
        op,
        val,
        timeout_ns,
        val3,
        ..
    } = *request
    else {
        return None;
    };
    Some((uaddr, op, host_call(op, val, timeout_ns, val3)?))
}

/// The request whose answer says whether `uaddr` may hold a futex for
/// `op` (its private flag): a requeue of nothing from the word to itself.
pub fn check_request(uaddr: u64, op: u32) -> Request {
    Request::Futex {
        uaddr,
        op: FUTEX_REQUEUE | (op & FUTEX_PRIVATE_FLAG),
        val: 0,
        timeout_ns: None,
        val2: 0,
        uaddr2: uaddr,
        val3: 0,
    }
}

/// `CLOCK_MONOTONIC` now, in ns.
pub fn now_ns() -> u64 {
    let ts = crate::sys::clock_now(libc::CLOCK_MONOTONIC);
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The host's futex call on the arena word at `uaddr`: non-private so
/// that every process mapping the arena meets on it, or `private` (the
/// caller's memsrv call was), keyed by this host process alone.
fn host(
    uaddr: u64,
    op: i32,
    val: u32,
    deadline: Option<&libc::timespec>,
    val3: u32,
    private: bool,
) -> i64 {
    let op = op | host_private(private);
    let timeout = deadline.map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: memsrv answered that `uaddr` lies in the caller's mapping
    // inside the arena, which this process maps at the same address for
    // as long as a connection lives; the kernel reads the word atomically
    // and the timespec (a live local or null).
    i64::from(unsafe {
        crate::sys::host::futex(
            uaddr as usize as *mut c_int,
            op,
            val as c_int,
            timeout,
            core::ptr::null_mut(),
            val3 as c_int,
        )
    })
}

/// The host's private flag, for a `private` call.
fn host_private(private: bool) -> c_int {
    if private {
        libc::FUTEX_PRIVATE_FLAG
    } else {
        0
    }
}

/// The host's error number as an [`Errno`] (`EIO` if there is none).
fn host_errno(e: Option<i32>) -> Errno {
    e.and_then(|e| u16::try_from(e).ok())
        .map_or(Errno::EIO, Errno)
}

/// Wait on the arena word at `uaddr` (which memsrv accepted). The sleep
/// is cut into `slice`s (if given); after each, `stay` says whether to
/// go on (`false`: the caller is gone, `ENOTCONN`). A signal does not end
/// the wait (memsrv's waits know none). `Ok(0)` once woken, `EAGAIN` if
/// the word did not hold `val`, `ETIMEDOUT` at the deadline. `private`:
/// keyed by this host process alone (module docs).
pub fn wait(
    uaddr: u64,
    val: u32,
    bitset: u32,
    private: bool,
    deadline: Option<u64>,
    slice: Option<Duration>,
    mut stay: impl FnMut() -> bool,
) -> Result<i64, Errno> {
    let mut slept = false;
    loop {
        let now = now_ns();
        let slice_end = slice.map(|s| now.saturating_add(s.as_nanos() as u64));
        let end = match (deadline, slice_end) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        // A deadline already past still goes to the kernel: it compares
        // the word first (EAGAIN before ETIMEDOUT, as memsrv answers).
        let ts = end.map(|ns| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        });
        if host(
            uaddr,
            libc::FUTEX_WAIT_BITSET,
            val,
            ts.as_ref(),
            bitset,
            private,
        ) == 0
        {
            return Ok(0);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            // The word changed while this waiter slept between slices:
            // it was asleep, so this is a wake-up (futex(2) allows
            // spurious ones), not a refusal of the call.
            Some(libc::EAGAIN) if slept => return Ok(0),
            Some(libc::EAGAIN) => return Err(Errno::EAGAIN),
            Some(libc::ETIMEDOUT | libc::EINTR) => {}
            other => return Err(host_errno(other)),
        }
        if deadline.is_some_and(|d| now_ns() >= d) {
            return Err(ETIMEDOUT);
        }
        if !stay() {
            return Err(Errno::ENOTCONN);
        }
        slept = true;
    }
}

/// Wake up to `n` waiters of the arena word at `uaddr` (which memsrv
/// accepted) whose bitset meets `bitset`; how many woke. As Linux counts,
/// 0 or a negative `n` still wakes one. `private`: keyed by this host
/// process alone.
pub fn wake(uaddr: u64, n: i32, bitset: u32, private: bool) -> i64 {
    host(
        uaddr,
        libc::FUTEX_WAKE_BITSET,
        n.max(1) as u32,
        None,
        bitset,
        private,
    )
    .max(0)
}

/// Wake up to `nr_wake` waiters of the arena word at `uaddr` and move up
/// to `nr_requeue` more to the word at `uaddr2` (both accepted by
/// memsrv), first comparing `uaddr` with `compare` if given (`EAGAIN` if
/// it differs); how many were woken or moved. `private`: keyed by this
/// host process alone.
pub fn requeue(
    uaddr: u64,
    nr_wake: i32,
    nr_requeue: i32,
    uaddr2: u64,
    compare: Option<u32>,
    private: bool,
) -> Result<i64, Errno> {
    let op = if compare.is_some() {
        libc::FUTEX_CMP_REQUEUE
    } else {
        libc::FUTEX_REQUEUE
    } | host_private(private);
    // SAFETY: both words were accepted by memsrv (in the caller's
    // mappings inside the arena, which this process maps at the same
    // address); the kernel reads `val2` from the timeout argument as a
    // number, never as a pointer, for the requeue operations.
    let moved = i64::from(unsafe {
        crate::sys::host::futex(
            uaddr as usize as *mut c_int,
            op,
            nr_wake.max(0),
            nr_requeue.max(0) as usize as *const libc::timespec,
            uaddr2 as usize as *mut c_int,
            compare.unwrap_or(0) as c_int,
        )
    });
    if moved >= 0 {
        return Ok(moved);
    }
    Err(host_errno(std::io::Error::last_os_error().raw_os_error()))
}

/// `FUTEX_WAKE_OP` on the host kernel for two arena words memsrv accepted:
/// the kernel applies `val3`'s operation to `uaddr2` atomically, wakes up
/// to `nr_wake` waiters of `uaddr` and, if the old value compares, up to
/// `nr_wake2` of `uaddr2`; how many it woke (`ENOSYS` for an unknown
/// operation, as Linux answers). `private`: keyed by this host process
/// alone.
pub fn wake_op(
    uaddr: u64,
    nr_wake: i32,
    nr_wake2: i32,
    uaddr2: u64,
    val3: u32,
    private: bool,
) -> Result<i64, Errno> {
    // SAFETY: both words were accepted by memsrv (in the caller's
    // mappings inside the arena, which this process maps at the same
    // address; `uaddr2` writable); the kernel reads `val2` from the
    // timeout argument as a number for FUTEX_WAKE_OP, never as a pointer.
    let woken = i64::from(unsafe {
        crate::sys::host::futex(
            uaddr as usize as *mut c_int,
            libc::FUTEX_WAKE_OP | host_private(private),
            nr_wake.max(0),
            nr_wake2.max(0) as usize as *const libc::timespec,
            uaddr2 as usize as *mut c_int,
            val3 as c_int,
        )
    });
    if woken >= 0 {
        return Ok(woken);
    }
    Err(host_errno(std::io::Error::last_os_error().raw_os_error()))
}

/// The daemon's map generation: one word in a small memory file every
/// client maps, advanced by the daemon after any call that may change a
/// mapping (and when a connection ends), read by clients to know their
/// cached futex checks still hold.
#[derive(Debug)]
pub struct MapGeneration {
    map: SharedMapping,
}

/// Size of the map generation's memory file: one word is used, but the
/// mapping is as large as a channel page, so that the shim's mappings
/// (made wherever the kernel likes) still fit no one-page hole a program
/// keeps unmapped on purpose.
pub const GENERATION_LEN: usize = super::channel_page::CHANNEL_LEN;

impl MapGeneration {
    /// A new generation file and this side's mapping (the daemon's side).
    pub fn create() -> Result<(Self, OwnedFd), Errno> {
        let (map, fd) = SharedMapping::new_file(c"nommu-map-generation", GENERATION_LEN)?;
        Ok((Self { map }, fd))
    }

    /// Map a generation file received from the daemon.
    pub fn open(fd: BorrowedFd<'_>) -> Result<Self, Errno> {
        Ok(Self {
            map: SharedMapping::received(fd, GENERATION_LEN)?,
        })
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page aligned, GENERATION_LEN bytes of a
        // memory file sealed against shrinking, and lives as long as
        // `self`; an atomic integer is valid for any bytes and meant for
        // concurrent access from the other process.
        unsafe { &*(self.map.addr() as *const AtomicU64) }
    }

    /// The generation now.
    pub fn current(&self) -> u64 {
        self.word().load(Ordering::SeqCst)
    }

    /// Advance it (the daemon's side): checks made before are stale.
    pub fn advance(&self) {
        self.word().fetch_add(1, Ordering::SeqCst);
    }
}

/// Words recently found fit for a futex, with the generation they were
/// checked at (a handful: a program waits on few words at a time).
#[derive(Debug, Default)]
pub struct CheckCache {
    entries: [Option<(u64, bool, u64)>; 8],
    next: usize,
}

impl CheckCache {
    /// Whether `uaddr` (for a private call or not) was found fit at
    /// `generation`.
    pub fn holds(&self, uaddr: u64, private: bool, generation: u64) -> bool {
        self.entries
            .iter()
            .flatten()
            .any(|&e| e == (uaddr, private, generation))
    }

    /// Drop what was found of words in `[addr, addr + len)`: a mapping
    /// there went away without the daemon's generation moving (a local
    /// `munmap` from the page reserve).
    pub fn forget(&mut self, addr: u64, len: u64) {
        for slot in &mut self.entries {
            if slot.is_some_and(|(a, _, _)| a >= addr && a - addr < len) {
                *slot = None;
            }
        }
    }

    /// Remember that `uaddr` was found fit at `generation`.
    pub fn remember(&mut self, uaddr: u64, private: bool, generation: u64) {
        if let Some(slot) = self
            .entries
            .iter_mut()
            .find(|e| e.is_some_and(|(a, p, _)| (a, p) == (uaddr, private)))
        {
            *slot = Some((uaddr, private, generation));
            return;
        }
        self.entries[self.next] = Some((uaddr, private, generation));
        self.next = (self.next + 1) % self.entries.len();
    }
}

/// A client's side: the daemon's map generation and the words found fit
/// since it last moved.
#[derive(Debug)]
pub struct HostFutexes {
    generation: MapGeneration,
    checked: Mutex<CheckCache>,
}

impl HostFutexes {
    pub fn new(generation: MapGeneration) -> Self {
        Self {
            generation,
            checked: Mutex::new(CheckCache::default()),
        }
    }

    /// A mapping `[addr, addr + len)` went away locally: its words must
    /// be checked again.
    pub fn forget(&self, addr: u64, len: u64) {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(addr, len);
    }

    /// Carry `call` on the arena word `uaddr`: first make sure memsrv
    /// accepts the word for `op` (a cached answer while the generation
    /// stands, else `check` asks), then sleep or wake in the host kernel.
    /// A wait is one sleep: a waiter between two slices would be in no
    /// queue, and a wake then lost or miscounted.
    pub fn carry(
        &self,
        uaddr: u64,
        op: u32,
        call: HostFutex,
        check: &mut dyn FnMut(&Request) -> Result<(), Errno>,
    ) -> Result<i64, Errno> {
        let private = op & FUTEX_PRIVATE_FLAG != 0;
        // Read before asking: a change after this makes the answer stale.
        let generation = self.generation.current();
        let cache = || self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if !cache().holds(uaddr, private, generation) {
            check(&check_request(uaddr, op))?;
            cache().remember(uaddr, private, generation);
        }
        match call {
            HostFutex::Wait {
                val,
                bitset,
                deadline,
            } => wait(uaddr, val, bitset, private, deadline, None, || true),
            HostFutex::Wake { n, bitset } => Ok(wake(uaddr, n, bitset, private)),
        }
    }

    /// Carry a `Request::Futex` of this client on the host kernel: waits
    /// and wakes ([`Self::carry`]), and private requeues and
    /// `FUTEX_WAKE_OP`s ([`carry_pair`]: the daemon could not reach this
    /// process's private key). `None` for what the daemon carries.
    pub fn carry_request(
        &self,
        request: &Request,
        check: &mut dyn FnMut(&Request) -> Result<(), Errno>,
    ) -> Option<Result<i64, Errno>> {
        if let Request::Futex { op, .. } = *request {
            if op & FUTEX_PRIVATE_FLAG != 0 {
                if let Some(result) = carry_pair(request, check) {
                    return Some(result);
                }
            }
        }
        let (uaddr, op, call) = host_request(request)?;
        Some(call.and_then(|call| self.carry(uaddr, op, call, check)))
    }
}

/// Carry a requeue or `FUTEX_WAKE_OP` on the host kernel once memsrv
/// accepted both words (`check`); `None` for any other request. memsrv
/// checks a requeue's words, counts and compare as it is (in memsrvd it
/// holds no host waiter to move), and a `FUTEX_WAKE_OP` as one that adds
/// 0 (`uaddr2` writable; the word left as it is), so the host applies the
/// real operation exactly once, with Linux's own answer for an unknown
/// operation or comparison.
pub fn carry_pair(
    request: &Request,
    check: &mut dyn FnMut(&Request) -> Result<(), Errno>,
) -> Option<Result<i64, Errno>> {
    let Request::Futex {
        uaddr,
        op,
        val,
        val2,
        uaddr2,
        val3,
        ..
    } = *request
    else {
        return None;
    };
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let cmd = op & FUTEX_CMD_MASK;
    if cmd == FUTEX_REQUEUE || cmd == FUTEX_CMP_REQUEUE {
        if let Err(e) = check(request) {
            return Some(Err(e));
        }
        let compare = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
        return Some(requeue(
            uaddr,
            val as i32,
            val2 as i32,
            uaddr2,
            compare,
            private,
        ));
    }
    if cmd != FUTEX_WAKE_OP {
        return None;
    }
    let mut checked = request.clone();
    if let Request::Futex { val3, .. } = &mut checked {
        *val3 = futex_op(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 0);
    }
    if let Err(e) = check(&checked) {
        return Some(Err(e));
    }
    Some(wake_op(
        uaddr,
        val as i32,
        val2 as i32,
        uaddr2,
        val3,
        private,
    ))
}
