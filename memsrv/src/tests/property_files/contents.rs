//! The file walk's content steps: writes and truncation (§7.5), with
//! the model's check of what a truncation may cut.

use super::*;

impl Walk {
    pub(super) fn op_write(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        let (fd, desc) = self.some_fd(pid);
        let off = self.g.below(4 * P);
        let n = 1 + self.g.below(300) as usize;
        let byte = self.pattern();
        let got = self.r.pwrite(c, fd, &vec![byte; n], Some(off));
        let Some(d) = desc else {
            assert_eq!(got, Err(Errno::EBADF));
            return;
        };
        let MDesc { key, write, .. } = self.m.descs[&d];
        if !write {
            assert_eq!(got, Err(Errno::EBADF));
            return;
        }
        if !self.m.alive(key) {
            assert_eq!(got, Err(Errno::EIO));
            return;
        }
        if dev_of(key.1) == Dev::Tst {
            // The window device refuses writes (read-only store).
            assert_eq!(got, Err(Errno::EROFS));
            return;
        }
        if got == Err(Errno::ENOMEM) {
            assert!(self.r.s.stats().free_pages < 5);
            self.count("write enomem");
            return;
        }
        assert_eq!(got, Ok(n as u64), "write step {}", self.steps);
        let data = self.m.data.get_mut(&key).unwrap();
        let end = off as usize + n;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[off as usize..end].fill(byte);
        self.count("write");
    }

    pub(super) fn op_truncate(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        // Mostly descriptors that can truncate.
        let writable: Vec<(i32, u64)> = self.m.procs[&pid]
            .fds
            .iter()
            .filter(|(_, d)| {
                let d = &self.m.descs[d];
                d.write && dev_of(d.key.1) == Dev::Mem
            })
            .map(|(&f, &d)| (f, d))
            .collect();
        let (fd, desc) = match self.g.pick(&writable) {
            Some((fd, d)) if self.g.chance(80) => (fd, Some(d)),
            _ => self.some_fd(pid),
        };
        let empty = desc
            .and_then(|d| self.m.data.get(&self.m.descs[&d].key))
            .is_none_or(|data| data.is_empty());
        let new = match (empty, self.g.below(10)) {
            (_, 0) => 0,
            // (Only an empty file is refused these; a driver would grow a
            // non-empty one without allocating.)
            (true, 1) => 5 << 30,
            (true, 2) => 65 * P,
            // The mappable kind: one contiguous run.
            (true, _) => 1 + self.g.below(4 * P),
            (false, _) => self.g.below(5 * P),
        };
        let got = self.r.ftruncate(c, fd, new);
        let Some(d) = desc else {
            assert_eq!(got, Err(Errno::EBADF));
            return;
        };
        let MDesc { key, write, .. } = self.m.descs[&d];
        if !write || dev_of(key.1) != Dev::Mem {
            assert_eq!(got, Err(Errno::EINVAL));
            self.count("truncate einval");
            return;
        }
        if !self.m.alive(key) {
            assert_eq!(got, Err(Errno::EIO));
            return;
        }
        let old = self.m.data[&key].len() as u64;
        if let Err(e) = self.model_truncate_check(key, old, new) {
            assert_eq!(got, Err(e), "truncate {old} → {new}, step {}", self.steps);
            self.count(if e == Errno::ETXTBSY {
                "truncate busy"
            } else {
                "truncate efbig"
            });
            return;
        }
        if got == Err(Errno::ENOMEM) {
            let order = new.div_ceil(P).next_power_of_two().trailing_zeros();
            assert!(old == 0 && !self.r.s.has_free_block(order));
            self.count("truncate enomem");
            return;
        }
        assert_eq!(got, Ok(()), "truncate {old} → {new}, step {}", self.steps);
        self.model_cut(key, new);
        let data = self.m.data.get_mut(&key).unwrap();
        data.resize(new as usize, 0);
        self.count(if new < old {
            "truncate shrink"
        } else {
            "truncate grow"
        });
    }

    pub(super) fn model_truncate_check(&self, key: Key, old: u64, new: u64) -> Result<(), Errno> {
        if old == 0 && new > 0 {
            if new >= 1 << 32 {
                return Err(Errno::EFBIG);
            }
            if new.div_ceil(P).next_power_of_two().trailing_zeros() > 6 {
                return Err(Errno::EFBIG);
            }
        }
        if new < old {
            let low = new / P;
            for mm in self.m.mms.values() {
                for map in mm.maps.values() {
                    if let MMap::File {
                        key: k,
                        start,
                        end,
                        pgoff,
                        shared,
                        region,
                        ..
                    } = map
                    {
                        let direct = !self.m.regions[region].copy;
                        if *k == key && (*shared || direct) && pgoff + (end - start) / P > low {
                            return Err(Errno::ETXTBSY);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// `nommu_shrink_inode_mappings` on the model's direct regions.
    pub(super) fn model_cut(&mut self, key: Key, new: u64) {
        for r in self.m.regions.values_mut() {
            if r.key != key || r.copy {
                continue;
            }
            let r_top = r.pgoff * P + (r.top - r.start);
            if r_top > new {
                let top = r.top - (r_top - new);
                if top > r.start {
                    r.top = top;
                    r.end = r.end.min(top);
                }
            }
        }
    }
}
