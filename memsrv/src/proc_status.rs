//! `/proc/<pid>/status` (spec §9; Linux's `proc_pid_status` in
//! fs/proc/array.c with `task_mem` of fs/proc/task_mmu.c, in that order
//! and format) for the fields memsrv knows, and [`ProcView::Users`], what
//! each uid holds against the limits (`nommu-ctl users`).
//!
//! memsrv knows one uid and one gid per process (the effective ones the
//! transport vouched for), so the four `Uid:`/`Gid:` columns (real,
//! effective, saved, filesystem) repeat it. Every mapping on no-MMU is
//! resident, so `VmRSS` is `VmSize` and `VmHWM` is `VmPeak`. `PPid` is
//! known while a clone child waits to be claimed; a live process's parent
//! is the host's business, shown as 0. `Name` is what the home told
//! ([`MemoryServer::name_connection`]), empty if nothing.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use protocol::message::{UserUsage, UsersHead};
use protocol::{Errno, ProcView};

use crate::mm::MmId;
use crate::proc_views::push_postcard;
use crate::process::ProcState;
use crate::shm::SHM_DRIVER;
use crate::{ClientId, MemoryServer, PhysicalMemory};

/// Longest name `/proc/<pid>/status` shows (`TASK_COMM_LEN` − 1).
const COMM_LEN: usize = 15;

impl<M: PhysicalMemory> MemoryServer<M> {
    /// Whether a connection of `uid` may be accepted now: `EAGAIN` once
    /// `uid` holds [`crate::Config::max_clients_per_user`] connections.
    /// A transport asks before [`Self::connect`] and refuses the peer.
    pub fn may_connect(&self, uid: u32) -> Result<(), Errno> {
        self.nommu.charges.may_connect(uid)
    }

    /// The program's name on connection `client` (the home learns it from
    /// the host, e.g. `/proc/<pid>/comm`), shown as `Name:` in
    /// `/proc/<pid>/status`; cut to 15 bytes as the kernel's `comm`.
    pub fn name_connection(&mut self, client: ClientId, name: &str) {
        let mut end = name.len().min(COMM_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        self.nommu.charges.name(client, &name[..end]);
    }

    /// The text of `/proc/<pid>/status` of `pid`, read by `reader`.
    pub(crate) fn process_status(&self, pid: u32, reader: u32) -> Result<String, Errno> {
        let p = self.procs.procs.get(&pid).ok_or(Errno::ESRCH)?;
        let name = p
            .connections
            .iter()
            .find_map(|c| self.nommu.charges.name_of(*c))
            .unwrap_or("");
        let state = match p.state {
            ProcState::Live if pid == reader => "R (running)",
            _ => "S (sleeping)",
        };
        let ppid = match p.state {
            ProcState::Pending { parent, .. } => parent,
            ProcState::Live => 0,
        };
        let mut out = String::new();
        let _ = write!(
            out,
            "Name:\t{name}\nState:\t{state}\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t{ppid}\n\
             TracerPid:\t{}\nUid:\t{u}\t{u}\t{u}\t{u}\nGid:\t{g}\t{g}\t{g}\t{g}\n",
            p.tracer.unwrap_or(0),
            u = p.uid,
            g = p.gid,
        );
        let mem = self.mem_counts(p.mm);
        let kb = |bytes: u64| bytes / 1024;
        for (field, bytes) in [
            ("VmPeak", mem.peak),
            ("VmSize", mem.size),
            ("VmHWM", mem.peak),
            ("VmRSS", mem.size),
            ("RssAnon", mem.anon),
            ("RssFile", mem.file),
            ("RssShmem", mem.shmem),
        ] {
            let _ = writeln!(out, "{field}:\t{:>8} kB", kb(bytes));
        }
        Ok(out)
    }

    fn mem_counts(&self, mm: MmId) -> MemCounts {
        let mut counts = MemCounts::default();
        let Some(m) = self.nommu.mms.get(&mm) else {
            return counts;
        };
        counts.size = m.total_vm;
        counts.peak = m.hiwater_vm;
        for (key, vma) in m.iter() {
            let len = key.end - key.start;
            match &vma.backing {
                None => counts.anon += len,
                Some(b) if b.key.driver == SHM_DRIVER => counts.shmem += len,
                Some(_) => counts.file += len,
            }
        }
        counts
    }

    /// [`ProcView::Users`].
    pub(crate) fn users_view(&self) -> Vec<u8> {
        let mut processes: BTreeMap<u32, u32> = BTreeMap::new();
        for p in self.procs.procs.values() {
            if p.state == ProcState::Live {
                *processes.entry(p.uid).or_default() += 1;
            }
        }
        let charges = &self.nommu.charges;
        let mut users: BTreeMap<u32, UserUsage> = BTreeMap::new();
        let blank = |uid| UserUsage {
            uid,
            mapped_pages: 0,
            shm_pages: 0,
            fs_pages: 0,
            processes: 0,
            clients: 0,
        };
        for (uid, charge, clients) in charges.users() {
            let u = users.entry(uid).or_insert_with(|| blank(uid));
            u.mapped_pages = charge.mapped;
            u.shm_pages = charge.shm;
            u.fs_pages = charge.store;
            u.clients = clients;
        }
        for (&uid, &n) in &processes {
            users.entry(uid).or_insert_with(|| blank(uid)).processes = n;
        }
        let limits = charges.limits;
        let mut out = Vec::new();
        push_postcard(
            &mut out,
            &UsersHead {
                process_limit_pages: limits.process_pages,
                user_limit_pages: limits.user_pages,
                clients_limit: limits.clients_per_user,
                users: u32::try_from(users.len()).unwrap_or(u32::MAX),
            },
        );
        for user in users.values() {
            push_postcard(&mut out, user);
        }
        out
    }

    /// The status views' bytes; `None` for the other views.
    pub(crate) fn status_view(
        &self,
        view: ProcView,
        reader: u32,
    ) -> Option<Result<Vec<u8>, Errno>> {
        let text = match view {
            ProcView::ProcessStatus { pid } => self.process_status(pid, reader),
            ProcView::SelfStatus => self.process_status(reader, reader),
            ProcView::Users => return Some(Ok(self.users_view())),
            _ => return None,
        };
        Some(text.map(String::into_bytes))
    }
}

/// One address space's mapped bytes, by kind.
#[derive(Default)]
struct MemCounts {
    size: u64,
    peak: u64,
    anon: u64,
    file: u64,
    shmem: u64,
}
