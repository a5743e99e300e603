//! The server thread: one loop that owns the [`MemoryServer`], takes
//! messages from every client off one queue and carries out the effects.
//!
//! Everything a client or the home asks travels on that one queue, so the
//! server sees each sender's messages in the order they were sent: a
//! `Disconnect` sent before a `Inspect` is always handled first, and a test
//! that drops its processes and then reads the stats sees their memory freed.

use super::arena::ArenaMemory;
use super::packet::Packet;
use super::routes::Routes;
use super::spin::recv_spinning;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use memsrv::{ClientId, Credentials, Effect, MemoryServer};
use std::time::Duration;

/// The server as the threads home runs it.
pub type Server = MemoryServer<ArenaMemory>;

/// A look at the server's state, run on the server thread between frames.
pub type Inspection = Box<dyn FnOnce(&Server) + Send>;

/// A message to the server thread.
pub enum ToServer {
    /// A new connection: replies go to `reply`; its id comes back on `welcome`.
    Connect {
        credentials: Credentials,
        reply: Sender<Packet>,
        welcome: Sender<ClientId>,
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

/// The loop's state.
pub struct ServerLoop {
    server: Server,
    routes: Routes,
    effects: Vec<Effect>,
    spin: Duration,
}

impl ServerLoop {
    pub fn new(server: Server, spin: Duration) -> Self {
        Self {
            server,
            routes: Routes::default(),
            effects: Vec::new(),
            spin,
        }
    }

    /// Serve until told to stop or every sender is gone.
    pub fn run(mut self, requests: Receiver<ToServer>) {
        while let Ok(message) = recv_spinning(&requests, self.spin) {
            match message {
                ToServer::Connect {
                    credentials,
                    reply,
                    welcome,
                } => {
                    let id = self.routes.open(reply);
                    self.server.connect(id, credentials);
                    if welcome.send(id).is_err() {
                        self.close(id);
                    }
                }
                ToServer::Frame { from, packet } => self.frame(from, &packet),
                ToServer::Disconnect { client } => self.close(client),
                ToServer::Inspect(look) => look(&self.server),
                ToServer::Shutdown => break,
            }
        }
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
        for effect in effects.drain(..) {
            match effect {
                Effect::Reply { to, frame } => self.deliver(to, frame.as_slice()),
                Effect::Drop { client } => self.close(client),
            }
        }
        self.effects = effects;
    }

    fn deliver(&mut self, to: ClientId, frame: &[u8]) {
        let Some(reply) = self.routes.get(to) else {
            return;
        };
        let sent = match Packet::copy_from(frame) {
            Ok(packet) => reply.try_send(packet),
            Err(_) => return self.close(to),
        };
        match sent {
            Ok(()) => {}
            // A client has one call outstanding; a full reply queue means it
            // is not reading its replies, and the server will not wait for it.
            Err(TrySendError::Full(_)) => self.close(to),
            // The peer is gone; its Disconnect is on its way.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn close(&mut self, client: ClientId) {
        if self.routes.close(client) {
            self.server.disconnect(client);
        }
    }
}
