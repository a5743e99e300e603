//! The walk's SysV steps: shmget, shmat, shmdt, `IPC_STAT` and `IPC_RMID`.

use super::*;

impl Walk {
    pub(super) fn op_shmget(&mut self) {
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
    pub(super) fn some_shmid(&mut self) -> i32 {
        let ids: Vec<i32> = self.m.segs.keys().copied().collect();
        match self.r.pick(&ids) {
            Some(id) if self.r.chance(85) => id,
            _ => [-1, 7777, 0, 1][self.r.below(4) as usize],
        }
    }

    pub(super) fn op_shm_other(&mut self) {
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
}
