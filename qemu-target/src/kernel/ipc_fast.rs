//! The fused IPC path: the common call and answer without the general
//! send / receive / reply machinery. A [`Sys::Call`](super::super::Sys::Call)
//! on an open connection whose server waits in
//! [`Sys::Receive`](super::super::Sys::Receive) (or `ReplyReceive`) copies
//! the frame into the server's buffer, sets its registers and blocks the
//! client for the reply; the server's
//! [`Sys::ReplyReceive`](super::super::Sys::ReplyReceive) to a client
//! blocked in its call copies the answer back, wakes it and blocks the
//! server in its receive. Each hands the hart to the task it woke.
//!
//! The checks are the general path's, done once and cheapest first: the
//! connection, the peer's state, the lengths, then every buffer against
//! its task's usual window (two compares each). Anything else (a buffer
//! outside the window, frames or events queued, a deadline already past,
//! a copy that fails) leaves the call untouched for the general path,
//! which decides it and reports its error.

use super::super::task_table::{reg, TaskId, TaskState};
use super::super::{Kernel, Machine, NEVER};
use super::{Event, Side};
use protocol::MAX_FRAME;

/// Whether `[addr, addr + len)` lies in `[start, stop)`.
#[inline]
fn within((start, stop): (u64, u64), addr: u64, len: u64) -> bool {
    start <= addr && addr <= stop && len <= stop - addr
}

impl Kernel {
    /// [`Sys::Call`](super::super::Sys::Call) `(conn, ptr, len, buf, cap)`
    /// from task `id` to a server waiting in receive: done, the server
    /// woken and handed the hart, the client waiting for the reply. False
    /// if the call is not that case (nothing changed).
    #[inline]
    pub(in crate::kernel) fn call_fast<M: Machine + ?Sized>(
        &mut self,
        id: TaskId,
        [cid, addr, len, buf, cap]: [u64; 5],
        machine: &mut M,
    ) -> bool {
        let slot = super::conn_slot(cid);
        let Some(c) = self.connections.get(slot) else {
            return false;
        };
        if c.side != Side::Open || c.client != id || c.id(slot) != cid || !c.down.is_empty() {
            return false;
        }
        let server = c.server;
        let TaskState::Receive {
            addr: to,
            cap: room,
            ..
        } = self.tasks[server].state
        else {
            return false;
        };
        let mine = self.protection.usual_window(id);
        if len > MAX_FRAME as u64
            || len > room
            || !within(mine, addr, len)
            || !within(mine, buf, cap)
            || !within(self.protection.usual_window(server), to, len)
            || !machine.copy(addr, to, len as usize)
        {
            return false;
        }
        self.end_receive(server, cid, len, Event::Frame);
        self.hand_to(server);
        self.tasks[id].state = TaskState::Recv {
            conn: cid,
            addr: buf,
            cap,
            deadline: NEVER,
        };
        true
    }

    /// [`Sys::ReplyReceive`](super::super::Sys::ReplyReceive) `(conn,
    /// ptr, len, buf, cap, deadline)` from server `id` to a client blocked
    /// in its call, with nothing else waiting for the server: the client
    /// answered, woken and handed the hart, the server waiting. False if
    /// not that case (nothing changed).
    #[inline]
    pub(in crate::kernel) fn reply_receive_fast<M: Machine + ?Sized>(
        &mut self,
        id: TaskId,
        [cid, addr, len, buf, cap, deadline]: [u64; 6],
        now_ms: u64,
        machine: &mut M,
    ) -> bool {
        let slot = super::conn_slot(cid);
        let Some(c) = self.connections.get(slot) else {
            return false;
        };
        if c.side != Side::Open || c.server != id || c.id(slot) != cid || !c.down.is_empty() {
            return false;
        }
        let client = c.client;
        let TaskState::Recv {
            conn,
            addr: to,
            cap: room,
            ..
        } = self.tasks[client].state
        else {
            return false;
        };
        let mine = self.protection.usual_window(id);
        if conn != cid
            || !self.ready.is_empty()
            || deadline <= now_ms
            || len > MAX_FRAME as u64
            || len > room
            || !within(mine, addr, len)
            || !within(mine, buf, cap)
            || !within(self.protection.usual_window(client), to, len)
            || !machine.copy(addr, to, len as usize)
        {
            return false;
        }
        let woken = &mut self.tasks[client];
        woken.frame.regs[reg::A0] = len;
        woken.state = TaskState::Ready;
        self.hand_to(client);
        self.tasks[id].state = TaskState::Receive {
            addr: buf,
            cap,
            deadline,
        };
        true
    }
}
