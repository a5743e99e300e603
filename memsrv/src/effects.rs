//! What the server asks of its home: the [`Effect`]s each call pushes, the
//! encoded frames ([`FrameBuf`]) they carry, and a request's [`Answer`]
//! (now, or later as an effect).

use protocol::{encode_driver_request, encode_reply, DriverRequest, Reply, MAX_FRAME};

use crate::ClientId;

/// A request's answer: the reply now, or later — when the drivers it waits
/// for have answered (or died, or timed out), the reply is pushed as an
/// [`Effect`] with the request's tag.
#[derive(Clone, Debug, PartialEq)]
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
