//! The operation queue: submitting an operation, waiting for its object
//! (operations on one object run one at a time, in order), finishing it
//! (the client's reply, the next operation's turn) and the object
//! references operations hold (`Release` when the last goes).

use alloc::vec::Vec;

use super::*;
use crate::Answer;

impl<M: PhysicalMemory> MemoryServer<M> {
    /// Start a client operation; [`Answer::Now`] if it finished at once,
    /// [`Answer::Later`] if the reply comes later as an effect.
    pub(crate) fn submit_op(&mut self, op: Op, fx: &mut Vec<Effect>) -> Answer {
        if let Some((client, _)) = op.client {
            let n = self.ops.per_client.get(&client).copied().unwrap_or(0);
            if n >= self.config.max_pending_ops {
                let mut op = op;
                self.op_undo(&mut op);
                self.drop_op_ref(&mut op);
                return Answer::Now(Reply::Error(Errno::EAGAIN));
            }
        }
        let id = self.new_op(op);
        let outer = self.ops.submitting.replace(id);
        self.schedule(id, fx);
        self.ops.submitting = outer;
        self.ops
            .sync_reply
            .take()
            .map_or(Answer::Later, Answer::Now)
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

    pub(super) fn new_op(&mut self, op: Op) -> OpId {
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
    pub(super) fn schedule(&mut self, id: OpId, fx: &mut Vec<Effect>) {
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

    /// The operation is over: undo what a failure left, drop its object
    /// reference, answer the client, and hand the object to the next.
    pub(super) fn finish(
        &mut self,
        id: OpId,
        mut op: Op,
        result: Result<Reply, Errno>,
        fx: &mut Vec<Effect>,
    ) {
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
                fx.push(Effect::Send {
                    to: client,
                    frame: FrameBuf::reply(tag, &reply),
                });
            }
        }
    }

    pub(super) fn drop_op_ref(&mut self, op: &mut Op) {
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
}
