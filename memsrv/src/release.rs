//! What follows when things go away: an exited process's descriptors are
//! closed; a removed file mapping tells its driver (`CloseVma`, for every
//! mapping the driver approved, spec §3.5) and drops its object
//! reference; an object nothing refers to any more is released
//! (`Release`); a dead driver's storage is freed once no region points
//! into it.

use alloc::vec::Vec;

use crate::nommu::Notice;
use crate::{Effect, MemoryServer, PhysicalMemory};
use protocol::{DriverOps, DriverRequest};

impl<M: PhysicalMemory> MemoryServer<M> {
    /// Close the descriptor tables of processes that ended; their tracees
    /// are no longer traced.
    pub(crate) fn reap_exited(&mut self) {
        let exited = core::mem::take(&mut self.procs.exited);
        for &pid in &exited {
            for file in self.files.take_table(pid) {
                if let Some(key) = self.files.put_file(file) {
                    self.unref_object(key);
                }
            }
            for p in self.procs.procs.values_mut() {
                if p.tracer == Some(pid) {
                    p.tracer = None;
                }
            }
        }
    }

    /// Act on the file mappings and regions the mapping code removed.
    pub(crate) fn take_notices(&mut self, fx: &mut Vec<Effect>) {
        let notices = core::mem::take(&mut self.nommu.notices);
        for notice in notices {
            match notice {
                Notice::VmaGone {
                    key,
                    start,
                    len,
                    direct,
                } => {
                    let wants_close = self
                        .files
                        .objects
                        .get(&key)
                        .is_some_and(|o| o.info.ops.has(DriverOps::CLOSE_VMA));
                    if direct && wants_close && self.files.alive(key.driver) {
                        let request = DriverRequest::CloseVma {
                            object: key.object,
                            start,
                            len,
                        };
                        self.notify(key, request, fx);
                    }
                    self.unref_object(key);
                }
                Notice::RegionGone { key, direct, .. } => {
                    self.unref_object(key);
                    if direct && !self.files.alive(key.driver) {
                        self.nommu.free_orphans(key.driver);
                    }
                }
            }
        }
    }

    /// Send `Release` for objects whose last reference went (after
    /// whatever is queued on them).
    pub(crate) fn send_releases(&mut self, fx: &mut Vec<Effect>) {
        let mut keys = core::mem::take(&mut self.ops.releases);
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let alive = self.files.alive(key.driver);
            let due = match self.files.objects.get_mut(&key) {
                Some(o) if o.release_due => {
                    o.release_due = false;
                    o.refs == 0
                }
                _ => false,
            };
            if due && alive {
                self.notify(key, DriverRequest::Release { object: key.object }, fx);
            } else {
                self.forget_if_idle(key);
            }
        }
    }
}
