//! `PtraceAttach`/`PtraceDetach`: the part of ptrace the mapping rules see.
//! A traced process's new private file mappings are never shareable
//! (spec §2.3, §3.1, §10.5).
//!
//! `PtracePeek`/`PtracePoke` (`PTRACE_PEEKDATA`/`POKEDATA` through
//! `access_process_vm`, spec §10.5): as `ptrace(2)` requires, the caller
//! must be the target's tracer — attached with `PtraceAttach`, which is
//! where the permission check (same uid, or root) is made; anyone else,
//! and an unknown pid, gets `ESRCH` (Linux's `ptrace_check_attach`). The
//! word (`sizeof(long)` of the clients' ABI, [`crate::Config::word_size`])
//! must start inside one of the target's mappings and is clipped to that
//! mapping, so a word crossing its end is a short transfer; reads need
//! `VM_MAYREAD`, writes `VM_MAYWRITE`; I/O and PFN mappings are refused;
//! and — the server's own limit — the bytes must lie in the arena it
//! manages (device memory outside it is not the server's to touch).
//! Every one of those failures is a short transfer: `EIO`. A poke into a
//! shared region is seen by every process mapping it (vector 117).

use crate::mm::MmId;
use crate::vm_flags::{VmFlags, VM_IO, VM_MAYREAD, VM_MAYWRITE, VM_PFNMAP};
use crate::{Answer, MemoryServer, PhysicalMemory};
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
    ) -> Result<Answer, Errno> {
        let t = self.procs.procs.get_mut(&target).ok_or(Errno::ESRCH)?;
        if target == me || t.tracer.is_some() || (uid != 0 && uid != t.uid) {
            return Err(Errno::EPERM);
        }
        t.tracer = Some(me);
        Ok(Answer::Now(Reply::Done))
    }

    /// `me` stops tracing `target` (`ESRCH` unless `me` traces it).
    pub(crate) fn ptrace_detach(&mut self, me: u32, target: u32) -> Result<Answer, Errno> {
        match self.procs.procs.get_mut(&target) {
            Some(t) if t.tracer == Some(me) => {
                t.tracer = None;
                Ok(Answer::Now(Reply::Done))
            }
            _ => Err(Errno::ESRCH),
        }
    }
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// The target's address space if `me` traces `target` (`ESRCH` else).
    fn traced_mm(&self, me: u32, target: u32) -> Result<MmId, Errno> {
        match self.procs.procs.get(&target) {
            Some(t) if t.tracer == Some(me) => Ok(t.mm),
            _ => Err(Errno::ESRCH),
        }
    }

    /// Where a whole word at `addr` of `mm` may be transferred with the
    /// `need` flag: its length, or `EIO` for a short (or no) transfer.
    fn word_range(&self, mm: MmId, addr: u64, need: VmFlags) -> Result<usize, Errno> {
        let len = u64::from(self.config.word_size);
        let end = addr.checked_add(len).ok_or(Errno::EIO)?;
        let m = self.nommu.mms.get(&mm).ok_or(Errno::EIO)?;
        let key = m.find_vma(addr).ok_or(Errno::EIO)?;
        let vma = m.get(&key).ok_or(Errno::EIO)?;
        // Clipped to the mapping: a word crossing its end is short.
        if end > key.end {
            return Err(Errno::EIO);
        }
        if vma.flags & need == 0 || vma.flags & (VM_IO | VM_PFNMAP) != 0 {
            return Err(Errno::EIO);
        }
        if !self.nommu.in_arena(addr, end) {
            return Err(Errno::EIO);
        }
        Ok(len as usize)
    }

    /// `PTRACE_PEEKDATA`: the word, little-endian.
    pub(crate) fn ptrace_peek(&self, me: u32, target: u32, addr: u64) -> Result<Reply, Errno> {
        let mm = self.traced_mm(me, target)?;
        let len = self.word_range(mm, addr, VM_MAYREAD)?;
        let mut buf = [0u8; 8];
        let word = buf.get_mut(..len).ok_or(Errno::EIO)?;
        self.memory.read(addr, word);
        Ok(Reply::Value(i64::from_le_bytes(buf)))
    }

    /// `PTRACE_POKEDATA`: store the word (its low `word_size` bytes),
    /// little-endian.
    pub(crate) fn ptrace_poke(
        &mut self,
        me: u32,
        target: u32,
        addr: u64,
        word: u64,
    ) -> Result<Reply, Errno> {
        let mm = self.traced_mm(me, target)?;
        let len = self.word_range(mm, addr, VM_MAYWRITE)?;
        let bytes = word.to_le_bytes();
        self.memory.write(addr, bytes.get(..len).ok_or(Errno::EIO)?);
        Ok(Reply::Done)
    }
}
