//! SysV shared memory (spec §7.1–§7.4) with the no-MMU semantics: a
//! segment's memory is allocated at `shmget` as one contiguous, zeroed run
//! of exactly `pages(size)` pages (counted as `Shmem`, never `MmapCopy`),
//! and every attach is a `MAP_SHARED` mapping of that run, so every attach
//! of a segment, in any process, returns the same address (§7.2 server
//! decision: the attach works as the document describes, not as current
//! Linux, which fails it `ENODEV`).
//!
//! Attachments are ordinary mappings whose backing object names the
//! pseudo-driver [`SHM_DRIVER`] and the shm id; they share one region per
//! segment (direct, not a copy: removing it frees nothing — the segment
//! owns the pages). `/proc/<pid>/maps` shows them `rw-S 00000000 00:00
//! <shmid>  /SYSV<key> (deleted)`: device 00:00 is this server's choice
//! (Linux shows its internal shm mount's anonymous device, whose number
//! depends on boot order).
//!
//! `shm_nattch` is the number of attachment mappings; it drops whenever one
//! goes away — `shmdt`, `munmap` of it, exit or exec — in
//! [`Nommu::shm_vma_gone`], which also records `shm_dtime` and `shm_lpid`
//! (the process whose call or exit removed it, as Linux's `shm_close`).
//! Times are seconds of the server's clock at the last tick. A segment marked for removal (`SHM_DEST`) is
//! destroyed, and its pages freed, when the count reaches 0.
//!
//! `SHM_LOCK`/`SHM_UNLOCK` only set and clear the `SHM_LOCKED` mode bit
//! (`shmctl_do_lock`): the pages are the arena's and never swap.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt::Write;

use protocol::linux::{
    IPC_CREAT, IPC_EXCL, IPC_PRIVATE, SHM_DEST, SHM_EXEC, SHM_LOCKED, SHM_RDONLY, SHM_REMAP,
    SHM_RND,
};
use protocol::{Errno, Reply, ShmStat, PAGE_SIZE};

use crate::mm::{MmId, Vma};
use crate::nommu::{page_align, Nommu};
use crate::page_alloc::order_for;
use crate::region::{BackingObject, DriverId, ObjectKey, Region, RegionId};
use crate::vm_flags::{
    VM_EXEC, VM_MAYEXEC, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE,
};
use crate::{Caller, MemoryServer, PhysicalMemory};

/// The pseudo-driver attachment mappings name (never a registered driver:
/// driver numbers count up from 0 and never reach it).
pub const SHM_DRIVER: DriverId = DriverId(u32::MAX);

/// `SHMMNI`: most segments.
pub const SHMMNI: usize = 4096;

/// `S_IRWXUGO`.
const PERM_BITS: u32 = 0o777;

/// One segment (`struct shmid_kernel`).
#[derive(Clone, Debug)]
pub struct Segment {
    /// What `shmctl(IPC_STAT)` reports, kept as it changes: the key is
    /// `IPC_PRIVATE` once removal is pending, the mode the permission bits
    /// plus `SHM_DEST` and `SHM_LOCKED`.
    pub stat: ShmStat,
    /// First byte of the segment's pages.
    pub addr: u64,
    pub pages: u64,
    /// The region attachments share while there is one.
    pub region: Option<RegionId>,
    pub object: Arc<BackingObject>,
}

/// Every segment.
#[derive(Default, Debug)]
pub struct ShmTable {
    pub segs: BTreeMap<i32, Segment>,
    /// Public keys (not `IPC_PRIVATE`, not removed) to ids.
    pub by_key: BTreeMap<i32, i32>,
    next_id: i32,
    /// Pages all segments hold (`shm_tot`).
    pub pages: u64,
    /// The process whose call (or exit) is running: a detach records it
    /// as `shm_lpid`, whatever path removed the attachment.
    pub actor: u32,
    /// The server's clock at the last tick, in seconds.
    pub now_s: u64,
}

/// `ipcperms`: may a caller with `uid`/`gid` have the `want` bits (r=4,
/// w=2, x=1) of a segment? Root (`CAP_IPC_OWNER`) always may.
fn ipcperms(seg: &Segment, uid: u32, gid: u32, want: u32) -> bool {
    let granted = if uid == seg.stat.uid || uid == seg.stat.cuid {
        seg.stat.mode >> 6
    } else if gid == seg.stat.gid || gid == seg.stat.cgid {
        seg.stat.mode >> 3
    } else {
        seg.stat.mode
    };
    uid == 0 || want & !granted & 7 == 0
}

/// Requested bits of a `shmget` flag word (`(flg>>6 | flg>>3 | flg) & 7`).
fn requested(flags: i32) -> u32 {
    let f = flags as u32;
    ((f >> 6) | (f >> 3) | f) & 7
}

impl ShmTable {
    fn new_id(&mut self) -> i32 {
        loop {
            let id = self.next_id;
            self.next_id = if id == i32::MAX { 0 } else { id + 1 };
            if !self.segs.contains_key(&id) {
                return id;
            }
        }
    }
}

impl Nommu {
    /// An attachment mapping of segment `id` went away (any path): one
    /// attachment fewer; a removed segment with none left is destroyed.
    pub fn shm_vma_gone(&mut self, id: u64) {
        let Ok(id) = i32::try_from(id) else {
            return;
        };
        let destroy = match self.shm.segs.get_mut(&id) {
            Some(seg) => {
                seg.stat.nattch = seg.stat.nattch.saturating_sub(1);
                seg.stat.dtime = self.shm.now_s;
                seg.stat.lpid = self.shm.actor;
                seg.stat.nattch == 0 && seg.stat.mode & SHM_DEST != 0
            }
            None => false,
        };
        if destroy {
            self.shm_destroy(id);
        }
    }

    /// `shm_destroy`: the segment goes and its pages are freed.
    fn shm_destroy(&mut self, id: i32) {
        if let Some(seg) = self.shm.segs.remove(&id) {
            if self.shm.by_key.get(&seg.stat.key) == Some(&id) {
                self.shm.by_key.remove(&seg.stat.key);
            }
            if self.in_arena(seg.addr, seg.addr + seg.pages * PAGE_SIZE) {
                let first = self.page_of(seg.addr);
                self.pages.free_range(first, seg.pages as u32);
            }
            self.shm.pages = self.shm.pages.saturating_sub(seg.pages);
            self.charges.uncharge_segment(seg.stat.cuid, seg.pages);
        }
    }
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// Seconds on the server's clock (the last tick).
    fn shm_now(&self) -> u64 {
        self.nommu.shm.now_s
    }

    /// `shmget(key, size, shmflg)` (spec §7.1).
    pub(crate) fn shmget(
        &mut self,
        who: &Caller,
        key: i32,
        size: u64,
        flags: i32,
    ) -> Result<Reply, Errno> {
        if key != IPC_PRIVATE {
            match self.nommu.shm.by_key.get(&key).copied() {
                None if flags & IPC_CREAT == 0 => return Err(Errno::ENOENT),
                None => {}
                Some(_) if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 => {
                    return Err(Errno::EEXIST)
                }
                Some(id) => {
                    let seg = self.nommu.shm.segs.get(&id).ok_or(Errno::EINVAL)?;
                    // shm_more_checks comes before the permission check.
                    if seg.stat.size < size {
                        return Err(Errno::EINVAL);
                    }
                    if !ipcperms(seg, who.uid, who.gid, requested(flags)) {
                        return Err(Errno::EACCES);
                    }
                    return Ok(Reply::Value(i64::from(id)));
                }
            }
        }
        self.shm_newseg(who, key, size, flags)
    }

    /// `newseg`: a new segment with its memory.
    fn shm_newseg(
        &mut self,
        who: &Caller,
        key: i32,
        size: u64,
        flags: i32,
    ) -> Result<Reply, Errno> {
        let ulong_max = self.nommu.tunables.ulong_max;
        let shmmax = ulong_max.saturating_sub(1 << 24);
        if size < 1 || size > shmmax {
            return Err(Errno::EINVAL);
        }
        let len = match page_align(size) {
            Some(l) if l != 0 && l <= ulong_max => l,
            _ => return Err(Errno::ENOSPC),
        };
        let pages = len / PAGE_SIZE;
        // shmall: ULONG_MAX − 2^24 pages by default; the arena bounds it
        // first.
        match self.nommu.shm.pages.checked_add(pages) {
            Some(t) if t <= shmmax => {}
            _ => return Err(Errno::ENOSPC),
        }
        // ramfs_nommu_expand_for_mapping: one contiguous run.
        if order_for(pages) > self.nommu.pages.max_order() {
            return Err(Errno::EFBIG);
        }
        if self.nommu.shm.segs.len() >= SHMMNI {
            return Err(Errno::ENOSPC);
        }
        self.nommu.charges.may_create_segment(who.uid, pages)?;
        let (first, kept) = self.nommu.alloc_pages(pages, 1).ok_or(Errno::ENOMEM)?;
        let addr = self.nommu.addr_of(first);
        if kept > pages {
            // nr_trim_pages 1 keeps exactly `pages`; be safe anyway.
            let extra = u32::try_from(kept - pages).unwrap_or(0);
            self.nommu.pages.free_range(first + pages as u32, extra);
        }
        self.memory.fill(addr, len, 0);
        self.nommu.shm.pages += pages;
        self.nommu.charges.charge_segment(who.uid, pages);
        let id = self.nommu.shm.new_id();
        let now = self.shm_now();
        let object = Arc::new(BackingObject {
            key: ObjectKey {
                driver: SHM_DRIVER,
                object: id as u64,
            },
            dev_major: 0,
            dev_minor: 0,
            inode: id as u64,
            path: format!("/SYSV{:08x} (deleted)", key as u32),
        });
        self.nommu.shm.segs.insert(
            id,
            Segment {
                stat: ShmStat {
                    key,
                    uid: who.uid,
                    gid: who.gid,
                    cuid: who.uid,
                    cgid: who.gid,
                    mode: (flags as u32) & PERM_BITS,
                    size,
                    atime: 0,
                    dtime: 0,
                    ctime: now,
                    cpid: who.pid,
                    lpid: 0,
                    nattch: 0,
                },
                addr,
                pages,
                region: None,
                object,
            },
        );
        if key != IPC_PRIVATE {
            self.nommu.shm.by_key.insert(key, id);
        }
        Ok(Reply::Value(i64::from(id)))
    }

    /// `shmat(shmid, shmaddr, shmflg)` (spec §7.2, in its order).
    pub(crate) fn shmat(
        &mut self,
        who: &Caller,
        shmid: i32,
        addr: u64,
        flags: i32,
    ) -> Result<Reply, Errno> {
        if shmid < 0 {
            return Err(Errno::EINVAL);
        }
        if addr != 0 {
            if !addr.is_multiple_of(PAGE_SIZE) {
                if flags & SHM_RND == 0 {
                    return Err(Errno::EINVAL);
                }
                if addr & !(PAGE_SIZE - 1) == 0 && flags & SHM_REMAP != 0 {
                    return Err(Errno::EINVAL);
                }
            }
        } else if flags & SHM_REMAP != 0 {
            return Err(Errno::EINVAL);
        }
        let (want, mut vm_flags) = if flags & SHM_RDONLY != 0 {
            (4, VM_READ | VM_MAYREAD | VM_MAYEXEC)
        } else {
            (
                6,
                VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC,
            )
        };
        let want = if flags & SHM_EXEC != 0 {
            vm_flags |= VM_EXEC;
            want | 1
        } else {
            want
        };
        vm_flags |= VM_SHARED | VM_MAYSHARE;
        let seg = self.nommu.shm.segs.get(&shmid).ok_or(Errno::EINVAL)?;
        if !ipcperms(seg, who.uid, who.gid, want) {
            return Err(Errno::EACCES);
        }
        // (A segment being destroyed would fail EIDRM here; destruction is
        // atomic in this server, so a destroyed id is simply unknown.)
        if addr != 0 {
            // MAP_FIXED on no-MMU.
            return Err(Errno::EINVAL);
        }
        let (start, len, object, region) = (
            seg.addr,
            seg.pages * PAGE_SIZE,
            seg.object.clone(),
            seg.region,
        );
        match self.nommu.mms.get(&who.mm) {
            Some(m)
                if m.map_count() < self.nommu.tunables.max_map_count
                    && self.memory.may_add_mapping(who.mm.0) => {}
            _ => return Err(Errno::ENOMEM),
        }
        let end = start + len;
        let region = match region.filter(|r| self.nommu.regions.get(*r).is_some()) {
            Some(r) => {
                if let Some(reg) = self.nommu.regions.get_mut(r) {
                    reg.usage += 1;
                }
                r
            }
            None => self.nommu.regions.add(Region {
                start,
                end,
                top: end,
                pgoff: 0,
                flags: vm_flags,
                backing: Some(object.clone()),
                usage: 1,
                icache_flushed: false,
                payer: None,
            }),
        };
        let key = self.nommu.next_vma_key(start, end);
        if let Some(m) = self.nommu.mms.get_mut(&who.mm) {
            m.insert(
                key,
                Vma {
                    region,
                    pgoff: 0,
                    flags: vm_flags,
                    backing: Some(object),
                },
            );
        }
        let now = self.shm_now();
        if let Some(seg) = self.nommu.shm.segs.get_mut(&shmid) {
            seg.region = Some(region);
            seg.stat.nattch += 1;
            seg.stat.atime = now;
            seg.stat.lpid = who.pid;
        }
        Ok(Reply::Mapped { addr: start })
    }

    /// `shmdt(shmaddr)` (spec §7.3): exactly one attachment.
    pub(crate) fn shmdt(&mut self, who: &Caller, addr: u64) -> Result<Reply, Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let mm_id: MmId = who.mm;
        let mut mm = self.nommu.mms.remove(&mm_id).ok_or(Errno::EINVAL)?;
        let found = mm.find_vma(addr).filter(|k| {
            k.start == addr
                && mm
                    .get(k)
                    .and_then(|v| v.backing.as_ref())
                    .is_some_and(|b| b.key.driver == SHM_DRIVER)
        });
        let result = match found {
            Some(key) => {
                // shm_vma_gone records dtime and lpid.
                self.nommu.shm.actor = who.pid;
                self.nommu.delete_vma(mm_id, &mut mm, &key);
                Ok(Reply::Done)
            }
            None => Err(Errno::EINVAL),
        };
        self.nommu.mms.insert(mm_id, mm);
        result
    }

    /// `shmctl(IPC_STAT)`: needs read permission.
    pub(crate) fn shm_stat(&self, who: &Caller, shmid: i32) -> Result<Reply, Errno> {
        let seg = self.nommu.shm.segs.get(&shmid).ok_or(Errno::EINVAL)?;
        if !ipcperms(seg, who.uid, who.gid, 4) {
            return Err(Errno::EACCES);
        }
        Ok(Reply::ShmStat(seg.stat))
    }

    /// `shmctl(IPC_SET)`: owner, creator or root (else `EPERM`) sets the
    /// owner and the permission bits.
    pub(crate) fn shm_set(
        &mut self,
        who: &Caller,
        shmid: i32,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<Reply, Errno> {
        let now = self.shm_now();
        let seg = self.nommu.shm.segs.get_mut(&shmid).ok_or(Errno::EINVAL)?;
        if who.uid != 0 && who.uid != seg.stat.uid && who.uid != seg.stat.cuid {
            return Err(Errno::EPERM);
        }
        seg.stat.uid = uid;
        seg.stat.gid = gid;
        seg.stat.mode = (seg.stat.mode & !PERM_BITS) | (mode & PERM_BITS);
        seg.stat.ctime = now;
        Ok(Reply::Done)
    }

    /// `shmctl(SHM_LOCK)` / `shmctl(SHM_UNLOCK)` (`shmctl_do_lock`): the
    /// owner, the creator or root (`CAP_IPC_LOCK`) sets or clears
    /// `SHM_LOCKED`, else `EPERM`; an unknown id is `EINVAL` (a segment
    /// being destroyed would be `EIDRM`; destruction is atomic here, so
    /// its id is simply unknown). A segment's pages never swap on no-MMU,
    /// so the bit is all there is to it; server decision: the lock is not
    /// counted against the caller's `RLIMIT_MEMLOCK`, which the server
    /// does not know (Linux refuses a non-root `SHM_LOCK` with a zero
    /// limit `EPERM`, and beyond the limit `ENOMEM`). `shm_ctime` stays.
    pub(crate) fn shm_lock(
        &mut self,
        who: &Caller,
        shmid: i32,
        lock: bool,
    ) -> Result<Reply, Errno> {
        let seg = self.nommu.shm.segs.get_mut(&shmid).ok_or(Errno::EINVAL)?;
        if who.uid != 0 && who.uid != seg.stat.uid && who.uid != seg.stat.cuid {
            return Err(Errno::EPERM);
        }
        if lock {
            seg.stat.mode |= SHM_LOCKED;
        } else {
            seg.stat.mode &= !SHM_LOCKED;
        }
        Ok(Reply::Done)
    }

    /// `shmctl(IPC_RMID)` (spec §7.4).
    pub(crate) fn shm_remove(&mut self, who: &Caller, shmid: i32) -> Result<Reply, Errno> {
        let seg = self.nommu.shm.segs.get_mut(&shmid).ok_or(Errno::EINVAL)?;
        if who.uid != 0 && who.uid != seg.stat.uid && who.uid != seg.stat.cuid {
            return Err(Errno::EPERM);
        }
        if seg.stat.nattch == 0 {
            self.nommu.shm_destroy(shmid);
        } else {
            let key = seg.stat.key;
            seg.stat.mode |= SHM_DEST;
            seg.stat.key = IPC_PRIVATE;
            if self.nommu.shm.by_key.get(&key) == Some(&shmid) {
                self.nommu.shm.by_key.remove(&key);
            }
        }
        Ok(Reply::Done)
    }
}

/// `/proc/sysvipc/shm` in Linux's format (`sysvipc_shm_proc_show`): the
/// size columns are 10 wide for 32-bit clients, 21 for 64-bit ones.
pub fn sysvipc_shm(table: &ShmTable, word_size: u32) -> String {
    let mut out = String::new();
    let w = if word_size == 4 { 10 } else { 21 };
    let _ = writeln!(
        out,
        "       key      shmid perms {:>w$}  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime {:>w$} {:>w$}",
        "size", "rss", "swap"
    );
    for (id, s) in &table.segs {
        let _ = writeln!(
            out,
            "{:10} {:10}  {:4o} {:>w$} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:>w$} {:>w$}",
            s.stat.key,
            id,
            s.stat.mode,
            s.stat.size,
            s.stat.cpid,
            s.stat.lpid,
            s.stat.nattch,
            s.stat.uid,
            s.stat.gid,
            s.stat.cuid,
            s.stat.cgid,
            s.stat.atime,
            s.stat.dtime,
            s.stat.ctime,
            s.pages * PAGE_SIZE,
            0
        );
    }
    out
}
