//! The threads home: memsrv on its own thread, client processes as handles.
//!
//! The arena is one host allocation, so every address memsrv returns is a
//! real pointer any handle can dereference (one address space shared by all
//! processes, as on a no-MMU machine). Each [`Process`] is a
//! [`nommu::Client`] whose calls travel as encoded frames: into the server
//! thread over one crossbeam queue shared by everyone (the transport names
//! the sender), back through a one-deep reply slot per connection (a
//! connection has one call outstanding). Both ends poll briefly before
//! parking ([`Tuning`]), because waking a parked thread costs more than the
//! call; they park on a futex directly, never through crossbeam's blocking
//! receive, whose `sched_yield`s hand the core to other processes on a
//! loaded machine. Only as many clients spin at once as there are cores
//! besides the server's, and no side spins while its peer runs on its own
//! core (`wait`).
//!
//! Stats and invariant checks are control messages on the same queue as the
//! frames ([`ThreadsHome::inspect`]), so they observe every message sent
//! before them and need no lock on the hot path.
//!
//! Backing devices run here too ([`ThreadsHome::mount`]): each driver is a
//! server on a thread of its own, with a connection whose frames go to a
//! queue rather than a reply slot, because memsrv sends it requests of its
//! own (kind 3) at any time, even while the driver waits for the reply to
//! one of its calls (`AllocBacking` from inside `start` or `serve`); those
//! are kept and served afterwards ([`DriverConnection`]). While a driver
//! is connected the server thread wakes at least every
//! [`TICK`] to give memsrv the time, so a driver that does not
//! answer is timed out. Dropping a [`Mount`] stops its driver the way a
//! crash would: the connection closes and memsrv fails what waited for it
//! with `EIO`.
//!
//! ```
//! use hosted::threads::ThreadsHome;
//! use protocol::linux::{PROT_READ, PROT_WRITE};
//!
//! let home = ThreadsHome::with_arena_size(1 << 20).unwrap();
//! let process = home.spawn_process().unwrap();
//! let addr = process.mmap_anon(4096, PROT_READ | PROT_WRITE).unwrap();
//! process.write(addr, b"hello").unwrap();
//! process.munmap(addr, 4096).unwrap();
//! drop(process);
//! assert_eq!(home.stats().unwrap().mmap_copy_pages, 0);
//! home.check_invariants().unwrap();
//! ```

mod arena;
mod driver;
mod packet;
mod process;
mod routes;
mod server;
mod transport;
mod wait;

#[cfg(test)]
mod tests;

pub use arena::{Arena, ArenaMemory};
pub use driver::{request_frame, ArenaHost, DriverConnection, Mount};
pub use process::Process;
pub use server::{Server, MAX_CLIENTS, TICK};
pub use transport::ChannelTransport;

use crossbeam_channel::{bounded, never, unbounded};
use drivers::BackingDevice;
use memsrv::{Config, Credentials, MemoryServer, Stats};
use protocol::Errno;
use server::{Inbox, ServerLoop, ToServer};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use wait::{Doorbell, SpinGate};

/// How long each end polls before parking (unless its peer runs on the
/// same core, see `wait`). Zero means park at once. 20 µs measured best
/// with `benches/mmap.rs` on the 2-core machines: shorter budgets miss
/// replies that a server wake-up (tens of µs on an idle virtual CPU) would
/// then delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// A client waiting for its reply.
    pub client_spin: Duration,
    /// The server waiting for the next message.
    pub server_spin: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            client_spin: Duration::from_micros(20),
            server_spin: Duration::from_micros(20),
        }
    }
}

/// The credentials of processes spawned without naming any: the server
/// numbers them itself.
pub const ROOT: Credentials = Credentials {
    pid: None,
    uid: 0,
    gid: 0,
};

/// A running threads home. Dropping it stops and joins the server thread;
/// process handles that outlive it get `ENOTCONN` from every call.
pub struct ThreadsHome {
    inbox: Inbox,
    arena: Arc<Arena>,
    tuning: Tuning,
    gate: Arc<SpinGate>,
    thread: Option<JoinHandle<()>>,
}

impl ThreadsHome {
    /// Start with `config`; its `arena_base` is replaced by the address of
    /// the arena allocated here, of `config.arena_size` bytes.
    pub fn start(config: Config) -> Result<Self, Errno> {
        Self::start_tuned(config, Tuning::default())
    }

    /// Start with the default configuration and an arena of `size` bytes.
    pub fn with_arena_size(size: u64) -> Result<Self, Errno> {
        Self::start(Config {
            arena_size: size,
            ..Config::default()
        })
    }

    /// Start with explicit spin budgets. The clone-ticket secret the
    /// configuration names is mixed with one drawn from the host for this
    /// start, so tickets of one start tell nothing about another's.
    pub fn start_tuned(mut config: Config, tuning: Tuning) -> Result<Self, Errno> {
        let arena = Arc::new(Arena::new(config.arena_size)?);
        config.arena_base = arena.base();
        config.ticket_secret ^= crate::fresh_secret();
        let server = MemoryServer::new(config, ArenaMemory(Arc::clone(&arena)))?;
        let (queue, received) = unbounded();
        let bell = Arc::new(Doorbell::default());
        let server_bell = Arc::clone(&bell);
        let thread = std::thread::Builder::new()
            .name("memsrv".into())
            .spawn(move || ServerLoop::new(server, tuning.server_spin).run(received, server_bell))
            .map_err(|_| Errno::EAGAIN)?;
        bell.set_server(thread.thread().clone());
        Ok(Self {
            inbox: Inbox::new(queue, bell),
            arena,
            tuning,
            gate: Arc::new(SpinGate::for_this_machine()),
            thread: Some(thread),
        })
    }

    /// A new process with its own empty address space.
    pub fn spawn_process(&self) -> Result<Process, Errno> {
        self.spawn_process_as(ROOT)
    }

    /// A new process speaking with `credentials`.
    pub fn spawn_process_as(&self, credentials: Credentials) -> Result<Process, Errno> {
        self.open(credentials, None)
    }

    /// The connection of a clone child, named by the ticket
    /// [`nommu::Client::clone_process`] returned to its parent.
    pub fn attach(&self, ticket: u64) -> Result<Process, Errno> {
        self.open(ROOT, Some(ticket))
    }

    fn open(&self, credentials: Credentials, ticket: Option<u64>) -> Result<Process, Errno> {
        let gate = Arc::clone(&self.gate);
        let spin = self.tuning.client_spin;
        let transport = ChannelTransport::connect(&self.inbox, credentials, spin, gate)?;
        Process::hello(transport, Arc::clone(&self.arena), ticket)
    }

    /// Run `device` as a backing-device server on a thread of its own:
    /// it connects, registers its mount, runs `start` and then answers
    /// memsrv's driver requests. Returns once `start` is done; dropping the
    /// [`Mount`] stops the driver (memsrv sees it die).
    pub fn mount(&self, device: Box<dyn BackingDevice + Send>) -> Result<Mount, Errno> {
        let arena = Arc::clone(&self.arena);
        let device = driver::Boxed(device);
        driver::spawn(&self.inbox, ROOT, arena, device, |_| ()).map(|(mount, ())| mount)
    }

    /// As [`ThreadsHome::mount`], and once `start` is done run `look` on
    /// the device (on its thread) and return what it saw: where a driver
    /// put its storage, a control handle.
    pub fn mount_with<D, R, F>(&self, device: D, look: F) -> Result<(Mount, R), Errno>
    where
        D: BackingDevice + Send + 'static,
        R: Send + 'static,
        F: FnOnce(&D) -> R + Send + 'static,
    {
        driver::spawn(&self.inbox, ROOT, Arc::clone(&self.arena), device, look)
    }

    /// A bare driver connection, for a test that speaks for a driver by
    /// hand (registration, replies, misbehaviour).
    pub fn connect_driver(&self, credentials: Credentials) -> Result<DriverConnection, Errno> {
        DriverConnection::connect(&self.inbox, credentials, never(), false)
    }

    /// Run `look` on the server thread, between two messages, and return
    /// what it returns.
    pub fn inspect<R, F>(&self, look: F) -> Result<R, Errno>
    where
        R: Send + 'static,
        F: FnOnce(&Server) -> R + Send + 'static,
    {
        let (answer, answered) = bounded(1);
        let inspection: server::Inspection = Box::new(move |server| {
            let _ = answer.send(look(server));
        });
        self.inbox.send(ToServer::Inspect(inspection))?;
        answered.recv().map_err(|_| Errno::ENOTCONN)
    }

    /// memsrv's counters, after every message sent before this call.
    pub fn stats(&self) -> Result<Stats, Errno> {
        self.inspect(|server| server.stats())
    }

    /// memsrv's invariant check, after every message sent before this call.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.inspect(|server| server.check_invariants())
            .unwrap_or_else(|errno| Err(format!("server thread unreachable: {errno}")))
    }

    /// The arena every address lies in.
    pub fn arena(&self) -> &Arc<Arena> {
        &self.arena
    }

    /// Copy `bytes` to `addr` in the arena (`EFAULT` outside it).
    pub fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.arena.write(addr, bytes)
    }

    /// Copy from `addr` in the arena (`EFAULT` outside it).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.arena.read(addr, buf)
    }

    /// Stop the server thread and wait for it; `EIO` if it had panicked.
    pub fn shutdown(mut self) -> Result<(), Errno> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Errno> {
        let _ = self.inbox.send(ToServer::Shutdown);
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| Errno::EIO),
            None => Ok(()),
        }
    }
}

impl Drop for ThreadsHome {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
