//! Encoding and decoding whole frames over caller-supplied buffers.

use crate::header::{peek, FrameHeader, MessageKind, HEADER_LEN, MAGIC, VERSION};
use crate::{DriverReply, DriverRequest, Errno, Reply, Request, MAX_BODY, MAX_FRAME};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zerocopy::{FromBytes, IntoBytes};

/// Why a frame was refused. Each reason maps to the errno of the error reply
/// ([`DecodeError::errno`]); the tag is known whenever the header was intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than a header: nothing can be addressed.
    TooShort,
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// The header names another protocol version.
    BadVersion { tag: u32, version: u16 },
    /// The header names a kind that is not the one expected here.
    WrongKind { tag: u32, kind: u16 },
    /// The body length exceeds [`MAX_BODY`].
    TooLong { tag: u32 },
    /// Fewer body bytes arrived than the header announced.
    Truncated { tag: u32 },
    /// More bytes arrived than the header announced.
    TrailingBytes { tag: u32 },
    /// The body is not a valid message (unknown variant, bad field, or not
    /// all of it consumed).
    BadBody { tag: u32 },
}

impl DecodeError {
    /// The tag to echo in an error reply, if the header could be read.
    pub fn tag(self) -> Option<u32> {
        match self {
            Self::TooShort | Self::BadMagic => None,
            Self::BadVersion { tag, .. }
            | Self::WrongKind { tag, .. }
            | Self::TooLong { tag }
            | Self::Truncated { tag }
            | Self::TrailingBytes { tag }
            | Self::BadBody { tag } => Some(tag),
        }
    }

    /// The errno an error reply carries for this refusal.
    pub fn errno(self) -> Errno {
        match self {
            Self::TooShort | Self::Truncated { .. } | Self::TrailingBytes { .. } => Errno::EBADMSG,
            Self::BadMagic | Self::WrongKind { .. } => Errno::EPROTO,
            Self::BadVersion { .. } => Errno::EPROTONOSUPPORT,
            Self::TooLong { .. } => Errno::EMSGSIZE,
            Self::BadBody { .. } => Errno::EBADMSG,
        }
    }
}

/// A decoded frame: the tag and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<T> {
    pub tag: u32,
    pub message: T,
}

fn encode<T: Serialize>(
    kind: MessageKind,
    tag: u32,
    message: &T,
    buf: &mut [u8; MAX_FRAME],
) -> usize {
    let (head, body) = buf.split_at_mut(HEADER_LEN);
    // Every message is bounded by construction (heapless fields, fixed-size
    // integers); the `message_sizes_stay_bounded` test guards MAX_BODY.
    let body_len = match postcard::to_slice(message, &mut body[..MAX_BODY]) {
        Ok(used) => used.len(),
        Err(_) => unreachable_bound(),
    };
    head.copy_from_slice(FrameHeader::new(kind, tag, body_len).as_bytes());
    HEADER_LEN + body_len
}

#[cold]
fn unreachable_bound() -> ! {
    panic!("a message exceeded MAX_BODY; the protocol's size bound is broken")
}

pub(crate) fn decode<T: DeserializeOwned>(
    kind: MessageKind,
    frame: &[u8],
) -> Result<Frame<T>, DecodeError> {
    let (header, body) = FrameHeader::read_from_prefix(frame).map_err(|_| DecodeError::TooShort)?;
    if header.magic != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let tag = header.tag.get();
    let version = header.version.get();
    if version != VERSION {
        return Err(DecodeError::BadVersion { tag, version });
    }
    if header.kind.get() != kind as u16 {
        return Err(DecodeError::WrongKind {
            tag,
            kind: header.kind.get(),
        });
    }
    let body_len = header.body_len.get() as usize;
    if body_len > MAX_BODY {
        return Err(DecodeError::TooLong { tag });
    }
    if body.len() < body_len {
        return Err(DecodeError::Truncated { tag });
    }
    if body.len() > body_len {
        return Err(DecodeError::TrailingBytes { tag });
    }
    match postcard::take_from_bytes::<T>(body) {
        Ok((message, [])) => Ok(Frame { tag, message }),
        _ => Err(DecodeError::BadBody { tag }),
    }
}

/// Encode a request frame into `buf`; returns the frame's length.
pub fn encode_request(tag: u32, request: &Request, buf: &mut [u8; MAX_FRAME]) -> usize {
    encode(MessageKind::Request, tag, request, buf)
}

/// Encode a reply frame into `buf`; returns the frame's length.
pub fn encode_reply(tag: u32, reply: &Reply, buf: &mut [u8; MAX_FRAME]) -> usize {
    encode(MessageKind::Reply, tag, reply, buf)
}

/// Decode one whole request frame (exactly the bytes of one frame).
pub fn decode_request(frame: &[u8]) -> Result<Frame<Request>, DecodeError> {
    decode(MessageKind::Request, frame)
}

/// Decode one whole reply frame (exactly the bytes of one frame).
pub fn decode_reply(frame: &[u8]) -> Result<Frame<Reply>, DecodeError> {
    decode(MessageKind::Reply, frame)
}

/// Encode a driver request frame (memory server → backing device).
pub fn encode_driver_request(
    tag: u32,
    request: &DriverRequest,
    buf: &mut [u8; MAX_FRAME],
) -> usize {
    encode(MessageKind::DriverRequest, tag, request, buf)
}

/// Encode a driver reply frame (backing device → memory server).
pub fn encode_driver_reply(tag: u32, reply: &DriverReply, buf: &mut [u8; MAX_FRAME]) -> usize {
    encode(MessageKind::DriverReply, tag, reply, buf)
}

/// Decode one whole driver request frame.
pub fn decode_driver_request(frame: &[u8]) -> Result<Frame<DriverRequest>, DecodeError> {
    decode(MessageKind::DriverRequest, frame)
}

/// Decode one whole driver reply frame.
pub fn decode_driver_reply(frame: &[u8]) -> Result<Frame<DriverReply>, DecodeError> {
    decode(MessageKind::DriverReply, frame)
}

/// A frame arriving at the memory server: a client's request, or a
/// backing device's reply to one of the server's own requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Request(Frame<Request>),
    DriverReply(Frame<DriverReply>),
}

/// Decode one whole frame sent to the memory server, of either kind.
pub fn decode_incoming(frame: &[u8]) -> Result<Incoming, DecodeError> {
    match peek(frame) {
        Some((MessageKind::DriverReply, _)) => {
            decode_driver_reply(frame).map(Incoming::DriverReply)
        }
        _ => decode_request(frame).map(Incoming::Request),
    }
}
