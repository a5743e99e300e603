//! Pending continuations: every client call that needs a driver becomes an
//! operation that sends one driver request at a time and continues when
//! the answer comes (MINIX's suspended reply). The client's reply is held
//! meanwhile; other clients are served.
//!
//! Operations on one object wait their turn in the object's queue, so the
//! §3 reuse search and the set-up after it are never interleaved for one
//! object, and a driver never has two requests for one object outstanding.
//! A driver that dies, answers with the wrong variant or an unknown tag, or
//! does not answer within [`crate::Config::driver_timeout_ms`] fails the
//! operation with `EIO`; the operation's undo step then removes whatever
//! it had built (region usage, pages, object references).

mod driver_calls;
pub mod file_io;
pub mod file_mmap;
pub mod open;
mod unlink;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::ops::file_io::{ReadOp, SeekOp, StatOp, TruncateOp, WriteOp};
use crate::ops::file_mmap::MmapOp;
use crate::ops::open::{OpenOp, OpenState};
use crate::region::{DriverId, ObjectKey};
use crate::{ClientId, Effect, FrameBuf, MemoryServer, PhysicalMemory};
use protocol::{DriverReply, DriverRequest, Errno, Reply};

/// An operation's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

/// What an operation is doing, with its state.
pub enum OpKind {
    Open(OpenOp),
    Read(ReadOp),
    Write(WriteOp),
    Seek(SeekOp),
    Stat(StatOp),
    Truncate(TruncateOp),
    Mmap(MmapOp),
    /// `unlink` of this path (relative to the mount).
    Unlink(protocol::Path),
    /// A request nobody waits for (`CloseVma`, `Release`): it still takes
    /// its turn in the object's queue.
    Notify(DriverRequest),
}

pub struct Op {
    /// The client waiting for the answer, and its tag.
    pub client: Option<(ClientId, u32)>,
    /// The calling process (0 for notifications).
    pub pid: u32,
    pub driver: DriverId,
    /// The object whose queue the operation waits in, once known.
    pub object: Option<ObjectKey>,
    /// The operation holds one reference to `object`.
    pub holds_object: bool,
    /// The tag of the driver request in flight.
    pub call: Option<u32>,
    pub kind: OpKind,
}

/// What one step of an operation decided.
pub enum Step {
    /// Send this to the operation's driver and wait.
    Send(DriverRequest),
    /// Wait for the object (the operation now knows it): join its queue.
    Queue,
    /// The operation is over.
    Done(Result<Reply, Errno>),
}

/// What wakes an operation.
// Passed by value once per driver answer; boxing would allocate for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Input {
    Start,
    Reply(DriverReply),
}

/// One driver request in flight.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub driver: DriverId,
    pub op: OpId,
    /// The clock when it was sent (`None` before the first tick).
    pub sent: Option<u64>,
}

/// Every operation not finished yet, the driver requests in flight, and
/// what is due next.
#[derive(Default)]
pub struct Operations {
    /// Operations not finished yet.
    pub live: BTreeMap<OpId, Op>,
    pub calls: BTreeMap<u32, Call>,
    /// Operations whose turn came, to be started.
    pub ready: VecDeque<OpId>,
    /// Client operations outstanding per connection.
    pub per_client: BTreeMap<ClientId, usize>,
    /// The home's clock at the last tick.
    pub clock: Option<u64>,
    /// Objects whose last reference went: `Release` is due.
    pub releases: Vec<ObjectKey>,
    /// The operation being submitted, and its answer if it finished at once.
    submitting: Option<OpId>,
    sync_reply: Option<Reply>,
    next_op: u64,
    next_tag: u32,
}

impl Operations {
    fn new_tag(&mut self) -> u32 {
        loop {
            self.next_tag = self.next_tag.wrapping_add(1);
            if !self.calls.contains_key(&self.next_tag) {
                return self.next_tag;
            }
        }
    }
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// Start a client operation; `Some(reply)` if it finished at once,
    /// `None` if the reply comes later as an effect.
    pub(crate) fn submit_op(&mut self, op: Op, fx: &mut Vec<Effect>) -> Option<Reply> {
        if let Some((client, _)) = op.client {
            let n = self.ops.per_client.get(&client).copied().unwrap_or(0);
            if n >= self.config.max_pending_ops {
                let mut op = op;
                self.op_undo(&mut op);
                self.drop_op_ref(&mut op);
                return Some(Reply::Error(Errno::EAGAIN));
            }
        }
        let id = self.new_op(op);
        let outer = self.ops.submitting.replace(id);
        self.schedule(id, fx);
        self.ops.submitting = outer;
        self.ops.sync_reply.take()
    }

    /// Start an operation nobody waits for.
    pub(crate) fn notify(&mut self, key: ObjectKey, request: DriverRequest, fx: &mut Vec<Effect>) {
        let op = Op {
            client: None,
            pid: 0,
            driver: key.driver,
            object: Some(key),
            holds_object: false,
            call: None,
            kind: OpKind::Notify(request),
        };
        let id = self.new_op(op);
        self.schedule(id, fx);
    }

    fn new_op(&mut self, op: Op) -> OpId {
        if let Some((client, _)) = op.client {
            *self.ops.per_client.entry(client).or_insert(0) += 1;
        }
        self.ops.next_op += 1;
        let id = OpId(self.ops.next_op);
        self.ops.live.insert(id, op);
        id
    }

    /// Run the operation now if its object is free (or it has none),
    /// else queue it behind the object's current operation.
    fn schedule(&mut self, id: OpId, fx: &mut Vec<Effect>) {
        let key = self.ops.live.get(&id).and_then(|op| op.object);
        if let Some(key) = key {
            match self.files.objects.get_mut(&key) {
                Some(obj) if obj.active.is_none() => obj.active = Some(id),
                Some(obj) => {
                    obj.queue.push_back(id);
                    return;
                }
                None => {
                    self.fail(id, Errno::EIO, fx);
                    return;
                }
            }
        }
        self.advance(id, Input::Start, fx);
    }

    /// Start the operations whose turn came.
    pub(crate) fn run_ready(&mut self, fx: &mut Vec<Effect>) {
        while let Some(id) = self.ops.ready.pop_front() {
            self.advance(id, Input::Start, fx);
        }
    }

    /// Feed the operation one input and carry out what it decides.
    fn advance(&mut self, id: OpId, input: Input, fx: &mut Vec<Effect>) {
        let Some(mut op) = self.ops.live.remove(&id) else {
            return;
        };
        op.call = None;
        if let OpKind::Open(_) = op.kind {
            // Whatever this step does, its lookup is no longer in flight
            // once it has run.
            let driver = op.driver;
            self.advance_op(id, op, input, fx);
            self.unpark_releases(driver);
        } else {
            self.advance_op(id, op, input, fx);
        }
    }

    fn advance_op(&mut self, id: OpId, mut op: Op, input: Input, fx: &mut Vec<Effect>) {
        let step = if self.files.alive(op.driver) {
            self.op_step(&mut op, input)
        } else {
            Step::Done(Err(Errno::EIO))
        };
        match step {
            Step::Send(request) => {
                let Some(client) = self.files.drivers.get(&op.driver).map(|d| d.client) else {
                    return self.finish(id, op, Err(Errno::EIO), fx);
                };
                let tag = self.ops.new_tag();
                self.ops.calls.insert(
                    tag,
                    Call {
                        driver: op.driver,
                        op: id,
                        sent: self.ops.clock,
                    },
                );
                op.call = Some(tag);
                self.ops.live.insert(id, op);
                fx.push(Effect::Reply {
                    to: client,
                    frame: FrameBuf::driver_request(tag, &request),
                });
            }
            Step::Queue => {
                self.ops.live.insert(id, op);
                self.schedule(id, fx);
            }
            Step::Done(result) => self.finish(id, op, result, fx),
        }
    }

    /// Fail an operation (driver death, bad answer, timeout).
    pub(crate) fn fail(&mut self, id: OpId, errno: Errno, fx: &mut Vec<Effect>) {
        if let Some(mut op) = self.ops.live.remove(&id) {
            if let Some(tag) = op.call.take() {
                self.ops.calls.remove(&tag);
            }
            let driver = op.driver;
            self.finish(id, op, Err(errno), fx);
            self.unpark_releases(driver);
        }
    }

    /// Whether a lookup is in flight to `driver` (it may name any of the
    /// driver's objects, so a `Release` waits for it).
    fn lookup_in_flight(&self, driver: DriverId) -> bool {
        self.ops.live.values().any(|op| {
            op.driver == driver
                && op.call.is_some()
                && matches!(&op.kind, OpKind::Open(o) if o.state == OpenState::Lookup)
        })
    }

    /// Releases parked behind lookups become due again once no lookup of
    /// the driver is in flight.
    fn unpark_releases(&mut self, driver: DriverId) {
        let parked = self
            .files
            .drivers
            .get(&driver)
            .is_some_and(|d| !d.parked_releases.is_empty());
        if !parked || self.lookup_in_flight(driver) {
            return;
        }
        if let Some(d) = self.files.drivers.get_mut(&driver) {
            let objects = core::mem::take(&mut d.parked_releases);
            self.ops.releases.extend(
                objects
                    .into_iter()
                    .map(|object| ObjectKey { driver, object }),
            );
        }
    }

    /// The operation is over: undo what a failure left, drop its object
    /// reference, answer the client, and hand the object to the next.
    fn finish(&mut self, id: OpId, mut op: Op, result: Result<Reply, Errno>, fx: &mut Vec<Effect>) {
        if result.is_err() {
            self.op_undo(&mut op);
        }
        self.drop_op_ref(&mut op);
        if let Some(key) = op.object {
            if let Some(obj) = self.files.objects.get_mut(&key) {
                if obj.active == Some(id) {
                    obj.active = obj.queue.pop_front();
                    if let Some(next) = obj.active {
                        self.ops.ready.push_back(next);
                    }
                } else {
                    obj.queue.retain(|&q| q != id);
                }
            }
            self.forget_if_idle(key);
        }
        if let Some((client, tag)) = op.client {
            if let Some(n) = self.ops.per_client.get_mut(&client) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.ops.per_client.remove(&client);
                }
            }
            let reply = result.unwrap_or_else(Reply::Error);
            if self.ops.submitting == Some(id) {
                self.ops.sync_reply = Some(reply);
            } else if self.procs.conns.contains_key(&client) {
                fx.push(Effect::Reply {
                    to: client,
                    frame: FrameBuf::reply(tag, &reply),
                });
            }
        }
    }

    fn drop_op_ref(&mut self, op: &mut Op) {
        if op.holds_object {
            op.holds_object = false;
            if let Some(key) = op.object {
                self.unref_object(key);
            }
        }
    }

    /// Drop one reference to an object; at zero the driver is told
    /// (`Release`, after whatever is queued), a dead driver's object goes.
    pub(crate) fn unref_object(&mut self, key: ObjectKey) {
        let alive = self.files.alive(key.driver);
        let Some(obj) = self.files.objects.get_mut(&key) else {
            return;
        };
        obj.refs = obj.refs.saturating_sub(1);
        if obj.refs > 0 {
            return;
        }
        if alive {
            obj.release_due = true;
            self.ops.releases.push(key);
        } else {
            self.forget_if_idle(key);
        }
    }

    /// Remove an object nothing refers to or waits on.
    pub(crate) fn forget_if_idle(&mut self, key: ObjectKey) {
        if self.files.objects.get(&key).is_some_and(|o| o.idle()) {
            self.files.objects.remove(&key);
        }
    }

    /// A driver answered.
    pub(crate) fn driver_reply(
        &mut self,
        driver: DriverId,
        tag: u32,
        reply: Result<DriverReply, Errno>,
        fx: &mut Vec<Effect>,
    ) {
        match self.ops.calls.get(&tag).copied() {
            Some(call) if call.driver == driver => {
                self.ops.calls.remove(&tag);
                if let Some(op) = self.ops.live.get_mut(&call.op) {
                    op.call = None;
                }
                match reply {
                    Ok(reply) => self.advance(call.op, Input::Reply(reply), fx),
                    Err(_) => self.fail(call.op, Errno::EIO, fx),
                }
            }
            _ => {
                let late = self.files.drivers.get_mut(&driver).and_then(|d| {
                    let at = d.expired.iter().position(|&t| t == tag)?;
                    d.expired.remove(at)
                });
                if late.is_none() {
                    // Not an answer to anything: the driver's replies can no
                    // longer be matched to requests.
                    self.fail_driver_calls(driver, fx);
                }
            }
        }
    }

    /// Fail every request in flight to `driver`.
    pub(crate) fn fail_driver_calls(&mut self, driver: DriverId, fx: &mut Vec<Effect>) {
        let ops: Vec<OpId> = self
            .ops
            .calls
            .values()
            .filter(|c| c.driver == driver)
            .map(|c| c.op)
            .collect();
        for op in ops {
            self.fail(op, Errno::EIO, fx);
        }
    }

    /// Time passed: requests unanswered for the timeout fail.
    pub(crate) fn expire_calls(&mut self, now: u64, fx: &mut Vec<Effect>) {
        let timeout = self.config.driver_timeout_ms;
        let mut expired = Vec::new();
        for (&tag, call) in self.ops.calls.iter_mut() {
            let sent = *call.sent.get_or_insert(now);
            // Strictly more: the clock counts whole milliseconds, so a
            // difference equal to the timeout may be up to 1 ms short of it.
            if now.saturating_sub(sent) > timeout {
                expired.push((tag, call.driver, call.op));
            }
        }
        for (tag, driver, op) in expired {
            if let Some(d) = self.files.drivers.get_mut(&driver) {
                d.note_expired(tag);
            }
            self.fail(op, Errno::EIO, fx);
        }
    }

    /// One step of an operation.
    fn op_step(&mut self, op: &mut Op, input: Input) -> Step {
        let key = op.object;
        let pid = op.pid;
        match &mut op.kind {
            OpKind::Notify(request) => match (input, key) {
                (Input::Start, Some(key)) if matches!(request, DriverRequest::Release { .. }) => {
                    self.start_release(key, request)
                }
                (Input::Start, _) => Step::Send(request.clone()),
                (Input::Reply(_), _) => Step::Done(Ok(Reply::Done)),
            },
            OpKind::Open(o) => self.open_step(
                o,
                op.driver,
                pid,
                &mut op.object,
                &mut op.holds_object,
                input,
            ),
            OpKind::Read(o) => self.read_step(o, key, input),
            OpKind::Write(o) => self.write_step(o, key, input),
            OpKind::Seek(o) => self.seek_step(o, key, input),
            OpKind::Stat(o) => self.stat_step(o, key, input),
            OpKind::Truncate(o) => self.truncate_step(o, key, input),
            OpKind::Mmap(o) => self.mmap_step(o, key, input),
            OpKind::Unlink(path) => self.unlink_step(path, input),
        }
    }

    /// A `Release` whose turn came: not sent if a lookup named the object
    /// again meanwhile; parked while a lookup of the driver is in flight
    /// (its answer may name the object: the driver must see the release
    /// first or not at all).
    fn start_release(&mut self, key: ObjectKey, request: &DriverRequest) -> Step {
        if self.files.objects.get(&key).is_none_or(|o| o.refs > 0) {
            return Step::Done(Ok(Reply::Done));
        }
        if self.lookup_in_flight(key.driver) {
            if let Some(o) = self.files.objects.get_mut(&key) {
                o.release_due = true;
            }
            if let Some(d) = self.files.drivers.get_mut(&key.driver) {
                d.parked_releases.insert(key.object);
            }
            return Step::Done(Ok(Reply::Done));
        }
        Step::Send(request.clone())
    }

    /// Give back what a failed operation held.
    fn op_undo(&mut self, op: &mut Op) {
        if let OpKind::Mmap(m) = &mut op.kind {
            self.mmap_undo(m);
        }
    }
}

/// A driver's errno as a client may see it: `ENOSYS` (an internal signal,
/// spec §13), the server's own "reply comes later" marker and nonsense (0)
/// become `EIO`.
pub fn driver_errno(e: Errno) -> Errno {
    if e == Errno::ENOSYS || e == crate::EINPROGRESS || e.0 == 0 {
        Errno::EIO
    } else {
        e
    }
}
