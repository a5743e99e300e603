//! The memory server's whole mapping logic, as a deterministic state machine.
//!
//! `memsrv` owns the page allocator, the global region registry, the
//! per-process VMA sets, the `/proc` text and the invariant checker. It
//! never blocks, spawns or reads a clock: a home (threads, the `memsrvd`
//! daemon, the bare-metal kernel) feeds it frames with
//! [`MemoryServer::handle_frame`] and carries out the [`Effect`]s it returns.
//! Who sent a frame is the [`ClientId`] the transport names, never a field
//! of the message.
//!
//! Sessions: a connection first sends `Hello`. `Hello { ticket: None }`
//! makes a new process — numbered by the host pid in [`Credentials`] when
//! there is one (further connections of the same host pid and uid join it),
//! else from [`Config::first_pid`] up. `Hello { ticket: Some(t) }` claims the
//! clone child `t` names (single use; unknown or used → `ESRCH`). A second
//! `Hello` on a bound connection → `EINVAL`; anything else before `Hello` →
//! `ESRCH`; a connection the transport never announced → `ENOTCONN`. `Exit`
//! ends the process and unbinds its connections (they may say `Hello`
//! again); [`MemoryServer::disconnect`] of a process's last connection is an
//! exit. Unclaimed clone children end with their parent.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod invariants;
mod mm;
mod mmap;
mod munmap;
mod nommu;
mod page_alloc;
mod proc_fs;
mod process;
mod region;
pub mod vm_flags;

#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use protocol::{
    decode_request, encode_reply, Errno, ProcView, Reply, Request, Sysctl, MAX_FRAME, PAGE_SIZE,
    PROC_CHUNK,
};

use crate::mmap::MmapArgs;
use crate::nommu::{Nommu, Tunables};
use crate::process::{Connection, ProcessTable};

/// Configuration fixed at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the first byte of the arena (page aligned).
    pub arena_base: u64,
    /// Size of the arena in bytes (a multiple of the page size).
    pub arena_size: u64,
    /// `/proc/sys/vm/nr_trim_pages` at start (spec §4.2; default 1).
    pub nr_trim_pages: u32,
    /// Whether `MAP_UNINITIALIZED` is honoured (`CONFIG_MMAP_ALLOW_UNINITIALIZED`).
    pub allow_uninitialized: bool,
    /// Largest contiguous allocation order, in pages (Linux default 10).
    pub max_order: u32,
    /// First process id the server hands out itself. Homes that also pass
    /// host pids should start above the host's pid range, so the two never
    /// meet.
    pub first_pid: u32,
    /// Most mappings one address space may hold (`max_map_count`).
    pub max_map_count: usize,
    /// Seed mixed into clone tickets so they cannot be guessed.
    pub ticket_secret: u64,
    /// `sizeof(long)` of the clients' ABI (4 or 8): the `/proc` maps path
    /// column (`25 + 6·sizeof(void*) − 1`) and where lengths and page
    /// offsets wrap in `mmap` validation.
    pub word_size: u32,
    /// Most clone children one process may have waiting to be claimed.
    pub max_pending_children: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            arena_base: 0,
            arena_size: 0,
            nr_trim_pages: 1,
            allow_uninitialized: false,
            max_order: 10,
            first_pid: 1,
            max_map_count: 65530,
            ticket_secret: 0x9e37_79b9_7f4a_7c15,
            word_size: 8,
            max_pending_children: 64,
        }
    }
}

/// The memory the arena addresses refer to. The home supplies it: real
/// memory in every home, a simulated buffer in tests.
pub trait PhysicalMemory {
    /// Set `len` bytes at `addr` to `byte`. `[addr, addr+len)` always lies
    /// inside the arena.
    fn fill(&mut self, addr: u64, len: u64, byte: u8);
}

/// A transport's name for one connection. The transport makes it unique
/// for the life of the server (a generation in the upper bits, say), so a
/// reconnecting peer is never mistaken for the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// What the transport knows about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The peer's own process id where the home has one (a host pid);
    /// `None` lets the server number the process.
    pub pid: Option<u32>,
    pub uid: u32,
    pub gid: u32,
}

/// An encoded frame ready to send.
#[derive(Clone)]
pub struct FrameBuf {
    pub len: usize,
    pub bytes: [u8; MAX_FRAME],
}

impl FrameBuf {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn reply(tag: u32, reply: &Reply) -> Self {
        let mut bytes = [0u8; MAX_FRAME];
        let len = encode_reply(tag, reply, &mut bytes);
        Self { len, bytes }
    }
}

/// Something the home must do on the server's behalf.
#[derive(Clone)]
// Replies stay inline: effects are reused between frames, so boxing would
// add an allocation per reply for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Effect {
    /// Send this frame to that client.
    Reply { to: ClientId, frame: FrameBuf },
    /// Close that client's connection (a frame that could not be answered).
    Drop { client: ClientId },
}

/// Counters a home or test reads without going through `/proc` text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub total_pages: u64,
    pub free_pages: u64,
    /// Pages held by copy and anonymous regions (`MmapCopy` in pages).
    pub mmap_copy_pages: u64,
    pub regions: usize,
    pub vmas: usize,
    /// Running processes and clone children not claimed yet.
    pub processes: usize,
}

/// The memory server.
pub struct MemoryServer<M: PhysicalMemory> {
    memory: M,
    config: Config,
    vm: Nommu,
    procs: ProcessTable,
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// A server managing `[config.arena_base, +arena_size)`. `EINVAL` for an
    /// arena that is not page aligned, wraps, or has more pages than the
    /// allocator indexes, an order above 30, or a word size other than 4/8.
    pub fn new(config: Config, memory: M) -> Result<Self, Errno> {
        let aligned = config.arena_base.is_multiple_of(PAGE_SIZE)
            && config.arena_size.is_multiple_of(PAGE_SIZE);
        let fits = config.arena_base.checked_add(config.arena_size).is_some()
            && config.arena_size / PAGE_SIZE < u64::from(u32::MAX);
        if !aligned
            || !fits
            || config.max_order > page_alloc::ORDER_LIMIT
            || !matches!(config.word_size, 4 | 8)
        {
            return Err(Errno::EINVAL);
        }
        let tunables = Tunables {
            nr_trim_pages: config.nr_trim_pages,
            allow_uninitialized: config.allow_uninitialized,
            max_map_count: config.max_map_count,
            ulong_max: if config.word_size == 4 {
                u64::from(u32::MAX)
            } else {
                u64::MAX
            },
        };
        let vm = Nommu::new(
            config.arena_base,
            config.arena_size,
            config.max_order,
            tunables,
        );
        let procs = ProcessTable::new(config.first_pid, config.ticket_secret);
        Ok(Self {
            memory,
            config,
            vm,
            procs,
        })
    }

    /// A transport accepted a connection. It speaks for no process until
    /// its `Hello`.
    pub fn connect(&mut self, client: ClientId, credentials: Credentials) {
        if self.procs.conns.contains_key(&client) {
            // A transport reusing a live id: the old connection is gone.
            self.disconnect(client);
        }
        self.procs.conns.insert(
            client,
            Connection {
                credentials,
                pid: None,
            },
        );
    }

    /// A connection closed or its peer died: release what it held. The
    /// process exits if this was its last connection.
    pub fn disconnect(&mut self, client: ClientId) {
        self.procs.disconnect(&mut self.vm, client);
    }

    /// Decode one frame from `client`, act on it, and push the resulting
    /// effects (at least one reply or drop for every frame).
    pub fn handle_frame(&mut self, client: ClientId, frame: &[u8], effects: &mut Vec<Effect>) {
        match decode_request(frame) {
            Ok(f) => {
                let reply = self.handle(client, f.message);
                effects.push(Effect::Reply {
                    to: client,
                    frame: FrameBuf::reply(f.tag, &reply),
                });
            }
            Err(e) => match e.tag() {
                Some(tag) => effects.push(Effect::Reply {
                    to: client,
                    frame: FrameBuf::reply(tag, &Reply::Error(e.errno())),
                }),
                None => effects.push(Effect::Drop { client }),
            },
        }
    }

    /// Act on one decoded request from `client` and answer it. Cheap enough
    /// for a benchmark harness to call directly (no encoding involved).
    pub fn handle(&mut self, client: ClientId, request: Request) -> Reply {
        self.dispatch(client, request).unwrap_or_else(Reply::Error)
    }

    fn dispatch(&mut self, client: ClientId, request: Request) -> Result<Reply, Errno> {
        if let Request::Hello { ticket } = request {
            let pid = self.procs.hello(&mut self.vm, client, ticket)?;
            return Ok(Reply::Hello {
                pid,
                arena_base: self.config.arena_base,
                arena_size: self.config.arena_size,
            });
        }
        let (pid, caller) = self.procs.caller(client)?;
        let (mm, uid) = (caller.mm, caller.uid);
        match request {
            Request::Hello { .. } => Err(Errno::EINVAL),
            Request::Clone { flags } => {
                let max = self.config.max_pending_children;
                let (pid, ticket) = self.procs.clone_process(&mut self.vm, client, flags, max)?;
                Ok(Reply::Cloned { pid, ticket })
            }
            Request::Fork => Err(Errno::EINVAL),
            Request::Exit => {
                self.procs.exit(&mut self.vm, pid);
                Ok(Reply::Done)
            }
            Request::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                offset,
                unit,
            } => {
                let args = MmapArgs {
                    addr,
                    len,
                    prot,
                    flags,
                    fd,
                    offset,
                    unit,
                };
                let addr = self.vm.do_mmap(mm, &args, &mut self.memory)?;
                Ok(Reply::Mapped { addr })
            }
            Request::Munmap { addr, len } => {
                self.vm.do_munmap(mm, addr, len)?;
                Ok(Reply::Done)
            }
            Request::ReadProc { view, offset } => {
                let text = self.proc_text(view, mm, uid)?;
                Ok(proc_slice(&text, offset))
            }
            Request::ReadSysctl {
                name: Sysctl::NrTrimPages,
            } => Ok(Reply::Value(i64::from(self.vm.tunables.nr_trim_pages))),
            Request::WriteSysctl {
                name: Sysctl::NrTrimPages,
                value,
            } => {
                // The file is 0644: only root opens it for writing.
                if uid != 0 {
                    return Err(Errno::EACCES);
                }
                // proc_dointvec_minmax: an int, minimum 0.
                if !(0..=i64::from(i32::MAX)).contains(&value) {
                    return Err(Errno::EINVAL);
                }
                self.vm.tunables.nr_trim_pages = value as u32;
                Ok(Reply::Done)
            }
            // File calls and backing devices are not served yet.
            _ => Err(Errno::ENOSYS),
        }
    }

    fn proc_text(
        &self,
        view: ProcView,
        mm: mm::MmId,
        uid: u32,
    ) -> Result<alloc::string::String, Errno> {
        let word = self.config.word_size;
        let maps_of = |id: mm::MmId| {
            self.vm
                .mms
                .get(&id)
                .map(|m| proc_fs::process_maps(m, word))
                .unwrap_or_default()
        };
        Ok(match view {
            ProcView::GlobalMaps => proc_fs::global_maps(&self.vm.regions, word),
            ProcView::SelfMaps => maps_of(mm),
            ProcView::ProcessMaps { pid } => {
                let target = self.procs.procs.get(&pid).ok_or(Errno::ESRCH)?;
                // PTRACE_MODE_READ: same uid, or root.
                if uid != 0 && uid != target.uid {
                    return Err(Errno::EACCES);
                }
                maps_of(target.mm)
            }
            ProcView::Meminfo => proc_fs::meminfo(&proc_fs::MemCounts {
                total: self.vm.pages.total_pages(),
                free: self.vm.pages.free_pages(),
                mmap_copy: self.vm.mmap_copy_pages,
            }),
        })
    }

    /// Check every internal invariant (tests run this after every step).
    pub fn check_invariants(&self) -> Result<(), alloc::string::String> {
        invariants::check(&self.vm, &self.procs)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            total_pages: self.vm.pages.total_pages(),
            free_pages: self.vm.pages.free_pages(),
            mmap_copy_pages: self.vm.mmap_copy_pages,
            regions: self.vm.regions.len(),
            vmas: self.vm.vma_count(),
            processes: self.procs.procs.len(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The memory, for a home or test that writes through mappings.
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.memory
    }

    /// Whether the allocator holds a free block of `2^order` pages (lets a
    /// test tell a fragmented arena from a wrong `ENOMEM`).
    pub fn has_free_block(&self, order: u32) -> bool {
        self.vm.pages.has_block(order)
    }
}

/// The `PROC_CHUNK` bytes of `text` from `offset`, and its total length.
fn proc_slice(text: &str, offset: u32) -> Reply {
    let bytes = text.as_bytes();
    let from = (offset as usize).min(bytes.len());
    let to = from.saturating_add(PROC_CHUNK).min(bytes.len());
    let mut data = heapless::Vec::new();
    // to − from ≤ PROC_CHUNK, so this always fits.
    let _ = data.extend_from_slice(&bytes[from..to]);
    Reply::ProcText {
        total: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        data,
    }
}
