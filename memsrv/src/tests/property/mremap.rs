//! The walk's mremap steps: strict, or with the moving extension.

use super::*;

impl Walk {
    pub(super) fn op_mremap(&mut self) {
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
}
