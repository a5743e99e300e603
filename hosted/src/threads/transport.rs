//! The client side of the channels: a [`Transport`] that sends each request
//! frame to the server thread and waits for the reply on the connection's
//! own channel.

use super::packet::Packet;
use super::server::ToServer;
use super::spin::SpinGate;
use crossbeam_channel::{bounded, Receiver, Sender};
use memsrv::{ClientId, Credentials};
use nommu::Transport;
use protocol::{Errno, MAX_FRAME};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Replies a connection's queue holds. One call is outstanding at a time,
/// so one reply is ever queued; the slack only matters for a misbehaving
/// server, which is then cut off rather than blocked on.
const REPLY_DEPTH: usize = 4;

/// One connection to the server thread. Dropping it closes the connection.
pub struct ChannelTransport {
    id: ClientId,
    server: Sender<ToServer>,
    /// Held for a whole call: concurrent callers of one client are served
    /// one after the other, so replies cannot be swapped.
    replies: Mutex<Receiver<Packet>>,
    spin: Duration,
    gate: Arc<SpinGate>,
}

impl ChannelTransport {
    /// Open a connection: the server thread assigns the id.
    pub(crate) fn connect(
        server: &Sender<ToServer>,
        credentials: Credentials,
        spin: Duration,
        gate: Arc<SpinGate>,
    ) -> Result<Self, Errno> {
        let (reply, replies) = bounded(REPLY_DEPTH);
        let (welcome, welcomed) = bounded(1);
        server
            .send(ToServer::Connect {
                credentials,
                reply,
                welcome,
            })
            .map_err(|_| Errno::ENOTCONN)?;
        let id = welcomed.recv().map_err(|_| Errno::ENOTCONN)?;
        Ok(Self {
            id,
            server: server.clone(),
            replies: Mutex::new(replies),
            spin,
            gate,
        })
    }

    /// The server's name for this connection.
    pub fn id(&self) -> ClientId {
        self.id
    }
}

impl Transport for ChannelTransport {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let replies = self.replies.lock().unwrap_or_else(PoisonError::into_inner);
        let packet = Packet::copy_from(request)?;
        self.server
            .send(ToServer::Frame {
                from: self.id,
                packet,
            })
            .map_err(|_| Errno::ENOTCONN)?;
        // Closure of the reply channel is the server closing the connection.
        let answer = self
            .gate
            .recv(&replies, self.spin)
            .map_err(|_| Errno::ENOTCONN)?;
        let bytes = answer.as_slice();
        reply[..bytes.len()].copy_from_slice(bytes);
        Ok(bytes.len())
    }
}

impl Drop for ChannelTransport {
    fn drop(&mut self) {
        // If the server thread is gone there is nothing left to release.
        let _ = self.server.send(ToServer::Disconnect { client: self.id });
    }
}
