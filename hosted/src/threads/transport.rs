//! The client side: a [`Transport`] that queues each request frame for the
//! server thread and waits for the reply in the connection's own slot.

use super::packet::Packet;
use super::routes::Sink;
use super::server::{Inbox, ToServer};
use super::wait::{current_cpu, same_cpu, ReplySlot, SpinGate};
use crossbeam_channel::bounded;
use memsrv::{ClientId, Credentials};
use nommu::Transport;
use protocol::{Errno, MAX_FRAME};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One connection to the server thread. Dropping it closes the connection.
pub struct ChannelTransport {
    id: ClientId,
    inbox: Inbox,
    reply: Arc<ReplySlot>,
    /// The frame a request is encoded into, allocated once; held for a
    /// whole call: concurrent callers of one client are served one after
    /// the other, so replies cannot be swapped.
    calls: Mutex<Box<[u8; MAX_FRAME]>>,
    spin: Duration,
    gate: Arc<SpinGate>,
}

impl ChannelTransport {
    /// Open a connection: the server thread assigns the id.
    pub(crate) fn connect(
        inbox: &Inbox,
        credentials: Credentials,
        spin: Duration,
        gate: Arc<SpinGate>,
    ) -> Result<Self, Errno> {
        let reply = Arc::new(ReplySlot::default());
        let (welcome, welcomed) = bounded(1);
        inbox.send(ToServer::Connect {
            credentials,
            reply: Sink::Slot(Arc::clone(&reply)),
            welcome,
            builtin: false,
        })?;
        let id = welcomed.recv().map_err(|_| Errno::ENOTCONN)??;
        Ok(Self {
            id,
            inbox: inbox.clone(),
            reply,
            calls: Mutex::new(Box::new([0u8; MAX_FRAME])),
            spin,
            gate,
        })
    }

    /// The server's name for this connection.
    pub fn id(&self) -> ClientId {
        self.id
    }
}

impl ChannelTransport {
    /// The first half of a split call: queue `request` for the server and
    /// return at once; [`ChannelTransport::finish`] collects the reply. A
    /// call whose answer is deferred (a futex wait) can so be started on
    /// one connection while the same thread goes on with others. Between
    /// the two halves no other call may use this connection (its reply
    /// would be taken for this one's; the client core then sees the wrong
    /// tag and answers `EPROTO`).
    pub fn begin(&self, request: &[u8]) -> Result<(), Errno> {
        self.send(Packet::copy_from(request)?)
    }

    fn send(&self, packet: Packet) -> Result<(), Errno> {
        self.reply.set_client_cpu(current_cpu());
        self.inbox.send(ToServer::Frame {
            from: self.id,
            packet,
        })
    }

    /// The second half of a split call: wait for the reply to the frame
    /// [`ChannelTransport::begin`] queued and copy it into `reply`.
    pub fn finish(&self, reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let answer = self.answer()?;
        let bytes = answer.as_slice();
        // `Packet` never holds more than MAX_FRAME bytes.
        reply[..bytes.len()].copy_from_slice(bytes);
        Ok(bytes.len())
    }

    /// Wait for the reply packet to the frame sent last.
    fn answer(&self) -> Result<Packet, Errno> {
        // Spinning against a server on this very core would only delay it.
        let may_spin = !same_cpu(current_cpu(), self.inbox.server_cpu());
        self.reply.take(&self.gate, self.spin, may_spin)
    }
}

impl Transport for ChannelTransport {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let _call = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        self.begin(request)?;
        self.finish(reply)
    }

    /// The request is encoded into the connection's frame and travels as a
    /// packet of its length; the reply is decoded in its packet.
    fn exchange(
        &self,
        encode: &mut dyn FnMut(&mut [u8; MAX_FRAME]) -> usize,
        decode: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Errno> {
        let mut frame = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let len = encode(&mut frame);
        self.send(Packet::copy_from(frame.get(..len).ok_or(Errno::EMSGSIZE)?)?)?;
        decode(self.answer()?.as_slice());
        Ok(())
    }
}

impl Drop for ChannelTransport {
    fn drop(&mut self) {
        // If the server thread is gone there is nothing left to release.
        let _ = self.inbox.send(ToServer::Disconnect { client: self.id });
    }
}
