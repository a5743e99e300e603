//! Private futexes through `memsrvd` are keyed by the caller's address
//! space (spec §8.2; Linux's `get_futex_key` without `FLAGS_SHARED`): two
//! processes using `FUTEX_PRIVATE_FLAG` on one SysV segment never meet —
//! not by a wake, a `FUTEX_WAKE_OP` or a requeue, and not for a wait sent
//! to the daemon as a frame — while their non-private calls on it still
//! meet, and private calls of two connections of one process still meet.
//!
//! The other process is a copy of this test binary started in [`WAITER`]
//! mode (entry [`waiter_entry`]): it connects, attaches the segment, says
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
use nommu::Client;
use protocol::linux::{
    futex_op, FUTEX_CMP_REQUEUE, FUTEX_OP_CMP_EQ, FUTEX_OP_SET, FUTEX_PRIVATE_FLAG, FUTEX_WAIT,
    FUTEX_WAKE, FUTEX_WAKE_OP,
};
use protocol::{Errno, Request};
use std::time::{Duration, Instant};

/// The environment variable that makes this binary a waiter (see
/// `common/futex_waiter.rs`):
/// `<socket>|<shmid>|<how>`, `how` one of `private` (a private wait of
/// 1.5 s carried by the client), `daemon-private` (the same sent as a raw
/// frame, so memsrv in the daemon holds it) or `shared` (a non-private
/// wait of 20 s).
const WAITER: &str = "NOMMU_PRIVATE_FUTEX_WAITER";

const PRIV: u32 = FUTEX_PRIVATE_FLAG;
const ETIMEDOUT: i64 = 110;

/// Not a test of its own: the waiter's side, run only in a copy of this
/// binary started with [`WAITER`] set.
#[test]
fn waiter_entry() {
    let private = |how: &str| {
        if how == "shared" {
            FUTEX_WAIT
        } else {
            FUTEX_WAIT | PRIV
        }
    };
    let Some((client, addr, how)) = waiter_side(WAITER, private) else {
        return;
    };
    let start = Instant::now();
    let result = match how.as_str() {
        "private" => client.futex(addr, FUTEX_WAIT | PRIV, 0, Some(1_500_000_000), 0, 0, 0),
        "shared" => client.futex(addr, FUTEX_WAIT, 0, Some(20_000_000_000), 0, 0, 0),
        _ => raw_frame_call(
            &client,
            &Request::Futex {
                uaddr: addr,
                op: FUTEX_WAIT | PRIV,
                val: 0,
                timeout_ns: Some(1_500_000_000),
                val2: 0,
                uaddr2: 0,
                val3: 0,
            },
        ),
    };
    print_result(result, start);
}

/// A waiter process on segment `shmid`, `READY` and (for one the client
/// carries) asleep in the host's futex.
fn waiter(d: &Daemon, shmid: i32, how: &str) -> Interactive {
    let (w, pid) = spawn_waiter(WAITER, d, shmid, how);
    if how == "daemon-private" {
        // memsrv holds it: no thread sleeps for it. The frame is on its
        // way; give it time to arrive.
        std::thread::sleep(Duration::from_millis(300));
    } else {
        sleeping_in_futex(pid, "waiter_entry");
    }
    w
}

/// The private ways to wake the word at `addr`.
const PRIVATE_WAKES: [&str; 3] = ["wake", "wake-op", "cmp-requeue"];

/// Wake the word at `addr` from `c` the private way `how`; how many woke.
fn private_wake(c: &Client<DaemonConnection>, addr: u64, how: &str) -> Result<i64, Errno> {
    match how {
        "wake" => c.futex(addr, FUTEX_WAKE | PRIV, 1, None, 0, 0, 0),
        // Set the second word to 0 and wake both words' waiters.
        "wake-op" => c.futex(
            addr,
            FUTEX_WAKE_OP | PRIV,
            1,
            None,
            1,
            addr + 4,
            futex_op(FUTEX_OP_SET, 0, FUTEX_OP_CMP_EQ, 0),
        ),
        _ => c.futex(addr, FUTEX_CMP_REQUEUE | PRIV, 1, None, 1, addr + 4, 0),
    }
}

#[test]
fn private_futexes_of_two_processes_never_meet_on_one_segment() {
    let d = Daemon::start();
    let c = d.client();
    let (id, addr) = segment(&c);
    for how in ["private", "daemon-private"] {
        let mut w = waiter(&d, id, how);
        for wake in PRIVATE_WAKES {
            assert_eq!(private_wake(&c, addr, wake), Ok(0), "{how} {wake}");
        }
        assert_eq!(result(&mut w).0, format!("errno{ETIMEDOUT}"), "{how}");
        w.finish();
    }
    // Non-private calls on the segment still meet.
    let mut w = waiter(&d, id, "shared");
    assert_eq!(c.futex(addr, FUTEX_WAKE, 1, None, 0, 0, 0), Ok(1));
    assert_eq!(result(&mut w).0, "0");
    w.finish();
    c.shmdt(addr).unwrap();
    c.shm_remove(id).unwrap();
    d.assert_all_free();
}

#[test]
fn private_futexes_of_one_process_meet() {
    let d = Daemon::start();
    let c = d.client();
    let (id, addr) = segment(&c);
    for how in PRIVATE_WAKES {
        // A second connection of this process waits on another thread.
        let other = d.client();
        let waiting = std::thread::spawn(move || {
            other.futex(addr, FUTEX_WAIT | PRIV, 0, Some(20_000_000_000), 0, 0, 0)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let woke = loop {
            let woke = private_wake(&c, addr, how);
            if woke != Ok(0) || Instant::now() > deadline {
                break woke;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(woke, Ok(1), "{how}");
        assert_eq!(waiting.join().unwrap(), Ok(0), "{how}");
    }
    c.shmdt(addr).unwrap();
    c.shm_remove(id).unwrap();
}
