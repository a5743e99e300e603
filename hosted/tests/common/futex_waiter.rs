//! What the futex tests across host processes (`futex_processes.rs`,
//! `futex_private_processes.rs`) share: the waiter, a copy of the test
//! binary started with `<socket>|<shmid>|<how>` in an environment variable
//! (entry `waiter_entry`), which connects, attaches the segment, says
//! `READY: <pid>`, waits on its first word and prints `RESULT: <value or
//! errnoN> <ms>`; a wait sent as a raw frame, so that the daemon serves
//! it; and seeing that a waiter's thread sleeps.

use super::daemon::{Daemon, Interactive};
use nommu::transport::DaemonConnection;
use nommu::Client;
use protocol::{encode_request, Errno, Reply, Request, MAX_FRAME};
use std::process::Command;
use std::time::{Duration, Instant};

/// The waiter's side: its connection, the segment's address and `how`
/// from `var`, the word checked for `op` so that the wait goes straight to
/// its sleep (a thread of the waiter asleep in a futex is then that wait,
/// not a round trip to the daemon); `None` when `var` is not set (the
/// entry then runs as an ordinary, empty test).
pub fn waiter_side(
    var: &str,
    op: impl Fn(&str) -> u32,
) -> Option<(Client<DaemonConnection>, u64, String)> {
    let spec = std::env::var(var).ok()?;
    let mut parts = spec.splitn(3, '|');
    let (socket, shmid, how) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<i32>().unwrap(),
        parts.next().unwrap(),
    );
    let client = DaemonConnection::connect(socket).unwrap();
    let addr = client.shmat(shmid, 0, 0).unwrap();
    let not_now = client.futex(addr, op(how), 1, None, 0, 0, 0);
    assert_eq!(not_now, Err(Errno::EAGAIN));
    // On a line of its own: libtest has printed the test name before.
    println!("\nREADY: {}", std::process::id());
    Some((client, addr, how.to_string()))
}

/// Send `request` as a raw frame over the socket: the daemon's thread (or
/// memsrv in it) serves it, not this process.
pub fn raw_frame_call(client: &Client<DaemonConnection>, request: &Request) -> Result<i64, Errno> {
    let mut frame = [0u8; MAX_FRAME];
    let len = encode_request(77, request, &mut frame);
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

/// Print the waiter's `RESULT:` line.
pub fn print_result(result: Result<i64, Errno>, since: Instant) {
    let shown = match result {
        Ok(v) => v.to_string(),
        Err(e) => format!("errno{}", e.0),
    };
    println!("RESULT: {shown} {}", since.elapsed().as_millis());
}

/// A waiter process (this binary, with `var` set) on segment `shmid`,
/// started and `READY`; its pid.
pub fn spawn_waiter(var: &str, d: &Daemon, shmid: i32, how: &str) -> (Interactive, u32) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "waiter_entry", "--nocapture", "--test-threads=1"])
        .env(var, format!("{}|{shmid}|{how}", d.socket.display()));
    let mut w = Interactive::spawn(cmd);
    let pid = w.expect("READY:").parse().unwrap();
    (w, pid)
}

/// The waiter's result: the value (or `errnoN`) and the milliseconds it
/// took.
pub fn result(w: &mut Interactive) -> (String, u64) {
    let line = w.expect("RESULT:");
    let (value, ms) = line.split_once(' ').unwrap();
    (value.to_string(), ms.parse().unwrap())
}

/// Wait (up to 10 s) until a thread of `pid` named `thread` sleeps in a
/// futex: a wake sent after this cannot come before the wait.
pub fn sleeping_in_futex(pid: u32, thread: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while Instant::now() < deadline {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        let asleep = tasks.flatten().any(|t| {
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
            read("comm").trim() == thread && read("wchan").contains("futex")
        });
        // Twice in a row, so a moment on a lock does not count.
        if asleep && std::mem::replace(&mut seen, true) {
            return;
        }
        seen = asleep;
        std::thread::sleep(Duration::from_millis(20));
    }
    // No wait channel to read (a restricted /proc): give it time.
    std::thread::sleep(Duration::from_millis(500));
}

/// A fresh segment of one page, attached by `c`; its id and address.
pub fn segment(c: &Client<DaemonConnection>) -> (i32, u64) {
    use protocol::linux::{IPC_CREAT, IPC_PRIVATE};
    let id = c.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600).unwrap();
    let addr = c.shmat(id, 0, 0).unwrap();
    (id, addr)
}
