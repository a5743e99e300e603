//! Failing an operation (driver death, bad answer, timeout) and giving
//! back what a failed one had built.

use alloc::vec::Vec;

use super::*;

impl<M: PhysicalMemory> MemoryServer<M> {
    /// Fail an operation (driver death, bad answer, timeout).
    pub(crate) fn fail(&mut self, id: OpId, errno: Errno, fx: &mut Vec<Effect>) {
        if let Some(mut op) = self.ops.live.remove(&id) {
            if let Some(tag) = op.call.take() {
                self.end_call(tag);
            }
            let driver = op.driver;
            self.finish(id, op, Err(errno), fx);
            self.unpark_releases(driver);
        }
    }

    /// The driver request `tag` is awaited no longer: the home learns it
    /// before the operation goes on or gives back what it built.
    pub(super) fn end_call(&mut self, tag: u32) {
        self.ops.calls.remove(&tag);
        self.memory.driver_call_ended(tag);
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

    /// Give back what a failed operation held.
    pub(super) fn op_undo(&mut self, op: &mut Op) {
        match &mut op.kind {
            OpKind::Mmap(m) => self.mmap_undo(m),
            OpKind::Lease(l) => {
                if let Some(stage) = l.stage.take() {
                    self.orphan_stage(op.driver, stage);
                }
            }
            _ => {}
        }
    }
}
