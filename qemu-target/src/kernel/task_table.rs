//! The task table: each task's saved registers and state, starting
//! (spawn), ending (exit) and joining tasks, and the stack canary checked
//! at every trap.

use super::ipc::ConnId;
use super::pmp::Role;
use super::scheduler::NEVER;
use super::{Kernel, Machine};
use protocol::Errno;

pub const MAX_TASKS: usize = 32;
/// Bytes of a task's name kept for fault reports.
pub const TASK_NAME: usize = 16;
const PRIVILEGED: u64 = 1 << 63;
/// A spawn flag: the task serves memory (memsrv): [`Role::Server`].
pub const SERVER: u64 = 1 << 62;
/// A spawn flag: the task is a backing device's driver, which runs in a
/// region of its own as a user task does: [`Role::Driver`].
pub const DRIVER: u64 = 1 << 61;
/// The word kept at the bottom of every task stack: a task whose stack
/// ran over it is stopped at its next trap (see [`Kernel::stack_intact`]).
pub const STACK_CANARY: u64 = 0x5afe_57ac_6b0d_dead;

pub type TaskId = usize;

/// The registers a trap saves: `x1..x31` (slot 0 unused), the float
/// registers and `fcsr` (only once the task has written them:
/// `fp_saved`) and the trapped pc. The
/// layout is fixed for the trap entry code.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapFrame {
    pub regs: [u64; 32],
    pub fregs: [u64; 32],
    pub fcsr: u64,
    pub sepc: u64,
    /// `fregs` and `fcsr` hold the task's float state (it has used the
    /// FPU); until then the task has none to restore.
    pub fp_saved: bool,
}

// The trap entry code stores `fp_saved` at this offset.
const _: () = assert!(core::mem::offset_of!(TrapFrame, fp_saved) == 528);

impl TrapFrame {
    pub const fn zeroed() -> Self {
        Self {
            regs: [0; 32],
            fregs: [0; 32],
            fcsr: 0,
            sepc: 0,
            fp_saved: false,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Free slot.
    Empty,
    Ready,
    /// Blocked in [`Sys::Recv`](super::Sys::Recv) (or the second half of [`Sys::Call`](super::Sys::Call)).
    Recv {
        conn: ConnId,
        addr: u64,
        cap: u64,
        deadline: u64,
    },
    /// Blocked in [`Sys::Receive`](super::Sys::Receive).
    Receive {
        addr: u64,
        cap: u64,
        deadline: u64,
    },
    Sleep {
        deadline: u64,
    },
    /// Blocked in [`Sys::Join`](super::Sys::Join).
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

impl Task {
    /// A free slot.
    pub(super) const EMPTY: Task = Task {
        name: [0; TASK_NAME],
        state: TaskState::Empty,
        privileged: false,
        stack_bottom: 0,
        frame: TrapFrame::zeroed(),
    };

    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|b| *b == 0).unwrap_or(TASK_NAME);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
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

impl Kernel {
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
        let role = if start.privileged {
            Role::Privileged
        } else {
            Role::User
        };
        self.protection.start(id, role);
        self.protection.set_heap(id, start.gp);
        Some(id)
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
        task.frame.regs[reg::SP] > task.stack_bottom + 8
            && machine.read_word(task.stack_bottom) == Some(STACK_CANARY)
    }

    pub(super) fn spawn_call(
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
        let stack_size = (r[reg::A5] & !(PRIVILEGED | SERVER | DRIVER)) >> 16;
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
        let server = r[reg::A5] & SERVER != 0;
        let driver = r[reg::A5] & DRIVER != 0;
        // A user task's or a driver's region: its heap from `gp` (where
        // its allocator finds its heap), its stack up to the top.
        let region = (start.gp, start.stack_top.wrapping_sub(start.gp));
        let user = !server && !driver && !start.privileged;
        let driver = driver && !server && !start.privileged;
        if (user || driver) && !self.protection.region_fits(region.0, region.1) {
            return Err(Errno::EINVAL);
        }
        let child = self.spawn(name, start).ok_or(Errno::EAGAIN)?;
        if server && !start.privileged {
            self.protection.start(child, Role::Server);
            self.protection.set_heap(child, start.gp);
        } else if user || driver {
            if driver {
                self.protection.start(child, Role::Driver);
                self.protection.set_heap(child, start.gp);
            }
            self.protection.set_region(child, region);
            self.inherit_statics(id, child, machine);
        }
        Ok(child as u64)
    }

    pub(super) fn join(
        &mut self,
        id: TaskId,
        task: u64,
        deadline: u64,
        now_ms: u64,
    ) -> Result<u64, Errno> {
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

    /// End task `id`: its client connections hang up, its server
    /// connections fail their clients.
    pub fn exit(&mut self, id: TaskId, code: i64, machine: &mut dyn Machine) {
        self.tasks[id].state = TaskState::Exited { code };
        self.protection.exit(id);
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
        self.drop_connections_of(id, machine);
    }

    pub(super) fn task_alive(&self, id: usize) -> bool {
        id < MAX_TASKS
            && !matches!(
                self.tasks[id].state,
                TaskState::Empty | TaskState::Exited { .. }
            )
    }
}
