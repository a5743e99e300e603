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
//! * [`mounts`], [`inproc`], [`hostfile`]: built-in backing devices. Each
//!   `--mount` (and the host-file driver, always) has a connection of its
//!   own, registered like any driver; memsrv's requests to it are served
//!   in place by the daemon thread that carries them out ([`inproc`]).
//! * [`driver`]: the loop of a driver in a process of its own
//!   (`nommu-driver`), over the socket.
//!
//! The client side (handshake, shared channel page, C ABI) lives in
//! `nommu::transport`.

pub mod affinity;
pub mod arena;
pub mod connection;
pub mod driver;
pub mod futex;
pub mod host_status;
pub mod hostfile;
pub mod inproc;
pub mod listener;
pub mod mounts;
pub mod options;
pub mod registry;
pub mod reserve;
pub mod server;
pub mod signals;
pub mod spin_gate;

use arena::ArenaFile;
use listener::Listener;
use memsrv::{Config, Credentials, DriverOwner, MemoryServer};
use mounts::ArenaRange;
use nommu::sys::socket::SeqPacket;
use nommu::sys::{eventfd, poll};
use nommu::transport::channel_page::ChannelPage;
pub use options::Options;
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
    let arena = ArenaFile::create(options.arena_base, options.arena_size).map_err(|e| {
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
        ticket_secret: crate::fresh_secret(),
        first_pid: FIRST_SERVER_PID,
        driver_timeout_ms: options.driver_timeout_ms,
        strict_mremap: options.strict_mremap,
        drivers: drivers(options.drivers),
        placement: options.placement,
        max_process_memory: options.max_process_memory,
        max_user_memory: options.max_user_memory,
        max_clients_per_user: options.max_clients_per_user,
        max_map_count: options.max_map_count,
        reserve_pages: options.reserve_pages,
        ..Config::default()
    };
    let mut memsrv =
        MemoryServer::new(config, arena).map_err(|e| format!("memsrv refused: {e}"))?;
    memsrv.read_kernel_records(Box::new(host_status::kernel_record));
    let server = Arc::new(Server::new(memsrv, arena_file, options.max_clients));
    let range = ArenaRange {
        base: options.arena_base,
        size: options.arena_size,
    };
    start_ticker(&server)?;
    let host_files = hostfile::HostFileDriver::new(Arc::clone(&server.host_files));
    inproc::start(&server, Box::new(host_files), 1)
        .map_err(|e| format!("the host-file driver: {e}"))?;
    let mut minors = std::collections::HashMap::new();
    for (n, spec) in (2..).zip(&options.mounts) {
        let minor = minors.entry(spec.kind.as_str()).or_insert(0u8);
        let device = mounts::build(spec, *minor, range)?;
        *minor = minor.wrapping_add(1);
        inproc::start(&server, device, n).map_err(|e| format!("{}: {e}", spec.point))?;
    }
    let listener = Listener::bind(&options.socket, options.socket_mode, options.socket_group)
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
                Some(socket) => welcome(&server, socket, options.process_per_connection),
                // Out of descriptors, say: let connections close first
                // rather than spin on a listener that stays readable.
                None => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    }
}

/// Who may serve a mount: as the operator said; by default root, and the
/// daemon's own user when it is not root (its built-in drivers are the
/// daemon itself, and whoever connects to its socket trusts it already).
fn drivers(configured: DriverOwner) -> DriverOwner {
    // SAFETY: getuid cannot fail and touches no memory.
    let own = unsafe { libc::getuid() };
    match configured {
        DriverOwner::Root if own != 0 => DriverOwner::User(own),
        other => other,
    }
}

/// How often memsrv is given the time (it times drivers out with it).
const TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// The host's `CLOCK_MONOTONIC` in milliseconds: memsrv's clock. Clients
/// on the same host share it, so an absolute futex timeout
/// (`FUTEX_WAIT_BITSET`, which the shim sends as `CLOCK_MONOTONIC`
/// nanoseconds) means the same instant here as there.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1000
        + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000
}

/// Give memsrv the time ([`monotonic_ms`]) every [`TICK`], on a thread of
/// its own, for the life of the daemon.
fn start_ticker(server: &Arc<Server>) -> Result<(), String> {
    let server = Arc::clone(server);
    std::thread::Builder::new()
        .name("memsrvd-tick".into())
        .spawn(move || {
            let mut effects = Vec::new();
            loop {
                std::thread::sleep(TICK);
                server.tick(monotonic_ms(), &mut effects);
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot start the clock thread: {e}"))
}

/// Register an accepted connection with memsrv and start its thread. A
/// connection that cannot be served is closed at once. Its process is its
/// host pid's, unless `process_per_connection` has memsrv number one.
/// The peer's identity is the kernel's: `SO_PEERCRED` and
/// `SO_PEERGROUPS` at connect time.
fn welcome(server: &Arc<Server>, socket: SeqPacket, process_per_connection: bool) {
    let Ok(cred) = socket.peer_credentials() else {
        return;
    };
    // A kernel without SO_PEERGROUPS (before 4.13) names none: the peer
    // then counts by its primary group alone, never for more.
    let groups = socket.peer_groups().unwrap_or_default();
    // Later identity changes come as SCM_CREDENTIALS (see `connection`).
    if socket.pass_credentials().is_err() {
        return;
    }
    if let Err(e) = server.may_connect(cred.uid) {
        refuse(socket, e);
        return;
    }
    let credentials = Credentials {
        pid: (!process_per_connection).then_some(cred.pid),
        uid: cred.uid,
        gid: cred.gid,
    };
    // The kernel's `comm` of the peer, as `/proc/<pid>/status` names it.
    let name = std::fs::read_to_string(format!("/proc/{}/comm", cred.pid)).unwrap_or_default();
    welcome_as(server, socket, credentials, &groups, name.trim_end());
}

/// How long a refused peer has to send its `Hello` before it is cut off.
const REFUSAL_WAIT_MS: i32 = 1000;

/// Answer a peer that may not connect: its `Hello` gets `errno` (the
/// client's connect fails with it: `EAGAIN` when its uid holds all its
/// `--max-clients-per-user` slots), then the connection closes. On a
/// thread of its own, so a silent peer never holds up the others.
fn refuse(socket: SeqPacket, errno: protocol::Errno) {
    let answer = move || {
        let mut fds = [libc::pollfd {
            fd: socket.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if !matches!(poll(&mut fds, REFUSAL_WAIT_MS), Ok(1..)) {
            return;
        }
        let mut frame = [0u8; protocol::MAX_FRAME];
        let Ok(nommu::sys::socket::Datagram::Frame { copied, .. }) = socket.recv(&mut frame) else {
            return;
        };
        let Some((_, tag)) = protocol::peek(&frame[..copied]) else {
            return;
        };
        let reply = memsrv::FrameBuf::reply(tag, &protocol::Reply::Error(errno));
        let _ = socket.send(reply.as_slice());
    };
    // Without a thread (none left), the peer is simply closed.
    let _ = std::thread::Builder::new()
        .name("memsrvd-refuse".into())
        .spawn(answer);
}

/// Register a connection speaking with `credentials` (and membership of
/// `groups`) from the program `name` and start its thread; `false` (the connection closed) if it
/// cannot be served.
fn welcome_as(
    server: &Arc<Server>,
    socket: SeqPacket,
    credentials: Credentials,
    groups: &[u32],
    name: &str,
) -> bool {
    let Ok(doorbell) = eventfd() else {
        return false;
    };
    let Ok((channel, channel_file)) = ChannelPage::create() else {
        return false;
    };
    let Some(peer) = server.registry.register(socket, doorbell) else {
        return false;
    };
    server.connect_in_groups(peer.id, credentials, groups);
    server.name_connection(peer.id, name);
    let thread_server = Arc::clone(server);
    let thread_peer = Arc::clone(&peer);
    let spawned = std::thread::Builder::new()
        .name("memsrvd-conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || connection::serve(thread_server, thread_peer, channel, channel_file));
    if spawned.is_err() {
        server.registry.unregister(peer.id);
        server.disconnect(peer.id);
        return false;
    }
    true
}
