//! Stepping an operation: feed it its start or its driver's answer, send
//! the request it decides on, and the `Release` parking that keeps a
//! driver from seeing a release after a lookup that names the object.

use alloc::vec::Vec;

use super::*;

impl<M: PhysicalMemory> MemoryServer<M> {
    /// Feed the operation one input and carry out what it decides.
    pub(super) fn advance(&mut self, id: OpId, input: Input, fx: &mut Vec<Effect>) {
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

    pub(super) fn advance_op(&mut self, id: OpId, mut op: Op, input: Input, fx: &mut Vec<Effect>) {
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
                let seq = self.ops.new_seq();
                self.ops.calls.insert(
                    tag,
                    Call {
                        driver: op.driver,
                        op: id,
                        sent: self.ops.clock,
                        seq,
                    },
                );
                op.call = Some(tag);
                self.ops.page_maps.note_sent(op.driver, &request);
                self.ops.live.insert(id, op);
                fx.push(Effect::Send {
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
                self.end_call(tag);
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

    /// One step of an operation. An answer naming an owner
    /// (`DriverReply::Owned`) records it and goes on as `Opened`.
    pub(super) fn op_step(&mut self, op: &mut Op, input: Input) -> Step {
        let input = match input {
            Input::Reply(DriverReply::Owned { info, owner }) => {
                let key = ObjectKey {
                    driver: op.driver,
                    object: info.object,
                };
                self.files.note_owner(key, owner);
                Input::Reply(DriverReply::Opened(info))
            }
            other => other,
        };
        let step = self.op_step_as_opened(op, input);
        self.files.reported_owner = None;
        step
    }

    fn op_step_as_opened(&mut self, op: &mut Op, input: Input) -> Step {
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
            OpKind::Unlink(path, caller) => self.unlink_step(path, *caller, input),
            // The operations on an open object know it from the start.
            kind => {
                let Some(key) = key else {
                    return Step::Done(Err(Errno::EIO));
                };
                match kind {
                    OpKind::Read(o) => self.read_step(o, key, input),
                    OpKind::Write(o) => self.write_step(o, key, input),
                    OpKind::Lease(o) => self.lease_step(o, key, input),
                    OpKind::Seek(o) => self.seek_step(o, key, input),
                    OpKind::Stat(o) => self.stat_step(o, key, input),
                    OpKind::Truncate(o) => self.truncate_step(o, key, input),
                    OpKind::Mmap(o) => self.mmap_step(o, key, input),
                    OpKind::Attributes(a) => self.attributes_step(a, key, input),
                    OpKind::Sync(o) => self.sync_step(o, key, input),
                    OpKind::Notify(_) | OpKind::Open(_) | OpKind::Unlink(..) => {
                        Step::Done(Err(Errno::EIO))
                    }
                }
            }
        }
    }

    /// A `Release` whose turn came: not sent if a lookup named the object
    /// again meanwhile; parked while a lookup of the driver is in flight
    /// (its answer may name the object: the driver must see the release
    /// first or not at all).
    pub(super) fn start_release(&mut self, key: ObjectKey, request: &DriverRequest) -> Step {
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

    /// Whether a lookup is in flight to `driver` (it may name any of the
    /// driver's objects, so a `Release` waits for it).
    pub(super) fn lookup_in_flight(&self, driver: DriverId) -> bool {
        self.ops.live.values().any(|op| {
            op.driver == driver
                && op.call.is_some()
                && matches!(&op.kind, OpKind::Open(o)
                    if matches!(o.state, OpenState::Lookup | OpenState::TruncLookup))
        })
    }

    /// Releases parked behind lookups become due again once no lookup of
    /// the driver is in flight.
    pub(super) fn unpark_releases(&mut self, driver: DriverId) {
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
}
