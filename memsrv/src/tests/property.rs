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

    fn op_new_process(&mut self) {
        let uid = if self.r.chance(70) { 0 } else { 1000 };
        let host = if self.r.chance(25) {
            Some(900_000 + self.r.below(3) as u32)
        } else {
            None
        };
        // Joins need a matching uid; host processes here are all root.
        let uid = if host.is_some() { 0 } else { uid };
        let c = self.new_client(uid, host);
        let reply = self.call(c, Request::Hello { ticket: None });
        let Reply::Hello { pid, .. } = reply else {
            panic!("hello failed: {reply:?}");
        };
        match host {
            Some(hp) => {
                assert_eq!(pid, hp);
                if let Some(p) = self.m.procs.get_mut(&hp) {
                    assert!(p.host && p.pending.is_none());
                    p.clients.push(c);
                    self.count("host pid joined");
                } else {
                    self.add_proc(pid, uid, true, c);
                }
            }
            None => {
                assert!(!self.m.procs.contains_key(&pid), "pid {pid} reused");
                self.add_proc(pid, uid, false, c);
            }
        }
        self.m.clients.insert(c, Some(pid));
    }

    fn add_proc(&mut self, pid: u32, uid: u32, host: bool, client: u64) {
        let mm = self.m.new_mm();
        self.m.procs.insert(
            pid,
            MProc {
                mm,
                uid,
                host,
                clients: alloc::vec![client],
                pending_children: Vec::new(),
                pending: None,
            },
        );
    }

    fn op_clone(&mut self) {
        let Some((c, parent)) = self.some_caller() else {
            return;
        };
        let vm = self.r.chance(50);
        let flags = if vm {
            CLONE_VM | CLONE_VFORK | SIGCHLD
        } else {
            SIGCHLD
        };
        let reply = self.call(c, Request::Clone { flags });
        if self.m.procs[&parent].pending_children.len() >= self.m.max_pending {
            assert_eq!(reply, Reply::Error(Errno::EAGAIN));
            return;
        }
        let Reply::Cloned { pid, ticket } = reply else {
            panic!("clone failed: {reply:?}");
        };
        assert!(!self.m.procs.contains_key(&pid));
        assert!(!self.m.tickets.contains_key(&ticket));
        let (uid, pmm) = (self.m.procs[&parent].uid, self.m.procs[&parent].mm);
        let mm = if vm {
            self.m.mms.get_mut(&pmm).unwrap().users += 1;
            pmm
        } else {
            self.m.new_mm()
        };
        self.m.procs.insert(
            pid,
            MProc {
                mm,
                uid,
                host: false,
                clients: Vec::new(),
                pending_children: Vec::new(),
                pending: Some(parent),
            },
        );
        self.m
            .procs
            .get_mut(&parent)
            .unwrap()
            .pending_children
            .push(ticket);
        self.m.tickets.insert(ticket, pid);
    }

    fn op_claim(&mut self) {
        let tickets: Vec<u64> = self.m.tickets.keys().copied().collect();
        let Some(t) = self.r.pick(&tickets) else {
            return;
        };
        let unbound: Vec<u64> = self
            .m
            .clients
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(&c, _)| c)
            .collect();
        let c = match self.r.pick(&unbound) {
            Some(c) if self.r.chance(50) => c,
            _ => {
                let uid = self.r.below(2) as u32 * 1000;
                self.new_client(uid, None)
            }
        };
        let reply = self.call(c, Request::Hello { ticket: Some(t) });
        self.count("clone claimed");
        let pid = self.m.tickets.remove(&t).unwrap();
        assert!(
            matches!(reply, Reply::Hello { pid: p, .. } if p == pid),
            "{reply:?}"
        );
        let child = self.m.procs.get_mut(&pid).unwrap();
        let parent = child.pending.take().unwrap();
        child.clients.push(c);
        self.m
            .procs
            .get_mut(&parent)
            .unwrap()
            .pending_children
            .retain(|&x| x != t);
        self.m.clients.insert(c, Some(pid));
    }

    fn op_bogus_hello(&mut self) {
        if self.r.chance(50) {
            // An unknown ticket.
            let c = self.new_client(0, None);
            let t = self.r.next();
            let expect = if self.m.tickets.contains_key(&t) {
                return;
            } else {
                Reply::Error(Errno::ESRCH)
            };
            assert_eq!(self.call(c, Request::Hello { ticket: Some(t) }), expect);
        } else if let Some((c, _)) = self.some_caller() {
            // A second Hello on a bound connection.
            let r = self.call(c, Request::Hello { ticket: None });
            assert_eq!(r, Reply::Error(Errno::EINVAL));
        }
    }

    fn op_exit(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        assert_eq!(self.call(c, Request::Exit), Reply::Done);
        let mm = self.m.procs[&pid].mm;
        if self.m.mms[&mm].users > 1 {
            self.count("exit of a shared address space");
        }
        if !self.m.procs[&pid].pending_children.is_empty() {
            self.count("exit releasing unclaimed children");
        }
        self.m.exit(pid);
    }

    fn op_disconnect(&mut self) {
        let clients: Vec<u64> = self.m.clients.keys().copied().collect();
        let Some(c) = self.r.pick(&clients) else {
            return;
        };
        self.s.disconnect(ClientId(c));
        if let Some(Some(pid)) = self.m.clients.remove(&c) {
            let p = self.m.procs.get_mut(&pid).unwrap();
            p.clients.retain(|&x| x != c);
            if p.clients.is_empty() {
                self.m.exit(pid);
            }
        }
    }

    fn op_unbound_request(&mut self) {
        let c = self.new_client(0, None);
        let r = self.call(c, Request::Munmap { addr: BASE, len: P });
        assert_eq!(r, Reply::Error(Errno::ESRCH));
    }

    fn op_sysctl(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        let value = self.r.below(7) as i64 - 1;
        let reply = self.call(
            c,
            Request::WriteSysctl {
                name: Sysctl::NrTrimPages,
                value,
            },
        );
        if self.m.procs[&pid].uid != 0 {
            assert_eq!(reply, Reply::Error(Errno::EACCES));
        } else if value < 0 {
            assert_eq!(reply, Reply::Error(Errno::EINVAL));
        } else {
            assert_eq!(reply, Reply::Done);
            self.m.nr_trim = value as u64;
        }
        let read = self.call(
            c,
            Request::ReadSysctl {
                name: Sysctl::NrTrimPages,
            },
        );
        assert_eq!(read, Reply::Value(self.m.nr_trim as i64));
    }

    fn op_mmap(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        let (len, prot, flags, offset, unit) = gen_mmap_args(&mut self.r, &self.m);
        let mm_id = self.m.procs[&pid].mm;
        let expect = expect_mmap(&self.m, &self.m.mms[&mm_id], len, flags, offset, unit);
        let hint = if self.r.chance(20) { self.r.next() } else { 0 };
        let fd = self.r.below(5) as i32 - 1;
        let reply = self.call(
            c,
            Request::Mmap {
                addr: hint,
                len,
                prot,
                flags,
                fd,
                offset,
                unit,
            },
        );
        let (len, order) = match expect {
            MmapExpect::Fail(e) => {
                assert_eq!(
                    reply,
                    Reply::Error(e),
                    "mmap({len:#x}, {flags:#x}, {offset:#x}, {unit:?})"
                );
                self.count(if e == Errno::ENOMEM {
                    "mmap enomem"
                } else {
                    "mmap refused"
                });
                return;
            }
            MmapExpect::Alloc { len, order } => (len, order),
        };
        let addr = match reply {
            Reply::Mapped { addr } => addr,
            Reply::Error(Errno::ENOMEM) => {
                assert!(
                    !self.s.has_free_block(order),
                    "ENOMEM with a free order-{order} block"
                );
                self.count("mmap out of memory");
                return;
            }
            other => panic!("mmap: {other:?}"),
        };
        let pages = len / P;
        let kept = self.m.kept(pages);
        let top = addr + kept * P;
        assert_eq!(addr % P, 0);
        assert!(addr >= BASE && top <= BASE + self.m.arena_pages * P);
        for mm in self.m.mms.values() {
            for map in &mm.maps {
                assert!(
                    top <= map.start || addr >= map.top,
                    "new [{addr:#x},{top:#x}) overlaps {map:?}"
                );
            }
        }
        let uninit = flags & MAP_UNINITIALIZED != 0 && self.m.allow_uninit;
        if !uninit {
            assert!(
                self.s.memory().slice(addr, len).iter().all(|&b| b == 0),
                "not zeroed"
            );
        }
        self.count("mmap ok");
        let pattern = self.m.pattern();
        self.s.memory_mut().fill(addr, len, pattern);
        self.m.free -= kept;
        let mm = self.m.mms.get_mut(&mm_id).unwrap();
        mm.maps.push(MMapping {
            start: addr,
            end: addr + len,
            top,
            rend: addr + len,
            pattern,
        });
        mm.maps.sort_by_key(|m| m.start);
    }

    fn op_munmap(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        let mm_id = self.m.procs[&pid].mm;
        let maps = self.m.mms[&mm_id].maps.clone();
        let (addr, len) = match self.r.pick(&maps) {
            Some(map) => {
                let pages = (map.end - map.start) / P;
                let k = 1 + self.r.below(pages.max(2) - 1);
                match self.r.below(10) {
                    0..=2 => (map.start, map.end - map.start - self.r.below(P)),
                    3 | 4 => (map.start, k * P),
                    5 | 6 => (map.start + k * P, pages.saturating_sub(k) * P),
                    7 | 8 if pages >= 3 => {
                        // A hole strictly inside: 1 ≤ k, k + j < pages.
                        let k = 1 + self.r.below(pages - 2);
                        let j = 1 + self.r.below(pages - 1 - k);
                        (map.start + k * P, j * P)
                    }
                    _ => self.bogus_range(map),
                }
            }
            None => (BASE + self.r.below(self.m.arena_pages) * P, P),
        };
        let expect = model_munmap(&mut self.m, mm_id, addr, len);
        self.count(match expect {
            Ok(kind) => kind,
            Err(Errno::ENOMEM) => "munmap split refused",
            Err(_) => "munmap refused",
        });
        let expect = expect.map(|_| ());
        let reply = self.call(c, Request::Munmap { addr, len });
        match expect {
            Ok(()) => assert_eq!(reply, Reply::Done, "munmap({addr:#x}, {len:#x})"),
            Err(e) => assert_eq!(reply, Reply::Error(e), "munmap({addr:#x}, {len:#x})"),
        }
    }

    fn bogus_range(&mut self, map: MMapping) -> (u64, u64) {
        let arena_end = BASE + self.m.arena_pages * P;
        match self.r.below(8) {
            0 => (map.start + 1 + self.r.below(P - 1), P),
            1 => (map.start, 0),
            2 => (map.end, P),
            3 => (map.start + P, map.end - map.start + P),
            4 => (
                BASE + self.r.below(arena_end - BASE),
                1 + self.r.below(4 * P),
            ),
            5 => (u64::MAX - P + 1, 2 * P),
            6 => (map.start, u64::MAX - self.r.below(P)),
            _ => (self.r.next(), self.r.next()),
        }
    }

    fn op_read_maps(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        let target = if self.r.chance(50) {
            None
        } else {
            let pids: Vec<u32> = self.m.procs.keys().copied().collect();
            Some(if self.r.chance(90) {
                self.r.pick(&pids).unwrap()
            } else {
                4_000_000
            })
        };
        let view = match target {
            None => ProcView::SelfMaps,
            Some(t) => ProcView::ProcessMaps { pid: t },
        };
        let got = read_proc(&mut self.s, c, view);
        let target = target.unwrap_or(pid);
        let Some(tp) = self.m.procs.get(&target) else {
            assert_eq!(got, Err(Errno::ESRCH));
            return;
        };
        let my_uid = self.m.procs[&pid].uid;
        if my_uid != 0 && my_uid != tp.uid {
            assert_eq!(got, Err(Errno::EACCES));
            return;
        }
        let mut expect = alloc::string::String::new();
        for map in &self.m.mms[&tp.mm].maps {
            expect.push_str(&alloc::format!("{:08x}-{:08x} ", map.start, map.end));
        }
        let mut atts = self.m.mms[&tp.mm].shm.clone();
        atts.sort();
        let text = got.unwrap();
        let mut seen = alloc::string::String::new();
        let mut seen_atts = Vec::new();
        for line in text.lines() {
            if line.contains("/SYSV") {
                let start = u64::from_str_radix(&line[..8], 16).unwrap();
                let end = u64::from_str_radix(&line[9..17], 16).unwrap();
                let id: i32 = line[38..].split(' ').next().unwrap().parse().unwrap();
                assert!(line.ends_with(" (deleted)"), "{line:?}");
                assert_eq!(&line[21..22], "S", "{line:?}");
                seen_atts.push((start, end, id));
                continue;
            }
            seen.push_str(&line[..18]);
            assert!(line.ends_with(" 00:00 0 "), "{line:?}");
        }
        seen_atts.sort();
        assert_eq!(seen, expect);
        assert_eq!(seen_atts, atts);
    }

    fn op_exec(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        assert_eq!(self.call(c, Request::Exec), Reply::Done);
        let old = self.m.procs[&pid].mm;
        let new = self.m.new_mm();
        self.m.procs.get_mut(&pid).unwrap().mm = new;
        self.m.put_mm(old);
        self.count("exec");
    }

    fn uid_of(&self, pid: u32) -> u32 {
        self.m.procs[&pid].uid
    }

    fn op_shmget(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        let uid = self.uid_of(pid);
        let key = [IPC_PRIVATE, 1, 2, 3][self.r.below(4) as usize];
        let size = match self.r.below(10) {
            0 => 0,
            1 => (1 << (self.m.max_order + 12)) + 1,
            _ => 1 + self.r.below(6 * P),
        };
        let mode = [0o600, 0o666, 0o400, 0o644][self.r.below(4) as usize];
        let mut flags = mode;
        if self.r.chance(60) {
            flags |= IPC_CREAT;
        }
        if self.r.chance(20) {
            flags |= IPC_EXCL;
        }
        let reply = self.call(c, Request::Shmget { key, size, flags });
        let public = self
            .m
            .segs
            .iter()
            .find(|(_, s)| key != IPC_PRIVATE && s.key == key && !s.dest)
            .map(|(&id, s)| (id, s.clone()));
        let expect = match public {
            Some(_) if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 => Err(Errno::EEXIST),
            Some((_, seg)) if seg.size < size => Err(Errno::EINVAL),
            Some((_, seg)) if !Model::shm_allowed(&seg, uid, requested(flags)) => {
                Err(Errno::EACCES)
            }
            Some((id, _)) => Ok(Some(id)),
            None if key != IPC_PRIVATE && flags & IPC_CREAT == 0 => Err(Errno::ENOENT),
            None if size == 0 => Err(Errno::EINVAL),
            None if (size.div_ceil(P)).next_power_of_two().trailing_zeros() > self.m.max_order => {
                Err(Errno::EFBIG)
            }
            None => Ok(None),
        };
        match (expect, reply) {
            (Err(e), reply) => {
                assert_eq!(reply, Reply::Error(e), "shmget({key}, {size}, {flags:#o})");
                self.count("shmget refused");
            }
            (Ok(Some(id)), reply) => {
                assert_eq!(reply, Reply::Value(i64::from(id)));
                self.count("shmget found");
            }
            (Ok(None), Reply::Error(Errno::ENOMEM)) => {
                let order = size.div_ceil(P).next_power_of_two().trailing_zeros();
                assert!(!self.s.has_free_block(order));
                self.count("shmget out of memory");
            }
            (Ok(None), Reply::Value(id)) => {
                let id = id as i32;
                assert!(!self.m.segs.contains_key(&id));
                let pages = size.div_ceil(P);
                self.m.free -= pages;
                self.m.shm_pages += pages;
                self.m.segs.insert(
                    id,
                    MSeg {
                        key,
                        size,
                        pages,
                        addr: None,
                        uid,
                        mode: mode as u32,
                        nattch: 0,
                        dest: false,
                    },
                );
                self.count("shmget created");
            }
            (Ok(None), other) => panic!("shmget: {other:?}"),
        }
    }

    /// A segment id: mostly a live one, sometimes a stale or bogus one.
    fn some_shmid(&mut self) -> i32 {
        let ids: Vec<i32> = self.m.segs.keys().copied().collect();
        match self.r.pick(&ids) {
            Some(id) if self.r.chance(85) => id,
            _ => [-1, 7777, 0, 1][self.r.below(4) as usize],
        }
    }

    fn op_shm_other(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        let uid = self.uid_of(pid);
        let mm_id = self.m.procs[&pid].mm;
        match self.r.below(10) {
            0..=3 => {
                let id = self.some_shmid();
                let flags = [0, 0, SHM_RDONLY, SHM_EXEC, SHM_REMAP][self.r.below(5) as usize];
                let addr = if self.r.chance(10) { 0x10000 } else { 0 };
                let reply = self.call(
                    c,
                    Request::Shmat {
                        shmid: id,
                        addr,
                        flags,
                    },
                );
                let want = if flags & SHM_RDONLY != 0 { 4 } else { 6 }
                    | if flags & SHM_EXEC != 0 { 1 } else { 0 };
                let mm = &self.m.mms[&mm_id];
                let count = mm.maps.len() + mm.shm.len();
                let expect = match self.m.segs.get(&id) {
                    _ if id < 0 => Err(Errno::EINVAL),
                    _ if addr == 0 && flags & SHM_REMAP != 0 => Err(Errno::EINVAL),
                    None => Err(Errno::EINVAL),
                    Some(seg) if !Model::shm_allowed(seg, uid, want) => Err(Errno::EACCES),
                    Some(_) if addr != 0 => Err(Errno::EINVAL),
                    Some(_) if count >= self.m.max_map_count => Err(Errno::ENOMEM),
                    Some(seg) => Ok(seg.addr),
                };
                match (expect, reply) {
                    (Err(e), r) => {
                        assert_eq!(r, Reply::Error(e), "shmat({id}, {addr:#x}, {flags:#o})");
                        self.count("shmat refused");
                    }
                    (Ok(known), Reply::Mapped { addr }) => {
                        if let Some(k) = known {
                            assert_eq!(addr, k, "attaches differ");
                        }
                        let seg = self.m.segs.get_mut(&id).unwrap();
                        seg.addr = Some(addr);
                        seg.nattch += 1;
                        let end = addr + seg.pages * P;
                        self.m
                            .mms
                            .get_mut(&mm_id)
                            .unwrap()
                            .shm
                            .push((addr, end, id));
                        self.count("shmat ok");
                    }
                    (Ok(_), other) => panic!("shmat: {other:?}"),
                }
            }
            4..=6 => {
                let atts = self.m.mms[&mm_id].shm.clone();
                let addr = match self.r.pick(&atts) {
                    Some(a) if self.r.chance(80) => a.0,
                    Some(a) => a.0 + [1, P][self.r.below(2) as usize],
                    None => BASE + self.r.below(self.m.arena_pages) * P,
                };
                let reply = self.call(c, Request::Shmdt { addr });
                match atts.iter().position(|a| a.0 == addr) {
                    Some(j) => {
                        assert_eq!(reply, Reply::Done, "shmdt({addr:#x})");
                        let mm = self.m.mms.get_mut(&mm_id).unwrap();
                        // Any of identical attachments: they are alike.
                        let (_, _, id) = mm.shm.remove(j);
                        self.m.shm_gone(id);
                        self.count("shmdt ok");
                    }
                    None => {
                        assert_eq!(reply, Reply::Error(Errno::EINVAL), "shmdt({addr:#x})");
                        self.count("shmdt refused");
                    }
                }
            }
            7 | 8 => {
                let id = self.some_shmid();
                let reply = self.call(c, Request::ShmStat { shmid: id });
                match self.m.segs.get(&id) {
                    None => assert_eq!(reply, Reply::Error(Errno::EINVAL)),
                    Some(seg) if !Model::shm_allowed(seg, uid, 4) => {
                        assert_eq!(reply, Reply::Error(Errno::EACCES))
                    }
                    Some(seg) => match reply {
                        Reply::ShmStat(st) => {
                            assert_eq!(st.nattch, seg.nattch);
                            assert_eq!(st.size, seg.size);
                            assert_eq!(st.mode & SHM_DEST != 0, seg.dest);
                            self.count("shm stat");
                        }
                        other => panic!("IPC_STAT: {other:?}"),
                    },
                }
            }
            _ => {
                let id = self.some_shmid();
                let reply = self.call(c, Request::ShmRemove { shmid: id });
                match self.m.segs.get_mut(&id) {
                    None => assert_eq!(reply, Reply::Error(Errno::EINVAL)),
                    Some(seg) if uid != 0 && uid != seg.uid => {
                        assert_eq!(reply, Reply::Error(Errno::EPERM))
                    }
                    Some(seg) => {
                        assert_eq!(reply, Reply::Done);
                        if seg.nattch == 0 {
                            let pages = seg.pages;
                            self.m.segs.remove(&id);
                            self.m.free += pages;
                            self.m.shm_pages -= pages;
                            self.count("shm rmid destroyed");
                        } else {
                            seg.dest = true;
                            seg.key = IPC_PRIVATE;
                            self.count("shm rmid pending");
                        }
                    }
                }
            }
        }
    }

    fn op_mremap(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        let mm_id = self.m.procs[&pid].mm;
        let maps = self.m.mms[&mm_id].maps.clone();
        let atts = self.m.mms[&mm_id].shm.clone();
        let (addr, old_len, target) = match (self.r.pick(&maps), self.r.pick(&atts)) {
            (_, Some(a)) if self.r.chance(8) => (a.0, a.1 - a.0, None),
            (Some(map), _) if self.r.chance(85) => {
                let old = if self.r.chance(90) {
                    map.end - map.start - self.r.below(P)
                } else {
                    (1 + self.r.below(8)) * P
                };
                (map.start, old, Some(map))
            }
            (Some(map), _) => (map.start + 1, P, None),
            _ => (BASE, P, None),
        };
        let new_len = match self.r.below(10) {
            0 => 0,
            1 => u64::MAX - self.r.below(P),
            _ => 1 + self.r.below(10 * P),
        };
        let flags = [
            0,
            MREMAP_MAYMOVE,
            MREMAP_MAYMOVE,
            MREMAP_MAYMOVE | MREMAP_FIXED,
            MREMAP_FIXED,
        ][self.r.below(5) as usize];
        let new_addr = if self.r.chance(70) { addr } else { addr + P };
        let reply = self.call(
            c,
            Request::Mremap {
                addr,
                old_len,
                new_len,
                flags,
                new_addr,
            },
        );
        let align = |l: u64| l.checked_add(P - 1).map(|x| x / P * P).filter(|&x| x != 0);
        let (Some(old), Some(new)) = (align(old_len), align(new_len)) else {
            assert_eq!(reply, Reply::Error(Errno::EINVAL));
            self.count("mremap refused");
            return;
        };
        if addr % P != 0 || (flags & MREMAP_FIXED != 0 && new_addr != addr) {
            assert_eq!(reply, Reply::Error(Errno::EINVAL));
            self.count("mremap refused");
            return;
        }
        if atts.iter().any(|a| a.0 == addr && a.1 == addr + old) {
            assert_eq!(reply, Reply::Error(Errno::EPERM));
            self.count("mremap shm eperm");
            return;
        }
        let Some(map) = target.filter(|m| m.end == addr + old) else {
            assert_eq!(
                reply,
                Reply::Error(Errno::EINVAL),
                "mremap({addr:#x}, {old:#x})"
            );
            self.count("mremap refused");
            return;
        };
        let i = maps.iter().position(|m| m.start == map.start).unwrap();
        if new <= map.rend - map.start {
            assert_eq!(reply, Reply::Mapped { addr }, "mremap in region");
            self.m.mms.get_mut(&mm_id).unwrap().maps[i].end = addr + new;
            self.count("mremap in place");
            return;
        }
        let moving = flags & MREMAP_MAYMOVE != 0 && flags & MREMAP_FIXED == 0;
        if self.m.strict_mremap || !moving {
            assert_eq!(reply, Reply::Error(Errno::ENOMEM));
            self.count("mremap enomem");
            return;
        }
        if addr.checked_add(new).is_some_and(|e| e <= map.top) {
            assert_eq!(reply, Reply::Mapped { addr }, "mremap into slack");
            let old_end = map.end;
            let m = &mut self.m.mms.get_mut(&mm_id).unwrap().maps[i];
            m.end = addr + new;
            m.rend = addr + new;
            // The grown part is new memory: zero, then the pattern.
            assert!(self
                .s
                .memory()
                .slice(map.rend, addr + new - map.rend)
                .iter()
                .all(|&b| b == 0));
            let _ = old_end;
            self.s.memory_mut().fill(map.start, new, map.pattern);
            self.count("mremap grown in slack");
            return;
        }
        let pages = new / P;
        let b = match reply {
            Reply::Mapped { addr: b } => b,
            Reply::Error(Errno::ENOMEM) => {
                let order = pages.next_power_of_two().trailing_zeros();
                assert!(order > self.m.max_order || !self.s.has_free_block(order));
                self.count("mremap move out of memory");
                return;
            }
            other => panic!("mremap move: {other:?}"),
        };
        let used = map.end - map.start;
        assert!(
            self.s
                .memory()
                .slice(b, used)
                .iter()
                .all(|&x| x == map.pattern),
            "contents not moved"
        );
        assert!(
            self.s
                .memory()
                .slice(b + used, new - used)
                .iter()
                .all(|&x| x == 0),
            "tail not zero"
        );
        let kept = self.m.kept(pages);
        self.m.free += (map.top - map.start) / P;
        self.m.free -= kept;
        let mm = self.m.mms.get_mut(&mm_id).unwrap();
        mm.maps[i] = MMapping {
            start: b,
            end: b + new,
            top: b + kept * P,
            rend: b + new,
            pattern: map.pattern,
        };
        mm.maps.sort_by_key(|m| m.start);
        self.s.memory_mut().fill(b, new, map.pattern);
        self.count("mremap moved");
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

#[test]
fn random_walk_more_seeds() {
    for seed in 10..16 {
        run(seed, 800, 200, |c| c.max_order = 6);
    }
}
