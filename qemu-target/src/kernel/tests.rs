mod reply_receive;

use super::ipc::UP_DEPTH;
use super::*;
use protocol::MAX_FRAME;
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

/// Task memory: one flat range starting at `BASE`.
struct Ram {
    bytes: Vec<u8>,
    console: Vec<u8>,
}

const BASE: u64 = 0x1000;

impl Machine for Ram {
    fn copy_out(&mut self, addr: u64, bytes: &[u8]) -> bool {
        let Some(at) = addr.checked_sub(BASE) else {
            return false;
        };
        match self.bytes.get_mut(at as usize..at as usize + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }

    fn copy_in(&mut self, addr: u64, out: &mut [u8]) -> bool {
        let Some(at) = addr.checked_sub(BASE) else {
            return false;
        };
        match self.bytes.get(at as usize..at as usize + out.len()) {
            Some(src) => {
                out.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    fn copy(&mut self, src: u64, dst: u64, len: usize) -> bool {
        let mut buf = vec![0; len];
        self.copy_in(src, &mut buf) && self.copy_out(dst, &buf)
    }

    fn contains(&self, addr: u64, len: usize) -> bool {
        addr.checked_sub(BASE)
            .is_some_and(|at| at as usize + len <= self.bytes.len())
    }

    fn console(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }
}

struct World {
    k: Box<Kernel>,
    ram: Ram,
    now: u64,
}

const CLIENT_BUF: u64 = BASE;
const SERVER_BUF: u64 = BASE + 0x1000;
const REPLY_BUF: u64 = BASE + 0x2000;

fn start(privileged: bool) -> TaskStart {
    TaskStart {
        entry: 0x100,
        arg: 0,
        stack_top: 0,
        tls: 0,
        gp: 0,
        exit_trampoline: 0,
        privileged,
        stack_bottom: 0,
    }
}

impl World {
    /// Two tasks: 0 the server, 1 a client.
    fn new() -> Self {
        let mut k = Box::new(Kernel::new());
        assert_eq!(k.spawn("server", start(false)), Some(0));
        assert_eq!(k.spawn("client", start(false)), Some(1));
        Self {
            k,
            ram: Ram {
                bytes: vec![0; 0x4000],
                console: Vec::new(),
            },
            now: 0,
        }
    }

    /// Make system call `nr` from `task`; `a0` as a signed value.
    fn sys(&mut self, task: TaskId, nr: Sys, args: &[u64]) -> i64 {
        let frame = &mut self.k.tasks[task].frame;
        frame.regs[reg::A7] = nr as u64;
        for (i, a) in args.iter().enumerate() {
            frame.regs[reg::A0 + i] = *a;
        }
        let outcome = self.k.syscall(task, self.now, &mut self.ram);
        assert_eq!(outcome == Outcome::Yield, nr == Sys::Yield);
        self.a(task, 0)
    }

    fn a(&self, task: TaskId, n: usize) -> i64 {
        self.k.tasks[task].frame.regs[reg::A0 + n] as i64
    }

    fn state(&self, task: TaskId) -> TaskState {
        self.k.tasks[task].state
    }

    fn put(&mut self, addr: u64, bytes: &[u8]) {
        assert!(self.ram.copy_out(addr, bytes));
    }

    fn get(&mut self, addr: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        assert!(self.ram.copy_in(addr, &mut out));
        out
    }

    fn receive(&mut self) -> (u64, i64, u64) {
        self.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, NEVER]);
        assert_eq!(self.state(0), TaskState::Ready, "an event was waiting");
        (self.a(0, 0) as u64, self.a(0, 1), self.a(0, 2) as u64)
    }

    fn connect(&mut self) -> u64 {
        let conn = self.sys(1, Sys::Connect, &[0, 0, 0]);
        assert!(conn >= 0);
        let (c, creds, event) = self.receive();
        assert_eq!((c, creds, event), (conn as u64, 0, Event::Open as u64));
        conn as u64
    }
}

fn errno(e: Errno) -> i64 {
    -i64::from(e.0)
}

#[test]
fn a_call_reaches_a_waiting_server_and_its_reply_the_blocked_client() {
    let mut w = World::new();
    let conn = w.connect();
    // The server waits first; the call is handed straight to it.
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, NEVER]);
    assert!(matches!(w.state(0), TaskState::Receive { .. }));
    w.put(CLIENT_BUF, b"request");
    w.sys(1, Sys::Call, &[conn, CLIENT_BUF, 7, REPLY_BUF, 64]);
    assert!(matches!(w.state(1), TaskState::Recv { .. }));
    assert_eq!(w.state(0), TaskState::Ready);
    assert_eq!(
        (w.a(0, 0) as u64, w.a(0, 1), w.a(0, 2) as u64),
        (conn, 7, Event::Frame as u64)
    );
    assert_eq!(w.get(SERVER_BUF, 7), b"request");
    w.put(SERVER_BUF, b"answer!!");
    assert_eq!(w.sys(0, Sys::Reply, &[conn, SERVER_BUF, 8]), 0);
    assert_eq!(w.state(1), TaskState::Ready);
    assert_eq!(w.a(1, 0), 8);
    assert_eq!(w.get(REPLY_BUF, 8), b"answer!!");
}

#[test]
fn split_calls_and_unasked_frames_queue_in_order() {
    let mut w = World::new();
    let conn = w.connect();
    for (i, text) in [b"one", b"two"].iter().enumerate() {
        w.put(CLIENT_BUF + i as u64 * 16, *text);
        assert_eq!(
            w.sys(1, Sys::Send, &[conn, CLIENT_BUF + i as u64 * 16, 3]),
            0
        );
    }
    assert_eq!(w.state(1), TaskState::Ready, "send does not block");
    for text in [b"one", b"two"] {
        let (c, len, event) = w.receive();
        assert_eq!((c, len, event), (conn, 3, Event::Frame as u64));
        assert_eq!(w.get(SERVER_BUF, 3), text);
    }
    // The server sends two frames nobody waits for; the client reads them
    // later, in order.
    for text in [b"req-a", b"req-b"] {
        w.put(SERVER_BUF, text);
        assert_eq!(w.sys(0, Sys::Reply, &[conn, SERVER_BUF, 5]), 0);
    }
    for text in [b"req-a", b"req-b"] {
        assert_eq!(w.sys(1, Sys::Recv, &[conn, REPLY_BUF, 64, NEVER]), 5);
        assert_eq!(w.get(REPLY_BUF, 5), text);
    }
}

#[test]
fn a_closed_client_is_one_hang_up_and_then_gone() {
    let mut w = World::new();
    let conn = w.connect();
    assert_eq!(w.sys(1, Sys::Close, &[conn]), 0);
    assert_eq!(w.receive(), (conn, 0, Event::Hangup as u64));
    assert_eq!(
        w.sys(0, Sys::Reply, &[conn, SERVER_BUF, 1]),
        errno(Errno::EBADF)
    );
    assert_eq!(w.sys(1, Sys::Close, &[conn]), errno(Errno::EBADF));
    // A new connection in the same slot has a new name.
    let again = w.connect();
    assert_ne!(again, conn);
}

#[test]
fn a_server_hang_up_wakes_the_waiting_client_with_enotconn() {
    let mut w = World::new();
    let conn = w.connect();
    w.sys(1, Sys::Recv, &[conn, REPLY_BUF, 64, NEVER]);
    assert!(matches!(w.state(1), TaskState::Recv { .. }));
    assert_eq!(w.sys(0, Sys::Hangup, &[conn]), 0);
    assert_eq!(w.state(1), TaskState::Ready);
    assert_eq!(w.a(1, 0), errno(Errno::ENOTCONN));
    assert_eq!(
        w.sys(1, Sys::Send, &[conn, CLIENT_BUF, 1]),
        errno(Errno::ENOTCONN)
    );
    assert_eq!(w.sys(1, Sys::Close, &[conn]), 0);
}

#[test]
fn deadlines_end_waits_with_etimedout_and_sleeps_with_zero() {
    let mut w = World::new();
    let conn = w.connect();
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, 50]);
    w.sys(1, Sys::Sleep, &[20]);
    assert_eq!(w.k.next_deadline(), 20);
    assert_eq!(w.k.schedule(), None, "everyone waits");
    w.k.expire(20);
    assert_eq!(w.state(1), TaskState::Ready);
    assert_eq!(w.a(1, 0), 0);
    w.sys(1, Sys::Recv, &[conn, REPLY_BUF, 64, 40]);
    w.k.expire(45);
    assert_eq!(w.a(1, 0), errno(Errno::ETIMEDOUT));
    assert!(matches!(w.state(0), TaskState::Receive { .. }));
    w.k.expire(50);
    assert_eq!(w.a(0, 0), errno(Errno::ETIMEDOUT));
    // A receive whose deadline has passed returns at once.
    w.now = 60;
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, 10]);
    assert_eq!(w.state(0), TaskState::Ready);
    assert_eq!(w.a(0, 0), errno(Errno::ETIMEDOUT));
}

#[test]
fn bad_arguments_are_errors_not_faults() {
    let mut w = World::new();
    let conn = w.connect();
    assert_eq!(
        w.sys(1, Sys::Connect, &[0, 5, 5]),
        errno(Errno::EPERM),
        "credentials need privilege"
    );
    assert_eq!(w.sys(1, Sys::Connect, &[1, 0, 0]), errno(Errno::ESRCH));
    assert_eq!(w.sys(1, Sys::Connect, &[99, 0, 0]), errno(Errno::ESRCH));
    assert_eq!(
        w.sys(1, Sys::Send, &[conn, 0xdead_0000, 4]),
        errno(Errno::EFAULT)
    );
    assert_eq!(
        w.sys(1, Sys::Send, &[conn, CLIENT_BUF, MAX_FRAME as u64 + 1]),
        errno(Errno::EMSGSIZE)
    );
    assert_eq!(
        w.sys(1, Sys::Send, &[conn + 1, CLIENT_BUF, 1]),
        errno(Errno::EBADF)
    );
    assert_eq!(
        w.sys(0, Sys::Send, &[conn, CLIENT_BUF, 1]),
        errno(Errno::EBADF),
        "only the client sends on a connection"
    );
    let frame = &mut w.k.tasks[1].frame;
    frame.regs[reg::A7] = 999;
    w.k.syscall(1, 0, &mut w.ram);
    assert_eq!(w.a(1, 0), errno(Errno::ENOSYS));
    assert_eq!(w.sys(1, Sys::PowerOff, &[0]), errno(Errno::EPERM));
    w.put(CLIENT_BUF, b"hi");
    assert_eq!(w.sys(1, Sys::Console, &[CLIENT_BUF, 2]), 2);
    assert_eq!(w.ram.console, b"hi");
}

#[test]
fn an_exiting_client_hangs_up_and_an_exiting_server_fails_its_clients() {
    let mut w = World::new();
    let conn = w.connect();
    w.sys(1, Sys::Exit, &[3]);
    assert_eq!(w.state(1), TaskState::Exited { code: 3 });
    assert_eq!(w.receive(), (conn, 0, Event::Hangup as u64));

    let mut w = World::new();
    let conn = w.connect();
    w.sys(1, Sys::Recv, &[conn, REPLY_BUF, 64, NEVER]);
    w.sys(0, Sys::Exit, &[0]);
    assert_eq!(w.a(1, 0), errno(Errno::ENOTCONN));
    assert!(!w.k.any_alive() || w.state(1) == TaskState::Ready);
}

#[test]
fn queues_are_bounded_with_eagain_and_the_pool_is_returned() {
    let mut w = World::new();
    let conn = w.connect();
    let mut sent = 0;
    while w.sys(1, Sys::Send, &[conn, CLIENT_BUF, 8]) == 0 {
        sent += 1;
    }
    assert_eq!(sent, UP_DEPTH);
    assert_eq!(w.a(1, 0), errno(Errno::EAGAIN));
    // Closing returns every queued frame to the pool.
    w.sys(1, Sys::Close, &[conn]);
    for _ in 0..UP_DEPTH {
        let (_, len, event) = w.receive();
        assert_eq!((len, event), (8, Event::Frame as u64));
    }
    assert_eq!(w.receive(), (conn, 0, Event::Hangup as u64));
    assert_eq!(w.k.pool.free.len(), FRAME_POOL);
}

#[test]
fn the_scheduler_takes_ready_tasks_in_turn() {
    let mut w = World::new();
    let order: Vec<_> = (0..4).map(|_| w.k.schedule()).collect();
    assert_eq!(order, [Some(1), Some(0), Some(1), Some(0)]);
}

#[test]
fn a_privileged_task_spawns_and_joins_a_task_that_exits() {
    let mut w = World::new();
    w.k.tasks[1].privileged = true;
    w.put(CLIENT_BUF, b"worker");
    let stack = 0x800u64;
    let child = w.sys(
        1,
        Sys::Spawn,
        &[0x200, 7, BASE + 0x3800, 0, CLIENT_BUF, 6 | stack << 16],
    );
    assert_eq!(child, 2);
    assert!(w.k.stack_intact(2, &mut w.ram));
    w.k.tasks[2].frame.regs[reg::SP] = BASE + 0x3000 + 4;
    assert!(!w.k.stack_intact(2, &mut w.ram), "sp below the bottom");
    w.k.tasks[2].frame.regs[reg::SP] = BASE + 0x3400;
    w.put(BASE + 0x3000, &[0; 8]);
    assert!(!w.k.stack_intact(2, &mut w.ram), "canary overwritten");
    assert_eq!(w.k.tasks[2].name(), "worker");
    assert_eq!(w.k.tasks[2].frame.regs[reg::A0], 7);
    assert_eq!(w.k.tasks[2].frame.sepc, 0x200);
    w.sys(1, Sys::Join, &[2, NEVER]);
    assert!(matches!(w.state(1), TaskState::Join { task: 2, .. }));
    w.sys(2, Sys::Exit, &[(-5i64) as u64]);
    assert_eq!(w.state(1), TaskState::Ready);
    assert_eq!((w.a(1, 0), w.a(1, 1)), (0, -5));
    assert_eq!(w.state(2), TaskState::Empty, "joined: the slot is free");
    assert_eq!(w.sys(1, Sys::Join, &[2, NEVER]), errno(Errno::ESRCH));
    assert_eq!(
        w.sys(0, Sys::Spawn, &[0x200, 0, 0, 0, CLIENT_BUF, 1]),
        errno(Errno::EPERM)
    );
}

#[test]
fn a_server_takes_its_connections_in_turn() {
    let mut w = World::new();
    let a = w.connect();
    let b = w.connect();
    for _ in 0..2 {
        w.put(CLIENT_BUF, b"a");
        w.sys(1, Sys::Send, &[a, CLIENT_BUF, 1]);
        w.put(CLIENT_BUF, b"bb");
        w.sys(1, Sys::Send, &[b, CLIENT_BUF, 2]);
    }
    let order: Vec<(u64, i64)> = (0..4)
        .map(|_| w.receive())
        .map(|(c, n, _)| (c, n))
        .collect();
    assert_eq!(order, [(a, 1), (b, 2), (a, 1), (b, 2)]);
    // Nothing left: a receive with a past deadline times out.
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, 0]);
    assert_eq!(w.a(0, 0), errno(Errno::ETIMEDOUT));
}

#[test]
fn a_call_switches_straight_to_the_waiting_server_and_the_reply_straight_back() {
    let mut w = World::new();
    // A third ready task, which round robin would run before either.
    assert_eq!(w.k.spawn("bystander", start(false)), Some(2));
    let conn = w.connect();
    assert_eq!(w.k.handoff(), None, "an open hands nothing over");
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, NEVER]);
    assert_eq!(w.k.handoff(), None, "the receive woke nobody");
    w.put(CLIENT_BUF, b"ping");
    w.sys(1, Sys::Call, &[conn, CLIENT_BUF, 4, REPLY_BUF, 64]);
    assert!(matches!(w.state(1), TaskState::Recv { .. }));
    assert_eq!(
        w.k.handoff(),
        Some(0),
        "the caller hands over to the server"
    );
    assert_eq!(w.k.handoff(), None, "a handoff is taken once");
    w.put(SERVER_BUF, b"pong");
    assert_eq!(w.sys(0, Sys::Reply, &[conn, SERVER_BUF, 4]), 0);
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, NEVER]);
    assert!(matches!(w.state(0), TaskState::Receive { .. }));
    assert_eq!(
        w.k.handoff(),
        Some(1),
        "the server hands back to the client"
    );
    assert_eq!((w.a(1, 0), w.get(REPLY_BUF, 4)), (4, b"pong".to_vec()));
    // Round robin goes on from the task handed over to.
    assert_eq!(w.k.schedule(), Some(2));
}

#[test]
fn a_handoff_to_a_task_that_blocked_again_is_refused() {
    let mut w = World::new();
    let conn = w.connect();
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, NEVER]);
    w.sys(1, Sys::Send, &[conn, CLIENT_BUF, 1]);
    // The server was woken, but waits again before the client blocks.
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, NEVER]);
    assert!(matches!(w.state(0), TaskState::Receive { .. }));
    assert_eq!(w.k.handoff(), None);
}

#[test]
fn a_short_queued_frame_waits_in_its_connection_not_the_pool() {
    let mut w = World::new();
    let conn = w.connect();
    // No pool slot left: only the connections' own short slots.
    w.k.pool.initialised = true;
    w.k.pool.free.clear();
    w.put(CLIENT_BUF, &[7; SHORT_FRAME]);
    assert_eq!(
        w.sys(1, Sys::Send, &[conn, CLIENT_BUF, SHORT_FRAME as u64 + 1]),
        errno(Errno::EAGAIN),
        "a longer frame needs the pool"
    );
    assert_eq!(
        w.sys(1, Sys::Send, &[conn, CLIENT_BUF, SHORT_FRAME as u64]),
        0
    );
    assert_eq!(
        w.sys(1, Sys::Send, &[conn, CLIENT_BUF, 1]),
        errno(Errno::EAGAIN),
        "one short frame per direction"
    );
    w.put(SERVER_BUF, b"unasked");
    assert_eq!(w.sys(0, Sys::Reply, &[conn, SERVER_BUF, 7]), 0);
    let (c, len, event) = w.receive();
    assert_eq!(
        (c, len, event),
        (conn, SHORT_FRAME as i64, Event::Frame as u64)
    );
    assert_eq!(w.get(SERVER_BUF, SHORT_FRAME), vec![7; SHORT_FRAME]);
    assert_eq!(w.sys(1, Sys::Recv, &[conn, REPLY_BUF, 64, NEVER]), 7);
    assert_eq!(w.get(REPLY_BUF, 7), b"unasked");
    // Both slots are free again.
    assert_eq!(w.sys(1, Sys::Send, &[conn, CLIENT_BUF, 2]), 0);
    assert_eq!(w.k.pool.free.len(), 0);
}

#[test]
fn the_task_woken_first_is_handed_the_hart_first() {
    let mut w = World::new();
    assert_eq!(w.k.spawn("client-b", start(false)), Some(2));
    let conn = w.connect();
    let b = w.sys(2, Sys::Connect, &[0, 0, 0]) as u64;
    assert_eq!(w.receive().0, b);
    // Both clients wait for frames; the server answers 1, then 2.
    w.sys(1, Sys::Recv, &[conn, REPLY_BUF, 64, NEVER]);
    w.sys(2, Sys::Recv, &[b, REPLY_BUF + 64, 64, NEVER]);
    w.k.handoff();
    assert_eq!(w.sys(0, Sys::Reply, &[conn, SERVER_BUF, 1]), 0);
    assert_eq!(w.sys(0, Sys::Reply, &[b, SERVER_BUF, 1]), 0);
    w.sys(0, Sys::Receive, &[SERVER_BUF, MAX_FRAME as u64, NEVER]);
    assert_eq!(w.k.handoff(), Some(1), "the first one woken");
}
