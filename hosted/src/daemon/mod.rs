//! The `memsrvd` daemon: real host processes reach memsrv over a Unix
//! `SOCK_SEQPACKET` socket, with the arena shared at the same address in
//! each.
//!
//! * [`arena`]: the arena memory file, mapped at a fixed address here and in
//!   every client.
//! * [`listener`]: the socket, bound only once the server is ready.
//! * [`registry`]: live connections under generation-tagged [`memsrv::ClientId`]s.
//! * [`server`]: memsrv behind a mutex, shared by every connection thread.
//! * [`connection`]: one thread per connection; the peer's identity comes
//!   from `SO_PEERCRED`, never from a message.
//! * [`affinity`]: moving a spinning thread off its client's CPU.
//! * [`spin_gate`]: at most one spinning connection thread per spare CPU.
//! * [`options`]: the command line.
//!
//! The client side (handshake, shared channel page, C ABI) lives in
//! `nommu::host`.

pub mod affinity;
pub mod arena;
pub mod connection;
pub mod driver;
pub mod hostfile;
pub mod listener;
pub mod options;
pub mod registry;
pub mod server;
pub mod signals;
pub mod spin_gate;

use arena::Arena;
use listener::Listener;
use memsrv::{Config, Credentials, MemoryServer};
use nommu::host::channel::Channel;
use nommu::host::socket::SeqPacket;
use nommu::host::sys::{eventfd, poll};
pub use options::{Command, Options};
use server::Server;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

/// Processes memsrv numbers itself (clone children) start above any host
/// pid (Linux caps `pid_max` at 2^22), so they never meet host pids.
const FIRST_SERVER_PID: u32 = 1 << 22;

/// Stack of each connection thread: frames live on it, nothing deep runs.
const CONNECTION_STACK: usize = 256 << 10;

/// Set up the arena and memsrv, then listen and serve until SIGINT or
/// SIGTERM. Errors are for the operator (printed by `main`).
pub fn run(options: &Options) -> Result<(), String> {
    let stop = signals::stop_signals().map_err(|e| format!("cannot set up signals: {e}"))?;
    let arena = Arena::create(options.arena_base, options.arena_size).map_err(|e| {
        format!(
            "cannot map the arena at {:#x} (+{:#x}): {e}",
            options.arena_base, options.arena_size
        )
    })?;
    let arena_file = arena
        .file()
        .try_clone_to_owned()
        .map_err(|e| format!("cannot duplicate the arena file: {e}"))?;
    let config = Config {
        arena_base: options.arena_base,
        arena_size: options.arena_size,
        nr_trim_pages: options.nr_trim_pages,
        allow_uninitialized: options.allow_uninitialized,
        ticket_secret: ticket_secret(),
        first_pid: FIRST_SERVER_PID,
        ..Config::default()
    };
    let memsrv = MemoryServer::new(config, arena).map_err(|e| format!("memsrv refused: {e}"))?;
    let server = Arc::new(Server::new(memsrv, arena_file, options.max_clients));
    let listener = Listener::bind(&options.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", options.socket.display()))?;
    // A closed stdout must not kill the daemon: the line is for whoever
    // started it, if they listen.
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "memsrvd: ready on {} (arena {:#x}+{:#x}, pid {})",
        listener.path().display(),
        options.arena_base,
        options.arena_size,
        std::process::id()
    );
    let _ = stdout.flush();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: listener.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        poll(&mut fds, -1).map_err(|e| format!("poll: {e}"))?;
        if fds[1].revents != 0 {
            return Ok(());
        }
        if fds[0].revents != 0 {
            match listener.accept() {
                Some(socket) => welcome(&server, socket),
                // Out of descriptors, say: let connections close first
                // rather than spin on a listener that stays readable.
                None => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    }
}

/// Register an accepted connection with memsrv and start its thread. A
/// connection that cannot be served is closed at once.
fn welcome(server: &Arc<Server>, socket: SeqPacket) {
    let Ok(cred) = socket.peer_credentials() else {
        return;
    };
    let Ok(doorbell) = eventfd() else {
        return;
    };
    let Ok((channel, channel_file)) = Channel::create() else {
        return;
    };
    let Some(peer) = server.registry.register(socket, doorbell) else {
        return;
    };
    server.connect(
        peer.id,
        Credentials {
            pid: Some(cred.pid),
            uid: cred.uid,
            gid: cred.gid,
        },
    );
    let thread_server = Arc::clone(server);
    let thread_peer = Arc::clone(&peer);
    let spawned = std::thread::Builder::new()
        .name("memsrvd-conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || connection::serve(thread_server, thread_peer, channel, channel_file));
    if spawned.is_err() {
        server.registry.unregister(peer.id);
        server.disconnect(peer.id);
    }
}

/// A per-run secret for clone tickets, so they cannot be guessed.
fn ticket_secret() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}
