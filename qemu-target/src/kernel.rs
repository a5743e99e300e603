//! The board's kernel as plain code: every system call is a method on
//! [`Kernel`] that reads its arguments from the calling task's saved
//! registers and writes results into the registers of whichever tasks it
//! completes. The trap path ([`trap`](crate::trap), board only) does the
//! rest: saving and restoring those registers. Nothing here allocates or
//! touches the hardware, so it is unit-tested on the host.
//!
//! | module | owns |
//! | --- | --- |
//! | this file | the kernel's state, the system call numbers and their dispatch, [`Machine`] |
//! | [`task_table`] | tasks: saved registers, state, start, exit, join, the stack canary |
//! | [`scheduler`] | which ready task runs next, and the deadlines that wake blocked ones |
//! | [`ipc`] | connections and their frames: send, receive, reply, the short slots and the frame pool |
//! | [`device_tree`] | what the boot hart's device tree says of Zicboz (`cbo.zero`) |
//! | [`frame_copy`] | the word-at-a-time copy of a frame into a word-aligned buffer |
//! | [`pmp`] | task isolation: what each task may touch, as the 16 PMP entries it runs with |
//! | [`block_io`] | the virtio disk's requests, each buffer checked before the device moves data by DMA |

pub mod block_io;
pub mod device_tree;
pub mod frame_copy;
pub mod ipc;
pub mod pmp;
pub mod scheduler;
pub mod task_table;

pub use ipc::{ConnId, Event, FRAME_POOL, MAX_CONNECTIONS, SHORT_FRAME};
pub use scheduler::NEVER;
pub use task_table::{
    reg, Task, TaskId, TaskStart, TaskState, TrapFrame, MAX_TASKS, STACK_CANARY, TASK_NAME,
};

use heapless::Deque;
use ipc::{Connection, FramePool};
use protocol::Errno;

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
    /// 16 | privileged << 63 | server << 62 | driver << 61, exit
    /// trampoline)` → task: start a task; privileged tasks only. The child
    /// inherits `gp`; a user task (none of the bits) runs in its region `[gp, stack top)`, a
    /// naturally aligned power-of-two block of the task heap holding its
    /// heap (from `gp`) and its stack (`EINVAL` otherwise).
    Spawn = 13,
    /// `(task, deadline)` → `(0, exit code)`: wait for a task to end and
    /// free its slot.
    Join = 14,
    /// `(conn, ptr, count)`: memsrv names the arena ranges the process on
    /// `conn` has mapped ([`pmp`]); server tasks only.
    Regions = 15,
    /// `(conn, ptr, len, buf, cap, deadline)` → as [`Sys::Receive`]: a
    /// server's [`Sys::Reply`] and its next [`Sys::Receive`] in one trap.
    /// A reply the kernel cannot take now (`EAGAIN`) or at all (`EFAULT`,
    /// `EMSGSIZE`) fails the call before anything is received; one to a
    /// client that is gone is dropped, as its hang-up follows.
    ReplyReceive = 16,
    /// `(device, release)`: claim a device (give it back if `release` is
    /// 1), one holder at a time; a driver's PMP entries then reach its
    /// registers ([`pmp::Protection::claim`]). A virtio-mmio slot's
    /// registers stay the kernel's: claiming one sets up the disk in it
    /// (`ENODEV` if none is there, and the slot is not taken), which the
    /// holder then reaches only through [`Sys::BlockIo`].
    Claim = 17,
    /// `(op, sector, buf, len)` → as [`block_io::BlockOp`] says: a request
    /// to the virtio disk in the slot the caller claimed (`ENODEV` if
    /// none). `buf` must be memory the caller may touch (`EFAULT`), so the
    /// device's DMA, which PMP does not check, reaches nothing else.
    BlockIo = 18,
}

impl Sys {
    fn from_raw(raw: u64) -> Option<Self> {
        use Sys::*;
        Some(match raw {
            0 => Console,
            1 => Exit,
            2 => Connect,
            3 => Close,
            4 => Send,
            5 => Recv,
            6 => Call,
            7 => Receive,
            8 => Reply,
            9 => Hangup,
            10 => Yield,
            11 => Sleep,
            12 => PowerOff,
            13 => Spawn,
            14 => Join,
            15 => Regions,
            16 => ReplyReceive,
            17 => Claim,
            18 => BlockIo,
            _ => return None,
        })
    }
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
    /// The little-endian word at `addr`; `None` if it is not task
    /// memory. (The board reads an aligned word in one load: the stack
    /// canary is read at traps.)
    fn read_word(&mut self, addr: u64) -> Option<u64> {
        let mut word = [0u8; 8];
        self.copy_in(addr, &mut word)
            .then_some(u64::from_le_bytes(word))
    }
    fn console(&mut self, bytes: &[u8]);
    /// Set up the virtio disk in virtio-mmio slot `slot` for the kernel to
    /// drive (a driver claimed the slot); `ENODEV` if there is none, or
    /// none this machine drives.
    fn attach_disk(&mut self, _slot: u64) -> Result<(), Errno> {
        Err(Errno::ENODEV)
    }
    /// Do one request `op` to the disk attached in `slot`, moving `len`
    /// bytes at `buf` (already checked against the caller) for sector
    /// `sector` ([`block_io::BlockOp`]).
    fn disk_request(
        &mut self,
        _slot: u64,
        _op: block_io::BlockOp,
        _sector: u64,
        _buf: u64,
        _len: u64,
    ) -> Result<u64, Errno> {
        Err(Errno::ENODEV)
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

/// The kernel's whole state: the task table, the connections and the
/// frames queued on them.
pub struct Kernel {
    pub tasks: [Task; MAX_TASKS],
    connections: [Connection; MAX_CONNECTIONS],
    pool: FramePool,
    /// Round-robin position of the scheduler.
    last_run: usize,
    /// The task an IPC last made ready (a server handed a call, a client
    /// handed its reply): when the running task blocks, it runs next
    /// without a pass over the task table ([`Kernel::handoff`]).
    handoff: Option<TaskId>,
    /// Connections that may have an event for their server (opened, a
    /// frame queued, hung up), oldest first: a receive takes the first
    /// one of its own instead of scanning every connection.
    ready: Deque<u16, MAX_CONNECTIONS>,
    /// What each task may touch, and the PMP entries it runs with.
    pub protection: pmp::Protection,
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
        Self {
            tasks: [Task::EMPTY; MAX_TASKS],
            connections: [Connection::FREE; MAX_CONNECTIONS],
            pool: FramePool::new(),
            last_run: 0,
            handoff: None,
            ready: Deque::new(),
            protection: pmp::Protection::new(),
        }
    }

    /// Handle the system call task `id` trapped with (its `sepc` already
    /// past the `ecall`).
    pub fn syscall(&mut self, id: TaskId, now_ms: u64, machine: &mut dyn Machine) -> Outcome {
        if self.syscall_fast(id, now_ms, machine) {
            return Outcome::Continue;
        }
        self.syscall_general(id, now_ms, machine)
    }

    /// The common case of a request and its answer on the fused path
    /// ([`ipc`]'s `fast`): a [`Sys::Call`] to a waiting server or a
    /// [`Sys::ReplyReceive`] to a waiting client. True if done (the
    /// outcome is [`Outcome::Continue`]); false if the call is another, or
    /// not that case, and nothing changed: then
    /// [`Kernel::syscall_general`] handles it. Generic so the trap path
    /// copies with its own machine's code, not through a `dyn` call.
    #[inline(always)]
    pub fn syscall_fast<M: Machine + ?Sized>(
        &mut self,
        id: TaskId,
        now_ms: u64,
        machine: &mut M,
    ) -> bool {
        let r = &self.tasks[id].frame.regs;
        let (a0, a1, a2, a3, a4) = (r[reg::A0], r[reg::A1], r[reg::A2], r[reg::A3], r[reg::A4]);
        match r[reg::A7] {
            n if n == Sys::Call as u64 => self.call_fast(id, [a0, a1, a2, a3, a4], machine),
            n if n == Sys::ReplyReceive as u64 => {
                let args = [a0, a1, a2, a3, a4, r[reg::A5]];
                self.reply_receive_fast(id, args, now_ms, machine)
            }
            _ => false,
        }
    }

    /// [`Kernel::syscall`] but for the fused path: every call, each
    /// checked in full.
    pub fn syscall_general(
        &mut self,
        id: TaskId,
        now_ms: u64,
        machine: &mut dyn Machine,
    ) -> Outcome {
        // Only the argument registers are read: copying the whole
        // register file would cost more than most calls.
        let r = &self.tasks[id].frame.regs;
        let (a0, a1, a2, a3, a4) = (r[reg::A0], r[reg::A1], r[reg::A2], r[reg::A3], r[reg::A4]);
        let result = match Sys::from_raw(r[reg::A7]) {
            None => Err(Errno::ENOSYS),
            Some(Sys::Console) => self.console(id, a0, a1, machine),
            Some(Sys::Exit) => {
                self.exit(id, a0 as i64, machine);
                return Outcome::Continue;
            }
            Some(Sys::Connect) => self.connect(id, a0, a1, a2, machine),
            Some(Sys::Close) => self.close(id, a0, machine),
            Some(Sys::Send) => self.send(id, a0, a1, a2, machine),
            Some(Sys::Recv) => return self.recv(id, a0, a1, a2, a3, now_ms, machine),
            Some(Sys::Call) => return self.call(id, [a0, a1, a2], [a3, a4], now_ms, machine),
            Some(Sys::Receive) if !self.may_touch(id, a0, a1, true) => Err(Errno::EFAULT),
            Some(Sys::Receive) => return self.receive(id, a0, a1, a2, now_ms, machine),
            Some(Sys::Reply) => self.reply(id, a0, a1, a2, machine),
            Some(Sys::ReplyReceive) => {
                let deadline = self.tasks[id].frame.regs[reg::A5];
                return self.reply_receive(id, [a0, a1, a2], [a3, a4, deadline], now_ms, machine);
            }
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
            Some(Sys::Spawn) => {
                let r = self.tasks[id].frame.regs;
                self.spawn_call(id, r, machine)
            }
            Some(Sys::Join) => self.join(id, a0, a1, now_ms),
            Some(Sys::Regions) => self.set_regions(id, a0, a1, a2, machine),
            Some(Sys::Claim) => self.claim_device(id, a0, a1, machine),
            Some(Sys::BlockIo) => self.block_io(id, [a0, a1, a2, a3], machine),
        };
        self.tasks[id].frame.regs[reg::A0] = match result {
            Ok(v) => v,
            Err(e) => neg(e),
        };
        Outcome::Continue
    }

    fn console(
        &mut self,
        id: TaskId,
        addr: u64,
        len: u64,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        if !self.may_touch(id, addr, len, false) {
            return Err(Errno::EFAULT);
        }
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
}

#[cfg(test)]
mod tests;
