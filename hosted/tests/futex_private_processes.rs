//! Private futexes through `memsrvd` are keyed by the caller's address
//! space (spec §8.2; Linux's `get_futex_key` without `FLAGS_SHARED`): two
//! processes using `FUTEX_PRIVATE_FLAG` on one SysV segment never meet —
//! not by a wake, a `FUTEX_WAKE_OP` or a requeue, and not for a wait sent
//! to the daemon as a frame — while their non-private calls on it still
//! meet, and private calls of two connections of one process still meet.
//!
//! The other process is a copy of this test binary started in [`WAITER`]
//! mode (entry [`waiter_entry`]): it connects, attaches the segment, says
//! `READY`, waits and prints `RESULT: <value or errno>`.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{Daemon, Interactive};
use nommu::transport::DaemonConnection;
use nommu::Client;
use protocol::linux::{
    futex_op, FUTEX_CMP_REQUEUE, FUTEX_OP_CMP_EQ, FUTEX_OP_SET, FUTEX_PRIVATE_FLAG, FUTEX_WAIT,
    FUTEX_WAKE, FUTEX_WAKE_OP, IPC_CREAT, IPC_PRIVATE,
};
use protocol::{encode_request, Errno, Reply, Request, MAX_FRAME};
use std::process::Command;
use std::time::{Duration, Instant};

/// The environment variable that makes this binary a waiter:
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
    let Ok(spec) = std::env::var(WAITER) else {
        return;
    };
    let mut parts = spec.splitn(3, '|');
    let (socket, shmid, how) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<i32>().unwrap(),
        parts.next().unwrap(),
    );
    let client = DaemonConnection::connect(socket).unwrap();
    let addr = client.shmat(shmid, 0, 0).unwrap();
    let private = if how == "shared" { 0 } else { PRIV };
    // The word is checked first, so the wait below goes straight to sleep.
    let not_now = client.futex(addr, FUTEX_WAIT | private, 1, None, 0, 0, 0);
    assert_eq!(not_now, Err(Errno::EAGAIN));
    println!("\nREADY: {}", std::process::id());
    let result = match how {
        "private" => client.futex(addr, FUTEX_WAIT | PRIV, 0, Some(1_500_000_000), 0, 0, 0),
        "shared" => client.futex(addr, FUTEX_WAIT, 0, Some(20_000_000_000), 0, 0, 0),
        _ => {
            let mut frame = [0u8; MAX_FRAME];
            let request = Request::Futex {
                uaddr: addr,
                op: FUTEX_WAIT | PRIV,
                val: 0,
                timeout_ns: Some(1_500_000_000),
                val2: 0,
                uaddr2: 0,
                val3: 0,
            };
            let len = encode_request(77, &request, &mut frame);
            let mut reply = [0u8; MAX_FRAME];
            let got = client
                .transport()
                .call_on_socket(&frame[..len], &mut reply)
                .unwrap();
            match protocol::decode_reply(&reply[..got]).unwrap().message {
                Reply::Value(v) => Ok(v),
                Reply::Error(e) => Err(e),
                _ => Err(Errno::EPROTO),
            }
        }
    };
    let shown = match result {
        Ok(v) => v.to_string(),
        Err(e) => format!("errno{}", e.0),
    };
    println!("RESULT: {shown}");
}

/// A waiter process on segment `shmid`, `READY` and (for one the client
/// carries) asleep in the host's futex.
fn waiter(d: &Daemon, shmid: i32, how: &str) -> Interactive {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "waiter_entry", "--nocapture", "--test-threads=1"])
        .env(WAITER, format!("{}|{shmid}|{how}", d.socket.display()));
    let mut w = Interactive::spawn(cmd);
    let pid: u32 = w.expect("READY:").parse().unwrap();
    if how == "daemon-private" {
        // memsrv holds it: no thread sleeps for it. The frame is on its
        // way; give it time to arrive.
        std::thread::sleep(Duration::from_millis(300));
    } else {
        sleeping_in_futex(pid);
    }
    w
}

/// Wait (up to 10 s) until the waiter's test thread sleeps in a futex.
fn sleeping_in_futex(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while Instant::now() < deadline {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        let asleep = tasks.flatten().any(|t| {
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
            read("comm").trim() == "waiter_entry" && read("wchan").contains("futex")
        });
        // Twice in a row, so a moment on a lock does not count.
        if asleep && std::mem::replace(&mut seen, true) {
            return;
        }
        seen = asleep;
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
}

fn result(w: &mut Interactive) -> String {
    w.expect("RESULT:")
}

/// A fresh one-page segment attached by `c`: its id and address (the
/// word and the next one hold 0).
fn segment(c: &Client<DaemonConnection>) -> (i32, u64) {
    let id = c.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600).unwrap();
    let addr = c.shmat(id, 0, 0).unwrap();
    (id, addr)
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
        assert_eq!(result(&mut w), format!("errno{ETIMEDOUT}"), "{how}");
        w.finish();
    }
    // Non-private calls on the segment still meet.
    let mut w = waiter(&d, id, "shared");
    assert_eq!(c.futex(addr, FUTEX_WAKE, 1, None, 0, 0, 0), Ok(1));
    assert_eq!(result(&mut w), "0");
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
