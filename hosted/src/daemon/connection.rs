//! One connection's thread: receive frames, hand them to memsrv, carry out
//! the effects, and release everything when the peer goes.
//!
//! The thread is the only writer to its socket. Replies memsrv addresses to
//! other connections are posted to their [`Peer`] outbox and delivered by
//! their own threads.

use super::registry::Peer;
use super::server::Server;
use memsrv::{Effect, FrameBuf};
use nommu::host::socket::Datagram;
use nommu::host::sys::{eventfd_drain, poll};
use protocol::{decode_reply, Reply, MAX_FRAME};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

/// How long a quiet connection sleeps before it looks around again
/// (a bound on every wait; wake-ups normally come much sooner).
const IDLE_POLL_MS: i32 = 1000;

/// Receive buffer: one byte more than any frame, so an over-long datagram
/// reaches memsrv as over-long (it answers `EMSGSIZE` or `EBADMSG`).
const RECV_LEN: usize = MAX_FRAME + 1;

/// Where the request being answered came from, so its reply goes back the
/// same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Socket,
}

/// The state of one connection's thread.
struct Session {
    server: Arc<Server>,
    peer: Arc<Peer>,
    /// Whether the welcome (with the arena file) has been sent.
    welcomed: bool,
    /// The path of the last request memsrv did not answer at once.
    pending: Option<Path>,
    effects: Vec<Effect>,
    outbox: Vec<FrameBuf>,
    open: bool,
}

/// Serve one connection until its peer hangs up, dies or is cut off; then
/// memsrv releases everything the connection held.
pub fn serve(server: Arc<Server>, peer: Arc<Peer>) {
    let mut session = Session {
        server,
        peer,
        welcomed: false,
        pending: None,
        effects: Vec::with_capacity(4),
        outbox: Vec::new(),
        open: true,
    };
    session.run();
    let Session { server, peer, .. } = session;
    server.registry.unregister(peer.id);
    server.disconnect(peer.id);
}

impl Session {
    fn run(&mut self) {
        let mut buf = [0u8; RECV_LEN];
        while self.open && !self.peer.is_cut() {
            let mut fds = [
                libc::pollfd {
                    fd: self.peer.socket.as_fd().as_raw_fd(),
                    events: libc::POLLIN | libc::POLLRDHUP,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.peer.doorbell.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            if poll(&mut fds, IDLE_POLL_MS).is_err() {
                return;
            }
            if fds[1].revents != 0 {
                eventfd_drain(self.peer.doorbell.as_fd());
            }
            self.deliver_outbox();
            let socket = fds[0].revents;
            if socket & libc::POLLIN != 0 {
                self.serve_socket(&mut buf);
            } else if socket & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR | libc::POLLNVAL)
                != 0
            {
                return;
            }
        }
    }

    /// Read one datagram from the socket and answer it there.
    fn serve_socket(&mut self, buf: &mut [u8; RECV_LEN]) {
        match self.peer.socket.recv(buf) {
            Ok(Datagram::Frame { copied, .. }) => self.handle(&buf[..copied], Path::Socket),
            Ok(Datagram::Closed) | Err(_) => self.open = false,
        }
    }

    /// Hand one frame to memsrv and carry out what it says.
    fn handle(&mut self, frame: &[u8], path: Path) {
        let me = self.peer.id;
        self.server.handle_frame(me, frame, &mut self.effects);
        let mut answered = false;
        let mut effects = core::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Reply { to, frame } if to == me => {
                    answered = true;
                    self.reply(path, &frame);
                }
                Effect::Reply { to, frame } => {
                    if let Some(other) = self.server.registry.get(to) {
                        other.post(frame);
                    }
                }
                Effect::Drop { client } if client == me => self.open = false,
                Effect::Drop { client } => {
                    if let Some(other) = self.server.registry.get(client) {
                        other.cut();
                    }
                }
            }
        }
        self.effects = effects;
        if !answered {
            self.pending = Some(path);
        }
    }

    /// Deliver replies other threads produced for this connection.
    fn deliver_outbox(&mut self) {
        self.peer.take_outbox(&mut self.outbox);
        let mut outbox = core::mem::take(&mut self.outbox);
        for frame in outbox.drain(..) {
            let path = self.pending.take().unwrap_or(Path::Socket);
            self.reply(path, &frame);
        }
        self.outbox = outbox;
    }

    /// Send one reply the way its request came. The first successful Hello
    /// reply carries the arena memory file.
    fn reply(&mut self, path: Path, frame: &FrameBuf) {
        let bytes = frame.as_slice();
        let sent = match path {
            Path::Socket if !self.welcomed && is_welcome(bytes) => {
                self.welcomed = true;
                self.peer
                    .socket
                    .send_with_fds(bytes, &[self.server.arena_file()])
            }
            Path::Socket => self.peer.socket.send(bytes),
        };
        if sent.is_err() {
            self.open = false;
        }
    }
}

/// Whether `frame` is a successful Hello reply.
fn is_welcome(frame: &[u8]) -> bool {
    matches!(
        decode_reply(frame).map(|f| f.message),
        Ok(Reply::Hello { .. })
    )
}
