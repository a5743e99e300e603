//! `mmap` of files and devices (spec §2.2 steps 6–12, §2.3, §2.6, §3, §4.3):
//! `validate_file_mapping`, then, as a continuation through the object's
//! queue, `find_shareable_region`, the driver's `get_unmapped_area`,
//! `do_mmap_shared` (the driver's `mmap` approval), `do_mmap_private`
//! (approval of a private direct mapping, or a copy read through the
//! driver) and `add_vma_to_mm`.
//!
//! Server decisions on top of the spec: a private direct-capable request
//! of a traced caller (not shareable) becomes a copy without asking the
//! driver's `mmap` (Linux asks and then forces `ENOSYS`); a direct address
//! must lie in the driver's own storage or outside the arena (`EIO`
//! otherwise); while the driver holds the object exclusive, private
//! mappings are copies and shared ones fail `EBUSY`.

use alloc::vec::Vec;

use crate::charge::Payer;
use crate::file_flags::{Access, MAX_OFFSET};
use crate::mm::{MmId, Vma};
use crate::mmap::{validate_mmap_request, MmapArgs};
use crate::nommu::{page_align, Nommu};
use crate::ops::{driver_errno, Input, OpId, OpKind, Step};
use crate::process::ProcState;
use crate::region::{ObjectKey, Region, RegionId};
use crate::vm_flags::{
    determine_vm_flags, is_copy, is_shareable, Capabilities, MappingKind, VmFlags, NOMMU_MAP_COPY,
    NOMMU_MAP_DIRECT, NOMMU_MAP_EXEC, NOMMU_MAP_READ, NOMMU_MAP_WRITE, VM_EXEC, VM_IO,
    VM_MAPPED_COPY, VM_PFNMAP,
};
use crate::{Answer, Caller, ClientId, Effect, MemoryServer, PhysicalMemory};
use protocol::linux::{MAP_SHARED, MAP_TYPE, PROT_EXEC, PROT_READ, PROT_WRITE};
use protocol::{
    DriverOps, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind, Reply, PAGE_SIZE,
};

/// Where a file mapping stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmapState {
    Start,
    /// Asked `GetUnmappedArea`.
    UnmappedArea,
    /// Asked the driver to approve a new mapping of an existing direct
    /// region.
    ApproveReuse,
    /// Asked the driver to approve a new direct region.
    ApproveNew,
    /// Reading the file into a new copy.
    ReadCopy,
}

pub struct MmapOp {
    pub client: ClientId,
    pub pid: u32,
    pub mm: MmId,
    pub len: u64,
    pub pgoff: u64,
    pub flags: u32,
    pub vm_flags: VmFlags,
    /// Capabilities left after validation (and fallbacks since).
    pub caps: Capabilities,
    pub shared: bool,
    pub io_memory: bool,
    pub state: MmapState,
    /// A region found by the reuse search, holding one usage.
    pub reuse: Option<RegionId>,
    /// Where `get_unmapped_area` said the range lives.
    pub addr: Option<u64>,
    /// A copy being filled: its start, the pages allocated and whom
    /// they are charged to.
    pub copy: Option<(u64, u64, Option<Payer>)>,
}

/// The §1.1 default capabilities of an object that declares none.
fn default_capabilities(kind: ObjectKind) -> Option<Capabilities> {
    match kind {
        ObjectKind::RegularFile | ObjectKind::MemoryFile | ObjectKind::BlockDevice => {
            Some(NOMMU_MAP_COPY)
        }
        ObjectKind::CharDevice => Some(NOMMU_MAP_DIRECT | NOMMU_MAP_READ | NOMMU_MAP_WRITE),
        ObjectKind::Fifo | ObjectKind::Socket | ObjectKind::Directory => None,
    }
}

/// `validate_mmap_request` steps 6–12 for a file (spec §2.2): the
/// capabilities the mapping may use, or the first failure.
pub fn validate_file_mapping(
    info: &ObjectInfo,
    access: Access,
    noexec: bool,
    prot: u32,
    flags: u32,
) -> Result<Capabilities, Errno> {
    // 6: no mmap method at all.
    if !info.ops.has(DriverOps::MMAP) {
        return Err(Errno::ENODEV);
    }
    // 7: the declaration, else the defaults by kind.
    let mut caps = match info.caps {
        Some(c) => Capabilities::from(c),
        None => default_capabilities(info.kind).ok_or(Errno::EINVAL)?,
    };
    // 8: methods the capabilities need.
    if !info.ops.has(DriverOps::GET_UNMAPPED_AREA) {
        caps &= !NOMMU_MAP_DIRECT;
    }
    if !info.ops.has(DriverOps::READ) {
        caps &= !NOMMU_MAP_COPY;
    }
    // 9.
    if !access.read {
        return Err(Errno::EACCES);
    }
    if flags & MAP_TYPE == MAP_SHARED {
        // 10s (no append-only inodes or mandatory locks here).
        if prot & PROT_WRITE != 0 && !access.write {
            return Err(Errno::EACCES);
        }
        if caps & NOMMU_MAP_DIRECT == 0 {
            return Err(Errno::ENODEV);
        }
        caps &= !NOMMU_MAP_COPY;
    } else {
        // 10p.
        if caps & NOMMU_MAP_COPY == 0 {
            return Err(Errno::ENODEV);
        }
        if prot & PROT_WRITE != 0 {
            caps &= !NOMMU_MAP_DIRECT;
        }
    }
    // 11.
    if caps & NOMMU_MAP_DIRECT != 0 {
        let lacks = (prot & PROT_READ != 0 && caps & NOMMU_MAP_READ == 0)
            || (prot & PROT_WRITE != 0 && caps & NOMMU_MAP_WRITE == 0)
            || (prot & PROT_EXEC != 0 && caps & NOMMU_MAP_EXEC == 0);
        if lacks {
            caps &= !NOMMU_MAP_DIRECT;
            if flags & MAP_TYPE == MAP_SHARED {
                return Err(Errno::EINVAL);
            }
        }
    }
    // 12 (READ_IMPLIES_EXEC has no observable effect).
    let (r, x) = (prot & PROT_READ != 0, prot & PROT_EXEC != 0);
    if noexec {
        if x {
            return Err(Errno::EPERM);
        }
    } else if r && x && caps & NOMMU_MAP_EXEC == 0 {
        caps &= !NOMMU_MAP_DIRECT;
    }
    Ok(caps)
}

/// The outcome of the §3.2 search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shareable {
    Found(RegionId),
    /// A copy request overlaps a shareable region inexactly.
    Mismatch,
    None,
}

impl Nommu {
    /// `find_shareable_region` (§3.2): among the shareable regions of
    /// `key` overlapping file pages `[pgoff, pgoff+pglen)`, in registry
    /// order `(start, id)`, the first that contains the range; an inexact
    /// overlap is a mismatch for a copy request and skipped by a direct one.
    pub fn find_shareable_region(
        &self,
        key: ObjectKey,
        pgoff: u64,
        pglen: u64,
        direct: bool,
    ) -> Shareable {
        let Some(maps) = self.files.get(&key) else {
            return Shareable::None;
        };
        let pgend = pgoff.saturating_add(pglen);
        let mut candidates: Vec<(u64, RegionId, u64, u64)> = maps
            .shareable
            .range(..(pgend, RegionId(0)))
            .filter_map(|&(rpgoff, id)| {
                let r = self.regions.get(id)?;
                if !is_shareable(r.flags) {
                    return None;
                }
                let rpglen = page_align(r.end - r.start).map_or(u64::MAX, |l| l / PAGE_SIZE);
                let rpgend = rpgoff.saturating_add(rpglen);
                (pgoff < rpgend).then_some((r.start, id, rpgoff, rpgend))
            })
            .collect();
        candidates.sort_unstable_by_key(|&(start, id, _, _)| (start, id));
        for (_, id, rpgoff, rpgend) in candidates {
            let contained = pgoff >= rpgoff && pgend <= rpgend;
            if contained {
                return Shareable::Found(id);
            }
            if !direct {
                return Shareable::Mismatch;
            }
        }
        Shareable::None
    }

    /// `add_nommu_region` for a file region, indexed under its object.
    pub fn add_file_region(&mut self, key: ObjectKey, region: Region) -> RegionId {
        let (pgoff, shareable) = (region.pgoff, is_shareable(region.flags));
        let id = self.regions.add(region);
        let maps = self.files.entry(key).or_default();
        maps.regions.insert(id);
        if shareable {
            maps.shareable.insert((pgoff, id));
        }
        id
    }

    /// `add_vma_to_mm` for a file mapping, indexed under its object.
    pub fn add_file_vma(&mut self, key: ObjectKey, mm: MmId, start: u64, end: u64, vma: Vma) {
        let vk = self.next_vma_key(start, end);
        if let Some(m) = self.mms.get_mut(&mm) {
            m.insert(vk, vma);
            self.files.entry(key).or_default().vmas.insert((mm, vk));
        }
    }
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `mmap` without `MAP_ANONYMOUS`: descriptor, steps 1–12, flags, then
    /// the set-up as an operation in the object's queue.
    pub(crate) fn mmap_file(
        &mut self,
        who: &Caller,
        args: &MmapArgs,
        pgoff: u64,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (_, file) = self.files.file_of(who.pid, args.fd)?;
        let ulong_max = self.nommu.tunables.ulong_max;
        // A direct mapping may lie outside the arena, so the task limit is
        // the clients' address space; a copy too big fails at allocation.
        let req = validate_mmap_request(args.len, args.flags, pgoff, ulong_max, ulong_max)?;
        let key = file.key;
        let info = self.info_of(key)?;
        let noexec = self
            .files
            .drivers
            .get(&key.driver)
            .is_some_and(|d| d.registration.noexec);
        let caps = validate_file_mapping(&info, file.access, noexec, args.prot, args.flags)?;
        let vm_flags =
            determine_vm_flags(MappingKind::File, args.prot, args.flags, caps, who.ptraced);
        let op = self.object_op(
            who,
            key,
            OpKind::Mmap(MmapOp {
                client: who.client,
                pid: who.pid,
                mm: who.mm,
                len: req.len,
                pgoff: req.pgoff,
                flags: args.flags,
                vm_flags,
                caps,
                shared: args.flags & MAP_TYPE == MAP_SHARED,
                io_memory: info.io_memory,
                state: MmapState::Start,
                reuse: None,
                addr: None,
                copy: None,
            }),
        );
        Ok(self.submit_op(op, fx))
    }

    /// Whether the address space is gone, holds `max_map_count` mappings
    /// or may hold no more as far as the home is concerned.
    fn mm_full(&self, mm: MmId) -> bool {
        self.nommu
            .mms
            .get(&mm)
            .is_none_or(|m| m.map_count() >= self.nommu.tunables.max_map_count)
            || !self.memory.may_add_mapping(mm.0)
    }

    pub(crate) fn mmap_step(&mut self, o: &mut MmapOp, key: ObjectKey, input: Input) -> Step {
        let reply = match (o.state, input) {
            (MmapState::Start, Input::Start) => return self.mmap_start(o, key),
            (_, Input::Reply(reply)) => reply,
            (_, Input::Start) => return Step::Done(Err(Errno::EIO)),
        };
        match (o.state, reply) {
            (MmapState::UnmappedArea, DriverReply::Address(addr)) => {
                if !self.nommu.direct_range_ok(key.driver, addr, o.len) {
                    return Step::Done(Err(Errno::EIO));
                }
                o.addr = Some(addr);
                self.mmap_setup(o, key)
            }
            (MmapState::UnmappedArea, DriverReply::Error(Errno::ENOSYS)) => {
                // "Copy instead": only a private request still has COPY.
                if o.caps & NOMMU_MAP_COPY == 0 {
                    return Step::Done(Err(Errno::ENODEV));
                }
                o.caps &= !NOMMU_MAP_DIRECT;
                self.mmap_setup(o, key)
            }
            (MmapState::ApproveReuse | MmapState::ApproveNew, DriverReply::Done) => {
                Step::Done(self.mmap_finish(o, key))
            }
            (MmapState::ApproveReuse, DriverReply::Error(Errno::ENOSYS)) => {
                // The reuse path has no copy fallback (§3.2).
                Step::Done(Err(Errno::ENODEV))
            }
            (MmapState::ApproveNew, DriverReply::Error(Errno::ENOSYS)) => {
                if o.shared {
                    return Step::Done(Err(Errno::ENODEV));
                }
                o.caps &= !NOMMU_MAP_DIRECT;
                o.addr = None;
                self.mmap_copy(o, key)
            }
            (MmapState::ReadCopy, DriverReply::Count(n)) => {
                let Some((start, _, _)) = o.copy else {
                    return Step::Done(Err(Errno::EIO));
                };
                if n > o.len {
                    return Step::Done(Err(Errno::EIO));
                }
                // Whatever the read did not deliver is zero (§4.3).
                if n < o.len {
                    self.memory.fill(start + n, o.len - n, 0);
                }
                Step::Done(self.mmap_finish(o, key))
            }
            (_, DriverReply::Error(e)) => Step::Done(Err(driver_errno(e))),
            _ => Step::Done(Err(Errno::EIO)),
        }
    }

    /// The object is ours: mode changes, then the §3 reuse search, then
    /// `get_unmapped_area` for a shareable direct request.
    fn mmap_start(&mut self, o: &mut MmapOp, key: ObjectKey) -> Step {
        if self.exclusive(key) {
            if o.shared {
                return Step::Done(Err(Errno::EBUSY));
            }
            o.caps &= !NOMMU_MAP_DIRECT;
        }
        if self.mm_full(o.mm) {
            return Step::Done(Err(Errno::ENOMEM));
        }
        if is_shareable(o.vm_flags) {
            let direct = o.caps & NOMMU_MAP_DIRECT != 0;
            match self
                .nommu
                .find_shareable_region(key, o.pgoff, o.len / PAGE_SIZE, direct)
            {
                Shareable::Mismatch => return Step::Done(Err(Errno::EINVAL)),
                Shareable::Found(id) => {
                    let Some(r) = self.nommu.regions.get_mut(id) else {
                        return Step::Done(Err(Errno::EIO));
                    };
                    r.usage += 1;
                    o.reuse = Some(id);
                    if is_copy(r.flags) {
                        // A copy is reused silently.
                        return Step::Done(self.mmap_finish(o, key));
                    }
                    let start = r.start + (o.pgoff - r.pgoff) * PAGE_SIZE;
                    o.state = MmapState::ApproveReuse;
                    return Step::Send(DriverRequest::Mmap {
                        object: key.object,
                        start,
                        len: o.len,
                        pgoff: o.pgoff,
                        vm_flags: o.vm_flags as u32,
                    });
                }
                Shareable::None => {}
            }
            if o.caps & NOMMU_MAP_DIRECT != 0 {
                o.state = MmapState::UnmappedArea;
                return Step::Send(DriverRequest::GetUnmappedArea {
                    object: key.object,
                    len: o.len,
                    pgoff: o.pgoff,
                    flags: o.flags,
                });
            }
        }
        self.mmap_setup(o, key)
    }

    /// `do_mmap_shared` / `do_mmap_private`: the driver approves a direct
    /// mapping, or the range is copied.
    fn mmap_setup(&mut self, o: &mut MmapOp, key: ObjectKey) -> Step {
        let direct_at = if o.caps & NOMMU_MAP_DIRECT != 0 {
            o.addr
        } else {
            None
        };
        match direct_at {
            Some(start) => {
                o.state = MmapState::ApproveNew;
                Step::Send(DriverRequest::Mmap {
                    object: key.object,
                    start,
                    len: o.len,
                    pgoff: o.pgoff,
                    vm_flags: o.vm_flags as u32,
                })
            }
            // A shared mapping is always direct.
            None if o.shared => Step::Done(Err(Errno::ENODEV)),
            None => self.mmap_copy(o, key),
        }
    }

    /// The private copy: allocate (§4.1), then read the file into it.
    fn mmap_copy(&mut self, o: &mut MmapOp, key: ObjectKey) -> Step {
        // The read's position is a signed file offset.
        let offset = match o.pgoff.checked_mul(PAGE_SIZE) {
            Some(off) if off.checked_add(o.len).is_some_and(|e| e <= MAX_OFFSET) => off,
            _ => return Step::Done(Err(Errno::EINVAL)),
        };
        // Charged to the caller as it is now (this step may run after a
        // driver's answer, while serving someone else).
        let uid = self.procs.procs.get(&o.pid).map_or(0, |p| p.uid);
        self.nommu.charges.actor = Some((o.mm, uid));
        if let Err(e) = self.nommu.charges.may_map(o.len / PAGE_SIZE) {
            return Step::Done(Err(e));
        }
        let Some((first, kept)) = self
            .nommu
            .alloc_pages(o.len / PAGE_SIZE, self.nommu.tunables.nr_trim_pages)
        else {
            return Step::Done(Err(Errno::ENOMEM));
        };
        let start = self.nommu.addr_of(first);
        self.nommu.mmap_copy_pages += kept;
        let payer = self.nommu.charges.payer();
        self.nommu.charges.charge_copy(payer, kept);
        o.copy = Some((start, kept, payer));
        o.state = MmapState::ReadCopy;
        Step::Send(DriverRequest::Read {
            object: key.object,
            offset,
            len: o.len,
            dest: start,
        })
    }

    /// Register the region (unless reused) and add the mapping to the
    /// caller's address space.
    fn mmap_finish(&mut self, o: &mut MmapOp, key: ObjectKey) -> Result<Reply, Errno> {
        let live = self
            .procs
            .procs
            .get(&o.pid)
            .is_some_and(|p| p.mm == o.mm && p.state == ProcState::Live)
            && self
                .procs
                .conns
                .get(&o.client)
                .is_some_and(|c| c.pid == Some(o.pid));
        if !live {
            return Err(Errno::ESRCH);
        }
        if self.mm_full(o.mm) {
            return Err(Errno::ENOMEM);
        }
        let backing = self
            .files
            .objects
            .get(&key)
            .map(|obj| obj.backing.clone())
            .ok_or(Errno::EIO)?;
        let io = if o.io_memory { VM_IO | VM_PFNMAP } else { 0 };
        let (region, start, flags) = if let Some(id) = o.reuse {
            let r = self.nommu.regions.get(id).ok_or(Errno::EIO)?;
            let start = r.start + (o.pgoff - r.pgoff) * PAGE_SIZE;
            let flags = if is_copy(r.flags) {
                o.vm_flags | VM_MAPPED_COPY
            } else {
                o.vm_flags | io
            };
            // The usage the search took becomes the mapping's.
            o.reuse = None;
            (id, start, flags)
        } else {
            let (start, top, flags, payer) = match (o.copy.take(), o.addr) {
                (Some((start, kept, payer)), _) => (
                    start,
                    start + kept * PAGE_SIZE,
                    o.vm_flags | VM_MAPPED_COPY,
                    payer,
                ),
                (None, Some(addr)) => (addr, addr + o.len, o.vm_flags | io, None),
                (None, None) => return Err(Errno::EIO),
            };
            let id = self.nommu.add_file_region(
                key,
                Region {
                    start,
                    end: start + o.len,
                    top,
                    pgoff: o.pgoff,
                    flags,
                    backing: Some(backing.clone()),
                    usage: 1,
                    icache_flushed: false,
                    payer,
                },
            );
            self.files.get_object(key);
            (id, start, flags)
        };
        self.nommu.add_file_vma(
            key,
            o.mm,
            start,
            start + o.len,
            Vma {
                region,
                pgoff: o.pgoff,
                flags,
                backing: Some(backing),
            },
        );
        self.files.get_object(key);
        if let Some(r) = self.nommu.regions.get_mut(region) {
            // Flushed once, by the first executable mapping.
            if flags & VM_EXEC != 0 {
                r.icache_flushed = true;
            }
        }
        Ok(Reply::Mapped { addr: start })
    }

    /// Give back what a failed mapping held.
    pub(crate) fn mmap_undo(&mut self, o: &mut MmapOp) {
        if let Some(id) = o.reuse.take() {
            self.nommu.put_region(id);
        }
        if let Some((start, kept, payer)) = o.copy.take() {
            self.nommu
                .free_page_series(start, start + kept * PAGE_SIZE, payer);
        }
    }

    /// Whether an operation may still create or reuse a direct mapping
    /// (`BeginExclusive` must wait until it has not).
    pub(crate) fn op_may_map_direct(&self, id: OpId) -> bool {
        match self.ops.live.get(&id).map(|op| &op.kind) {
            Some(OpKind::Mmap(m)) => {
                m.caps & NOMMU_MAP_DIRECT != 0
                    || m.reuse
                        .and_then(|r| self.nommu.regions.get(r))
                        .is_some_and(|r| !is_copy(r.flags))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::linux::MAP_PRIVATE;

    const RO: Access = Access {
        read: true,
        write: false,
    };
    const RW: Access = Access {
        read: true,
        write: true,
    };
    const ALL: u8 = DriverOps::MMAP | DriverOps::READ | DriverOps::GET_UNMAPPED_AREA;

    fn info(kind: ObjectKind, caps: Option<u8>, ops: u8) -> ObjectInfo {
        ObjectInfo {
            object: 1,
            ino: 1,
            kind,
            mode: 0o644,
            size: 0,
            caps,
            ops: DriverOps(ops),
            io_memory: false,
        }
    }

    fn v(i: &ObjectInfo, a: Access, prot: u32, flags: u32) -> Result<Capabilities, Errno> {
        validate_file_mapping(i, a, false, prot, flags)
    }

    const R: u32 = PROT_READ;
    const RWP: u32 = PROT_READ | PROT_WRITE;
    const RX: u32 = PROT_READ | PROT_EXEC;
    const D: u8 = NOMMU_MAP_DIRECT as u8;
    const C: u8 = NOMMU_MAP_COPY as u8;
    const CR: u8 = NOMMU_MAP_READ as u8;
    const CW: u8 = NOMMU_MAP_WRITE as u8;
    const CX: u8 = NOMMU_MAP_EXEC as u8;

    #[test]
    fn steps_6_to_12_in_order() {
        let ops = ALL;
        let file = info(ObjectKind::RegularFile, None, ops);
        // Vector 10: no mmap method.
        let pipe = info(ObjectKind::Fifo, None, DriverOps::READ);
        assert_eq!(v(&pipe, RO, R, MAP_PRIVATE), Err(Errno::ENODEV));
        // Vector 11: a socket with an mmap method and no capabilities.
        let sock = info(ObjectKind::Socket, None, ops);
        assert_eq!(v(&sock, RO, R, MAP_PRIVATE), Err(Errno::EINVAL));
        // Vector 12: O_WRONLY.
        let wo = Access {
            read: false,
            write: true,
        };
        assert_eq!(v(&file, wo, R, MAP_PRIVATE), Err(Errno::EACCES));
        // Vector 14: copy-only file shared.
        assert_eq!(v(&file, RO, R, MAP_SHARED), Err(Errno::ENODEV));
        assert_eq!(
            v(&file, RO, R, MAP_PRIVATE),
            Ok(NOMMU_MAP_COPY as Capabilities)
        );
        // Vector 13: shared RW on a read-only descriptor (before ENODEV).
        assert_eq!(v(&file, RO, RWP, MAP_SHARED), Err(Errno::EACCES));
        // Vectors 15–17: chardev defaults.
        let fb = info(ObjectKind::CharDevice, None, ops);
        assert_eq!(v(&fb, RW, R, MAP_PRIVATE), Err(Errno::ENODEV));
        assert_eq!(v(&fb, RW, RX, MAP_SHARED), Err(Errno::EINVAL));
        assert!(v(&fb, RW, RWP, MAP_SHARED).is_ok());
        // Vector 18: noexec.
        assert_eq!(
            validate_file_mapping(&file, RO, true, RX, MAP_PRIVATE),
            Err(Errno::EPERM)
        );
        // Vector 20: no get_unmapped_area → no DIRECT → shared ENODEV.
        let tst = info(
            ObjectKind::CharDevice,
            Some(D | C | CR | CW),
            DriverOps::MMAP | DriverOps::READ,
        );
        assert_eq!(v(&tst, RW, R, MAP_SHARED), Err(Errno::ENODEV));
        // Vector 21: no read method → no COPY → private ENODEV.
        let tst = info(
            ObjectKind::CharDevice,
            Some(D | C | CR),
            DriverOps::MMAP | DriverOps::GET_UNMAPPED_AREA,
        );
        assert_eq!(v(&tst, RW, R, MAP_PRIVATE), Err(Errno::ENODEV));
        // Vector 25: shared RW without WRITE.
        let tst = info(ObjectKind::CharDevice, Some(D | C | CR), ops);
        assert_eq!(v(&tst, RW, RWP, MAP_SHARED), Err(Errno::EINVAL));
        // Vector 31: no COPY, private.
        let tst = info(ObjectKind::CharDevice, Some(D | CR), ops);
        assert_eq!(v(&tst, RW, R, MAP_PRIVATE), Err(Errno::ENODEV));
        // Vector 32: no EXEC → RX private is a copy.
        let tst = info(ObjectKind::CharDevice, Some(D | C | CR), ops);
        let caps = v(&tst, RW, RX, MAP_PRIVATE).unwrap();
        assert_eq!(caps & NOMMU_MAP_DIRECT, 0);
        // Private RW is never direct.
        let ram = info(ObjectKind::MemoryFile, Some(D | C | CR | CW | CX), ops);
        assert_eq!(v(&ram, RW, RWP, MAP_PRIVATE).unwrap() & NOMMU_MAP_DIRECT, 0);
        // Shared drops COPY.
        assert_eq!(v(&ram, RW, RWP, MAP_SHARED).unwrap() & NOMMU_MAP_COPY, 0);
        // A directory (no declaration) with an mmap method.
        let dir = info(ObjectKind::Directory, None, ops);
        assert_eq!(v(&dir, RO, R, MAP_PRIVATE), Err(Errno::EINVAL));
    }
}
