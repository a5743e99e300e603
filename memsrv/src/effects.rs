//! What the server asks of its home: the [`Effect`]s each call pushes, the
//! encoded frames ([`FrameBuf`]) they carry, and a request's [`Answer`]
//! (now, or later as an effect), and the one loop every home carries them
//! out with ([`carry_out`], through the home's [`Courier`]).

use protocol::{
    DriverRequest, FrameHeader, MessageKind, Reply, ShortReply, HEADER_LEN, MAX_BODY,
    SHORT_REPLY_FRAME,
};
use serde::Serialize;
use zerocopy::IntoBytes;

use alloc::boxed::Box;
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

/// Frames up to this many bytes (header included) are held inline; larger
/// ones (file data, `/proc` text, paths) on the heap, at their own length.
/// The common replies (`Mapped`, `Done`, `Value`, `Error`, `Hello`) fit.
/// Held as words after the length, so that a short reply's header is two
/// word stores and an effect stays 64 bytes.
const INLINE_FRAME: usize = 48;

/// An encoded frame ready to send: header and body, exactly as long as the
/// frame is (never the 2 KiB of the largest one), so building, moving and
/// sending one costs what its bytes cost.
#[derive(Clone)]
pub struct FrameBuf {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// `_gap` fills the bytes before the word-aligned `words` (always
    /// zero), so that building one writes every byte it copies.
    Inline {
        len: u8,
        _gap: [u8; 6],
        words: [u64; INLINE_FRAME / 8],
    },
    Heap(Box<[u8]>),
}

impl FrameBuf {
    /// The frame's bytes (inlined: a home calls it once per answer).
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline { len, words, .. } => &words.as_bytes()[..usize::from(*len)],
            Repr::Heap(bytes) => bytes,
        }
    }

    /// Push a [`Effect::Send`] of the short reply `reply` with tag `tag`
    /// to `to`, encoding it in the pushed effect's own inline bytes.
    #[inline(always)]
    pub fn push_short_reply(effects: &mut Vec<Effect>, to: ClientId, tag: u32, reply: &ShortReply) {
        const { assert!(SHORT_REPLY_FRAME <= INLINE_FRAME) };
        let repr = Repr::Inline {
            len: 0,
            _gap: [0; 6],
            words: [0; INLINE_FRAME / 8],
        };
        effects.push(Effect::Send {
            to,
            frame: Self { repr },
        });
        if let Some(Effect::Send {
            frame: FrameBuf {
                repr: Repr::Inline { len, words, .. },
            },
            ..
        }) = effects.last_mut()
        {
            // Fits: SHORT_REPLY_FRAME ≤ INLINE_FRAME < 256.
            *len = reply.encode_frame(tag, words.as_mut_bytes()).unwrap_or(0) as u8;
        }
    }

    /// A reply frame (kind 2) with tag `tag`.
    pub fn reply(tag: u32, reply: &Reply) -> Self {
        Self::encode(MessageKind::Reply, tag, reply)
    }

    /// A driver request frame (kind 3) with tag `tag`.
    pub fn driver_request(tag: u32, request: &DriverRequest) -> Self {
        Self::encode(MessageKind::DriverRequest, tag, request)
    }

    /// Encode the body straight into the inline bytes; a body too long for
    /// them is encoded again onto the heap. The bytes are those
    /// `protocol::encode_*` produce (the `frames_match_the_protocol` test).
    fn encode<T: Serialize>(kind: MessageKind, tag: u32, message: &T) -> Self {
        let mut words = [0u64; INLINE_FRAME / 8];
        let bytes = words.as_mut_bytes();
        if let Ok(body) = postcard::to_slice(message, &mut bytes[HEADER_LEN..]) {
            let body_len = body.len();
            let len = HEADER_LEN + body_len;
            bytes[..HEADER_LEN].copy_from_slice(FrameHeader::new(kind, tag, body_len).as_bytes());
            // len ≤ INLINE_FRAME < 256.
            return Self {
                repr: Repr::Inline {
                    len: len as u8,
                    _gap: [0; 6],
                    words,
                },
            };
        }
        let mut frame = Vec::with_capacity(HEADER_LEN + 2 * INLINE_FRAME);
        frame.resize(HEADER_LEN, 0);
        // Every message is bounded by construction (the protocol's
        // `message_sizes_stay_bounded` test guards MAX_BODY), and a Vec
        // takes any length, so this cannot fail.
        let mut frame = postcard::to_extend(message, frame).unwrap_or_default();
        let body_len = frame.len().saturating_sub(HEADER_LEN);
        if frame.len() < HEADER_LEN || body_len > MAX_BODY {
            unreachable_bound();
        }
        frame[..HEADER_LEN].copy_from_slice(FrameHeader::new(kind, tag, body_len).as_bytes());
        Self {
            repr: Repr::Heap(frame.into_boxed_slice()),
        }
    }
}

impl core::fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameBuf")
            .field("len", &self.as_slice().len())
            .finish_non_exhaustive()
    }
}

#[cold]
fn unreachable_bound() -> ! {
    panic!("a message exceeded MAX_BODY; the protocol's size bound is broken")
}

/// Something the home must do on the server's behalf.
#[derive(Clone, Debug)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{encode_driver_request, encode_reply, Errno, MAX_FRAME, PROC_CHUNK};

    fn protocol_reply(tag: u32, reply: &Reply) -> alloc::vec::Vec<u8> {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_reply(tag, reply, &mut buf);
        buf[..len].to_vec()
    }

    /// The largest `Hello` reply: every field at its widest encoding.
    const LARGEST_HELLO: Reply = Reply::Hello {
        pid: u32::MAX,
        arena_base: u64::MAX,
        arena_size: u64::MAX,
    };

    #[test]
    fn frames_match_the_protocol() {
        let full = heapless::Vec::from_slice(&[0xa5; PROC_CHUNK]).unwrap();
        let replies = [
            Reply::Done,
            Reply::Error(Errno::ENOMEM),
            Reply::Mapped { addr: u64::MAX },
            Reply::Value(i64::MIN),
            LARGEST_HELLO,
            // Just past the inline bytes, and the largest reply there is.
            Reply::ProcText {
                total: 1,
                data: heapless::Vec::from_slice(&[7; INLINE_FRAME]).unwrap(),
            },
            Reply::ProcText {
                total: u32::MAX,
                data: full,
            },
        ];
        for (tag, reply) in replies.iter().enumerate() {
            let tag = u32::MAX - tag as u32;
            let frame = FrameBuf::reply(tag, reply);
            assert_eq!(
                frame.as_slice(),
                &protocol_reply(tag, reply)[..],
                "{reply:?}"
            );
        }
        let request = DriverRequest::Lookup {
            path: "a/long/enough/path/to/leave/the/inline/bytes"
                .try_into()
                .unwrap(),
            flags: 0o1102,
            mode: 0o644,
            caller: protocol::Owner {
                uid: 1000,
                gid: 1000,
            },
        };
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_driver_request(9, &request, &mut buf);
        assert!(len > INLINE_FRAME);
        assert_eq!(
            FrameBuf::driver_request(9, &request).as_slice(),
            &buf[..len]
        );
    }

    #[test]
    fn short_replies_pushed_in_place_are_the_protocol_frames() {
        let replies = [
            ShortReply::Done,
            ShortReply::Error(Errno::ENOMEM),
            ShortReply::Mapped { addr: u64::MAX },
            ShortReply::Value(i64::MIN),
            ShortReply::Hello {
                pid: u32::MAX,
                arena_base: u64::MAX,
                arena_size: u64::MAX,
            },
        ];
        let mut effects = alloc::vec![Effect::Drop {
            client: ClientId(1)
        }];
        for (tag, reply) in replies.iter().enumerate() {
            let tag = u32::MAX - tag as u32;
            FrameBuf::push_short_reply(&mut effects, ClientId(9), tag, reply);
            let Some(Effect::Send { to, frame }) = effects.last() else {
                panic!("no frame pushed")
            };
            assert_eq!(*to, ClientId(9));
            assert_eq!(
                frame.as_slice(),
                &protocol_reply(tag, &reply.to_reply())[..],
                "{reply:?}"
            );
        }
        assert_eq!(effects.len(), 1 + replies.len());
    }

    #[test]
    fn an_effect_is_small() {
        // Effects are pushed, moved and carried out by value.
        assert!(core::mem::size_of::<Effect>() <= 64);
    }

    #[test]
    fn the_common_replies_are_held_inline() {
        for reply in [
            Reply::Mapped { addr: u64::MAX },
            Reply::Error(Errno::EINVAL),
            LARGEST_HELLO,
        ] {
            let frame = FrameBuf::reply(1, &reply);
            assert!(matches!(frame.repr, Repr::Inline { .. }), "{reply:?}");
        }
    }
}
