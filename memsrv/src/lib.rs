//! The memory server's whole mapping logic, as a deterministic state machine.
//!
//! `memsrv` owns the page allocator, the global region registry, the
//! per-process VMA sets, the `/proc` text and the invariant checker. It
//! never blocks, spawns or reads a clock: a home (threads, the `memsrvd`
//! daemon, the bare-metal kernel) feeds it frames with
//! [`MemoryServer::handle_frame`] and carries out the [`Effect`]s it returns.
//! Who sent a frame is the [`ClientId`] the transport names, never a field
//! of the message.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use protocol::{Errno, Reply, Request, MAX_FRAME};

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
    /// First process id the server hands out itself.
    pub first_pid: u32,
    /// Most mappings one address space may hold (`max_map_count`).
    pub max_map_count: usize,
    /// Seed mixed into clone tickets so they cannot be guessed.
    pub ticket_secret: u64,
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
}

/// Something the home must do on the server's behalf.
#[derive(Clone)]
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
    pub processes: usize,
}

/// The memory server.
pub struct MemoryServer<M: PhysicalMemory> {
    memory: M,
    config: Config,
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// A server managing `[config.arena_base, +arena_size)`.
    pub fn new(config: Config, memory: M) -> Result<Self, Errno> {
        Ok(Self { memory, config })
    }

    /// A transport accepted a connection.
    pub fn connect(&mut self, client: ClientId, credentials: Credentials) {
        let _ = (client, credentials);
    }

    /// A connection closed or its peer died: release what it held.
    pub fn disconnect(&mut self, client: ClientId) {
        let _ = client;
    }

    /// Decode one frame from `client`, act on it, and push the resulting
    /// effects (at least one reply or drop for every frame).
    pub fn handle_frame(&mut self, client: ClientId, frame: &[u8], effects: &mut Vec<Effect>) {
        let _ = (client, frame, effects);
    }

    /// Act on one decoded request from `client` and answer it.
    pub fn handle(&mut self, client: ClientId, request: Request) -> Reply {
        let _ = (client, request);
        Reply::Error(Errno::ENOSYS)
    }

    /// Check every internal invariant (tests run this after every step).
    pub fn check_invariants(&self) -> Result<(), alloc::string::String> {
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        Stats::default()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn memory(&self) -> &M {
        &self.memory
    }
}
