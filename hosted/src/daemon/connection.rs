//! One connection's thread: receive frames, hand them to memsrv, carry out
//! the effects, and release everything when the peer goes.
//!
//! Requests arrive two ways. The shared channel page (handed over with the
//! welcome; see `nommu::transport::channel_page`) is the hot path: the thread spins
//! briefly for the next request, then flags itself asleep and sleeps in
//! `poll` on the socket and its doorbell eventfd, which the client rings
//! only when it sees that flag. The socket carries the handshake, any frame
//! a client chooses to send there (answered there), and the hang-up that
//! ends the connection. Every sleep is bounded.
//!
//! The thread is the only writer to its socket and channel. Frames memsrv
//! addresses to other connections are posted to their [`Peer`] outbox and
//! delivered by their own threads.
//!
//! Which way a frame goes is decided by its kind and tag, not by who
//! produced it: a reply (kind 2) whose tag is the one of the channel
//! request still waiting goes to the channel page — also when it comes
//! later, from another thread (a deferred reply: memsrv answers once a
//! driver has answered it, or timed out); every other frame, a driver
//! request (kind 3) to a driver included, goes over the socket. A driver
//! reply (kind 4) arriving here is handed to memsrv like a request but
//! waits for no answer.
//!
//! The peer's identity: `SO_PEERCRED` at connect, then each `Identity`
//! request over the socket, whose ids are the `SCM_CREDENTIALS` the kernel
//! attached (the socket passes credentials, and the kernel lets a sender
//! claim only ids it has); the daemon answers it itself. Identity is only
//! ever taken from there, never from a message field.
//!
//! A futex call is carried on the host kernel's futex ([`futex`]), not
//! by memsrv's queues, so that it meets the clients' own; every other
//! call advances the map generation once memsrv has handled it.
//!
//! A request arriving over the socket with a descriptor attached
//! (`SCM_RIGHTS`) is only accepted as `Open { path: "/.host-fd" }`: the
//! descriptor goes to the host-file driver under a fresh token
//! ([`super::hostfile`]) and memsrv sees `Open { path: "/.host-fd/<token>" }`
//! with the descriptor's own access mode. Descriptors on any other frame
//! are closed.

use super::affinity;
use super::futex;
use super::hostfile::HOST_FD_MOUNT;
use super::registry::Peer;
use super::server::Server;
use super::spin_gate::SpinPermit;
use memsrv::{ClientId, Courier, Effect, FrameBuf};
use nommu::sys::socket::{Datagram, PeerCred, MAX_FDS};
use nommu::sys::{eventfd_drain, poll};
use nommu::transport::channel_page::{ChannelPage, Posted, Spin};
use protocol::{
    decode_reply, decode_request, encode_request, peek, Errno, MessageKind, Reply, Request,
    MAX_FRAME,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a quiet connection sleeps before it looks around again
/// (a bound on every wait; wake-ups normally come much sooner).
const IDLE_POLL_MS: i32 = 1000;

/// Least time between two moves away from a client's CPU.
const MOVE_INTERVAL: Duration = Duration::from_millis(10);

/// Receive buffer: one byte more than any frame, so an over-long datagram
/// reaches memsrv as over-long (it answers `EMSGSIZE` or `EBADMSG`).
const RECV_LEN: usize = MAX_FRAME + 1;

/// Where a frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Socket,
    /// The channel page, with the request's sequence number.
    Channel(u32),
}

/// The channel request not answered yet: its tag and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChannelWait {
    tag: u32,
    seq: u32,
}

/// The state of one connection's thread.
struct Session {
    server: Arc<Server>,
    peer: Arc<Peer>,
    /// The channel page and the memory file the client maps it from.
    channel: ChannelPage,
    channel_file: OwnedFd,
    /// Where channel requests are copied out to (their length's worth
    /// only), allocated at the first one and kept: a request zeroes
    /// nothing.
    channel_frame: Option<Box<[u8; MAX_FRAME]>>,
    /// The last channel request sequence number taken.
    last_seq: u32,
    /// Whether the last request came over the channel: only then is the
    /// next one likely to follow within the spin budget.
    spinning: bool,
    /// When the thread last moved off its client's CPU.
    last_move: Option<Instant>,
    /// Whether the welcome (with the arena file) has been sent.
    welcomed: bool,
    /// The channel request waiting for its reply, if any.
    waiting: Option<ChannelWait>,
    effects: Vec<Effect>,
    outbox: Vec<FrameBuf>,
    open: bool,
}

/// Serve one connection until its peer hangs up, dies or is cut off; then
/// memsrv releases everything the connection held.
pub fn serve(server: Arc<Server>, peer: Arc<Peer>, channel: ChannelPage, channel_file: OwnedFd) {
    server.attach_reserve(peer.id, channel_file.as_fd());
    let mut session = Session {
        server,
        peer,
        channel,
        channel_file,
        channel_frame: None,
        last_seq: 0,
        spinning: false,
        last_move: None,
        welcomed: false,
        waiting: None,
        effects: Vec::with_capacity(4),
        outbox: Vec::new(),
        open: true,
    };
    session.run();
    let Session { server, peer, .. } = session;
    server.registry.unregister(peer.id);
    server.disconnect(peer.id);
}

/// Effects for the session's own connection: frames go to its peer, a
/// drop ends the session.
impl Courier for Session {
    fn send(&mut self, _to: ClientId, frame: &FrameBuf, _more: &mut Vec<Effect>) {
        self.deliver(frame);
    }

    fn close(&mut self, _client: ClientId, _more: &mut Vec<Effect>) {
        self.open = false;
    }
}

impl Session {
    fn run(&mut self) {
        let mut buf = [0u8; RECV_LEN];
        while self.open && !self.peer.is_cut() {
            if self.welcomed && self.serve_channel() {
                continue;
            }
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
            let polled = poll(&mut fds, IDLE_POLL_MS);
            self.channel.announce_awake();
            if polled.is_err() {
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

    /// Serve the channel while requests keep coming; `true` if one was
    /// served (look again), `false` once the thread may sleep (the asleep
    /// flag is then set, so the client will ring the doorbell).
    fn serve_channel(&mut self) -> bool {
        let mut frame = self
            .channel_frame
            .take()
            .unwrap_or_else(|| Box::new([0u8; MAX_FRAME]));
        let posted = self.channel.take_request(self.last_seq, &mut frame);
        let served = self.serve_posted(posted, &frame);
        self.channel_frame = Some(frame);
        served
    }

    /// Serve what [`Session::serve_channel`] found; `frame` holds the
    /// request's bytes (and nothing of it past its length is read).
    fn serve_posted(&mut self, posted: Option<Posted>, frame: &[u8; MAX_FRAME]) -> bool {
        let posted = match posted {
            Some(posted) => posted,
            None if self.spinning && self.spin() => return true,
            None if self.channel.announce_sleep(self.last_seq) => {
                self.spinning = false;
                return false;
            }
            None => return true,
        };
        match posted {
            Posted::Frame { seq, len } => {
                self.last_seq = seq;
                self.spinning = true;
                self.handle(&frame[..len], Path::Channel(seq));
            }
            Posted::Oversized { seq } => {
                // A length no frame has: the client scribbled on its page.
                self.last_seq = seq;
                self.open = false;
            }
        }
        true
    }

    /// Spin briefly for the next channel request, if a permit is free.
    /// Finding the client on our CPU, move to another CPU (now and then)
    /// and spin there: two threads handing one CPU back and forth would
    /// otherwise stay together, each call paying two wake-ups.
    fn spin(&mut self) -> bool {
        let Some(_permit) = SpinPermit::try_take() else {
            return false;
        };
        match self.channel.spin_for_request(self.last_seq) {
            Spin::Ready => true,
            Spin::Expired => false,
            Spin::SharedCpu(cpu) => {
                let now = Instant::now();
                if self.last_move.is_some_and(|t| now - t < MOVE_INTERVAL) {
                    return false;
                }
                self.last_move = Some(now);
                affinity::move_off(cpu)
                    && self.channel.spin_for_request(self.last_seq) == Spin::Ready
            }
        }
    }

    /// Read one datagram from the socket (with any descriptors) and
    /// answer it there.
    fn serve_socket(&mut self, buf: &mut [u8; RECV_LEN]) {
        self.spinning = false;
        let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
        match self.peer.socket.recv_with_ancillary(buf, &mut fds) {
            Ok((Datagram::Frame { copied, .. }, _, cred)) if is_identity(&buf[..copied]) => {
                drop(fds);
                self.change_identity(&buf[..copied], cred);
            }
            Ok((Datagram::Frame { copied, .. }, 0, _)) => self.handle(&buf[..copied], Path::Socket),
            Ok((Datagram::Frame { copied, .. }, _, _)) => {
                let [first, second, ..] = &mut fds;
                let single = second.is_none();
                let first = first.take();
                // The others are closed before anything is answered.
                drop(fds);
                match first {
                    Some(fd) => self.handle_with_fd(&buf[..copied], fd, single),
                    None => self.handle(&buf[..copied], Path::Socket),
                }
            }
            Ok((Datagram::Closed, _, _)) | Err(_) => self.open = false,
        }
    }

    /// `Identity`: the peer's effective ids are now the ones the kernel
    /// attached to the frame (`SCM_CREDENTIALS`, which it checked against
    /// the sender's own ids); nothing in the message counts.
    fn change_identity(&mut self, frame: &[u8], cred: Option<PeerCred>) {
        let result = match cred {
            Some(c) => self.server.set_identity(self.peer.id, c.uid, c.gid),
            None => Err(Errno::EINVAL),
        };
        let Some((_, tag)) = peek(frame) else {
            self.open = false;
            return;
        };
        match result {
            Ok(()) => self.answer(tag, &Reply::Done),
            Err(e) => self.refuse(tag, e),
        }
    }

    /// A frame that came with descriptors: only a host-file open may carry
    /// one (see the module docs); on any other frame they are closed and
    /// the frame is served as usual.
    fn handle_with_fd(&mut self, frame: &[u8], fd: OwnedFd, single: bool) {
        let host_file = match decode_request(frame) {
            Ok(request) => match request.message {
                Request::Open { ref path, .. } if path.as_bytes() == HOST_FD_MOUNT.as_bytes() => {
                    Some(request.tag)
                }
                _ => None,
            },
            Err(_) => None,
        };
        let Some(tag) = host_file else {
            drop(fd);
            return self.handle(frame, Path::Socket);
        };
        if !single {
            return self.refuse(tag, Errno::EINVAL);
        }
        match self.server.host_files.admit(fd) {
            Ok((path, flags)) => {
                let Ok(path) = protocol::Path::try_from(path.as_str()) else {
                    return self.refuse(tag, Errno::ENAMETOOLONG);
                };
                let open = Request::Open {
                    path,
                    flags,
                    mode: 0,
                };
                let mut rewritten = [0u8; MAX_FRAME];
                let len = encode_request(tag, &open, &mut rewritten);
                self.handle(&rewritten[..len], Path::Socket);
            }
            Err(e) => self.refuse(tag, e),
        }
    }

    /// Answer the request `tag` over the socket with an error, without
    /// memsrv.
    fn refuse(&mut self, tag: u32, errno: Errno) {
        self.answer(tag, &Reply::Error(errno));
    }

    /// Answer the request `tag` over the socket, without memsrv.
    fn answer(&mut self, tag: u32, message: &Reply) {
        self.send_socket(&FrameBuf::reply(tag, message));
    }

    /// Hand one frame to memsrv and carry out what it says.
    fn handle(&mut self, frame: &[u8], path: Path) {
        if let Path::Channel(seq) = path {
            // The reply to this request goes to the channel, whenever and
            // from wherever it comes (frames of other kinds on the channel
            // wait for no reply).
            self.waiting = match peek(frame) {
                Some((MessageKind::Request, tag)) => Some(ChannelWait { tag, seq }),
                _ => None,
            };
        }
        let me = self.peer.id;
        let server = Arc::clone(&self.server);
        if let Some((tag, request)) = futex::request(frame) {
            let peer = Arc::clone(&self.peer);
            let stay = || !peer.is_cut() && !peer.socket.hung_up();
            if let Some(result) = futex::carry(&server, me, &request, stay) {
                let reply = result.map_or_else(Reply::Error, Reply::Value);
                self.deliver(&FrameBuf::reply(tag, &reply));
                return;
            }
        }
        match path {
            Path::Channel(_) if self.waiting.is_some() => {
                server.handle_channel_frame(me, frame, &mut self.effects)
            }
            _ => server.handle_frame(me, frame, &mut self.effects),
        }
        server.advance_generation();
        let mut effects = core::mem::take(&mut self.effects);
        server.carry_out(&mut effects, Some((me, self)));
        self.effects = effects;
    }

    /// Deliver frames other threads produced for this connection (deferred
    /// replies, driver requests).
    fn deliver_outbox(&mut self) {
        self.peer.take_outbox(&mut self.outbox);
        let mut outbox = core::mem::take(&mut self.outbox);
        for frame in outbox.drain(..) {
            self.deliver(&frame);
        }
        self.outbox = outbox;
    }

    /// Send one frame the way it belongs: the reply to the waiting channel
    /// request to the channel, everything else over the socket.
    fn deliver(&mut self, frame: &FrameBuf) {
        let bytes = frame.as_slice();
        if let Some(wait) = self.waiting {
            if peek(bytes) == Some((MessageKind::Reply, wait.tag)) {
                self.waiting = None;
                self.channel.post_reply(wait.seq, bytes);
                return;
            }
        }
        self.send_socket(frame);
    }

    /// Send one frame over the socket. The first successful Hello reply
    /// carries the arena memory file, the channel memory file, the
    /// doorbell and the map generation's memory file.
    fn send_socket(&mut self, frame: &FrameBuf) {
        let bytes = frame.as_slice();
        let sent = if !self.welcomed && is_welcome(bytes) {
            self.welcomed = true;
            let mut fds = vec![
                self.server.arena_file(),
                self.channel_file.as_fd(),
                self.peer.doorbell.as_fd(),
            ];
            fds.extend(self.server.generation_file());
            self.peer.socket.send_with_fds(bytes, &fds)
        } else {
            self.peer.socket.send(bytes)
        };
        if sent.is_err() {
            self.open = false;
        }
    }
}

/// Whether `frame` is an `Identity` request (answered by the daemon from
/// the frame's credentials, see `Session::change_identity`).
fn is_identity(frame: &[u8]) -> bool {
    matches!(
        decode_request(frame).map(|f| f.message),
        Ok(Request::Identity)
    )
}

/// Whether `frame` is a successful Hello reply.
fn is_welcome(frame: &[u8]) -> bool {
    matches!(
        decode_reply(frame).map(|f| f.message),
        Ok(Reply::Hello { .. })
    )
}
