//! Futex waits across host processes through `memsrvd`, where waits sleep
//! in the host kernel (on the client's side, or on the daemon's for a
//! wait sent to it as a frame): timeouts end them, a killed waiter is gone
//! and a wake goes to the next waiter, and memsrv's rules about which
//! words may hold a futex still answer (also once a word that was fine is
//! unmapped).
//!
//! The waiters are copies of this test binary started in [`WAITER`] mode
//! (entry [`waiter_entry`]): each connects, attaches the segment, says
//! `READY`, waits and prints `RESULT: <value or errno> <ms>`.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/futex_waiter.rs"]
mod futex_waiter;

use daemon::{Daemon, Interactive};
use futex_waiter::{
    print_result, raw_frame_call, result, segment, sleeping_in_futex, spawn_waiter, waiter_side,
};
use nommu::transport::DaemonConnection;
use protocol::linux::{FUTEX_PRIVATE_FLAG, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAKE};
use protocol::{Errno, Request};
use std::time::{Duration, Instant};

/// The environment variable that makes this binary a waiter:
/// `<socket>|<shmid>|<how>`, `how` one of `client:<timeout ms or ->`,
/// `bitset:<ms from now>` or `daemon` (a raw frame over the socket, so the
/// daemon's thread does the waiting).
const WAITER: &str = "NOMMU_FUTEX_WAITER";

/// Not a test of its own: the waiter's side, run only in a copy of this
/// binary started with [`WAITER`] set.
#[test]
fn waiter_entry() {
    let Some((client, addr, how)) = waiter_side(WAITER, |_| FUTEX_WAIT) else {
        return;
    };
    let start = Instant::now();
    let result = match how.split_once(':') {
        Some(("client", "-")) => client.futex(addr, FUTEX_WAIT, 0, None, 0, 0, 0),
        Some(("client", ms)) => {
            let ns = ms.parse::<u64>().unwrap() * 1_000_000;
            client.futex(addr, FUTEX_WAIT, 0, Some(ns), 0, 0, 0)
        }
        Some(("bitset", ms)) => {
            let ts = nommu::sys::clock_now(libc::CLOCK_MONOTONIC);
            let now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            let deadline = now + ms.parse::<u64>().unwrap() * 1_000_000;
            client.futex(addr, FUTEX_WAIT_BITSET, 0, Some(deadline), 0, 0, 0b10)
        }
        _ => raw_frame_call(
            &client,
            &Request::Futex {
                uaddr: addr,
                op: FUTEX_WAIT,
                val: 0,
                timeout_ns: None,
                val2: 0,
                uaddr2: 0,
                val3: 0,
            },
        ),
    };
    print_result(result, start);
}

/// A waiter process on segment `shmid`, started and `READY`.
fn waiter(d: &Daemon, shmid: i32, how: &str) -> (Interactive, u32) {
    spawn_waiter(WAITER, d, shmid, how)
}

/// A [`waiter`] whose wait has begun. A raw-frame waiter's thread sleeps
/// in the daemon (idle connection threads sleep in `poll`, not in a
/// futex); any other sleeps in the waiter (libtest names the thread after
/// the test).
fn sleeping_waiter(d: &Daemon, shmid: i32, how: &str) -> Interactive {
    let (w, pid) = waiter(d, shmid, how);
    if how == "daemon" {
        sleeping_in_futex(d.pid, "memsrvd-conn");
    } else {
        sleeping_in_futex(pid, "waiter_entry");
    }
    w
}

/// Runs `test` with a daemon, a client of it and a fresh [`segment`]
/// (its id and address), then detaches and removes the segment.
fn with_segment(test: impl FnOnce(&Daemon, &nommu::Client<DaemonConnection>, i32, u64)) {
    let d = Daemon::start();
    let c = d.client();
    let (id, addr) = segment(&c);
    test(&d, &c, id, addr);
    c.shmdt(addr).unwrap();
    c.shm_remove(id).unwrap();
}

/// `FUTEX_WAKE` of up to `n` waiters on `addr`; how many it woke.
fn wake(c: &nommu::Client<DaemonConnection>, addr: u64, n: u32) -> Result<i64, Errno> {
    c.futex(addr, FUTEX_WAKE, n, None, 0, 0, 0)
}

#[test]
fn waits_in_other_processes_time_out_relative_and_absolute() {
    with_segment(|d, c, id, addr| {
        let (mut relative, _) = waiter(d, id, "client:150");
        let (mut absolute, _) = waiter(d, id, "bitset:150");
        for w in [&mut relative, &mut absolute] {
            let (value, ms) = result(w);
            assert_eq!(value, format!("errno{}", 110), "ETIMEDOUT expected");
            assert!((140..5_000).contains(&ms), "timed out after {ms} ms");
        }
        // Nobody waits any more.
        assert_eq!(wake(c, addr, i32::MAX as u32), Ok(0));
        relative.finish();
        absolute.finish();
    });
}

#[test]
fn a_wake_before_the_timeout_ends_the_wait_with_zero() {
    with_segment(|d, c, id, addr| {
        let mut w = sleeping_waiter(d, id, "client:20000");
        assert_eq!(wake(c, addr, 1), Ok(1));
        let (value, ms) = result(&mut w);
        assert_eq!(value, "0");
        assert!(ms < 20_000, "woken only at the timeout");
        w.finish();
    });
}

#[test]
fn a_killed_waiter_is_gone_and_the_wake_goes_to_the_next() {
    with_segment(|d, c, id, addr| {
        // Oldest first: the one to be killed waits first, on each side.
        for first in ["client:-", "daemon"] {
            let mut doomed = sleeping_waiter(d, id, first);
            let mut next = sleeping_waiter(d, id, "client:-");
            doomed.child.kill().unwrap();
            doomed.child.wait().unwrap();
            // The kill is seen at once by the host kernel (client side) or
            // within the daemon thread's slice; either way one wake reaches
            // the live waiter, passed on if the dead one's thread took it.
            let woken = wake(c, addr, 1).unwrap();
            assert!(woken <= 1, "woke {woken}");
            let (value, _) = result(&mut next);
            assert_eq!(value, "0", "{first}: the live waiter was not woken");
            next.finish();
            // The dead waiter left no one behind to wake.
            std::thread::sleep(Duration::from_millis(150));
            assert_eq!(wake(c, addr, i32::MAX as u32), Ok(0));
        }
    });
}

#[test]
fn a_waiter_on_the_daemon_side_meets_a_wake_from_a_client() {
    with_segment(|d, c, id, addr| {
        let mut w = sleeping_waiter(d, id, "daemon");
        assert_eq!(wake(c, addr, 1), Ok(1));
        assert_eq!(result(&mut w).0, "0");
        w.finish();
    });
}

#[test]
fn a_word_accepted_once_is_refused_after_its_mapping_goes() {
    let d = Daemon::start();
    // Two connections of this one process (one address space).
    let c = d.client();
    let other = d.client();
    let (id, addr) = segment(&c);
    c.shm_remove(id).unwrap();
    for op in [FUTEX_WAKE, FUTEX_WAKE | FUTEX_PRIVATE_FLAG] {
        assert_eq!(c.futex(addr, op, 1, None, 0, 0, 0), Ok(0));
    }
    assert_eq!(
        c.futex(addr, FUTEX_WAIT, 1, None, 0, 0, 0),
        Err(Errno::EAGAIN)
    );
    // The word is compared before a timeout of zero is looked at.
    assert_eq!(
        c.futex(addr, FUTEX_WAIT, 1, Some(0), 0, 0, 0),
        Err(Errno::EAGAIN)
    );
    let timed_out = c.futex(addr, FUTEX_WAIT, 0, Some(0), 0, 0, 0);
    assert_eq!(timed_out, Err(Errno(110)), "ETIMEDOUT");
    assert_eq!(wake(&c, addr + 2, 1), Err(Errno::EINVAL));
    // Detached through the other connection: the checks this one made
    // are stale, and the word is refused as memsrv refuses it.
    other.shmdt(addr).unwrap();
    for op in [FUTEX_WAKE, FUTEX_WAKE | FUTEX_PRIVATE_FLAG] {
        let own = c.futex(addr, op, 1, None, 0, 0, 0);
        assert_eq!(own, Err(Errno::EFAULT), "op {op:#x}");
    }
    assert_eq!(
        c.futex(addr, FUTEX_WAIT, 0, Some(1_000_000), 0, 0, 0),
        Err(Errno::EFAULT)
    );
}
