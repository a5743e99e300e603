//! The memory server's whole mapping logic, as a deterministic state machine.
//!
//! `memsrv` owns the page allocator, the global region registry, the
//! per-process VMA sets, the `/proc` text and the invariant checker. It
//! never blocks, spawns or reads a clock: a home (threads, the `memsrvd`
//! daemon, the bare-metal kernel) feeds it frames with
//! [`MemoryServer::handle_frame`] and carries out the [`Effect`]s it returns
//! with [`carry_out`], through its own [`Courier`].
//! Who sent a frame is the [`ClientId`] the transport names, never a field
//! of the message; what it may do follows the [`Credentials`] the transport
//! reported, as changed since by [`MemoryServer::set_identity`].
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
//!
//! Drivers (`docs/backing-devices.md`): a connection that sends
//! `RegisterDriver` (no `Hello` needed; root or [`Config::drivers`] alone,
//! else `EPERM`; a point served, or above or inside one, `EBUSY`) serves a
//! mount; the server sends it
//! driver requests as [`Effect::Send`] frames of kind 3 and it answers
//! with kind-4 frames through [`MemoryServer::handle_frame`]. A client call
//! that needs a driver (open, read, write, lseek to the end, fstat,
//! ftruncate, mmap of a file) becomes a pending operation:
//! [`MemoryServer::handle_frame`] then pushes no reply;
//! the reply (tag echoed) is pushed by the later call that completes it —
//! the driver's answer, the driver's death ([`MemoryServer::disconnect_with`])
//! or a timeout ([`MemoryServer::tick`]). Operations on one object run one
//! at a time, in order; other clients are served meanwhile.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

// What a home sees besides `MemoryServer`: its configuration, the effects
// it carries out, the counters it reads.
mod config;
mod effects;
mod outcome;
mod stats;

// The mapping state (mm/nommu.c): pages, regions, address spaces.
mod mm;
mod nommu;
mod page_alloc;
mod region;
pub mod vm_flags;
mod vma_set;

// The memory calls on that state (spec §2–§7, §10).
mod exec;
mod memcalls;
mod mmap;
mod mremap;
mod munmap;
mod release;
mod reserve;
mod truncate;

// Processes and what they share besides mappings (spec §8, §7.1–§7.4).
mod charge;
mod futex;
mod process;
mod ptrace;
mod shm;

// Files and the drivers behind them: the mount table and descriptors, the
// operations that wait for a driver, the storage drivers hold.
mod attributes;
mod backing;
mod driver_ranges;
mod file_flags;
mod files;
mod ops;

// Reading the state: `/proc` texts (spec §9) and the invariant checker.
mod invariants;
mod proc_fs;
mod proc_status;
mod proc_views;

#[cfg(test)]
mod tests;

pub use config::{Config, DriverOwner};
pub use effects::{carry_out, Answer, Courier, Effect, FrameBuf};
pub use page_alloc::Placement;
pub use proc_status::{KernelRecord, RecordSource};
pub use reserve::SharedReserve;
pub use stats::Stats;

use alloc::vec::Vec;
use protocol::linux::MAP_ANONYMOUS;
use protocol::{
    decode_incoming, DriverReply, Errno, Incoming, Reply, Request, ShortRequest, Sysctl, PAGE_SIZE,
};

use crate::files::Files;
use crate::mmap::{offset_to_pgoff, MmapArgs};
use crate::nommu::{Nommu, Tunables};
use crate::ops::Operations;
use crate::outcome::Outcome;
use crate::process::{Connection, ProcessTable};

/// The memory the arena addresses refer to. The home supplies it: real
/// memory in every home, a simulated buffer in tests.
pub trait PhysicalMemory {
    /// Set `len` bytes at `addr` to `byte`. `[addr, addr+len)` always lies
    /// inside the arena.
    fn fill(&mut self, addr: u64, len: u64, byte: u8);
    /// Copy the bytes at `[addr, addr+buf.len())` into `buf` (ptrace
    /// peeks). The range always lies inside the arena.
    fn read(&self, addr: u64, buf: &mut [u8]);
    /// Copy `bytes` to `addr` (ptrace pokes). The range always lies inside
    /// the arena.
    fn write(&mut self, addr: u64, bytes: &[u8]);
    /// Copy `len` bytes from `src` to `dst`; the ranges may overlap (a
    /// mapping moved by `mremap`). Both always lie inside the arena.
    fn copy(&mut self, src: u64, dst: u64, len: u64);
    /// The aligned 32-bit word at `addr`, read as a futex reads it: one
    /// atomic load, since clients store to it concurrently.
    fn load_u32(&self, addr: u64) -> u32;
    /// Replace the aligned 32-bit word at `addr` by `f(old)` in one atomic
    /// step and return `old` (`FUTEX_WAKE_OP`'s operation: clients store
    /// to the word concurrently, and a load then a store would lose their
    /// update). `f` may be called more than once (a compare-exchange loop).
    fn update_u32(&mut self, addr: u64, f: &dyn Fn(u32) -> u32) -> u32;
    /// The driver request `tag` is awaited no longer: answered, or its
    /// operation failed (a time-out, a bad answer, its driver gone).
    /// Called before anything the request was to fill is used, freed or
    /// handed out again, so a home that lent the driver arena memory for
    /// it (the board's PMP: the page a `Read` fills) takes it back here,
    /// with no moment in which the driver could still write a page that
    /// is already someone else's.
    fn driver_call_ended(&mut self, _tag: u32) {}
    /// Whether address space `mm` may hold one more mapping as far as the
    /// home is concerned: a home that confines each process to what it
    /// has mapped (the board's PMP) keeps every process's ranges in a
    /// table of fixed size. `false` fails the call that would add the
    /// mapping (`mmap`, `shmat`) with `ENOMEM` before anything changes, as
    /// `max_map_count` does in Linux.
    fn may_add_mapping(&self, _mm: u64) -> bool {
        true
    }
}

/// The futex word access of [`PhysicalMemory`] for memory only the
/// server's thread touches (simulated arenas in tests and fuzzing), built
/// on its `read` and `write`: there a load then a store is atomic enough.
pub mod unshared_words {
    use super::PhysicalMemory;

    /// [`PhysicalMemory::load_u32`] as one `read`.
    pub fn load_u32(memory: &(impl PhysicalMemory + ?Sized), addr: u64) -> u32 {
        let mut word = [0u8; 4];
        memory.read(addr, &mut word);
        u32::from_ne_bytes(word)
    }

    /// [`PhysicalMemory::update_u32`] as a load then a `write`.
    pub fn update_u32(
        memory: &mut (impl PhysicalMemory + ?Sized),
        addr: u64,
        f: &dyn Fn(u32) -> u32,
    ) -> u32 {
        let old = memory.load_u32(addr);
        memory.write(addr, &f(old).to_ne_bytes());
        old
    }
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

/// Who is calling, as the server knows it when a request arrives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller {
    pub client: ClientId,
    pub tag: u32,
    pub pid: u32,
    pub mm: mm::MmId,
    pub uid: u32,
    pub gid: u32,
    /// Traced at the time of the call (spec §2.3, §3.1).
    pub ptraced: bool,
}

/// The memory server.
pub struct MemoryServer<M: PhysicalMemory> {
    memory: M,
    config: Config,
    nommu: Nommu,
    procs: ProcessTable,
    files: Files,
    ops: Operations,
    /// Held `FUTEX_WAIT`s.
    futex: futex::Futexes,
    /// Effects produced where no effect list was given ([`Self::handle`],
    /// [`Self::disconnect`]); handed out with the next frame or tick.
    outbox: Vec<Effect>,
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
        let mut nommu = Nommu::new(
            config.arena_base,
            config.arena_size,
            config.max_order,
            config.placement,
            tunables,
        );
        nommu.charges = charge::Charges::new(charge::Limits::of(&config));
        let procs = ProcessTable::new(config.first_pid, config.ticket_secret);
        Ok(Self {
            memory,
            config,
            nommu,
            procs,
            files: Files::default(),
            ops: Operations::default(),
            futex: futex::Futexes::default(),
            outbox: Vec::new(),
        })
    }

    /// A transport accepted a connection. It speaks for no process until
    /// its `Hello`.
    pub fn connect(&mut self, client: ClientId, credentials: Credentials) {
        self.connect_in_groups(client, credentials, &[]);
    }

    /// [`Self::connect`] for a peer that is also a member of the
    /// supplementary `groups` (as the transport learned them from the host,
    /// e.g. `SO_PEERGROUPS`): they count where group membership does
    /// ([`DriverOwner::Group`]).
    pub fn connect_in_groups(
        &mut self,
        client: ClientId,
        credentials: Credentials,
        groups: &[u32],
    ) {
        if self.procs.conns.contains_key(&client) {
            // A transport reusing a live id: the old connection is gone.
            self.disconnect(client);
        }
        self.nommu.charges.connect(client, credentials.uid);
        self.procs.conns.insert(
            client,
            Connection {
                credentials,
                groups: groups.to_vec(),
                pid: None,
            },
        );
    }

    /// The peer's effective user and group ids changed (`seteuid`,
    /// `setegid`): calls from now on are checked against these, as the
    /// kernel checks each system call against the caller's credentials at
    /// that moment. The home passes only ids the host vouched for
    /// (`SCM_CREDENTIALS`), never ones a message names. The process the
    /// connection speaks for takes them too (its owner as other callers'
    /// checks see it). `ENOTCONN` for a connection the transport never
    /// announced.
    pub fn set_identity(&mut self, client: ClientId, uid: u32, gid: u32) -> Result<(), Errno> {
        let conn = self.procs.conns.get_mut(&client).ok_or(Errno::ENOTCONN)?;
        conn.credentials.uid = uid;
        conn.credentials.gid = gid;
        if let Some(p) = conn.pid.and_then(|pid| self.procs.procs.get_mut(&pid)) {
            p.uid = uid;
            p.gid = gid;
        }
        Ok(())
    }

    /// A connection closed or its peer died: release what it held. The
    /// process exits if this was its last connection; a driver's
    /// connection takes the driver down (its pending calls fail `EIO`).
    /// Effects this causes (`EIO` replies, `CloseVma` to drivers) are
    /// handed out with the next [`Self::handle_frame`] or [`Self::tick`];
    /// [`Self::disconnect_with`] hands them out at once.
    pub fn disconnect(&mut self, client: ClientId) {
        let mut fx = core::mem::take(&mut self.outbox);
        self.disconnect_with(client, &mut fx);
        self.outbox = fx;
    }

    /// [`Self::disconnect`], pushing the effects it causes.
    pub fn disconnect_with(&mut self, client: ClientId, effects: &mut Vec<Effect>) {
        self.flush_outbox(effects);
        if let Some(driver) = self.files.driver_of(client) {
            self.driver_died(driver, effects);
        }
        let _ = self.drain_reserve(client);
        self.procs.disconnect(&mut self.nommu, client);
        self.drop_reserve(client);
        self.drop_window(client);
        self.nommu.charges.disconnect(client);
        self.futex_prune();
        self.settle(effects);
    }

    /// Decode one frame from `client` — a request, or a driver's reply to
    /// one of the server's requests — act on it, and push the resulting
    /// effects: the reply to a request (now, or later when the drivers it
    /// waits for have answered), requests to drivers, replies that were
    /// waiting for this one.
    pub fn handle_frame(&mut self, client: ClientId, frame: &[u8], effects: &mut Vec<Effect>) {
        self.flush_outbox(effects);
        // The common requests are short: decoded without the kilobyte
        // `Request` (any other frame, or a refused one, goes on below).
        if let Some(f) = protocol::decode_short_request(frame) {
            let outcome = self.dispatch_short(client, f.tag, f.message, effects);
            self.settle(effects);
            return self.answer(client, f.tag, &outcome, effects);
        }
        self.handle_long_frame(client, frame, effects);
    }

    /// [`Self::handle_frame`] for a frame that is not a short request: out
    /// of line, so that the short requests' path does not set up the stack
    /// this one needs for a whole `Request`.
    #[inline(never)]
    fn handle_long_frame(&mut self, client: ClientId, frame: &[u8], effects: &mut Vec<Effect>) {
        match decode_incoming(frame) {
            Ok(Incoming::Request(f)) => self.handle_request(client, f.tag, f.message, effects),
            Ok(Incoming::DriverReply(f)) => {
                self.handle_driver_reply(client, f.tag, f.message, effects)
            }
            Err(e) => {
                let driver_kind = matches!(
                    protocol::peek(frame),
                    Some((protocol::MessageKind::DriverReply, _))
                );
                match (e.tag(), self.files.driver_of(client)) {
                    (Some(tag), Some(driver)) if driver_kind => {
                        self.driver_reply(driver, tag, Err(e.errno()), effects);
                        self.settle(effects);
                    }
                    (Some(tag), _) => effects.push(Effect::Send {
                        to: client,
                        frame: FrameBuf::reply(tag, &Reply::Error(e.errno())),
                    }),
                    (None, _) => effects.push(Effect::Drop { client }),
                }
            }
        }
    }

    /// Act on one decoded request from `client` with tag `tag`. Its reply
    /// is pushed to `effects` as an [`Effect::Send`] echoing the tag, now
    /// or — when the request waits for a driver — from a later call.
    pub fn handle_request(
        &mut self,
        client: ClientId,
        tag: u32,
        request: Request,
        effects: &mut Vec<Effect>,
    ) {
        let outcome = self.request(client, tag, request, effects);
        self.answer(client, tag, &outcome, effects);
    }

    /// Push a request's answer, if it came now.
    #[inline(always)]
    fn answer(&self, client: ClientId, tag: u32, outcome: &Outcome, effects: &mut Vec<Effect>) {
        // The reply is encoded where it lies: a `Reply` is a kilobyte, a
        // move would copy all of it.
        outcome.push_frame(client, tag, effects);
    }

    /// A driver's answer (`client` must be a driver's connection; anyone
    /// else is told `EPROTO`).
    pub fn handle_driver_reply(
        &mut self,
        client: ClientId,
        tag: u32,
        reply: DriverReply,
        effects: &mut Vec<Effect>,
    ) {
        match self.files.driver_of(client) {
            Some(driver) => {
                self.driver_reply(driver, tag, Ok(reply), effects);
                self.settle(effects);
            }
            None => effects.push(Effect::Send {
                to: client,
                frame: FrameBuf::reply(tag, &Reply::Error(Errno::EPROTO)),
            }),
        }
    }

    /// The home's clock, in milliseconds from any fixed origin, moving
    /// forward. Call it every few milliseconds: driver requests unanswered
    /// for [`Config::driver_timeout_ms`] fail their operation with `EIO`.
    /// A request's time starts at the first tick after it was sent.
    pub fn tick(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        self.flush_outbox(effects);
        let now = self.ops.clock.map_or(now_ms, |c| c.max(now_ms));
        self.ops.clock = Some(now);
        self.nommu.shm.now_s = now / 1000;
        self.expire_calls(now, effects);
        self.futex_tick(now, effects);
        self.settle(effects);
    }

    /// Act on one decoded request from `client` and answer it at once —
    /// a convenience for callers that route no effects (benchmarks, tests
    /// of anonymous memory). A request that has to wait for a driver is
    /// answered [`Answer::Later`] here; its real reply (tag 0) and the
    /// driver requests it caused come out of [`Self::take_effects`] or with
    /// the next frame or tick.
    pub fn handle(&mut self, client: ClientId, request: Request) -> Answer {
        let mut fx = core::mem::take(&mut self.outbox);
        let outcome = self.dispatch(client, 0, request, &mut fx);
        self.settle(&mut fx);
        self.outbox = fx;
        outcome.into_answer()
    }

    /// [`Self::handle`] for a request the test knows is answered at once.
    #[cfg(test)]
    pub(crate) fn handle_now(&mut self, client: ClientId, request: Request) -> Reply {
        match self.handle(client, request) {
            Answer::Now(reply) => reply,
            Answer::Later => panic!("the reply comes later"),
        }
    }

    /// The effects [`Self::handle`] and [`Self::disconnect`] produced.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        core::mem::take(&mut self.outbox)
    }

    fn flush_outbox(&mut self, effects: &mut Vec<Effect>) {
        if !self.outbox.is_empty() {
            effects.append(&mut self.outbox);
        }
    }

    /// One request: the reply now, or [`Answer::Later`] if it waits for a
    /// driver.
    #[inline(always)]
    fn request(
        &mut self,
        client: ClientId,
        tag: u32,
        request: Request,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        let outcome = self.dispatch(client, tag, request, fx);
        self.settle(fx);
        outcome
    }

    /// Carry out what the last step left for later: descriptors of exited
    /// processes, removed file mappings (`CloseVma`, references), due
    /// `Release`s, and operations whose turn came. Cheap when idle: the
    /// check is inlined into every request, the work is not.
    #[inline(always)]
    fn settle(&mut self, fx: &mut Vec<Effect>) {
        if !(self.procs.exited.is_empty()
            && self.nommu.notices.is_empty()
            && self.ops.releases.is_empty()
            && self.ops.ready.is_empty())
        {
            self.settle_pending(fx);
        }
    }

    #[inline(never)]
    fn settle_pending(&mut self, fx: &mut Vec<Effect>) {
        loop {
            if !self.procs.exited.is_empty() {
                self.futex_prune();
                self.reap_exited();
            } else if !self.nommu.notices.is_empty() {
                self.take_notices(fx);
            } else if !self.ops.releases.is_empty() {
                self.send_releases(fx);
            } else if !self.ops.ready.is_empty() {
                self.run_ready(fx);
            } else {
                break;
            }
        }
    }

    /// One request's outcome, errors included; the common calls (anonymous
    /// mmap, munmap, the sysctl read) are served first.
    #[inline(always)]
    fn dispatch(
        &mut self,
        client: ClientId,
        tag: u32,
        request: Request,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        match ShortRequest::of(&request) {
            Some(short) => self.dispatch_short(client, tag, short, fx),
            None => self.other(client, tag, request, fx),
        }
    }

    /// A short request's outcome; the common calls (anonymous mmap,
    /// munmap, the sysctl read) are served first.
    #[inline(always)]
    fn dispatch_short(
        &mut self,
        client: ClientId,
        tag: u32,
        request: ShortRequest,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        match request {
            ShortRequest::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                offset,
                unit,
            } if flags & MAP_ANONYMOUS != 0 => {
                let args = MmapArgs {
                    addr,
                    len,
                    prot,
                    flags,
                    fd,
                };
                match self.mmap_anon(client, &args, offset, unit) {
                    Ok(addr) => Outcome::Mapped(addr),
                    Err(e) => Outcome::Failed(e),
                }
            }
            ShortRequest::Munmap { addr, len } => match self.munmap(client, addr, len) {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(e),
            },
            ShortRequest::ReadSysctl {
                name: Sysctl::NrTrimPages,
            } => match self.caller_mm(client) {
                Ok(_) => Outcome::Value(i64::from(self.nommu.tunables.nr_trim_pages)),
                Err(e) => Outcome::Failed(e),
            },
            short => self.other_short(client, tag, short, fx),
        }
    }

    /// A short request other than the common calls: out of line, so that
    /// the kilobyte `Request` it becomes is not on the common calls' stack.
    #[inline(never)]
    fn other_short(
        &mut self,
        client: ClientId,
        tag: u32,
        request: ShortRequest,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        self.other(client, tag, Request::from(request), fx)
    }

    /// The outcome of a request [`Self::dispatch_other`] serves.
    fn other(
        &mut self,
        client: ClientId,
        tag: u32,
        request: Request,
        fx: &mut Vec<Effect>,
    ) -> Outcome {
        match self.dispatch_other(client, tag, request, fx) {
            Ok(answer) => Outcome::Answer(answer),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// The calling process's address space, for the common calls (the
    /// same checks, in the same order, as [`Self::dispatch_other`]'s).
    #[inline(always)]
    fn caller_mm(&mut self, client: ClientId) -> Result<mm::MmId, Errno> {
        let (pid, caller) = self.procs.caller(client)?;
        let mm = caller.mm;
        self.nommu.charges.actor = Some((mm, caller.uid));
        self.nommu.shm.actor = pid;
        Ok(mm)
    }

    /// Anonymous `mmap` (spec §2, §4).
    #[inline(always)]
    fn mmap_anon(
        &mut self,
        client: ClientId,
        args: &MmapArgs,
        offset: u64,
        unit: protocol::OffsetUnit,
    ) -> Result<u64, Errno> {
        let mm = self.caller_mm(client)?;
        let pgoff = offset_to_pgoff(offset, unit)?;
        self.nommu.do_mmap_anon(mm, args, pgoff, &mut self.memory)
    }

    /// `munmap` (spec §3.5).
    #[inline(always)]
    fn munmap(&mut self, client: ClientId, addr: u64, len: u64) -> Result<(), Errno> {
        let mm = self.caller_mm(client)?;
        // Cutting a hole in a mapping adds one, as `split_vma` counts it.
        if !self.memory.may_add_mapping(mm.0) && self.nommu.munmap_splits(mm, addr, len) {
            return Err(Errno::ENOMEM);
        }
        self.nommu.do_munmap(mm, addr, len)
    }

    /// Every other request.
    #[inline(always)]
    fn dispatch_other(
        &mut self,
        client: ClientId,
        tag: u32,
        request: Request,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        if let Request::Hello { ticket } = request {
            let pid = self.procs.hello(&mut self.nommu, client, ticket)?;
            return Ok(Answer::Now(Reply::Hello {
                pid,
                arena_base: self.config.arena_base,
                arena_size: self.config.arena_size,
            }));
        }
        // Calls a driver makes need no process.
        if matches!(
            request,
            Request::RegisterDriver(_)
                | Request::AllocBacking { .. }
                | Request::FreeBacking { .. }
                | Request::BeginExclusive { .. }
                | Request::EndExclusive { .. }
                | Request::ListMounts
        ) {
            return self.driver_call(client, request);
        }
        let (pid, caller) = self.procs.caller(client)?;
        let (mm, uid, gid) = (caller.mm, caller.uid, caller.gid);
        let ptraced = caller.tracer.is_some();
        self.nommu.charges.actor = Some((mm, uid));
        self.nommu.shm.actor = pid;
        let who = Caller {
            client,
            tag,
            pid,
            mm,
            uid,
            gid,
            ptraced,
        };
        let reply = match request {
            Request::Hello { .. } => Err(Errno::EINVAL),
            Request::Clone { flags } => {
                let max = self.config.max_pending_children;
                let (child, ticket) =
                    self.procs
                        .clone_process(&mut self.nommu, client, flags, max)?;
                self.files.copy_table(pid, child);
                Ok(Reply::Cloned { pid: child, ticket })
            }
            Request::Fork => Err(Errno::EINVAL),
            Request::Exit => {
                self.procs.exit(&mut self.nommu, pid);
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
                };
                // Anonymous mappings were served by `dispatch`.
                let pgoff = offset_to_pgoff(offset, unit)?;
                return self.mmap_file(&who, &args, pgoff, fx);
            }
            Request::ReadProc { view, offset } => {
                let view = match self.status_view(view, pid) {
                    Some(status) => status?,
                    None => self.proc_view(view, mm, uid)?,
                };
                Ok(proc_views::proc_slice(&view, offset))
            }
            // Served by `dispatch`.
            Request::Munmap { .. } | Request::ReadSysctl { .. } => Err(Errno::EINVAL),
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
                self.nommu.tunables.nr_trim_pages = value as u32;
                Ok(Reply::Done)
            }
            Request::Open { path, flags, mode } => {
                return self.sys_open(&who, &path, flags, mode, fx)
            }
            Request::Close { fd } => return self.sys_close(pid, fd),
            Request::Read { fd, len, offset } => return self.sys_read(&who, fd, len, offset, fx),
            Request::Write { fd, data, offset } => {
                return self.sys_write(&who, fd, data, offset, fx)
            }
            lease @ (Request::ReadLease { .. } | Request::WriteLease { .. }) => {
                return self.sys_lease(&who, lease, fx)
            }
            Request::BulkWindow => self.bulk_window(&who),
            Request::Ftruncate { fd, len } => return self.sys_ftruncate(&who, fd, len, fx),
            Request::Fstat { fd } => return self.sys_fstat(&who, fd, fx),
            Request::Fsync { fd, data_only } => return self.sys_fsync(&who, fd, data_only, fx),
            Request::Lseek { fd, offset, whence } => {
                return self.sys_lseek(&who, fd, offset, whence, fx)
            }
            Request::PtraceAttach { pid: target } => return self.ptrace_attach(pid, uid, target),
            Request::PtraceDetach { pid: target } => return self.ptrace_detach(pid, target),
            Request::Futex {
                uaddr,
                op,
                val,
                timeout_ns,
                val2,
                uaddr2,
                val3,
            } => {
                let args = futex::FutexArgs {
                    uaddr,
                    op,
                    val,
                    timeout_ns,
                    val2,
                    uaddr2,
                    val3,
                };
                return self.sys_futex(&who, &args, fx);
            }
            // Handled above.
            Request::RegisterDriver(_)
            | Request::AllocBacking { .. }
            | Request::FreeBacking { .. }
            | Request::BeginExclusive { .. }
            | Request::EndExclusive { .. }
            | Request::ListMounts => Err(Errno::EINVAL),
            Request::Shmget { key, size, flags } => self.shmget(&who, key, size, flags),
            Request::Shmat { shmid, addr, flags } => self.shmat(&who, shmid, addr, flags),
            Request::Shmdt { addr } => self.shmdt(&who, addr),
            Request::ShmStat { shmid } => self.shm_stat(&who, shmid),
            Request::ShmSet {
                shmid,
                uid,
                gid,
                mode,
            } => self.shm_set(&who, shmid, uid, gid, mode),
            Request::ShmRemove { shmid } => self.shm_remove(&who, shmid),
            Request::ShmLock { shmid, lock } => self.shm_lock(&who, shmid, lock),
            // Answered by a transport that carries vouched-for ids (it
            // calls `set_identity`); memsrv alone cannot know them.
            Request::Identity => Err(Errno::EINVAL),
            Request::Unlink { path } => return self.sys_unlink(&who, &path, fx),
            Request::SetAttributes {
                target,
                mode,
                uid,
                gid,
            } => {
                let change = attributes::Change { mode, uid, gid };
                return self.sys_set_attributes(&who, target, change, fx);
            }
            Request::Mremap {
                addr,
                old_len,
                new_len,
                flags,
                new_addr,
            } => self.sys_mremap(mm, addr, old_len, new_len, flags, new_addr),
            Request::MemoryCall {
                call,
                addr,
                len,
                arg,
            } => memcalls::memory_call(call, addr, len, arg),
            Request::Exec => self.sys_exec(pid),
            Request::PtracePeek { pid: target, addr } => self.ptrace_peek(pid, target, addr),
            Request::PtracePoke {
                pid: target,
                addr,
                word,
            } => self.ptrace_poke(pid, target, addr, word),
        };
        reply.map(Answer::Now)
    }

    /// Check every internal invariant (tests run this after every step).
    pub fn check_invariants(&self) -> Result<(), alloc::string::String> {
        invariants::check(&self.nommu, &self.procs, &self.files, &self.ops)?;
        self.futex.check(&self.procs, self.config.max_pending_ops)
    }

    /// The address ranges `client`'s process has mapped, `[start, end)`,
    /// ascending, with touching or overlapping ones joined (empty for a
    /// client with no process): what a home that confines its processes'
    /// memory accesses (the board's PMP) lets that client touch.
    pub fn mapped_ranges(&self, client: ClientId, out: &mut Vec<(u64, u64)>) {
        out.clear();
        let Ok((_, process)) = self.procs.caller(client) else {
            return;
        };
        let Some(mm) = self.nommu.mms.get(&process.mm) else {
            return;
        };
        for (key, _) in mm.iter() {
            match out.last_mut() {
                Some(last) if key.start <= last.1 => last.1 = last.1.max(key.end),
                _ => out.push((key.start, key.end)),
            }
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            total_pages: self.nommu.pages.total_pages(),
            free_pages: self.nommu.free_pages(),
            mmap_copy_pages: self.nommu.mmap_copy_pages,
            regions: self.nommu.regions.len(),
            vmas: self.nommu.vma_count(),
            processes: self.procs.procs.len(),
            backing_pages: self.nommu.backing.pages,
            objects: self.files.objects.len(),
            open_files: self.files.open.len(),
            pending_ops: self.ops.live.len(),
            drivers: self.files.by_client.len(),
            shm_pages: self.nommu.shm.pages,
            shm_segments: self.nommu.shm.segs.len(),
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
        self.nommu.pages.has_block(order)
    }
}
