//! Processes, the connections that speak for them, and clone children
//! waiting to be claimed (spec §10).
//!
//! A connection becomes a process with `Hello`. `Clone` prepares a child
//! (sharing the caller's address space with `CLONE_VM`, else with a new
//! empty one) that a new connection claims with the single-use ticket. A
//! process ends with `Exit` or when its last connection goes.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::mm::MmId;
use crate::nommu::Nommu;
use crate::{ClientId, Credentials};
use protocol::linux::CLONE_VM;
use protocol::Errno;

/// Whether a process is running or still waiting for its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    Live,
    /// A clone child not claimed yet; released when `parent` exits.
    Pending {
        ticket: u64,
        parent: u32,
    },
}

#[derive(Clone, Debug)]
pub struct Process {
    pub mm: MmId,
    pub uid: u32,
    pub gid: u32,
    /// The pid is the peer's own host pid (so other connections of that
    /// host process join it), rather than one the server chose.
    pub host_pid: bool,
    pub state: ProcState,
    pub connections: BTreeSet<ClientId>,
    /// Tickets of this process's children not claimed yet.
    pub pending_children: BTreeSet<u64>,
    /// The process tracing this one (`PtraceAttach`): its new private file
    /// mappings are not shareable.
    pub tracer: Option<u32>,
    /// The process that cloned this one, while it lives (`PPid`); `None`
    /// for a process its home started.
    pub parent: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Connection {
    pub credentials: Credentials,
    /// Supplementary groups, as the transport reported them.
    pub groups: Vec<u32>,
    pub pid: Option<u32>,
}

/// splitmix64's output function: a bijective mix with full avalanche.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub struct ProcessTable {
    pub procs: BTreeMap<u32, Process>,
    pub conns: BTreeMap<ClientId, Connection>,
    /// Unclaimed tickets → child pid.
    pub tickets: BTreeMap<u64, u32>,
    /// Processes that ended since the server last looked (their
    /// descriptors are still to be closed).
    pub exited: Vec<u32>,
    /// Where the home reads what its kernel holds of a process
    /// ([`crate::MemoryServer::read_kernel_records`]).
    pub records: Option<crate::RecordSource>,
    first_pid: u32,
    next_pid: u32,
    ticket_secret: u64,
    ticket_counter: u64,
}

impl ProcessTable {
    pub fn new(first_pid: u32, ticket_secret: u64) -> Self {
        let first_pid = first_pid.max(1);
        Self {
            procs: BTreeMap::new(),
            conns: BTreeMap::new(),
            tickets: BTreeMap::new(),
            exited: Vec::new(),
            records: None,
            first_pid,
            next_pid: first_pid,
            ticket_secret,
            ticket_counter: 0,
        }
    }

    /// The next free server pid, counting up from `first_pid` and wrapping.
    pub fn alloc_pid(&mut self) -> Result<u32, Errno> {
        // At most procs.len() pids are taken, so this many tries suffice.
        for _ in 0..=self.procs.len() {
            let pid = self.next_pid;
            self.next_pid = match self.next_pid.checked_add(1) {
                Some(p) => p,
                None => self.first_pid,
            };
            if !self.procs.contains_key(&pid) {
                return Ok(pid);
            }
        }
        Err(Errno::EAGAIN)
    }

    /// A fresh ticket: the secret and a counter mixed, never one in use.
    pub fn new_ticket(&mut self) -> u64 {
        loop {
            self.ticket_counter = self.ticket_counter.wrapping_add(1);
            let t = splitmix64(self.ticket_secret ^ splitmix64(self.ticket_counter));
            if !self.tickets.contains_key(&t) {
                return t;
            }
        }
    }

    /// The live process a connection speaks for.
    pub fn caller(&self, client: ClientId) -> Result<(u32, &Process), Errno> {
        let conn = self.conns.get(&client).ok_or(Errno::ENOTCONN)?;
        let pid = conn.pid.ok_or(Errno::ESRCH)?;
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        Ok((pid, p))
    }
}

impl ProcessTable {
    /// `Hello`: bind the connection to a new process, to the live process of
    /// the same host pid, or to the clone child named by `ticket`.
    pub fn hello(
        &mut self,
        nommu: &mut Nommu,
        client: ClientId,
        ticket: Option<u64>,
    ) -> Result<u32, Errno> {
        let conn = self.conns.get(&client).ok_or(Errno::ENOTCONN)?;
        if conn.pid.is_some() {
            // A connection speaks for one process for its whole life.
            return Err(Errno::EINVAL);
        }
        let creds = conn.credentials;
        let pid = match ticket {
            Some(t) => {
                let pid = self.tickets.remove(&t).ok_or(Errno::ESRCH)?;
                let child = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
                if let ProcState::Pending { parent, .. } = child.state {
                    child.state = ProcState::Live;
                    if let Some(p) = self.procs.get_mut(&parent) {
                        p.pending_children.remove(&t);
                    }
                }
                pid
            }
            None => match creds.pid {
                Some(hp) => match self.procs.get(&hp) {
                    Some(p) if p.host_pid && p.state == ProcState::Live => {
                        if p.uid != creds.uid || p.gid != creds.gid {
                            return Err(Errno::EACCES);
                        }
                        hp
                    }
                    // A server-numbered process holds that number.
                    Some(_) => return Err(Errno::EEXIST),
                    None => {
                        self.create(nommu, hp, creds, true);
                        hp
                    }
                },
                None => {
                    let pid = self.alloc_pid()?;
                    self.create(nommu, pid, creds, false);
                    pid
                }
            },
        };
        if let Some(p) = self.procs.get_mut(&pid) {
            p.connections.insert(client);
        }
        if let Some(c) = self.conns.get_mut(&client) {
            c.pid = Some(pid);
        }
        Ok(pid)
    }

    fn create(&mut self, nommu: &mut Nommu, pid: u32, creds: Credentials, host_pid: bool) {
        let mm = nommu.new_mm();
        self.procs.insert(
            pid,
            Process {
                mm,
                uid: creds.uid,
                gid: creds.gid,
                host_pid,
                state: ProcState::Live,
                connections: BTreeSet::new(),
                pending_children: BTreeSet::new(),
                tracer: None,
                parent: None,
            },
        );
    }

    /// `clone(flags)`: prepare a child for a new connection to claim.
    pub fn clone_process(
        &mut self,
        nommu: &mut Nommu,
        client: ClientId,
        flags: u64,
        max_pending: usize,
    ) -> Result<(u32, u64), Errno> {
        let (parent_pid, parent) = self.caller(client)?;
        if parent.pending_children.len() >= max_pending {
            return Err(Errno::EAGAIN);
        }
        let (parent_mm, uid, gid) = (parent.mm, parent.uid, parent.gid);
        let pid = self.alloc_pid()?;
        let mm = if flags & CLONE_VM != 0 {
            nommu.get_mm(parent_mm);
            parent_mm
        } else {
            // Not refused by Linux: the child gets a new, empty address
            // space (spec §10.3 server decision).
            nommu.new_mm()
        };
        let ticket = self.new_ticket();
        self.tickets.insert(ticket, pid);
        self.procs.insert(
            pid,
            Process {
                mm,
                uid,
                gid,
                host_pid: false,
                state: ProcState::Pending {
                    ticket,
                    parent: parent_pid,
                },
                connections: BTreeSet::new(),
                pending_children: BTreeSet::new(),
                tracer: None,
                parent: Some(parent_pid),
            },
        );
        if let Some(p) = self.procs.get_mut(&parent_pid) {
            p.pending_children.insert(ticket);
        }
        Ok((pid, ticket))
    }

    /// The process ends: children nobody claimed go with it, every
    /// connection it had becomes unbound, its address space loses a user.
    pub fn exit(&mut self, nommu: &mut Nommu, pid: u32) {
        let Some(p) = self.procs.remove(&pid) else {
            return;
        };
        // Detaches on the way out are this process's (shm_lpid).
        nommu.shm.actor = pid;
        self.exited.push(pid);
        for ticket in &p.pending_children {
            if let Some(child) = self.tickets.remove(ticket) {
                if let Some(c) = self.procs.remove(&child) {
                    self.exited.push(child);
                    nommu.put_mm(c.mm);
                }
            }
        }
        if let ProcState::Pending { ticket, parent } = p.state {
            self.tickets.remove(&ticket);
            if let Some(parent) = self.procs.get_mut(&parent) {
                parent.pending_children.remove(&ticket);
            }
        }
        for client in &p.connections {
            if let Some(c) = self.conns.get_mut(client) {
                c.pid = None;
            }
        }
        // Its children lose their parent (a reused pid must not become it).
        for child in self.procs.values_mut() {
            if child.parent == Some(pid) {
                child.parent = None;
            }
        }
        nommu.put_mm(p.mm);
    }

    /// A connection went away; its process ends if it was the last one.
    pub fn disconnect(&mut self, nommu: &mut Nommu, client: ClientId) {
        let Some(conn) = self.conns.remove(&client) else {
            return;
        };
        let Some(pid) = conn.pid else {
            return;
        };
        let last = match self.procs.get_mut(&pid) {
            Some(p) => {
                p.connections.remove(&client);
                p.connections.is_empty()
            }
            None => false,
        };
        if last {
            self.exit(nommu, pid);
        }
    }
}
