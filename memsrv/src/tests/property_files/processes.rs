//! The file walk's process steps: new processes, clones, claims, exits
//! and disconnects, each mirrored in the model.

use super::*;

impl Walk {
    pub(super) fn op_new_process(&mut self) {
        let c = self.client();
        let pid = self.r.process(c, 0);
        let mm = self.m.new_mm();
        self.m.procs.insert(
            pid,
            MProc {
                mm,
                fds: BTreeMap::new(),
                clients: vec![c],
                pending: None,
                children: Vec::new(),
            },
        );
    }

    pub(super) fn op_clone(&mut self) {
        let Some((c, parent)) = self.caller() else {
            return;
        };
        let vm = self.g.chance(50);
        let flags = if vm { CLONE_VM | CLONE_VFORK } else { 0 } | SIGCHLD;
        let Reply::Cloned { pid, ticket } = self.r.call(c, Request::Clone { flags }) else {
            panic!("clone");
        };
        let p = &self.m.procs[&parent];
        let (pmm, fds) = (p.mm, p.fds.clone());
        let mm = if vm {
            self.m.mms.get_mut(&pmm).unwrap().users += 1;
            pmm
        } else {
            self.m.new_mm()
        };
        for d in fds.values() {
            self.m.descs.get_mut(d).unwrap().refs += 1;
        }
        self.m.procs.insert(
            pid,
            MProc {
                mm,
                fds,
                clients: Vec::new(),
                pending: Some(parent),
                children: Vec::new(),
            },
        );
        self.m.procs.get_mut(&parent).unwrap().children.push(ticket);
        self.m.tickets.insert(ticket, pid);
    }

    pub(super) fn op_claim(&mut self) {
        let tickets: Vec<u64> = self.m.tickets.keys().copied().collect();
        let Some(t) = self.g.pick(&tickets) else {
            return;
        };
        let c = self.client();
        let pid = crate::tests::sim::hello(&mut self.r.s, c, 0, Some(t)).unwrap();
        assert_eq!(self.m.tickets.remove(&t), Some(pid));
        let child = self.m.procs.get_mut(&pid).unwrap();
        let parent = child.pending.take().unwrap();
        child.clients.push(c);
        self.m
            .procs
            .get_mut(&parent)
            .unwrap()
            .children
            .retain(|&x| x != t);
        self.count("clone claimed");
    }

    pub(super) fn op_exit(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        assert_eq!(self.r.call(c, Request::Exit), Reply::Done);
        self.m.exit(pid);
        self.count("exit");
    }

    pub(super) fn op_disconnect(&mut self) {
        let Some((c, pid)) = self.caller() else {
            return;
        };
        self.r.disconnect(c);
        let p = self.m.procs.get_mut(&pid).unwrap();
        p.clients.retain(|&x| x != c);
        if p.clients.is_empty() {
            self.m.exit(pid);
            self.count("disconnect exit");
        }
    }
}
