//! The walk's process steps: new processes, clones, claims, bogus hellos,
//! exits, disconnects, unbound requests and the trim sysctl.

use super::*;

impl Walk {
    pub(super) fn op_new_process(&mut self) {
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

    pub(super) fn add_proc(&mut self, pid: u32, uid: u32, host: bool, client: u64) {
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

    pub(super) fn op_clone(&mut self) {
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

    pub(super) fn op_claim(&mut self) {
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

    pub(super) fn op_bogus_hello(&mut self) {
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

    pub(super) fn op_exit(&mut self) {
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

    pub(super) fn op_disconnect(&mut self) {
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

    pub(super) fn op_unbound_request(&mut self) {
        let c = self.new_client(0, None);
        let r = self.call(c, Request::Munmap { addr: BASE, len: P });
        assert_eq!(r, Reply::Error(Errno::ESRCH));
    }

    pub(super) fn op_sysctl(&mut self) {
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
}
