//! `execve` (spec §10.4): the process gets a new, empty address space;
//! the old one loses a user and, if it had no other (not a `vfork`
//! parent), all its mappings go as at exit (§5.2) — SysV attachments
//! included, so `shm_nattch` drops and removed segments with no other
//! attachment are destroyed. A `vfork` parent keeps its mappings
//! unchanged (vector 119). Descriptors stay open (close-on-exec is not
//! tracked yet). The loader's own mappings are the client's to make
//! afterwards with ordinary `mmap` calls.

use protocol::{Errno, Reply};

use crate::{MemoryServer, PhysicalMemory};

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `Exec` from process `pid`.
    pub(crate) fn sys_exec(&mut self, pid: u32) -> Result<Reply, Errno> {
        let old = self
            .procs
            .procs
            .get(&pid)
            .map(|p| p.mm)
            .ok_or(Errno::ESRCH)?;
        let new = self.nommu.new_mm();
        if let Some(p) = self.procs.procs.get_mut(&pid) {
            p.mm = new;
        }
        self.nommu.put_mm(old);
        Ok(Reply::Done)
    }
}
