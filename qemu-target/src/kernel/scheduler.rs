//! The scheduler: which ready task runs next (the one an IPC just woke,
//! else round robin), and the deadlines that wake blocked tasks (time-outs
//! and sleeps).

use super::task_table::{reg, TaskId, TaskState, MAX_TASKS};
use super::{neg, Kernel};
use protocol::Errno;

/// A deadline that never comes.
pub const NEVER: u64 = u64::MAX;

impl Kernel {
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

    /// The task the last IPC made ready, if it still is: a client that
    /// blocked in a call runs the server it handed the request to, a
    /// server that blocks in receive runs the client it just answered,
    /// with no pass over the task table. `None` leaves the choice to
    /// [`Kernel::schedule`].
    pub fn handoff(&mut self) -> Option<TaskId> {
        let id = self.handoff.take()?;
        if self.tasks[id].state != TaskState::Ready {
            return None;
        }
        self.last_run = id;
        Some(id)
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
}
