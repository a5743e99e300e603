//! The file walk's descriptor steps: open and close.

use super::*;

impl Walk {
    pub(super) fn op_open(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        let path = match self.g.below(100) {
            0..=44 => self.g.pick(&MEM_FILES).unwrap(),
            45..=69 => self.g.pick(&DATA_FILES).unwrap(),
            70..=95 => "/dev/tst",
            _ => "/nowhere/x",
        };
        let acc = self
            .g
            .pick(&[RDONLY, RDONLY, RDWR, RDWR, RDWR, WRONLY])
            .unwrap();
        let creat = if self.g.chance(60) { O_CREAT } else { 0 };
        let trunc = if self.g.chance(5) { O_TRUNC } else { 0 };
        let got = self.r.open(c, path, acc | creat | trunc);
        let dev = dev_of(path);
        let Some(&drv) = self.m.driver.get(&dev).filter(|_| path != "/nowhere/x") else {
            assert_eq!(got, Err(Errno::ENOENT), "open {path}");
            return;
        };
        let key = (drv, path);
        if dev == Dev::Mem && !self.m.data.contains_key(&key) {
            if creat == 0 {
                assert_eq!(got, Err(Errno::ENOENT), "open {path}");
                return;
            }
            self.m.data.insert(key, Vec::new());
        }
        let write = acc != RDONLY;
        // A memory file is truncated by memsrv (§7.5); a data file, whose
        // driver has no `TRUNCATE`, empties itself on memsrv's second
        // lookup with `O_TRUNC`.
        if trunc != 0 && write && dev != Dev::Tst {
            let old = self.m.data[&key].len() as u64;
            if old > 0 {
                if let Err(e) = self.model_truncate_check(key, old, 0) {
                    assert_eq!(got, Err(e), "open O_TRUNC {path}");
                    self.count("open trunc refused");
                    return;
                }
                self.model_cut(key, 0);
                self.m.data.get_mut(&key).unwrap().clear();
                if dev == Dev::Data {
                    self.count("open trunc data");
                }
            }
        }
        let fds = &self.m.procs[&pid].fds;
        let expect = (3..).find(|fd| !fds.contains_key(fd)).unwrap();
        assert_eq!(got, Ok(expect), "open {path}");
        let d = self.m.id();
        self.m.descs.insert(
            d,
            MDesc {
                key,
                read: acc != WRONLY,
                write,
                refs: 1,
            },
        );
        self.m.procs.get_mut(&pid).unwrap().fds.insert(expect, d);
        self.count("open");
    }

    pub(super) fn op_close(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        let fds: Vec<i32> = self.m.procs[&pid].fds.keys().copied().collect();
        let fd = match self.g.pick(&fds) {
            Some(fd) if self.g.chance(90) => fd,
            _ => 40 + self.g.below(3) as i32,
        };
        let got = self.r.close(c, fd);
        match self.m.procs.get_mut(&pid).unwrap().fds.remove(&fd) {
            Some(d) => {
                assert_eq!(got, Ok(()));
                self.m.close_desc(d);
            }
            None => assert_eq!(got, Err(Errno::EBADF)),
        }
    }

    /// A random descriptor of `pid` (or a bogus one) and its description.
    pub(super) fn some_fd(&mut self, pid: u32) -> (i32, Option<u64>) {
        let fds: Vec<(i32, u64)> = self.m.procs[&pid]
            .fds
            .iter()
            .map(|(&f, &d)| (f, d))
            .collect();
        match self.g.pick(&fds) {
            Some((fd, d)) if self.g.chance(95) => (fd, Some(d)),
            _ => (77, None),
        }
    }
}
