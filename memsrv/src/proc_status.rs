//! `/proc/<pid>/status` (spec §9; Linux's `proc_pid_status` in
//! fs/proc/array.c with `task_mem` of fs/proc/task_mmu.c, in that order
//! and format) for the fields memsrv knows, and [`ProcView::Users`], what
//! each uid holds against the limits (`nommu-ctl users`).
//!
//! Identity, per home, as the kernel holds it at the time of the read:
//! - A process behind which the home names a host process (memsrvd: the
//!   host pid its connection's [`crate::Credentials`] carry) shows what the
//!   home's [`RecordSource`] reads of it then (memsrvd: the host's
//!   `/proc/<hostpid>/status`): `Umask`, `PPid` and the real, saved and
//!   filesystem ids; the effective ids are the transport's (`SO_PEERCRED`,
//!   then `SCM_CREDENTIALS`), as every check of the server uses them.
//! - Any other process (the threads home, the board's tasks, a clone child
//!   of no host process, memsrvd's `--process-per-connection`) has no ids
//!   but the ones its transport vouched for and nothing changes them
//!   behind the server, so the four `Uid:`/`Gid:` columns (real, effective,
//!   saved, filesystem) repeat them; `Umask` is `0000`, as no mask applies
//!   to the modes it names; `PPid` is the process that cloned it while
//!   that lives, else 0: a process the home started has its parent outside
//!   memsrv's pid space, and Linux shows a parent the reader cannot see as
//!   0 (memsrv has no init to reparent an orphan to).
//!
//! Every mapping on no-MMU is resident, so `VmRSS` is `VmSize` and `VmHWM`
//! is `VmPeak`. `Name` is what the home told
//! ([`MemoryServer::name_connection`]), empty if nothing.

use alloc::boxed::Box;
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

/// What a home's kernel holds of one of its processes at the time of a
/// read, for `/proc/<pid>/status` (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelRecord {
    /// The parent's pid as the reader sees it (0: none it can see).
    pub ppid: u32,
    pub umask: u32,
    /// Real, saved set and filesystem user ids (the effective one is the
    /// transport's).
    pub uids: [u32; 3],
    /// Real, saved set and filesystem group ids.
    pub gids: [u32; 3],
}

/// Reads the [`KernelRecord`] of a home's process by its host pid, at the
/// time of the call; `None` if there is none to read (it ended).
pub type RecordSource = Box<dyn Fn(u32) -> Option<KernelRecord> + Send>;

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

    /// Have `source` read what the home's kernel holds of a process that
    /// is a host process (module docs), each time its status is read.
    pub fn read_kernel_records(&mut self, source: RecordSource) {
        self.procs.records = Some(source);
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
        let host = p
            .connections
            .iter()
            .find_map(|c| self.procs.conns.get(c)?.credentials.pid);
        let kernel = host.and_then(|hp| self.procs.records.as_ref()?(hp));
        let (ppid, umask, uid, gid) = match kernel {
            Some(k) => (
                k.ppid,
                k.umask,
                [k.uids[0], p.uid, k.uids[1], k.uids[2]],
                [k.gids[0], p.gid, k.gids[1], k.gids[2]],
            ),
            None => {
                let ppid = match p.state {
                    ProcState::Pending { parent, .. } => parent,
                    ProcState::Live => p.parent.unwrap_or(0),
                };
                (ppid, 0, [p.uid; 4], [p.gid; 4])
            }
        };
        let mut out = String::new();
        let [ru, eu, su, fu] = uid;
        let [rg, eg, sg, fg] = gid;
        let _ = write!(
            out,
            "Name:\t{name}\nUmask:\t{umask:04o}\nState:\t{state}\nTgid:\t{pid}\nPid:\t{pid}\n\
             PPid:\t{ppid}\nTracerPid:\t{}\nUid:\t{ru}\t{eu}\t{su}\t{fu}\n\
             Gid:\t{rg}\t{eg}\t{sg}\t{fg}\n",
            p.tracer.unwrap_or(0),
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
