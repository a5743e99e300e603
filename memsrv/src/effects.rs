//! What the server asks of its home: the [`Effect`]s each call pushes, the
//! encoded frames ([`FrameBuf`]) they carry, and a request's [`Answer`]
//! (now, or later as an effect), and the one loop every home carries them
//! out with ([`carry_out`], through the home's [`Courier`]).

use protocol::{encode_driver_request, encode_reply, DriverRequest, Reply, MAX_FRAME};

use alloc::vec::Vec;

use crate::ClientId;

/// A request's answer: the reply now, or later — when the drivers it waits
/// for have answered (or died, or timed out), the reply is pushed as an
/// [`Effect`] with the request's tag.
#[derive(Clone, Debug, PartialEq)]
// The reply stays inline: the anonymous fast path moves it once, and
// boxing would add an allocation per call.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    Now(Reply),
    Later,
}

impl Answer {
    /// The reply, if it came now.
    pub fn now(self) -> Option<Reply> {
        match self {
            Self::Now(reply) => Some(reply),
            Self::Later => None,
        }
    }
}

/// An answer is a reply if it came now (lets callers compare with the
/// reply they expect).
impl PartialEq<Reply> for Answer {
    fn eq(&self, reply: &Reply) -> bool {
        matches!(self, Self::Now(r) if r == reply)
    }
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

    pub(crate) fn reply(tag: u32, reply: &Reply) -> Self {
        let mut bytes = [0u8; MAX_FRAME];
        let len = encode_reply(tag, reply, &mut bytes);
        Self { len, bytes }
    }

    pub(crate) fn driver_request(tag: u32, request: &DriverRequest) -> Self {
        let mut bytes = [0u8; MAX_FRAME];
        let len = encode_driver_request(tag, request, &mut bytes);
        Self { len, bytes }
    }
}

/// Something the home must do on the server's behalf.
#[derive(Clone)]
// Replies stay inline: effects are reused between frames, so boxing would
// add an allocation per reply for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Effect {
    /// Send this frame to that client: a reply (kind 2) to a client, or a
    /// driver request (kind 3) to a driver's connection.
    Send { to: ClientId, frame: FrameBuf },
    /// Close that client's connection (a frame that could not be answered).
    Drop { client: ClientId },
}

/// What a home does with each effect: deliver a frame, close a connection.
/// Either may cause more effects (a peer that cannot take a frame is cut;
/// closing a driver fails its callers); they go onto `more`.
pub trait Courier {
    /// Send `frame` to `to` (a reply to a client, a request to a driver).
    fn send(&mut self, to: ClientId, frame: &FrameBuf, more: &mut Vec<Effect>);
    /// Close `client`'s connection, telling the server if the home owns
    /// that step ([`crate::MemoryServer::disconnect_with`]).
    fn close(&mut self, client: ClientId, more: &mut Vec<Effect>);
}

/// Carry out `effects` through `courier`, emptying it, and then the
/// effects that carrying them out caused, batch after batch, until none
/// are left. `effects` keeps the larger buffer, for reuse.
pub fn carry_out(courier: &mut impl Courier, effects: &mut Vec<Effect>) {
    let mut more = Vec::new();
    while !effects.is_empty() {
        // By reference: an effect holds a whole frame buffer, and moving
        // it out would copy that.
        for effect in effects.iter() {
            match effect {
                Effect::Send { to, frame } => courier.send(*to, frame, &mut more),
                Effect::Drop { client } => courier.close(*client, &mut more),
            }
        }
        effects.clear();
        core::mem::swap(effects, &mut more);
    }
    if more.capacity() > effects.capacity() {
        core::mem::swap(effects, &mut more);
    }
}
