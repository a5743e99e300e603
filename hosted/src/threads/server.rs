//! The server thread: one loop that owns the [`MemoryServer`], takes
//! messages from every client off one queue and carries out the effects.
//!
//! Everything a client or the home asks travels on that one queue, so the
//! server sees each sender's messages in the order they were sent: a
//! `Disconnect` sent before a `Inspect` is always handled first, and a test
//! that drops its processes and then reads the stats sees their memory freed.
//!
//! memsrv has no clock: while a driver is connected the loop gives it the
//! time every [`TICK`] (between messages, and by waking from its sleep), so
//! a driver that does not answer is timed out.

use super::arena::ArenaMemory;
use super::packet::Packet;
use super::routes::{Routes, Sink};
use super::wait::{current_cpu, same_cpu, spin_until, Doorbell};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use memsrv::{ClientId, Courier, Credentials, Effect, FrameBuf, MemoryServer};
use protocol::Errno;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often memsrv is given the time while a driver is connected.
pub const TICK: Duration = Duration::from_millis(2);

/// Most connections open at once, as memsrvd's default `--max-clients`.
pub const MAX_CLIENTS: usize = 1024;

/// The server as the threads home runs it.
pub type Server = MemoryServer<ArenaMemory>;

/// A look at the server's state, run on the server thread between frames.
pub type Inspection = Box<dyn FnOnce(&Server) + Send>;

/// A message to the server thread.
pub enum ToServer {
    /// A new connection: its frames go to `reply`; its id comes back on
    /// `welcome`, or why it is refused ([`ServerLoop::admit`]). A
    /// `builtin` one (a driver the home mounts itself) holds no slot and
    /// is never refused, as memsrvd's built-in drivers.
    Connect {
        credentials: Credentials,
        reply: Sink,
        welcome: Sender<Result<ClientId, Errno>>,
        builtin: bool,
    },
    /// One encoded request frame from `from` (named by the transport, never
    /// by the frame).
    Frame { from: ClientId, packet: Packet },
    /// The connection closed: memsrv releases what it held.
    Disconnect { client: ClientId },
    /// Run a closure against the server (stats, invariants).
    Inspect(Inspection),
    /// Stop the loop.
    Shutdown,
}

/// The way into the server thread: the queue, and the doorbell that wakes
/// the server when it sleeps.
#[derive(Clone)]
pub struct Inbox {
    queue: Sender<ToServer>,
    bell: Arc<Doorbell>,
}

impl Inbox {
    pub fn new(queue: Sender<ToServer>, bell: Arc<Doorbell>) -> Self {
        Self { queue, bell }
    }

    /// The core the server thread last ran on.
    pub fn server_cpu(&self) -> u32 {
        self.bell.server_cpu()
    }

    /// Queue `message`; `ENOTCONN` once the server thread is gone.
    pub fn send(&self, message: ToServer) -> Result<(), Errno> {
        self.queue.send(message).map_err(|_| Errno::ENOTCONN)?;
        self.bell.ring();
        Ok(())
    }
}

/// The loop's state.
pub struct ServerLoop {
    server: Server,
    routes: Routes,
    /// Open connections of the home's own drivers (they hold no slot).
    builtins: BTreeSet<ClientId>,
    effects: Vec<Effect>,
    spin: Duration,
    /// The core of the client last answered: likely the next to ask.
    peer_cpu: u32,
    /// When the loop started: memsrv's time is milliseconds since then.
    started: Instant,
    last_tick: Instant,
}

impl ServerLoop {
    pub fn new(server: Server, spin: Duration) -> Self {
        Self {
            server,
            routes: Routes::default(),
            builtins: BTreeSet::new(),
            effects: Vec::new(),
            spin,
            peer_cpu: nommu::spin::UNKNOWN_CPU,
            started: Instant::now(),
            last_tick: Instant::now(),
        }
    }

    /// The next message: polled for the spin budget, then slept for.
    /// `None` once every sender is gone.
    fn next(&mut self, queue: &Receiver<ToServer>, bell: &Doorbell) -> Option<ToServer> {
        loop {
            let clock = self.routes.has_queues();
            if clock {
                self.tick_if_due();
            }
            match queue.try_recv() {
                Ok(message) => return Some(message),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let here = current_cpu();
            bell.set_server_cpu(here);
            let may_spin = !same_cpu(here, self.peer_cpu);
            if !(may_spin && spin_until(self.spin, || !queue.is_empty())) {
                if clock {
                    bell.sleep_unless_for(TICK, || !queue.is_empty());
                } else {
                    bell.sleep_unless(|| !queue.is_empty());
                }
            }
        }
    }

    /// Serve until told to stop or every sender is gone.
    pub fn run(mut self, queue: Receiver<ToServer>, bell: Arc<Doorbell>) {
        while let Some(message) = self.next(&queue, &bell) {
            match message {
                ToServer::Connect {
                    credentials,
                    reply,
                    welcome,
                    builtin,
                } => {
                    let admitted = if builtin {
                        Ok(())
                    } else {
                        self.admit(credentials.uid)
                    };
                    let admitted = admitted.map(|()| {
                        let id = self.routes.open(reply);
                        if builtin {
                            self.builtins.insert(id);
                            self.server.connect_builtin(id, credentials);
                        } else {
                            self.server.connect(id, credentials);
                        }
                        id
                    });
                    if let (Err(_), Ok(id)) = (welcome.send(admitted), admitted) {
                        self.close_now(id);
                    }
                }
                ToServer::Frame { from, packet } => self.frame(from, &packet),
                ToServer::Disconnect { client } => self.close_now(client),
                ToServer::Inspect(look) => look(&self.server),
                ToServer::Shutdown => break,
            }
        }
    }

    /// Whether a connection of `uid` may open now, with memsrvd's limits
    /// and answers: `ENOTCONN` once [`MAX_CLIENTS`] connections are open
    /// (memsrvd closes such a peer unanswered, which its client reads as
    /// `ENOTCONN`), `EAGAIN` once `uid` holds its
    /// [`memsrv::Config::max_clients_per_user`] connections.
    fn admit(&self, uid: u32) -> Result<(), Errno> {
        if self.routes.open_count() - self.builtins.len() >= MAX_CLIENTS {
            return Err(Errno::ENOTCONN);
        }
        self.server.may_connect(uid)
    }

    fn frame(&mut self, from: ClientId, packet: &Packet) {
        // A frame from a connection the server already closed is dropped:
        // that peer is told nothing more.
        if self.routes.get(from).is_none() {
            return;
        }
        let mut effects = std::mem::take(&mut self.effects);
        self.server
            .handle_frame(from, packet.as_slice(), &mut effects);
        self.carry_out(effects);
    }

    /// Give memsrv the time if a [`TICK`] has passed since the last time.
    fn tick_if_due(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_tick) < TICK {
            return;
        }
        self.last_tick = now;
        let now_ms =
            u64::try_from(now.duration_since(self.started).as_millis()).unwrap_or(u64::MAX);
        let mut effects = std::mem::take(&mut self.effects);
        self.server.tick(now_ms, &mut effects);
        self.carry_out(effects);
    }

    /// Deliver replies (and driver requests), close connections, and
    /// carry out what that causes in turn.
    fn carry_out(&mut self, mut effects: Vec<Effect>) {
        memsrv::carry_out(self, &mut effects);
        self.effects = effects;
    }

    fn deliver(&mut self, to: ClientId, frame: &[u8], effects: &mut Vec<Effect>) {
        let Some(sink) = self.routes.get(to) else {
            return;
        };
        let delivered = match sink {
            // A client has one call outstanding; a reply it never took means
            // it is not reading its replies, and the server will not wait for
            // it.
            Sink::Slot(reply) => {
                self.peer_cpu = reply.client_cpu();
                Packet::copy_from(frame).is_ok_and(|packet| reply.deliver(packet).is_ok())
            }
            // A driver's queue is unbounded: it never blocks the server.
            Sink::Queue(queue) => {
                Packet::copy_from(frame).is_ok_and(|packet| queue.send(packet).is_ok())
            }
        };
        if !delivered {
            self.close(to, effects);
        }
    }

    /// Close a connection; what memsrv does about it (a driver's waiting
    /// callers told `EIO`) is appended to `effects`.
    fn close(&mut self, client: ClientId, effects: &mut Vec<Effect>) {
        if self.routes.close(client) {
            self.builtins.remove(&client);
            self.server.disconnect_with(client, effects);
        }
    }

    /// Close a connection and carry out what follows.
    fn close_now(&mut self, client: ClientId) {
        let mut effects = std::mem::take(&mut self.effects);
        self.close(client, &mut effects);
        self.carry_out(effects);
    }
}

impl Courier for ServerLoop {
    fn send(&mut self, to: ClientId, frame: &FrameBuf, more: &mut Vec<Effect>) {
        self.deliver(to, frame.as_slice(), more);
    }

    fn close(&mut self, client: ClientId, more: &mut Vec<Effect>) {
        ServerLoop::close(self, client, more);
    }
}
