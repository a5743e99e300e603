//! A model-checked random walk: seeded sequences of mmap (good and bad
//! arguments), munmap (whole, head, tail, hole, bogus), clone with and
//! without `CLONE_VM`, claims, exits, disconnects, joins, sysctl writes and
//! /proc reads from several processes, each checked against a simple
//! reference model. After every step: the invariant checker, the counters,
//! the byte pattern of every live mapping (catches overlaps and stray
//! frees), and zero-fill of every new mapping. Also SysV segments
//! (shmget/shmat/shmdt/IPC_STAT/IPC_RMID, exec) and mremap (strict, or
//! with the moving extension) against the same model.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::rng::Rng;
use super::sim::*;
use crate::{ClientId, Config, Credentials, MemoryServer, PhysicalMemory};
use protocol::linux::*;
use protocol::{Errno, OffsetUnit, ProcView, Reply, Request, Sysctl};

mod mappings;
mod mremap;
mod processes;
mod shm;

#[derive(Clone, Copy, Debug)]
struct MMapping {
    start: u64,
    end: u64,
    top: u64,
    /// The region's end (mremap may leave the mapping shorter).
    rend: u64,
    pattern: u8,
}

/// A SysV segment.
#[derive(Clone, Debug)]
struct MSeg {
    key: i32,
    size: u64,
    pages: u64,
    /// Learnt at the first attach.
    addr: Option<u64>,
    uid: u32,
    mode: u32,
    nattch: u64,
    dest: bool,
}

#[derive(Default)]
struct MMm {
    /// Sorted by start; anonymous mappings never overlap.
    maps: Vec<MMapping>,
    /// SysV attachments: start, end, id.
    shm: Vec<(u64, u64, i32)>,
    users: u32,
}

struct MProc {
    mm: u64,
    uid: u32,
    host: bool,
    clients: Vec<u64>,
    pending_children: Vec<u64>,
    /// `Some(parent)` while waiting to be claimed.
    pending: Option<u32>,
}

struct Model {
    arena_pages: u64,
    max_order: u32,
    max_map_count: usize,
    max_pending: usize,
    allow_uninit: bool,
    nr_trim: u64,
    free: u64,
    procs: BTreeMap<u32, MProc>,
    mms: BTreeMap<u64, MMm>,
    tickets: BTreeMap<u64, u32>,
    /// Connected clients and the process each is bound to.
    clients: BTreeMap<u64, Option<u32>>,
    next_mm: u64,
    next_client: u64,
    next_pattern: u8,
    segs: BTreeMap<i32, MSeg>,
    shm_pages: u64,
    strict_mremap: bool,
}

impl Model {
    /// An attachment went away.
    fn shm_gone(&mut self, id: i32) {
        let seg = self.segs.get_mut(&id).unwrap();
        seg.nattch -= 1;
        if seg.nattch == 0 && seg.dest {
            let seg = self.segs.remove(&id).unwrap();
            self.free += seg.pages;
            self.shm_pages -= seg.pages;
        }
    }

    /// `ipcperms` with gid = uid (as the walk's processes have).
    fn shm_allowed(seg: &MSeg, uid: u32, want: u32) -> bool {
        let granted = if uid == seg.uid {
            seg.mode >> 6
        } else {
            seg.mode
        };
        uid == 0 || want & !granted & 7 == 0
    }

    fn new_mm(&mut self) -> u64 {
        self.next_mm += 1;
        self.mms.insert(
            self.next_mm,
            MMm {
                maps: Vec::new(),
                shm: Vec::new(),
                users: 1,
            },
        );
        self.next_mm
    }

    fn put_mm(&mut self, mm: u64) {
        let m = self.mms.get_mut(&mm).unwrap();
        m.users -= 1;
        if m.users == 0 {
            let m = self.mms.remove(&mm).unwrap();
            for map in m.maps {
                self.free += (map.top - map.start) / P;
            }
            for (_, _, id) in m.shm {
                self.shm_gone(id);
            }
        }
    }

    fn exit(&mut self, pid: u32) {
        let p = self.procs.remove(&pid).unwrap();
        for t in p.pending_children {
            let child = self.tickets.remove(&t).unwrap();
            let c = self.procs.remove(&child).unwrap();
            self.put_mm(c.mm);
        }
        for c in p.clients {
            self.clients.insert(c, None);
        }
        self.put_mm(p.mm);
    }

    fn live_pids(&self) -> Vec<u32> {
        self.procs
            .iter()
            .filter(|(_, p)| p.pending.is_none())
            .map(|(&pid, _)| pid)
            .collect()
    }

    fn pattern(&mut self) -> u8 {
        self.next_pattern = self.next_pattern % 250 + 1;
        self.next_pattern
    }

    /// Pages kept for an `n`-page request (spec §4.1), computed afresh.
    fn kept(&self, n: u64) -> u64 {
        let block = n.next_power_of_two();
        if self.nr_trim != 0 && block - n >= self.nr_trim {
            n
        } else {
            block
        }
    }
}

/// What the model says an mmap must do.
enum MmapExpect {
    Fail(Errno),
    /// Succeeds unless no free block of this order exists.
    Alloc {
        len: u64,
        order: u32,
    },
}

fn expect_mmap(
    m: &Model,
    mm: &MMm,
    len: u64,
    flags: u32,
    offset: u64,
    unit: OffsetUnit,
) -> MmapExpect {
    use MmapExpect::*;
    if unit == OffsetUnit::Bytes && !offset.is_multiple_of(P) {
        return Fail(Errno::EINVAL);
    }
    let pgoff = if unit == OffsetUnit::Bytes {
        offset / P
    } else {
        offset
    };
    if flags & MAP_ANONYMOUS == 0 {
        return Fail(Errno::EBADF);
    }
    if flags & MAP_FIXED != 0 {
        return Fail(Errno::EINVAL);
    }
    if !matches!(flags & 0xf, 1 | 2) {
        return Fail(Errno::EINVAL);
    }
    if len == 0 {
        return Fail(Errno::EINVAL);
    }
    let aligned = match len.checked_add(P - 1) {
        Some(x) => x / P * P,
        None => return Fail(Errno::ENOMEM),
    };
    if aligned > m.arena_pages * P {
        return Fail(Errno::ENOMEM);
    }
    if pgoff.checked_add(aligned / P).is_none() {
        return Fail(Errno::EOVERFLOW);
    }
    let pages = aligned / P;
    let order = pages.next_power_of_two().trailing_zeros();
    if order > m.max_order || mm.maps.len() + mm.shm.len() >= m.max_map_count {
        return Fail(Errno::ENOMEM);
    }
    Alloc {
        len: aligned,
        order,
    }
}

fn gen_mmap_args(r: &mut Rng, m: &Model) -> (u64, u32, u32, u64, OffsetUnit) {
    let max_block = (1u64 << m.max_order) * P;
    let len = match r.below(100) {
        0..=44 => (1 + r.below(8)) * P - r.below(2) * r.below(P),
        45..=64 => 1 + r.below(max_block),
        65..=69 => 0,
        70..=74 => u64::MAX - r.below(5000),
        75..=79 => m.arena_pages * P + 1 + r.below(P * 4),
        80..=84 => max_block + 1 + r.below(P),
        _ => 1 + r.below(3 * P),
    };
    let ty = if r.chance(88) {
        if r.chance(70) {
            MAP_PRIVATE
        } else {
            MAP_SHARED
        }
    } else {
        r.pick(&[0u32, MAP_SHARED_VALIDATE, 0xf]).unwrap()
    };
    let mut flags = ty;
    if r.chance(92) {
        flags |= MAP_ANONYMOUS;
    }
    for (bit, pct) in [
        (MAP_FIXED, 5),
        (MAP_UNINITIALIZED, 15),
        (MAP_FIXED_NOREPLACE, 5),
        (MAP_GROWSDOWN, 5),
        (MAP_LOCKED, 5),
        (MAP_POPULATE, 5),
    ] {
        if r.chance(pct) {
            flags |= bit;
        }
    }
    let prot = r.below(8) as u32;
    let (offset, unit) = match r.below(100) {
        0..=79 => (0, OffsetUnit::Bytes),
        80..=85 => (1 + r.below(P - 1) + P * r.below(4), OffsetUnit::Bytes),
        86..=90 => (P * r.below(100), OffsetUnit::Bytes),
        91..=95 => (r.below(1 << 20), OffsetUnit::Pages),
        _ => (u64::MAX - r.below(3000), OffsetUnit::Pages),
    };
    (len, prot, flags, offset, unit)
}

struct Walk {
    s: MemoryServer<SimMemory>,
    m: Model,
    r: Rng,
    steps: u64,
    /// How often each outcome happened, so a run proves it covered them.
    tally: BTreeMap<&'static str, u64>,
}

impl Walk {
    fn new(seed: u64, pages: u64, tweak: impl FnOnce(&mut Config)) -> Self {
        let s = server_with(pages, tweak);
        let c = s.config().clone();
        let m = Model {
            arena_pages: pages,
            max_order: c.max_order,
            max_map_count: c.max_map_count,
            max_pending: c.max_pending_children,
            allow_uninit: c.allow_uninitialized,
            nr_trim: u64::from(c.nr_trim_pages),
            free: pages,
            procs: BTreeMap::new(),
            mms: BTreeMap::new(),
            tickets: BTreeMap::new(),
            clients: BTreeMap::new(),
            next_mm: 0,
            next_client: 0,
            next_pattern: 0,
            segs: BTreeMap::new(),
            shm_pages: 0,
            strict_mremap: c.strict_mremap,
        };
        Self {
            s,
            m,
            r: Rng(seed),
            steps: 0,
            tally: BTreeMap::new(),
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.tally.entry(what).or_insert(0) += 1;
    }

    fn call(&mut self, client: u64, req: Request) -> Reply {
        self.s.handle_now(ClientId(client), req)
    }

    fn new_client(&mut self, uid: u32, host_pid: Option<u32>) -> u64 {
        self.m.next_client += 1;
        let c = self.m.next_client;
        self.s.connect(
            ClientId(c),
            Credentials {
                pid: host_pid,
                uid,
                gid: uid,
            },
        );
        self.m.clients.insert(c, None);
        c
    }

    /// A client bound to a random live process.
    fn some_caller(&mut self) -> Option<(u64, u32)> {
        let pid = self.r.pick(&self.m.live_pids())?;
        let clients = self.m.procs[&pid].clients.clone();
        Some((self.r.pick(&clients).unwrap(), pid))
    }

    fn step(&mut self) {
        self.steps += 1;
        let live = self.m.live_pids().len();
        match self.r.below(100) {
            0..=7 if live < 12 => self.op_new_process(),
            8..=13 => self.op_clone(),
            14..=18 => self.op_claim(),
            19..=20 => self.op_bogus_hello(),
            21..=23 => self.op_exit(),
            24..=26 => self.op_disconnect(),
            27..=56 => self.op_mmap(),
            57..=80 => self.op_munmap(),
            81..=84 => self.op_shm_other(),
            85..=86 => self.op_shmget(),
            87..=88 => self.op_mremap(),
            89..=92 => self.op_read_maps(),
            93..=94 => self.op_sysctl(),
            95 => self.op_unbound_request(),
            96 => self.op_exec(),
            97 => self.op_shmget(),
            98 => self.op_shm_other(),
            _ => self.op_mremap(),
        }
        self.verify();
    }

    fn verify(&mut self) {
        if let Err(e) = self.s.check_invariants() {
            panic!("step {}: {e}", self.steps);
        }
        let st = self.s.stats();
        assert_eq!(st.free_pages, self.m.free, "step {}", self.steps);
        assert_eq!(
            st.mmap_copy_pages,
            self.m.arena_pages - self.m.free - self.m.shm_pages
        );
        assert_eq!(st.processes, self.m.procs.len());
        let anon: usize = self.m.mms.values().map(|m| m.maps.len()).sum();
        let attached: usize = self.m.mms.values().map(|m| m.shm.len()).sum();
        assert_eq!(st.vmas, anon + attached);
        let segs_mapped = self.m.segs.values().filter(|s| s.nattch > 0).count();
        assert_eq!(st.regions, anon + segs_mapped);
        for (id, seg) in &self.m.segs {
            let n = self
                .m
                .mms
                .values()
                .flat_map(|m| m.shm.iter())
                .filter(|a| a.2 == *id)
                .count();
            assert_eq!(seg.nattch, n as u64, "model nattch of {id}");
        }
        for mm in self.m.mms.values() {
            for map in &mm.maps {
                let page = [map.pattern; P as usize];
                let bytes = self.s.memory().slice(map.start, map.end - map.start);
                for chunk in bytes.chunks(P as usize) {
                    assert!(
                        chunk == &page[..chunk.len()],
                        "step {}: {map:?} overwritten",
                        self.steps
                    );
                }
            }
        }
    }
}

/// The model's munmap (spec §5.1, anonymous rules); updates the model on
/// success.
fn model_munmap(m: &mut Model, mm_id: u64, addr: u64, len: u64) -> Result<&'static str, Errno> {
    let len = match len.checked_add(P - 1) {
        Some(x) => x / P * P,
        None => return Err(Errno::EINVAL),
    };
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
    if let Some(r) = model_munmap_shm(m, mm_id, addr, end) {
        return r;
    }
    let max = m.max_map_count;
    let mm = m.mms.get_mut(&mm_id).unwrap();
    let i = mm
        .maps
        .iter()
        .position(|x| x.start <= addr && addr < x.end)
        .ok_or(Errno::EINVAL)?;
    let map = mm.maps[i];
    let freed;
    let kind;
    if addr == map.start && end == map.end {
        mm.maps.remove(i);
        freed = map.top - map.start;
        kind = "munmap whole";
    } else {
        if end > map.end || !addr.is_multiple_of(P) {
            return Err(Errno::EINVAL);
        }
        if addr == map.start {
            mm.maps[i].start = end;
            freed = end - addr;
            kind = "munmap head";
        } else if end == map.end {
            mm.maps[i].end = addr;
            mm.maps[i].top = addr;
            mm.maps[i].rend = addr;
            freed = map.top - addr;
            kind = "munmap tail";
        } else {
            if mm.maps.len() + mm.shm.len() >= max {
                return Err(Errno::ENOMEM);
            }
            mm.maps[i].end = addr;
            mm.maps[i].top = addr;
            mm.maps[i].rend = addr;
            mm.maps.insert(i + 1, MMapping { start: end, ..map });
            freed = end - addr;
            kind = "munmap hole";
        }
    }
    m.free += freed / P;
    Ok(kind)
}

/// munmap when `addr` lies in a SysV attachment: the file-mapping walk
/// (from that mapping on, in address order, the first one ending exactly
/// at `end` goes; the start must be the attachment's).
fn model_munmap_shm(
    m: &mut Model,
    mm_id: u64,
    addr: u64,
    end: u64,
) -> Option<Result<&'static str, Errno>> {
    let mm = m.mms.get_mut(&mm_id).unwrap();
    let att = mm
        .shm
        .iter()
        .filter(|a| a.0 <= addr && addr < a.1)
        .min_by_key(|a| (a.0, a.1))
        .copied()?;
    if addr != att.0 {
        return Some(Err(Errno::EINVAL));
    }
    // Every mapping from the attachment on, in (start, end) order.
    let mut later: Vec<(u64, u64, Option<usize>)> = mm
        .maps
        .iter()
        .enumerate()
        .map(|(i, x)| (x.start, x.end, Some(i)))
        .chain(mm.shm.iter().map(|a| (a.0, a.1, None)))
        .filter(|x| (x.0, x.1) >= (att.0, att.1))
        .collect();
    later.sort_by_key(|x| (x.0, x.1));
    let Some(hit) = later.into_iter().find(|x| x.1 == end) else {
        return Some(Err(Errno::EINVAL));
    };
    Some(Ok(match hit.2 {
        Some(i) => {
            let map = mm.maps.remove(i);
            m.free += (map.top - map.start) / P;
            "munmap anon after an attachment"
        }
        None => {
            let j = mm
                .shm
                .iter()
                .position(|a| (a.0, a.1) == (hit.0, hit.1))
                .unwrap();
            let (_, _, id) = mm.shm.remove(j);
            m.shm_gone(id);
            "munmap attachment"
        }
    }))
}

/// Requested bits of a `shmget` flag word.
fn requested(flags: i32) -> u32 {
    let f = flags as u32;
    ((f >> 6) | (f >> 3) | f) & 7
}

fn run(seed: u64, steps: u64, pages: u64, tweak: impl FnOnce(&mut Config)) {
    let mut w = Walk::new(seed, pages, tweak);
    for _ in 0..steps {
        w.step();
    }
    // Shown with --nocapture.
    extern crate std;
    std::println!("seed {seed}: {:?}", w.tally);
    // Everyone leaves: every page comes back.
    let clients: Vec<u64> = w.m.clients.keys().copied().collect();
    for c in clients {
        w.s.disconnect(ClientId(c));
    }
    w.s.check_invariants().unwrap();
    let st = w.s.stats();
    // Segments not removed outlive every process (spec §7.4); removed
    // ones went with their last attacher.
    let kept: u64 = w.m.segs.values().filter(|s| !s.dest).map(|s| s.pages).sum();
    assert_eq!(
        (st.free_pages, st.processes, st.regions),
        (pages - kept, 0, 0)
    );
    if steps >= 3000 {
        for what in [
            "mmap ok",
            "mmap refused",
            "mmap enomem",
            "munmap whole",
            "munmap head",
            "munmap tail",
            "munmap hole",
            "munmap refused",
            "clone claimed",
            "exit of a shared address space",
            "exit releasing unclaimed children",
            "shmget created",
            "shmat ok",
            "mremap in place",
            "mremap refused",
        ] {
            assert!(
                w.tally.get(what).copied().unwrap_or(0) >= 5,
                "seed {seed} rarely hit {what:?}"
            );
        }
    }
}

#[test]
fn random_walk_default_trimming() {
    run(1, 3000, 512, |c| c.max_order = 6);
}

#[test]
fn random_walk_no_trimming_few_mappings() {
    run(2, 3000, 300, |c| {
        c.max_order = 5;
        c.nr_trim_pages = 0;
        c.max_map_count = 6;
    });
}

#[test]
fn random_walk_trim_four_uninitialized_allowed() {
    run(3, 3000, 256, |c| {
        c.max_order = 8;
        c.nr_trim_pages = 4;
        c.allow_uninitialized = true;
        c.max_pending_children = 3;
    });
}

#[test]
fn random_walk_small_arena() {
    run(4, 3000, 128, |c| {
        c.max_order = 7;
        c.nr_trim_pages = 2;
        c.max_map_count = 10;
    });
}

#[test]
fn random_walk_strict_mremap() {
    run(21, 3000, 512, |c| {
        c.max_order = 6;
        c.strict_mremap = true;
    });
}

/// The same walk under Linux's buddy placement (the others run the
/// default, grouped one).
#[test]
fn random_walk_linux_placement() {
    run(22, 3000, 512, |c| {
        c.max_order = 6;
        c.placement = crate::Placement::Linux;
    });
}

#[test]
fn random_walk_more_seeds() {
    for seed in 10..16 {
        run(seed, 800, 200, |c| c.max_order = 6);
    }
}
