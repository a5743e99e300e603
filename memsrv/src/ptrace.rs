//! `PtraceAttach`/`PtraceDetach`: the part of ptrace the mapping rules see.
//! A traced process's new private file mappings are never shareable
//! (spec §2.3, §3.1, §10.5); nothing else about tracing is served here.

use crate::{MemoryServer, PhysicalMemory};
use protocol::{Errno, Reply};

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `me` (with `uid`) starts tracing `target`: same uid or root
    /// (`EPERM`), an existing process (`ESRCH`), not itself and not one
    /// already traced (`EPERM`).
    pub(crate) fn ptrace_attach(
        &mut self,
        me: u32,
        uid: u32,
        target: u32,
    ) -> Result<Option<Reply>, Errno> {
        let t = self.procs.procs.get_mut(&target).ok_or(Errno::ESRCH)?;
        if target == me || t.tracer.is_some() || (uid != 0 && uid != t.uid) {
            return Err(Errno::EPERM);
        }
        t.tracer = Some(me);
        Ok(Some(Reply::Done))
    }

    /// `me` stops tracing `target` (`ESRCH` unless `me` traces it).
    pub(crate) fn ptrace_detach(&mut self, me: u32, target: u32) -> Result<Option<Reply>, Errno> {
        match self.procs.procs.get_mut(&target) {
            Some(t) if t.tracer == Some(me) => {
                t.tracer = None;
                Ok(Some(Reply::Done))
            }
            _ => Err(Errno::ESRCH),
        }
    }
}
