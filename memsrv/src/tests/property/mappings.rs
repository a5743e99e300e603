//! The walk's mapping steps: anonymous mmap (good and bad arguments),
//! munmap (whole, head, tail, hole, bogus), `/proc` maps reads and exec.

use super::*;

impl Walk {
    pub(super) fn op_mmap(&mut self) {
        let Some((c, pid)) = self.some_caller() else {
            return;
        };
        let (len, prot, flags, offset, unit) = gen_mmap_args(&mut self.r, &self.m);
        let mm_id = self.m.procs[&pid].mm;
        let expect = expect_mmap(&self.m, &self.m.mms[&mm_id], len, flags, offset, unit);
        let hint = if self.r.chance(20) { self.r.next() } else { 0 };
        let fd = self.r.below(5) as i32 - 1;
        let reply = self.call(c, mmap_request(hint, len, prot, flags, fd, offset, unit));
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

    pub(super) fn op_munmap(&mut self) {
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

    pub(super) fn bogus_range(&mut self, map: MMapping) -> (u64, u64) {
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

    pub(super) fn op_read_maps(&mut self) {
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

    pub(super) fn op_exec(&mut self) {
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

    pub(super) fn uid_of(&self, pid: u32) -> u32 {
        self.m.procs[&pid].uid
    }
}
