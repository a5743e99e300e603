//! The kernel's task table, scheduler and IPC, as plain code: every
//! system call is a method on [`Kernel`] that reads its arguments from the
//! calling task's saved registers and writes results into the registers of
//! whichever tasks it completes. The trap handler (board only) does the
//! rest: saving and restoring those registers.
//!
//! IPC is synchronous send / receive / reply over **connections**, each
//! between one client task and one server task (the way a process opens
//! the memory server in the hosted homes). A client's [`Sys::Call`] sends a
//! frame and blocks until the reply; a server's [`Sys::Receive`] blocks
//! until some connection has a frame (or was opened or hung up) and
//! [`Sys::Reply`] answers it. A client may also split a call
//! ([`Sys::Send`] now, [`Sys::Recv`] later), and a server may send frames
//! nobody asked for yet (memsrv's requests to a driver): each direction of
//! a connection is a short queue of whole frames in kernel memory. A frame
//! goes straight into the waiting peer's buffer when the peer is already
//! blocked, so the common call costs no queueing.
//!
//! Nothing here allocates: frames live in a fixed pool, and a full pool or
//! queue is `EAGAIN` to the sender, which retries.

use heapless::Deque;
use protocol::{Errno, MAX_FRAME};

pub const MAX_TASKS: usize = 32;
pub const MAX_CONNECTIONS: usize = 128;
/// Frames queued in the kernel at once (over all connections).
pub const FRAME_POOL: usize = 256;
const UP_DEPTH: usize = 8;
const DOWN_DEPTH: usize = 32;
/// A deadline that never comes.
pub const NEVER: u64 = u64::MAX;
/// Bytes of a task's name kept for fault reports.
pub const TASK_NAME: usize = 16;
const PRIVILEGED: u64 = 1 << 63;
/// The word kept at the bottom of every task stack: a task whose stack
/// ran over it is stopped at its next trap (see [`Kernel::stack_intact`]).
pub const STACK_CANARY: u64 = 0x5afe_57ac_6b0d_dead;

impl Task {
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|b| *b == 0).unwrap_or(TASK_NAME);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }
}

/// The registers a trap saves: `x1..x31` (slot 0 unused), the float
/// registers and `fcsr`, the trapped pc, and the kernel stack to switch to.
/// The layout is fixed for the trap entry code.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapFrame {
    pub regs: [u64; 32],
    pub fregs: [u64; 32],
    pub fcsr: u64,
    pub sepc: u64,
    pub kernel_sp: u64,
}

impl TrapFrame {
    pub const fn zeroed() -> Self {
        Self {
            regs: [0; 32],
            fregs: [0; 32],
            fcsr: 0,
            sepc: 0,
            kernel_sp: 0,
        }
    }
}

/// Register numbers in [`TrapFrame::regs`].
pub mod reg {
    pub const RA: usize = 1;
    pub const SP: usize = 2;
    pub const GP: usize = 3;
    pub const TP: usize = 4;
    pub const A0: usize = 10;
    pub const A1: usize = 11;
    pub const A2: usize = 12;
    pub const A3: usize = 13;
    pub const A4: usize = 14;
    pub const A5: usize = 15;
    pub const A6: usize = 16;
    pub const A7: usize = 17;
}

/// System call numbers (in `a7`; arguments in `a0..a4`; results in
/// `a0..a2`, `a0` negative errno on failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Sys {
    /// `(ptr, len)`: write bytes to the console.
    Console = 0,
    /// `(code)`: end the calling task.
    Exit = 1,
    /// `(server task, uid, gid)` → connection. Only privileged tasks may
    /// name credentials other than their own.
    Connect = 2,
    /// `(conn)`: the client closes; the server sees a hang-up.
    Close = 3,
    /// `(conn, ptr, len)`: queue a frame to the other end, do not wait.
    Send = 4,
    /// `(conn, ptr, cap, deadline)` → length: the client's next frame.
    Recv = 5,
    /// `(conn, ptr, len, reply ptr, reply cap)` → reply length.
    Call = 6,
    /// `(ptr, cap, deadline)` → `(conn, len or credentials, event)`: the
    /// server's next event ([`Event`]).
    Receive = 7,
    /// `(conn, ptr, len)`: the server answers (or sends unasked).
    Reply = 8,
    /// `(conn)`: the server drops a client.
    Hangup = 9,
    /// Give up the rest of the time slice.
    Yield = 10,
    /// `(deadline)`: sleep until then.
    Sleep = 11,
    /// `(code)`: end the run (0 passes); privileged tasks only.
    PowerOff = 12,
    /// `(entry, arg, stack top, tls, name ptr, name len | stack size <<
    /// 16 | privileged << 63, exit trampoline)` → task: start a task;
    /// privileged tasks only.
    Spawn = 13,
    /// `(task, deadline)` → `(0, exit code)`: wait for a task to end and
    /// free its slot.
    Join = 14,
}

impl Sys {
    fn from_raw(raw: u64) -> Option<Self> {
        use Sys::*;
        const ALL: [Sys; 15] = [
            Console, Exit, Connect, Close, Send, Recv, Call, Receive, Reply, Hangup, Yield, Sleep,
            PowerOff, Spawn, Join,
        ];
        ALL.into_iter().find(|s| *s as u64 == raw)
    }
}

/// What a server's [`Sys::Receive`] reports in `a2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Event {
    /// A frame (`a1` = its length; more than `MAX_FRAME` is a negated
    /// errno: the frame did not fit the server's buffer).
    Frame = 0,
    /// The client closed or ended (`a1` = 0); the connection is gone.
    Hangup = 1,
    /// A new connection (`a1` = `uid << 32 | gid`).
    Open = 2,
}

/// A connection's name: slot index plus a generation, unique for the
/// kernel's life so a late reply never reaches a newer connection.
pub type ConnId = u64;
pub type TaskId = usize;

fn conn_id(slot: usize, generation: u32) -> ConnId {
    (u64::from(generation) << 16) | slot as u64
}

fn conn_slot(id: ConnId) -> usize {
    (id & 0xffff) as usize
}

/// Where the kernel may copy to and from a task's memory, and where its
/// console goes (the board: RAM bounds and the UART; tests: a vector).
pub trait Machine {
    /// Copy `bytes` to `addr`; false if the range is not task memory.
    fn copy_out(&mut self, addr: u64, bytes: &[u8]) -> bool;
    /// Fill `out` from `addr`; false if the range is not task memory.
    fn copy_in(&mut self, addr: u64, out: &mut [u8]) -> bool;
    /// Copy `len` bytes between two tasks' memory; false if either range
    /// is not task memory.
    fn copy(&mut self, src: u64, dst: u64, len: usize) -> bool;
    /// Whether `[addr, addr+len)` is task memory.
    fn contains(&self, addr: u64, len: usize) -> bool;
    fn console(&mut self, bytes: &[u8]);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Free slot.
    Empty,
    Ready,
    /// Blocked in [`Sys::Recv`] (or the second half of [`Sys::Call`]).
    Recv {
        conn: ConnId,
        addr: u64,
        cap: u64,
        deadline: u64,
    },
    /// Blocked in [`Sys::Receive`].
    Receive {
        addr: u64,
        cap: u64,
        deadline: u64,
    },
    Sleep {
        deadline: u64,
    },
    /// Blocked in [`Sys::Join`].
    Join {
        task: TaskId,
        deadline: u64,
    },
    Exited {
        code: i64,
    },
}

impl TaskState {
    /// When this wait ends by itself ([`NEVER`] if it does not).
    pub fn deadline(&self) -> u64 {
        match *self {
            TaskState::Recv { deadline, .. }
            | TaskState::Receive { deadline, .. }
            | TaskState::Sleep { deadline }
            | TaskState::Join { deadline, .. } => deadline,
            _ => NEVER,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Task {
    name: [u8; TASK_NAME],
    pub state: TaskState,
    /// May connect with other credentials and power the board off.
    pub privileged: bool,
    /// The lowest address of the task's stack (0: not known).
    pub stack_bottom: u64,
    pub frame: TrapFrame,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Free,
    Open,
    /// The client closed: the server has a hang-up to see.
    ClientGone,
    /// The server dropped the client: only the client's close is left.
    ServerGone,
}

struct Connection {
    generation: u32,
    side: Side,
    client: TaskId,
    server: TaskId,
    credentials: (u32, u32),
    /// The server has not yet seen [`Event::Open`].
    opening: bool,
    /// In [`Kernel::ready`].
    listed: bool,
    up: Deque<u16, UP_DEPTH>,
    down: Deque<u16, DOWN_DEPTH>,
}

impl Connection {
    const FREE: Connection = Connection {
        generation: 0,
        side: Side::Free,
        client: 0,
        server: 0,
        credentials: (0, 0),
        opening: false,
        listed: false,
        up: Deque::new(),
        down: Deque::new(),
    };

    fn id(&self, slot: usize) -> ConnId {
        conn_id(slot, self.generation)
    }
}

/// Frames waiting in a queue.
struct FramePool {
    bytes: [[u8; MAX_FRAME]; FRAME_POOL],
    len: [u16; FRAME_POOL],
    free: heapless::Vec<u16, FRAME_POOL>,
    initialised: bool,
}

impl FramePool {
    /// A slot filled with the `len` bytes at task address `addr`.
    fn take(&mut self, machine: &mut dyn Machine, addr: u64, len: usize) -> Result<u16, Errno> {
        if !self.initialised {
            for i in (0..FRAME_POOL as u16).rev() {
                let _ = self.free.push(i);
            }
            self.initialised = true;
        }
        let ix = self.free.pop().ok_or(Errno::EAGAIN)?;
        let slot = usize::from(ix);
        if !machine.copy_in(addr, &mut self.bytes[slot][..len]) {
            let _ = self.free.push(ix);
            return Err(Errno::EFAULT);
        }
        self.len[slot] = len as u16;
        Ok(ix)
    }

    fn get(&self, ix: u16) -> &[u8] {
        let slot = usize::from(ix);
        &self.bytes[slot][..usize::from(self.len[slot])]
    }

    fn put_back(&mut self, ix: u16) {
        let _ = self.free.push(ix);
    }
}

/// What the trap handler must do after a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Return to the caller (or schedule, if it blocked).
    Continue,
    /// The caller gave up its time slice: run someone else first.
    Yield,
    /// Power the board off with this code.
    PowerOff(u64),
}

pub struct Kernel {
    pub tasks: [Task; MAX_TASKS],
    connections: [Connection; MAX_CONNECTIONS],
    pool: FramePool,
    /// Round-robin position of the scheduler.
    last_run: usize,
    /// Connections that may have an event for their server (opened, a
    /// frame queued, hung up), oldest first: a receive takes the first
    /// one of its own instead of scanning every connection.
    ready: Deque<u16, MAX_CONNECTIONS>,
}

fn neg(e: Errno) -> u64 {
    (-i64::from(e.0)) as u64
}

impl Default for Kernel {
    fn default() -> Self {
        Self::new()
    }
}

impl Kernel {
    pub const fn new() -> Self {
        const EMPTY: Task = Task {
            name: [0; TASK_NAME],
            state: TaskState::Empty,
            privileged: false,
            stack_bottom: 0,
            frame: TrapFrame::zeroed(),
        };
        Self {
            tasks: [EMPTY; MAX_TASKS],
            connections: [Connection::FREE; MAX_CONNECTIONS],
            pool: FramePool {
                bytes: [[0; MAX_FRAME]; FRAME_POOL],
                len: [0; FRAME_POOL],
                free: heapless::Vec::new(),
                initialised: false,
            },
            last_run: 0,
            ready: Deque::new(),
        }
    }

    /// Add a task that starts at `entry(arg)` on the stack ending at
    /// `stack_top`, with `tp` = `tls` and `ra` = `exit_trampoline`.
    pub fn spawn(&mut self, name: &str, start: TaskStart) -> Option<TaskId> {
        let id = self
            .tasks
            .iter()
            .position(|t| t.state == TaskState::Empty)?;
        let mut short = [0u8; TASK_NAME];
        let n = name.len().min(TASK_NAME);
        short[..n].copy_from_slice(&name.as_bytes()[..n]);
        let mut frame = TrapFrame::zeroed();
        frame.sepc = start.entry;
        frame.regs[reg::SP] = start.stack_top;
        frame.regs[reg::TP] = start.tls;
        frame.regs[reg::GP] = start.gp;
        frame.regs[reg::RA] = start.exit_trampoline;
        frame.regs[reg::A0] = start.arg;
        self.tasks[id] = Task {
            name: short,
            state: TaskState::Ready,
            privileged: start.privileged,
            stack_bottom: start.stack_bottom,
            frame,
        };
        Some(id)
    }

    /// The next task to run after `current`, round robin; `None` when
    /// every task is blocked or gone.
    pub fn schedule(&mut self) -> Option<TaskId> {
        for step in 1..=MAX_TASKS {
            let id = (self.last_run + step) % MAX_TASKS;
            if self.tasks[id].state == TaskState::Ready {
                self.last_run = id;
                return Some(id);
            }
        }
        None
    }

    /// Wake every task whose deadline has passed (`ETIMEDOUT`, or 0 for a
    /// sleep).
    pub fn expire(&mut self, now_ms: u64) {
        for task in self.tasks.iter_mut() {
            let (deadline, result) = match task.state {
                TaskState::Recv { deadline, .. } | TaskState::Receive { deadline, .. } => {
                    (deadline, neg(Errno::ETIMEDOUT))
                }
                TaskState::Sleep { deadline } => (deadline, 0),
                TaskState::Join { deadline, .. } => (deadline, neg(Errno::ETIMEDOUT)),
                _ => continue,
            };
            if deadline <= now_ms {
                task.frame.regs[reg::A0] = result;
                task.state = TaskState::Ready;
            }
        }
    }

    /// The earliest deadline any blocked task waits for.
    pub fn next_deadline(&self) -> u64 {
        self.tasks
            .iter()
            .map(|t| t.state.deadline())
            .min()
            .unwrap_or(NEVER)
    }

    /// Whether some task is still alive (ready or blocked).
    pub fn any_alive(&self) -> bool {
        self.tasks
            .iter()
            .any(|t| !matches!(t.state, TaskState::Empty | TaskState::Exited { .. }))
    }

    /// Whether task `id`'s stack pointer is still above its stack's bottom
    /// and the canary there is whole.
    pub fn stack_intact(&self, id: TaskId, machine: &mut dyn Machine) -> bool {
        let task = &self.tasks[id];
        if task.stack_bottom == 0 {
            return true;
        }
        let mut word = [0u8; 8];
        task.frame.regs[reg::SP] > task.stack_bottom + 8
            && machine.copy_in(task.stack_bottom, &mut word)
            && u64::from_le_bytes(word) == STACK_CANARY
    }

    /// Handle the system call task `id` trapped with (its `sepc` already
    /// past the `ecall`).
    pub fn syscall(&mut self, id: TaskId, now_ms: u64, machine: &mut dyn Machine) -> Outcome {
        let r = self.tasks[id].frame.regs;
        let (a0, a1, a2, a3, a4) = (r[reg::A0], r[reg::A1], r[reg::A2], r[reg::A3], r[reg::A4]);
        let result = match Sys::from_raw(r[reg::A7]) {
            None => Err(Errno::ENOSYS),
            Some(Sys::Console) => self.console(a0, a1, machine),
            Some(Sys::Exit) => {
                self.exit(id, a0 as i64, machine);
                return Outcome::Continue;
            }
            Some(Sys::Connect) => self.connect(id, a0, a1, a2, machine),
            Some(Sys::Close) => self.close(id, a0, machine),
            Some(Sys::Send) => self.send(id, a0, a1, a2, machine),
            Some(Sys::Recv) => return self.recv(id, a0, a1, a2, a3, now_ms, machine),
            Some(Sys::Call) => match self.send(id, a0, a1, a2, machine) {
                Ok(_) => return self.recv(id, a0, a3, a4, NEVER, now_ms, machine),
                Err(e) => Err(e),
            },
            Some(Sys::Receive) => return self.receive(id, a0, a1, a2, now_ms, machine),
            Some(Sys::Reply) => self.reply(id, a0, a1, a2, machine),
            Some(Sys::Hangup) => self.hangup(id, a0),
            Some(Sys::Yield) => {
                self.tasks[id].frame.regs[reg::A0] = 0;
                return Outcome::Yield;
            }
            Some(Sys::Sleep) => {
                if a0 > now_ms {
                    self.tasks[id].state = TaskState::Sleep { deadline: a0 };
                }
                Ok(0)
            }
            Some(Sys::PowerOff) if self.tasks[id].privileged => return Outcome::PowerOff(a0),
            Some(Sys::PowerOff) => Err(Errno::EPERM),
            Some(Sys::Spawn) => self.spawn_call(id, r, machine),
            Some(Sys::Join) => self.join(id, a0, a1, now_ms),
        };
        self.tasks[id].frame.regs[reg::A0] = match result {
            Ok(v) => v,
            Err(e) => neg(e),
        };
        Outcome::Continue
    }

    fn spawn_call(
        &mut self,
        id: TaskId,
        r: [u64; 32],
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        if !self.tasks[id].privileged {
            return Err(Errno::EPERM);
        }
        let mut name = [0u8; TASK_NAME];
        let len = (r[reg::A5] & 0xffff).min(TASK_NAME as u64) as usize;
        let stack_size = (r[reg::A5] & !PRIVILEGED) >> 16;
        let stack_bottom = r[reg::A2].checked_sub(stack_size).ok_or(Errno::EINVAL)?;
        if stack_size < 8 || !machine.copy_out(stack_bottom, &STACK_CANARY.to_le_bytes()) {
            return Err(Errno::EFAULT);
        }
        if !machine.copy_in(r[reg::A4], &mut name[..len]) {
            return Err(Errno::EFAULT);
        }
        let start = TaskStart {
            entry: r[reg::A0],
            arg: r[reg::A1],
            stack_top: r[reg::A2],
            tls: r[reg::A3],
            gp: self.tasks[id].frame.regs[reg::GP],
            exit_trampoline: r[reg::A6],
            privileged: r[reg::A5] & PRIVILEGED != 0,
            stack_bottom,
        };
        let name = core::str::from_utf8(&name[..len]).map_err(|_| Errno::EINVAL)?;
        let child = self.spawn(name, start).ok_or(Errno::EAGAIN)?;
        Ok(child as u64)
    }

    fn join(&mut self, id: TaskId, task: u64, deadline: u64, now_ms: u64) -> Result<u64, Errno> {
        let task = usize::try_from(task)
            .ok()
            .filter(|t| *t < MAX_TASKS && *t != id)
            .ok_or(Errno::ESRCH)?;
        match self.tasks[task].state {
            TaskState::Empty => Err(Errno::ESRCH),
            TaskState::Exited { code } => {
                self.tasks[task].state = TaskState::Empty;
                self.tasks[id].frame.regs[reg::A1] = code as u64;
                Ok(0)
            }
            _ if deadline <= now_ms => Err(Errno::ETIMEDOUT),
            _ => {
                self.tasks[id].state = TaskState::Join { task, deadline };
                Ok(0)
            }
        }
    }

    fn console(&mut self, addr: u64, len: u64, machine: &mut dyn Machine) -> Result<u64, Errno> {
        let mut buf = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            if !machine.copy_in(addr.wrapping_add(done), &mut buf[..n]) {
                return Err(Errno::EFAULT);
            }
            machine.console(&buf[..n]);
            done += n as u64;
        }
        Ok(len)
    }

    /// End task `id`: its client connections hang up, its server
    /// connections fail their clients.
    pub fn exit(&mut self, id: TaskId, code: i64, machine: &mut dyn Machine) {
        self.tasks[id].state = TaskState::Exited { code };
        if let Some(joiner) = self
            .tasks
            .iter()
            .position(|t| matches!(t.state, TaskState::Join { task, .. } if task == id))
        {
            self.tasks[joiner].frame.regs[reg::A0] = 0;
            self.tasks[joiner].frame.regs[reg::A1] = code as u64;
            self.tasks[joiner].state = TaskState::Ready;
            self.tasks[id].state = TaskState::Empty;
        }
        for slot in 0..MAX_CONNECTIONS {
            let c = &self.connections[slot];
            if c.side == Side::Free {
                continue;
            }
            let cid = c.id(slot);
            if c.client == id {
                let _ = self.close(id, cid, machine);
            } else if c.server == id {
                let _ = self.hangup(id, cid);
            }
        }
    }

    fn task_alive(&self, id: usize) -> bool {
        id < MAX_TASKS
            && !matches!(
                self.tasks[id].state,
                TaskState::Empty | TaskState::Exited { .. }
            )
    }

    fn connect(
        &mut self,
        id: TaskId,
        server: u64,
        uid: u64,
        gid: u64,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        let server = usize::try_from(server).map_err(|_| Errno::ESRCH)?;
        if !self.task_alive(server) || server == id {
            return Err(Errno::ESRCH);
        }
        let credentials = (uid as u32, gid as u32);
        if credentials != (0, 0) && !self.tasks[id].privileged {
            return Err(Errno::EPERM);
        }
        let slot = self
            .connections
            .iter()
            .position(|c| c.side == Side::Free)
            .ok_or(Errno::EMFILE)?;
        let c = &mut self.connections[slot];
        c.generation = c.generation.wrapping_add(1);
        c.side = Side::Open;
        c.client = id;
        c.server = server;
        c.credentials = credentials;
        c.opening = true;
        let cid = c.id(slot);
        self.mark(slot);
        self.deliver_to_server(server, machine);
        Ok(cid)
    }

    /// The connection `cid` if it is live and `task` is its `client` (or
    /// server).
    fn slot_of(&self, cid: ConnId, task: TaskId, as_client: bool) -> Result<usize, Errno> {
        let slot = conn_slot(cid);
        let c = self.connections.get(slot).ok_or(Errno::EBADF)?;
        let owner = if as_client { c.client } else { c.server };
        if c.side == Side::Free || c.id(slot) != cid || owner != task {
            return Err(Errno::EBADF);
        }
        Ok(slot)
    }

    fn drain(&mut self, slot: usize, up: bool) {
        loop {
            let c = &mut self.connections[slot];
            let ix = if up {
                c.up.pop_front()
            } else {
                c.down.pop_front()
            };
            match ix {
                Some(ix) => self.pool.put_back(ix),
                None => break,
            }
        }
    }

    fn free(&mut self, slot: usize) {
        self.drain(slot, true);
        self.drain(slot, false);
        self.connections[slot].side = Side::Free;
    }

    fn close(&mut self, id: TaskId, cid: ConnId, machine: &mut dyn Machine) -> Result<u64, Errno> {
        let slot = self.slot_of(cid, id, true)?;
        match self.connections[slot].side {
            Side::ServerGone => self.free(slot),
            Side::Open if self.connections[slot].opening => self.free(slot),
            Side::Open => {
                self.drain(slot, false);
                self.connections[slot].side = Side::ClientGone;
                let server = self.connections[slot].server;
                self.mark(slot);
                self.deliver_to_server(server, machine);
            }
            Side::ClientGone | Side::Free => return Err(Errno::EBADF),
        }
        Ok(0)
    }

    fn hangup(&mut self, id: TaskId, cid: ConnId) -> Result<u64, Errno> {
        let slot = self.slot_of(cid, id, false)?;
        match self.connections[slot].side {
            Side::ClientGone => self.free(slot),
            Side::Open => {
                self.drain(slot, true);
                let c = &mut self.connections[slot];
                c.side = Side::ServerGone;
                let client = c.client;
                if let TaskState::Recv { conn, .. } = self.tasks[client].state {
                    if conn == cid {
                        self.tasks[client].frame.regs[reg::A0] = neg(Errno::ENOTCONN);
                        self.tasks[client].state = TaskState::Ready;
                    }
                }
            }
            Side::ServerGone | Side::Free => return Err(Errno::EBADF),
        }
        Ok(0)
    }

    /// The checks of a frame going out on `cid` from `id` (its client, or
    /// its server): the connection is open, the frame not too long and in
    /// the sender's memory. Its slot and length.
    fn outgoing(
        &self,
        id: TaskId,
        cid: ConnId,
        as_client: bool,
        addr: u64,
        len: u64,
        machine: &mut dyn Machine,
    ) -> Result<(usize, usize), Errno> {
        let slot = self.slot_of(cid, id, as_client)?;
        if self.connections[slot].side != Side::Open {
            return Err(Errno::ENOTCONN);
        }
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_FRAME)
            .ok_or(Errno::EMSGSIZE)?;
        if !machine.contains(addr, len) {
            return Err(Errno::EFAULT);
        }
        Ok((slot, len))
    }

    /// Put `slot` on the ready list (once).
    fn mark(&mut self, slot: usize) {
        if !self.connections[slot].listed && self.ready.push_back(slot as u16).is_ok() {
            self.connections[slot].listed = true;
        }
    }

    /// Copy a frame from one task's memory straight into a waiting task's
    /// buffer; the waiter's result register value.
    fn copy_direct(machine: &mut dyn Machine, from: u64, len: usize, to: u64, cap: u64) -> u64 {
        if len as u64 > cap {
            neg(Errno::EMSGSIZE)
        } else if !machine.copy(from, to, len) {
            neg(Errno::EFAULT)
        } else {
            len as u64
        }
    }

    fn send(
        &mut self,
        id: TaskId,
        cid: ConnId,
        addr: u64,
        len: u64,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        let (slot, len) = self.outgoing(id, cid, true, addr, len, machine)?;
        let server = self.connections[slot].server;
        // A server blocked in receive has no other event waiting (it
        // would have taken it), so the frame goes straight to it.
        if let TaskState::Receive { addr: to, cap, .. } = self.tasks[server].state {
            let a1 = Self::copy_direct(machine, addr, len, to, cap);
            self.end_receive(server, self.connections[slot].id(slot), a1, Event::Frame);
            return Ok(0);
        }
        if self.connections[slot].up.is_full() {
            return Err(Errno::EAGAIN);
        }
        let ix = self.pool.take(machine, addr, len)?;
        let _ = self.connections[slot].up.push_back(ix);
        self.mark(slot);
        Ok(0)
    }

    #[allow(clippy::too_many_arguments)]
    fn recv(
        &mut self,
        id: TaskId,
        cid: ConnId,
        addr: u64,
        cap: u64,
        deadline: u64,
        now_ms: u64,
        machine: &mut dyn Machine,
    ) -> Outcome {
        let result = match self.slot_of(cid, id, true) {
            Err(e) => Err(e),
            Ok(slot) => match self.connections[slot].down.pop_front() {
                Some(ix) => Ok(self.hand_over(ix, addr, cap, machine)),
                None if self.connections[slot].side != Side::Open => Err(Errno::ENOTCONN),
                None if deadline <= now_ms => Err(Errno::ETIMEDOUT),
                None => {
                    self.tasks[id].state = TaskState::Recv {
                        conn: cid,
                        addr,
                        cap,
                        deadline,
                    };
                    return Outcome::Continue;
                }
            },
        };
        self.tasks[id].frame.regs[reg::A0] = result.unwrap_or_else(neg);
        Outcome::Continue
    }

    /// Copy pooled frame `ix` to a task's buffer and free it; the result
    /// register value (length, or `-EMSGSIZE`/`-EFAULT`).
    fn hand_over(&mut self, ix: u16, addr: u64, cap: u64, machine: &mut dyn Machine) -> u64 {
        let frame = self.pool.get(ix);
        let result = if frame.len() as u64 > cap {
            neg(Errno::EMSGSIZE)
        } else if !machine.copy_out(addr, frame) {
            neg(Errno::EFAULT)
        } else {
            frame.len() as u64
        };
        self.pool.put_back(ix);
        result
    }

    fn receive(
        &mut self,
        id: TaskId,
        addr: u64,
        cap: u64,
        deadline: u64,
        now_ms: u64,
        machine: &mut dyn Machine,
    ) -> Outcome {
        self.tasks[id].state = TaskState::Receive {
            addr,
            cap,
            deadline,
        };
        if !self.deliver_to_server(id, machine) && deadline <= now_ms {
            self.tasks[id].state = TaskState::Ready;
            self.tasks[id].frame.regs[reg::A0] = neg(Errno::ETIMEDOUT);
        }
        Outcome::Continue
    }

    /// If `server` waits in [`Sys::Receive`] and some connection of its
    /// has an event, hand the oldest-served connection's event over and
    /// make the server ready. Returns whether it did.
    fn deliver_to_server(&mut self, server: TaskId, machine: &mut dyn Machine) -> bool {
        let TaskState::Receive { addr, cap, .. } = self.tasks[server].state else {
            return false;
        };
        // One turn around the ready list: others' entries go back in
        // order; this server's first connection with an event is served
        // and, if it has more, queued again behind the rest (fairness).
        for _ in 0..self.ready.len() {
            let Some(entry) = self.ready.pop_front() else {
                break;
            };
            let slot = usize::from(entry);
            let c = &mut self.connections[slot];
            if c.side == Side::Free {
                c.listed = false;
                continue;
            }
            if c.server != server {
                let _ = self.ready.push_back(entry);
                continue;
            }
            let cid = c.id(slot);
            let (a1, event) = if c.opening {
                c.opening = false;
                let (uid, gid) = c.credentials;
                ((u64::from(uid) << 32) | u64::from(gid), Event::Open)
            } else if let Some(ix) = c.up.pop_front() {
                // A frame the server's buffer cannot take arrives as a
                // negated errno in place of the length.
                (self.hand_over(ix, addr, cap, machine), Event::Frame)
            } else if c.side == Side::ClientGone {
                c.listed = false;
                self.free(slot);
                (0, Event::Hangup)
            } else {
                c.listed = false;
                continue;
            };
            let c = &self.connections[slot];
            if c.side != Side::Free && (!c.up.is_empty() || c.side == Side::ClientGone) {
                let _ = self.ready.push_back(entry);
            } else {
                self.connections[slot].listed = false;
            }
            self.end_receive(server, cid, a1, event);
            return true;
        }
        false
    }

    /// Complete `server`'s [`Sys::Receive`] with an event of `cid`.
    fn end_receive(&mut self, server: TaskId, cid: ConnId, a1: u64, event: Event) {
        let task = &mut self.tasks[server];
        task.frame.regs[reg::A0] = cid;
        task.frame.regs[reg::A1] = a1;
        task.frame.regs[reg::A2] = event as u64;
        task.state = TaskState::Ready;
    }

    fn reply(
        &mut self,
        id: TaskId,
        cid: ConnId,
        addr: u64,
        len: u64,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        let (slot, len) = self.outgoing(id, cid, false, addr, len, machine)?;
        let client = self.connections[slot].client;
        if let TaskState::Recv {
            conn,
            addr: to,
            cap,
            ..
        } = self.tasks[client].state
        {
            if conn == cid && self.connections[slot].down.is_empty() {
                let result = Self::copy_direct(machine, addr, len, to, cap);
                self.tasks[client].frame.regs[reg::A0] = result;
                self.tasks[client].state = TaskState::Ready;
                return Ok(0);
            }
        }
        if self.connections[slot].down.is_full() {
            return Err(Errno::EAGAIN);
        }
        let ix = self.pool.take(machine, addr, len)?;
        let _ = self.connections[slot].down.push_back(ix);
        Ok(0)
    }
}

/// Where a new task starts.
#[derive(Clone, Copy, Debug)]
pub struct TaskStart {
    pub entry: u64,
    pub arg: u64,
    pub stack_top: u64,
    pub tls: u64,
    pub gp: u64,
    pub exit_trampoline: u64,
    pub privileged: bool,
    /// The stack's lowest address, holding [`STACK_CANARY`] (0: unchecked).
    pub stack_bottom: u64,
}

#[cfg(test)]
mod tests;
