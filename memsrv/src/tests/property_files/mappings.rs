//! The file walk's mapping steps: mmap of files (what the model expects
//! of each), munmap, anonymous mappings.

use super::*;

impl Walk {
    pub(super) fn op_mmap(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        let (fd, desc) = self.some_fd(pid);
        let pages = 1 + self.g.below(3);
        let len = pages * P
            - if self.g.chance(20) {
                self.g.below(P)
            } else {
                0
            };
        let prot = self
            .g
            .pick(&[
                PROT_READ,
                PROT_READ,
                PROT_READ | PROT_WRITE,
                PROT_READ | PROT_EXEC,
            ])
            .unwrap();
        let ty = if self.g.chance(35) { SH } else { PR };
        let pgoff = self.g.below(5);
        let got = self.r.mmap(c, len, prot, ty, fd, pgoff);
        let Some(d) = desc else {
            assert_eq!(got, Err(Errno::EBADF));
            return;
        };
        let mm = self.m.procs[&pid].mm;
        let expect = self.expect_mmap(d, pages, prot, ty, pgoff);
        match expect {
            Expect::Fail(e) => {
                assert_eq!(got, Err(e), "mmap step {}", self.steps);
                self.count(match e {
                    Errno::EIO => "mmap dead driver",
                    Errno::EINVAL => "mmap einval",
                    Errno::ENODEV => "mmap enodev",
                    _ => "mmap refused",
                });
            }
            Expect::Reuse(region) => {
                let r = &self.m.regions[&region];
                let start = r.start + (pgoff - r.pgoff) * P;
                assert_eq!(got, Ok(start), "reuse, step {}", self.steps);
                let copy = r.copy;
                let key = r.key;
                if !copy && dev_of(key.1) == Dev::Tst {
                    *self.m.tst_mmaps.entry(key.0).or_insert(0) += 1;
                }
                let content = match (&r.copy, dev_of(key.1)) {
                    (false, Dev::Tst) => Content::Device,
                    (false, _) => Content::Direct,
                    (true, _) => {
                        let off = ((pgoff - r.pgoff) * P) as usize;
                        let bytes = self.r.bytes(start, pages * P);
                        let _ = off;
                        Content::Snapshot(bytes)
                    }
                };
                self.m.regions.get_mut(&region).unwrap().usage += 1;
                self.add_map(mm, start, pages, region, key, pgoff, ty == SH, content);
                self.count(if copy {
                    "mmap reuse copy"
                } else {
                    "mmap reuse direct"
                });
            }
            Expect::Direct { key, addr } => {
                assert_eq!(got, Ok(addr), "direct, step {}", self.steps);
                if dev_of(key.1) == Dev::Tst {
                    *self.m.tst_mmaps.entry(key.0).or_insert(0) += 1;
                }
                let shareable = true;
                let region = self.add_region(key, addr, pages, pgoff, false, shareable);
                let content = if dev_of(key.1) == Dev::Tst {
                    Content::Device
                } else {
                    Content::Direct
                };
                self.add_map(mm, addr, pages, region, key, pgoff, ty == SH, content);
                self.count("mmap direct");
            }
            Expect::Copy {
                key,
                shareable,
                bytes,
            } => {
                let addr = match got {
                    Ok(a) => a,
                    Err(Errno::ENOMEM) => {
                        let order = pages.next_power_of_two().trailing_zeros();
                        assert!(!self.r.s.has_free_block(order), "ENOMEM with room");
                        self.count("mmap enomem");
                        return;
                    }
                    Err(e) => panic!("copy expected, got {e:?} at step {}", self.steps),
                };
                assert_eq!(addr % P, 0);
                assert!(addr >= BASE && addr + pages * P <= BASE + PAGES * P);
                same(
                    &self.r.bytes(addr, pages * P),
                    &bytes,
                    "copy contents",
                    self.steps,
                );
                let region = self.add_region(key, addr, pages, pgoff, true, shareable);
                self.m.copy_pages += pages;
                let content = if shareable {
                    Content::Snapshot(bytes)
                } else {
                    let p = self.pattern();
                    self.r.s.memory_mut().bytes_at(addr, pages * P).fill(p);
                    Content::Pattern(p)
                };
                self.add_map(mm, addr, pages, region, key, pgoff, ty == SH, content);
                self.count(if shareable {
                    "mmap shared copy"
                } else {
                    "mmap private copy"
                });
            }
        }
    }

    /// A new region of `pages` pages at `start`, used by one mapping, its
    /// top at its end (a shrink of the file may cut both later); returns
    /// its id.
    pub(super) fn add_region(
        &mut self,
        key: Key,
        start: u64,
        pages: u64,
        pgoff: u64,
        copy: bool,
        shareable: bool,
    ) -> u64 {
        let id = self.m.id();
        let end = start + pages * P;
        self.m.regions.insert(
            id,
            MRegion {
                key,
                start,
                end,
                top: end,
                pgoff,
                copy,
                shareable,
                usage: 1,
            },
        );
        id
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_map(
        &mut self,
        mm: u64,
        start: u64,
        pages: u64,
        region: u64,
        key: Key,
        pgoff: u64,
        shared: bool,
        content: Content,
    ) {
        let seq = self.m.id();
        self.m.mms.get_mut(&mm).unwrap().maps.insert(
            (start, start + pages * P, seq),
            MMap::File {
                start,
                end: start + pages * P,
                region,
                key,
                pgoff,
                shared,
                content,
            },
        );
    }

    /// What the spec says a file mmap does.
    pub(super) fn expect_mmap(
        &mut self,
        d: u64,
        pages: u64,
        prot: u32,
        ty: u32,
        pgoff: u64,
    ) -> Expect {
        use Expect::*;
        let desc = &self.m.descs[&d];
        let key = desc.key;
        let (read, write) = (desc.read, desc.write);
        let dev = dev_of(key.1);
        let w = prot & PROT_WRITE != 0;
        let x = prot & PROT_EXEC != 0;
        // Steps 9–12 for the three kinds.
        if !read {
            return Fail(Errno::EACCES);
        }
        let direct = if ty == SH {
            if w && !write {
                return Fail(Errno::EACCES);
            }
            match dev {
                Dev::Data => return Fail(Errno::ENODEV),
                Dev::Tst if x => return Fail(Errno::EINVAL),
                _ => true,
            }
        } else {
            // Private: direct-capable unless writable, copy-only, or an
            // exec request of a device without EXEC.
            let exec_copy = dev == Dev::Tst && x;
            !(w || exec_copy || dev == Dev::Data)
        };
        if !self.m.alive(key) {
            return Fail(Errno::EIO);
        }
        let shareable = ty == SH || !w;
        if shareable {
            let mut cands: Vec<(u64, u64)> = self
                .m
                .regions
                .iter()
                .filter(|(_, r)| r.key == key && r.shareable)
                .map(|(&id, r)| (r.start, id))
                .collect();
            cands.sort();
            for (_, id) in cands {
                let r = &self.m.regions[&id];
                let rpglen = (r.end - r.start).div_ceil(P);
                let (rs, re) = (r.pgoff, r.pgoff + rpglen);
                if !(pgoff < re && rs < pgoff + pages) {
                    continue;
                }
                if pgoff >= rs && pgoff + pages <= re {
                    return Reuse(id);
                }
                if !direct {
                    return Fail(Errno::EINVAL);
                }
            }
        }
        let drv = self.r.d(key.0);
        let object = match dev {
            Dev::Tst => drv.paths[""],
            _ => drv.paths[&key.1[key.1[1..].find('/').unwrap() + 2..]],
        };
        if direct {
            match drv.unmapped_area(object, pages * P, pgoff) {
                Ok(addr) => return Direct { key, addr },
                Err(Errno::ENOSYS) if ty == PR => {}
                Err(Errno::ENOSYS) => return Fail(Errno::ENODEV),
                Err(e) => return Fail(e),
            }
        }
        let bytes = match dev {
            Dev::Tst => vec![0xAA; (pages * P) as usize],
            _ => {
                let data = &self.m.data[&key];
                (0..pages * P)
                    .map(|i| data.get((pgoff * P + i) as usize).copied().unwrap_or(0))
                    .collect()
            }
        };
        Copy {
            key,
            shareable,
            bytes,
        }
    }

    pub(super) fn op_munmap(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        let mm = self.m.procs[&pid].mm;
        let maps: Vec<((u64, u64, u64), bool)> = self.m.mms[&mm]
            .maps
            .iter()
            .map(|(k, m)| (*k, matches!(m, MMap::File { .. })))
            .collect();
        let (addr, len) = match self.g.pick(&maps) {
            Some(((s, e, _), file)) => match self.g.below(10) {
                _ if !file => (s, e - s),
                0..=5 => (
                    s,
                    e - s
                        - if self.g.chance(30) {
                            self.g.below(P)
                        } else {
                            0
                        },
                ),
                6 => (s, e - s + P),
                7 if e - s > P => (s, e - s - P),
                8 => (s + 1 + self.g.below(P - 1), e - s),
                _ => (s, P),
            },
            None => (BASE + self.g.below(PAGES) * P, P),
        };
        let got = self.r.munmap(c, addr, len);
        let expect = self.model_munmap(mm, addr, len);
        assert_eq!(
            got, expect,
            "munmap({addr:#x}, {len:#x}) step {}",
            self.steps
        );
        self.count(if expect.is_ok() {
            "munmap ok"
        } else {
            "munmap refused"
        });
    }

    /// §5.1 for file mappings (anonymous ones are only ever unmapped
    /// whole here).
    pub(super) fn model_munmap(&mut self, mm: u64, start: u64, len: u64) -> Result<(), Errno> {
        let len = len.div_ceil(P) * P;
        let end = start + len;
        let found = self.m.find(mm, start).ok_or(Errno::EINVAL)?;
        let file = matches!(self.m.mms[&mm].maps[&found], MMap::File { .. });
        if !file {
            assert_eq!(
                (start, end),
                (found.0, found.1),
                "the walk unmaps anonymous memory whole"
            );
            self.m.remove_mapping(mm, found);
            return Ok(());
        }
        let keys: Vec<_> = self.m.mms[&mm]
            .maps
            .range(found..)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if start > k.0 {
                return Err(Errno::EINVAL);
            }
            if end == k.1 {
                if let MMap::Anon { .. } = self.m.mms[&mm].maps[&k] {
                    self.count("munmap walk took an anonymous mapping");
                }
                self.m.remove_mapping(mm, k);
                return Ok(());
            }
        }
        Err(Errno::EINVAL)
    }

    pub(super) fn op_anon(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        let pages = 1 + self.g.below(4);
        let got = self.r.call(c, anon_request(pages * P));
        let addr = match got {
            Reply::Mapped { addr } => addr,
            Reply::Error(Errno::ENOMEM) => return,
            other => panic!("{other:?}"),
        };
        assert!(self.r.bytes(addr, pages * P).iter().all(|&b| b == 0));
        let p = self.pattern();
        self.r.s.memory_mut().bytes_at(addr, pages * P).fill(p);
        let mm = self.m.procs[&pid].mm;
        let seq = self.m.id();
        self.m.mms.get_mut(&mm).unwrap().maps.insert(
            (addr, addr + pages * P, seq),
            MMap::Anon {
                start: addr,
                end: addr + pages * P,
                pattern: p,
            },
        );
        self.m.anon_pages += pages;
    }
}
