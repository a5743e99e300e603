//! The kernel's IPC: synchronous send / receive / reply over
//! **connections**, each between one client task and one server task (the
//! way a process opens the memory server in the hosted homes). A client's
//! [`Sys::Call`](super::Sys::Call) sends a frame and blocks until the reply; a server's
//! [`Sys::Receive`](super::Sys::Receive) blocks until some connection has a frame (or was
//! opened or hung up) and [`Sys::Reply`](super::Sys::Reply) answers it. A client may also
//! split a call ([`Sys::Send`](super::Sys::Send) now, [`Sys::Recv`](super::Sys::Recv) later), and a server may
//! send frames nobody asked for yet (memsrv's requests to a driver): each
//! direction of a connection is a short queue of whole frames in kernel
//! memory. A frame goes straight into the waiting peer's buffer when the
//! peer is already blocked, so the common call costs no queueing.
//!
//! A frame that must wait in a queue is copied once into the kernel: a
//! short one ([`SHORT_FRAME`] bytes or less, most requests and replies)
//! into its connection's own slot for that direction, others (or a second
//! short one) into a fixed pool. Nothing here allocates, and a full pool
//! or queue is `EAGAIN` to the sender, which retries.

use super::task_table::{reg, TaskId, TaskState};
use super::{neg, Kernel, Machine, Outcome, NEVER};
use heapless::Deque;
use protocol::{Errno, MAX_FRAME};

#[path = "ipc_fast.rs"]
mod fast;

pub const MAX_CONNECTIONS: usize = 128;
/// Frames queued in the kernel at once (over all connections).
pub const FRAME_POOL: usize = 256;
pub(super) const UP_DEPTH: usize = 8;
pub(super) const DOWN_DEPTH: usize = 32;
/// The longest frame a connection keeps in its own slot instead of the
/// pool (a header and a short body).
pub const SHORT_FRAME: usize = 64;
/// A queue entry naming the connection's short slot rather than a pool
/// slot.
const SHORT: u16 = u16::MAX;
/// Index of a direction's short slot in [`Connection::short`].
const UP: usize = 0;
const DOWN: usize = 1;

/// What a server's [`Sys::Receive`](super::Sys::Receive) reports in `a2`.
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

fn conn_id(slot: usize, generation: u32) -> ConnId {
    (u64::from(generation) << 16) | slot as u64
}

fn conn_slot(id: ConnId) -> usize {
    (id & 0xffff) as usize
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

pub(super) struct Connection {
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
    /// One short frame queued up and one down, outside the pool.
    short: [ShortFrame; 2],
}

/// A connection's slot for one short queued frame.
#[derive(Clone, Copy)]
pub(super) struct ShortFrame {
    bytes: [u8; SHORT_FRAME],
    /// Its length; `None` while free.
    len: Option<u8>,
}

impl ShortFrame {
    const FREE: ShortFrame = ShortFrame {
        bytes: [0; SHORT_FRAME],
        len: None,
    };
}

impl Connection {
    pub(super) const FREE: Connection = Connection {
        generation: 0,
        side: Side::Free,
        client: 0,
        server: 0,
        credentials: (0, 0),
        opening: false,
        listed: false,
        up: Deque::new(),
        down: Deque::new(),
        short: [ShortFrame::FREE; 2],
    };

    fn id(&self, slot: usize) -> ConnId {
        conn_id(slot, self.generation)
    }
}

/// Frames waiting in a queue.
pub(super) struct FramePool {
    bytes: [[u8; MAX_FRAME]; FRAME_POOL],
    len: [u16; FRAME_POOL],
    pub(super) free: heapless::Vec<u16, FRAME_POOL>,
    pub(super) initialised: bool,
}

impl FramePool {
    pub(super) const fn new() -> Self {
        Self {
            bytes: [[0; MAX_FRAME]; FRAME_POOL],
            len: [0; FRAME_POOL],
            free: heapless::Vec::new(),
            initialised: false,
        }
    }

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

impl Kernel {
    pub(super) fn connect(
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

    /// Connection `cid`'s slot, client and server, while it is open.
    pub(super) fn peers(&self, cid: ConnId) -> Option<(usize, TaskId, TaskId)> {
        let slot = conn_slot(cid);
        let c = self.connections.get(slot)?;
        (c.side == Side::Open && c.id(slot) == cid).then_some((slot, c.client, c.server))
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
                Some(SHORT) => c.short[if up { UP } else { DOWN }].len = None,
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

    pub(super) fn close(
        &mut self,
        id: TaskId,
        cid: ConnId,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
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

    pub(super) fn hangup(&mut self, id: TaskId, cid: ConnId) -> Result<u64, Errno> {
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

    /// Task `id` ended: its client connections hang up, its server
    /// connections fail their clients.
    pub(super) fn drop_connections_of(&mut self, id: TaskId, machine: &mut dyn Machine) {
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

    /// The checks of a frame going out on `cid` from `id` (its client, or
    /// its server): the connection is open, the frame not too long and in
    /// memory the sender may read. Its slot and length.
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
        if !machine.contains(addr, len) || !self.may_touch(id, addr, len as u64, false) {
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

    /// Let `task`, just woken by a frame, run when the running task
    /// blocks, unless a task woken earlier is still waiting for its turn:
    /// a server that sends a driver a request and then answers a client
    /// lets the driver run first, as the order of wake-ups says.
    #[inline]
    fn hand_to(&mut self, task: TaskId) {
        match self.handoff {
            Some(earlier) if earlier != task && self.tasks[earlier].state == TaskState::Ready => {}
            _ => self.handoff = Some(task),
        }
    }

    /// Copy a frame from one task's memory straight into the buffer
    /// `(to, cap)` task `receiver` posted; the receiver's result register
    /// value. The buffer is checked again now, against what the receiver
    /// may touch now: it was checked when posted, but memsrv may have
    /// unmapped it since (usually two compares: the task's usual window).
    fn copy_direct(
        &self,
        machine: &mut dyn Machine,
        (from, len): (u64, usize),
        receiver: TaskId,
        (to, cap): (u64, u64),
    ) -> u64 {
        if len as u64 > cap {
            neg(Errno::EMSGSIZE)
        } else if !self.may_touch(receiver, to, len as u64, true) || !machine.copy(from, to, len) {
            neg(Errno::EFAULT)
        } else {
            len as u64
        }
    }

    pub(super) fn send(
        &mut self,
        id: TaskId,
        cid: ConnId,
        addr: u64,
        len: u64,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        let (slot, len) = self.outgoing(id, cid, true, addr, len, machine)?;
        self.send_on(slot, addr, len, machine)
    }

    /// [`Sys::Call`](super::Sys::Call): send `(conn, ptr, len)`, then
    /// wait for the reply in `(buf, cap)`. The connection and both
    /// buffers are checked once, before the request goes out (a reply
    /// buffer the caller may not write fails the call).
    pub(super) fn call(
        &mut self,
        id: TaskId,
        [cid, addr, len]: [u64; 3],
        [buf, cap]: [u64; 2],
        now_ms: u64,
        machine: &mut dyn Machine,
    ) -> Outcome {
        let sent = if self.may_touch(id, buf, cap, true) {
            self.outgoing(id, cid, true, addr, len, machine)
                .and_then(|(slot, len)| Ok((slot, self.send_on(slot, addr, len, machine)?)))
        } else {
            Err(Errno::EFAULT)
        };
        match sent {
            Ok((slot, _)) => self.wait_reply(id, (slot, cid), [buf, cap, NEVER], now_ms, machine),
            Err(e) => self.fail(id, e),
        }
    }

    /// End task `id`'s call with `-e`.
    fn fail(&mut self, id: TaskId, e: Errno) -> Outcome {
        self.tasks[id].frame.regs[reg::A0] = neg(e);
        Outcome::Continue
    }

    /// Send the checked frame `(addr, len)` to the server of `slot`:
    /// straight into its buffer if it waits, else queued.
    fn send_on(
        &mut self,
        slot: usize,
        addr: u64,
        len: usize,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        let server = self.connections[slot].server;
        // A server blocked in receive has no other event waiting (it
        // would have taken it), so the frame goes straight to it.
        if let TaskState::Receive { addr: to, cap, .. } = self.tasks[server].state {
            let a1 = self.copy_direct(machine, (addr, len), server, (to, cap));
            self.end_receive(server, self.connections[slot].id(slot), a1, Event::Frame);
            // Only a frame hands the hart over, not an open or a hang-up:
            // a task's exit leaves the order of what runs next to the
            // scheduler.
            self.hand_to(server);
            return Ok(0);
        }
        if self.connections[slot].up.is_full() {
            return Err(Errno::EAGAIN);
        }
        let ix = self.keep(slot, UP, machine, addr, len)?;
        let _ = self.connections[slot].up.push_back(ix);
        self.mark(slot);
        Ok(0)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn recv(
        &mut self,
        id: TaskId,
        cid: ConnId,
        addr: u64,
        cap: u64,
        deadline: u64,
        now_ms: u64,
        machine: &mut dyn Machine,
    ) -> Outcome {
        let slot = match self.slot_of(cid, id, true) {
            Ok(_) if !self.may_touch(id, addr, cap, true) => Err(Errno::EFAULT),
            slot => slot,
        };
        match slot {
            Ok(slot) => self.wait_reply(id, (slot, cid), [addr, cap, deadline], now_ms, machine),
            Err(e) => self.fail(id, e),
        }
    }

    /// The receiving half of [`Self::recv`] and [`Self::call`], on the
    /// client's connection `slot` (`cid`) with its buffer `(addr, cap)`
    /// checked: the next queued frame, or wait for one until `deadline`.
    fn wait_reply(
        &mut self,
        id: TaskId,
        (slot, cid): (usize, ConnId),
        [addr, cap, deadline]: [u64; 3],
        now_ms: u64,
        machine: &mut dyn Machine,
    ) -> Outcome {
        let result = match self.connections[slot].down.pop_front() {
            Some(ix) => Ok(self.hand_over(slot, DOWN, ix, (id, addr, cap), machine)),
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
        };
        self.tasks[id].frame.regs[reg::A0] = result.unwrap_or_else(neg);
        Outcome::Continue
    }

    /// Copy the `len` bytes at task address `addr` into the kernel to
    /// wait in direction `dir` of connection `slot`: into its short slot
    /// if they fit and it is free, else into the pool. The queue entry.
    fn keep(
        &mut self,
        slot: usize,
        dir: usize,
        machine: &mut dyn Machine,
        addr: u64,
        len: usize,
    ) -> Result<u16, Errno> {
        let short = &mut self.connections[slot].short[dir];
        if len <= SHORT_FRAME && short.len.is_none() {
            if !machine.copy_in(addr, &mut short.bytes[..len]) {
                return Err(Errno::EFAULT);
            }
            short.len = Some(len as u8);
            return Ok(SHORT);
        }
        self.pool.take(machine, addr, len)
    }

    /// Copy queued frame `ix` of direction `dir` of connection `slot` to
    /// the buffer `(addr, cap)` of task `receiver` and free it; the result
    /// register value (length, or `-EMSGSIZE`/`-EFAULT`). The buffer is
    /// checked now, as in [`Self::copy_direct`].
    fn hand_over(
        &mut self,
        slot: usize,
        dir: usize,
        ix: u16,
        (receiver, addr, cap): (TaskId, u64, u64),
        machine: &mut dyn Machine,
    ) -> u64 {
        let writable = |len: usize| self.may_touch(receiver, addr, len as u64, true);
        let short = &self.connections[slot].short[dir];
        let len = match (ix, short.len) {
            (SHORT, len) => usize::from(len.unwrap_or(0)),
            _ => self.pool.get(ix).len(),
        };
        let writable = writable(len);
        let short = &mut self.connections[slot].short[dir];
        let frame = match (ix, short.len) {
            (SHORT, len) => &short.bytes[..usize::from(len.unwrap_or(0))],
            _ => self.pool.get(ix),
        };
        let result = if frame.len() as u64 > cap {
            neg(Errno::EMSGSIZE)
        } else if !writable || !machine.copy_out(addr, frame) {
            neg(Errno::EFAULT)
        } else {
            frame.len() as u64
        };
        if ix == SHORT {
            short.len = None;
        } else {
            self.pool.put_back(ix);
        }
        result
    }

    pub(super) fn receive(
        &mut self,
        id: TaskId,
        addr: u64,
        cap: u64,
        deadline: u64,
        now_ms: u64,
        machine: &mut dyn Machine,
    ) -> Outcome {
        // The buffer was checked by the caller (`syscall`, or
        // `reply_receive` before its reply went out).
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

    /// If `server` waits in [`Sys::Receive`](super::Sys::Receive) and some connection of its
    /// has an event, hand the oldest-served connection's event over and
    /// make the server ready. Returns whether it did.
    #[inline]
    fn deliver_to_server(&mut self, server: TaskId, machine: &mut dyn Machine) -> bool {
        // Nothing listed (a server answering calls one at a time): no
        // call, no turn around the list.
        !self.ready.is_empty() && self.deliver_from_ready_list(server, machine)
    }

    #[inline(never)]
    fn deliver_from_ready_list(&mut self, server: TaskId, machine: &mut dyn Machine) -> bool {
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
                (
                    self.hand_over(slot, UP, ix, (server, addr, cap), machine),
                    Event::Frame,
                )
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

    /// Complete `server`'s [`Sys::Receive`](super::Sys::Receive) with an event of `cid`.
    fn end_receive(&mut self, server: TaskId, cid: ConnId, a1: u64, event: Event) {
        let task = &mut self.tasks[server];
        task.frame.regs[reg::A0] = cid;
        task.frame.regs[reg::A1] = a1;
        task.frame.regs[reg::A2] = event as u64;
        task.state = TaskState::Ready;
    }

    /// [`Sys::ReplyReceive`](super::Sys::ReplyReceive): answer `(conn,
    /// ptr, len)`, then wait as [`Self::receive`] with `(buf, cap,
    /// deadline)`. The client woken by the answer runs next if the
    /// receive blocks (the handoff), so a call to a waiting server costs
    /// two traps, not three.
    pub(super) fn reply_receive(
        &mut self,
        id: TaskId,
        [cid, addr, len]: [u64; 3],
        [buf, cap, deadline]: [u64; 3],
        now_ms: u64,
        machine: &mut dyn Machine,
    ) -> Outcome {
        // A buffer the server may not write fails the call before the
        // reply goes out.
        let reply = if self.may_touch(id, buf, cap, true) {
            self.reply(id, cid, addr, len, machine)
        } else {
            Err(Errno::EFAULT)
        };
        match reply {
            Ok(_) | Err(Errno::EBADF | Errno::ENOTCONN) => {
                self.receive(id, buf, cap, deadline, now_ms, machine)
            }
            Err(e) => {
                self.tasks[id].frame.regs[reg::A0] = neg(e);
                Outcome::Continue
            }
        }
    }

    pub(super) fn reply(
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
                let result = self.copy_direct(machine, (addr, len), client, (to, cap));
                self.tasks[client].frame.regs[reg::A0] = result;
                self.tasks[client].state = TaskState::Ready;
                self.hand_to(client);
                return Ok(0);
            }
        }
        if self.connections[slot].down.is_full() {
            return Err(Errno::EAGAIN);
        }
        let ix = self.keep(slot, DOWN, machine, addr, len)?;
        let _ = self.connections[slot].down.push_back(ix);
        Ok(0)
    }
}
