//! §14.9 Futexes in the server profile (§8.3): the documented contract,
//! where shareable mappings are keyed by the object so that processes
//! sharing a segment meet, and everything else by address space.
//!
//! A wait is answered only when it is woken, so vectors 105 and 106 start
//! it as a split call ([`Process::begin`], [`super::ProcessConnection::begin`])
//! and wake it from another process on the same thread of control. They
//! rely on the home delivering the wait to the server before the waker's
//! later calls (see [`super::ProcessConnection::begin`]): the waker makes one
//! round trip before it stores to the word (a store is no server call and
//! would otherwise overtake the queued wait).

use super::env::{MEM, O_RDWR};
use super::support::{landmark, Process, P, PRIVATE_ANON, RW};
use super::{Failure, Harness, Landmark};
use protocol::linux::{
    futex_op, CLONE_VM, FUTEX_CMP_REQUEUE, FUTEX_OP_ADD, FUTEX_OP_CMP_EQ, FUTEX_OP_CMP_GT,
    FUTEX_OP_SET, FUTEX_PRIVATE_FLAG, FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAKE_OP, IPC_CREAT, MAP_SHARED,
    PROT_NONE, PROT_READ,
};
use protocol::{Errno, Reply, Request};

/// `futex(uaddr, op, val, NULL, NULL, 0)`.
pub fn futex(p: &Process<'_>, uaddr: u64, op: u32, val: u32) -> Result<i64, Errno> {
    p.client().futex(uaddr, op, val, None, 0, 0, 0)
}

/// The request of a `FUTEX_WAIT`-family call without timeout.
pub fn wait_request(uaddr: u64, op: u32, val: u32) -> Request {
    Request::Futex {
        uaddr,
        op,
        val,
        timeout_ns: None,
        val2: 0,
        uaddr2: 0,
        val3: 0,
    }
}

pub(super) fn v102_misaligned(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let x = ok!(p.anon(P), "mmap 1 page");
    ensure_errno!(
        futex(&p, x + 2, FUTEX_WAIT, 0),
        Errno::EINVAL,
        "FUTEX_WAIT at X+2"
    );
    ensure_errno!(
        futex(&p, x + 2, FUTEX_WAKE, 1),
        Errno::EINVAL,
        "FUTEX_WAKE at X+2"
    );
    Ok(())
}

pub(super) fn v103_unmapped(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    // `y` is mapped first, so it cannot take `x`'s place once `x` goes.
    let y = ok!(p.anon(P), "mmap a page");
    let x = ok!(p.anon(P), "mmap 1 page");
    ok!(p.munmap(x, P), "munmap it again");
    // Server decision beside §8.3 (as MMU Linux): the private forms and a
    // requeue's second word are looked up too.
    faults(&p, y, x, "a word in no mapping")?;
    ok!(p.munmap(y, P), "munmap");
    Ok(())
}

/// `/dev/mem` is the home's [`Landmark::DevMemWindow`] (as in vector 41).
pub(super) fn v104_io_mapping(harness: &dyn Harness) -> Result<(), Failure> {
    let window = landmark(harness, Landmark::DevMemWindow)?;
    let p = Process::spawn(harness)?;
    let fd = ok!(p.open(MEM, O_RDWR), "open /dev/mem");
    let x = ok!(
        p.map_fd(P, RW, MAP_SHARED, fd, window),
        "SHARED RW of /dev/mem"
    );
    ensure_errno!(
        futex(&p, x, FUTEX_WAIT, 0),
        Errno::EPERM,
        "FUTEX_WAIT in /dev/mem"
    );
    ok!(p.munmap(x, P), "munmap");
    Ok(())
}

/// One round trip of `p`: when it returns, the server has taken in every
/// frame queued before it, the waiter's `FUTEX_WAIT` included, so a store
/// to the word after it cannot overtake the wait.
fn settled(p: &Process<'_>) -> Result<(), Failure> {
    ok!(p.nr_trim_pages(), "a round trip after the wait was queued");
    Ok(())
}

/// The waiter's answer, which must be `0`.
fn woken(reply: Result<Reply, Errno>) -> Result<(), Failure> {
    match reply {
        Ok(Reply::Value(0)) => Ok(()),
        other => Err(super::support::failure(
            line!(),
            alloc::format!("the waiter's FUTEX_WAIT: got {other:?}, expected Value(0)"),
        )),
    }
}

pub(super) fn v105_shm_processes(harness: &dyn Harness) -> Result<(), Failure> {
    let a = Process::spawn(harness)?;
    let b = Process::spawn(harness)?;
    let id = ok!(a.client().shmget(0x105, 4, IPC_CREAT | 0o666), "A: shmget");
    // Removed now, destroyed when both attachments are gone.
    let x = ok!(a.client().shmat(id, 0, 0), "A: shmat");
    let y = ok!(b.client().shmat(id, 0, 0), "B: shmat");
    ok!(
        a.client().shm_remove(id),
        "IPC_RMID (deferred while attached)"
    );
    ensure_eq!(y, x, "B's address");
    ok!(harness.write(x, &0u32.to_ne_bytes()), "the word = 0");
    let waiting = a.begin(&wait_request(x, FUTEX_WAIT, 0))?;
    settled(&b)?;
    ok!(harness.write(y, &1u32.to_ne_bytes()), "B: the word = 1");
    let woke = futex(&b, y, FUTEX_WAKE, 1);
    woken(waiting.finish())?;
    ensure_eq!(woke, Ok(1), "B: FUTEX_WAKE(X, 1)");
    Ok(())
}

pub(super) fn v106_threads(harness: &dyn Harness) -> Result<(), Failure> {
    let parent = Process::spawn(harness)?;
    let w = ok!(parent.anon(P), "mmap 1 page");
    let thread = parent.clone_child(harness, CLONE_VM, "clone(CLONE_VM)")?;
    let op = FUTEX_PRIVATE_FLAG;
    let waiting = thread.begin(&wait_request(w, FUTEX_WAIT | op, 0))?;
    settled(&parent)?;
    ok!(harness.write(w, &1u32.to_ne_bytes()), "the word = 1");
    let woke = futex(&parent, w, FUTEX_WAKE | op, 1);
    woken(waiting.finish())?;
    ensure_eq!(woke, Ok(1), "FUTEX_WAKE_PRIVATE(w, 1)");
    ensure_eq!(
        futex(&parent, w, FUTEX_WAKE | op, 1),
        Ok(0),
        "a second wake"
    );
    Ok(())
}

pub(super) fn v107_value_changed(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let x = ok!(p.anon(P), "mmap 1 page");
    ok!(harness.write(x, &7u32.to_ne_bytes()), "the word = 7");
    ensure_errno!(
        futex(&p, x, FUTEX_WAIT, 0),
        Errno::EAGAIN,
        "FUTEX_WAIT expecting 0"
    );
    ensure_errno!(
        futex(&p, x, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0),
        Errno::EAGAIN,
        "FUTEX_WAIT_PRIVATE expecting 0"
    );
    Ok(())
}

/// LTP's bad address (`tst_get_bad_addr`): a `PROT_NONE` anonymous page.
/// §8.2 step 3 answers `EACCES`; MMU Linux faults it `EFAULT` and so does
/// this server, for `uaddr` and `uaddr2`, with or without the private flag.
pub(super) fn v123_unreadable(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let good = ok!(p.anon(P), "mmap 1 page");
    let none = ok!(p.mmap(0, P, PROT_NONE, PRIVATE_ANON), "mmap PROT_NONE");
    faults(&p, good, none, "PROT_NONE")?;
    ok!(p.munmap(none, P), "munmap PROT_NONE");
    ok!(p.munmap(good, P), "munmap");
    Ok(())
}

/// Every operation on `bad` is `EFAULT`, with and without
/// `FUTEX_PRIVATE_FLAG`: a wait, a wake, and a requeue from the good word
/// `good` to it.
fn faults(p: &Process<'_>, good: u64, bad: u64, what: &str) -> Result<(), Failure> {
    for flag in [0, FUTEX_PRIVATE_FLAG] {
        ensure_errno!(
            futex(p, bad, FUTEX_WAIT | flag, 0),
            Errno::EFAULT,
            "FUTEX_WAIT (flags {flag:#x}) on {what}"
        );
        ensure_errno!(
            futex(p, bad, FUTEX_WAKE | flag, 1),
            Errno::EFAULT,
            "FUTEX_WAKE (flags {flag:#x}) on {what}"
        );
        ensure_errno!(
            p.client()
                .futex(good, FUTEX_CMP_REQUEUE | flag, 1, None, 1, bad, 0),
            Errno::EFAULT,
            "FUTEX_CMP_REQUEUE (flags {flag:#x}) to {what}"
        );
    }
    Ok(())
}

/// The word at `addr`, read through the home.
fn word(harness: &dyn Harness, addr: u64) -> Result<u32, Failure> {
    let mut b = [0u8; 4];
    ok!(harness.read(addr, &mut b), "read the word");
    Ok(u32::from_ne_bytes(b))
}

/// `FUTEX_WAKE_OP` as Linux's `futex_wake_op`: the operation on the second
/// word returns its old value, the comparison of that decides whether its
/// waiters wake; a second word without write permission is `EFAULT`, an
/// unknown operation `ENOSYS`.
pub(super) fn v124_wake_op(harness: &dyn Harness) -> Result<(), Failure> {
    let parent = Process::spawn(harness)?;
    let a = ok!(parent.anon(P), "mmap the first word");
    let b = ok!(parent.anon(P), "mmap the second word");
    let ro = ok!(parent.mmap(0, P, PROT_READ, PRIVATE_ANON), "mmap read-only");
    let wake_op =
        |op: u32, uaddr2: u64, val3: u32| parent.client().futex(a, op, 1, None, 1, uaddr2, val3);
    ok!(harness.write(b, &5u32.to_ne_bytes()), "the second word = 5");
    let add2 = futex_op(FUTEX_OP_ADD, 2, FUTEX_OP_CMP_EQ, 5);
    ensure_eq!(
        wake_op(FUTEX_WAKE_OP, b, add2),
        Ok(0),
        "ADD 2, nobody waits"
    );
    ensure_eq!(word(harness, b)?, 7, "the second word after ADD 2");
    ensure_errno!(
        wake_op(FUTEX_WAKE_OP, ro, add2),
        Errno::EFAULT,
        "FUTEX_WAKE_OP on a read-only second word"
    );
    ensure_errno!(
        wake_op(FUTEX_WAKE_OP, b, futex_op(7, 0, FUTEX_OP_CMP_EQ, 0)),
        Errno::ENOSYS,
        "FUTEX_WAKE_OP with operation 7"
    );
    ensure_eq!(word(harness, b)?, 7, "the second word after the refusals");
    // A thread waits on the second word; SET 0 with "old > 6" wakes it.
    let thread = parent.clone_child(harness, CLONE_VM, "clone(CLONE_VM)")?;
    let private = FUTEX_PRIVATE_FLAG;
    let waiting = thread.begin(&wait_request(b, FUTEX_WAIT | private, 7))?;
    settled(&parent)?;
    let woke = wake_op(
        FUTEX_WAKE_OP | private,
        b,
        futex_op(FUTEX_OP_SET, 0, FUTEX_OP_CMP_GT, 6),
    );
    woken(waiting.finish())?;
    ensure_eq!(woke, Ok(1), "FUTEX_WAKE_OP_PRIVATE: SET 0 if old > 6");
    ensure_eq!(word(harness, b)?, 0, "the second word after SET 0");
    Ok(())
}
