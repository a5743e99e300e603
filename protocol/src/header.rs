//! The fixed frame header that precedes every postcard body.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `b"NMMU"`: the first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"NMMU";
/// The protocol version this crate speaks. Any change to a message's
/// encoding bumps it; the golden vectors make such a change visible.
pub const VERSION: u16 = 2;
/// Size of [`FrameHeader`] on the wire.
pub const HEADER_LEN: usize = core::mem::size_of::<FrameHeader>();

/// What the body of a frame is. Each direction has its own kind, so a
/// request tag and a reply tag can never be mistaken for one another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum MessageKind {
    /// A client's [`crate::Request`] to the memory server.
    Request = 1,
    /// The memory server's [`crate::Reply`] to a client.
    Reply = 2,
    /// The memory server's [`crate::DriverRequest`] to a backing-device
    /// server (tags chosen by the memory server).
    DriverRequest = 3,
    /// A backing-device server's [`crate::DriverReply`], echoing the tag.
    DriverReply = 4,
}

impl MessageKind {
    /// The kind for a raw header value, if it is one this version knows.
    pub fn from_raw(raw: u16) -> Option<Self> {
        match raw {
            1 => Some(Self::Request),
            2 => Some(Self::Reply),
            3 => Some(Self::DriverRequest),
            4 => Some(Self::DriverReply),
            _ => None,
        }
    }
}

/// The 16-byte header: little-endian, no padding, readable in place from any
/// byte buffer.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct FrameHeader {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// The sender's protocol version; must equal [`VERSION`].
    pub version: U16,
    /// A [`MessageKind`] value.
    pub kind: U16,
    /// Correlation tag chosen by the requester and echoed verbatim in the
    /// reply.
    pub tag: U32,
    /// Length of the postcard body that follows, in bytes.
    pub body_len: U32,
}

impl FrameHeader {
    /// A header for a body of `body_len` bytes.
    pub fn new(kind: MessageKind, tag: u32, body_len: usize) -> Self {
        Self {
            magic: MAGIC,
            version: U16::new(VERSION),
            kind: U16::new(kind as u16),
            tag: U32::new(tag),
            body_len: U32::new(body_len as u32),
        }
    }
}

/// The kind and tag of `frame`, read from its header without decoding the
/// body: how a home routes a frame (a reply to the call waiting for its tag,
/// a driver request to the driver's backlog) without reading header bytes
/// itself.
///
/// `None` when nothing can be addressed: the frame is shorter than a header,
/// does not start with [`MAGIC`], or names a kind this version does not
/// know. The version and the body length are not checked here: a frame
/// refused for those still has a tag ([`crate::DecodeError::tag`]) and its
/// error reply must reach the waiting caller like any reply. Decoding
/// ([`crate::frame`]) checks everything.
pub fn peek(frame: &[u8]) -> Option<(MessageKind, u32)> {
    let (header, _) = FrameHeader::read_from_prefix(frame).ok()?;
    if header.magic != MAGIC {
        return None;
    }
    Some((MessageKind::from_raw(header.kind.get())?, header.tag.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_sixteen_bytes_without_padding() {
        assert_eq!(HEADER_LEN, 16);
        let h = FrameHeader::new(MessageKind::Reply, 0x0102_0304, 5);
        assert_eq!(
            h.as_bytes(),
            &[b'N', b'M', b'M', b'U', 2, 0, 2, 0, 4, 3, 2, 1, 5, 0, 0, 0]
        );
    }
}
