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
use super::{ConnId, Event, Side};
use protocol::MAX_FRAME;

/// Whether `[addr, addr + len)` lies in `[start, stop)`.
#[inline]
fn within((start, stop): (u64, u64), addr: u64, len: u64) -> bool {
    start <= addr && addr <= stop && len <= stop - addr
}

impl Kernel {
    /// The peer of task `id` on connection `cid` if the connection is
    /// open, `id` its client (or server, `as_client` false), and no frame
    /// waits for the client: the common case's first checks.
    #[inline(always)]
    fn quiet_peer(&self, cid: ConnId, id: TaskId, as_client: bool) -> Option<TaskId> {
        let slot = super::conn_slot(cid);
        let c = self.connections.get(slot)?;
        let (me, peer) = if as_client {
            (c.client, c.server)
        } else {
            (c.server, c.client)
        };
        (c.side == Side::Open && me == id && c.id(slot) == cid && c.down.is_empty()).then_some(peer)
    }

    /// Copy task `id`'s frame `(addr, len)` into the buffer `(to, room)`
    /// task `peer` posted, if the frame fits and lies in `id`'s usual
    /// window, `id`'s next buffer `(buf, cap)` too, and the bytes written
    /// in `peer`'s. False (nothing written) otherwise.
    #[inline(always)]
    fn copy_within_windows<M: Machine + ?Sized>(
        &self,
        machine: &mut M,
        (id, [addr, len, buf, cap]): (TaskId, [u64; 4]),
        (peer, to, room): (TaskId, u64, u64),
    ) -> bool {
        let mine = self.protection.usual_window(id);
        len <= MAX_FRAME as u64
            && len <= room
            && within(mine, addr, len)
            && within(mine, buf, cap)
            && within(self.protection.usual_window(peer), to, len)
            && machine.copy(addr, to, len as usize)
    }

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
        let Some(server) = self.quiet_peer(cid, id, true) else {
            return false;
        };
        let TaskState::Receive {
            addr: to,
            cap: room,
            ..
        } = self.tasks[server].state
        else {
            return false;
        };
        if !self.copy_within_windows(machine, (id, [addr, len, buf, cap]), (server, to, room)) {
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
        let Some(client) = self.quiet_peer(cid, id, false) else {
            return false;
        };
        let TaskState::Recv {
            conn,
            addr: to,
            cap: room,
            ..
        } = self.tasks[client].state
        else {
            return false;
        };
        if conn != cid
            || !self.ready.is_empty()
            || deadline <= now_ms
            || !self.copy_within_windows(machine, (id, [addr, len, buf, cap]), (client, to, room))
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
