//! The short messages: [`Request`]'s first variants (no path, no data:
//! `mmap`, `munmap`, a sysctl read, ...) and [`Reply`]'s first ones,
//! decoded as small enums of the same wire form, so the common calls never
//! build, return or move a kilobyte `Request` or `Reply`. The encoding is
//! the same bytes by construction (same variant order, same field types;
//! `tests/short.rs` checks it against the full enums), so these are no
//! second format. The commonest of them are read and written by hand
//! (a few varints each, as postcard writes them), not through serde.

use crate::frame::{decode, Frame};
use crate::header::{FrameHeader, MessageKind, HEADER_LEN, MAGIC, VERSION};
use crate::{Errno, OffsetUnit, ProcView, Reply, Request, Sysctl, MAX_BODY};
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use zerocopy::{FromBytes, IntoBytes};

/// One list of variants makes [`ShortRequest`] and both conversions, so
/// the three cannot drift apart. Unit variants are written `Fork {}`:
/// postcard encodes a variant without fields as its index alone either
/// way.
macro_rules! short_requests {
    ($($variant:ident { $($field:ident: $ty:ty),* }),* $(,)?) => {
        /// [`Request`]'s variants 0 to 7, field for field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum ShortRequest {
            $($variant { $($field: $ty),* }),*
        }

        impl From<ShortRequest> for Request {
            fn from(short: ShortRequest) -> Self {
                match short {
                    $(ShortRequest::$variant { $($field),* } => Request::$variant { $($field),* }),*
                }
            }
        }

        impl ShortRequest {
            /// `request` as a short one, if it is one.
            pub fn of(request: &Request) -> Option<Self> {
                match *request {
                    $(Request::$variant { $($field),* } => Some(Self::$variant { $($field),* }),)*
                    _ => None,
                }
            }
        }
    };
}

short_requests! {
    Hello { ticket: Option<u64> },
    Clone { flags: u64 },
    Fork {},
    Exit {},
    Mmap { addr: u64, len: u64, prot: u32, flags: u32, fd: i32, offset: u64, unit: OffsetUnit },
    Munmap { addr: u64, len: u64 },
    ReadProc { view: ProcView, offset: u32 },
    ReadSysctl { name: Sysctl },
}

/// [`Reply`]'s variants 0 to 6, field for field, but for `ProcText`
/// (variant 5), which is not short: a frame carrying it is not decoded as
/// a short reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ShortReply {
    Error(Errno),
    Done,
    Hello {
        pid: u32,
        arena_base: u64,
        arena_size: u64,
    },
    Cloned {
        pid: u32,
        ticket: u64,
    },
    Mapped {
        addr: u64,
    },
    ProcText(NotShort),
    Value(i64),
}

/// A variant that is not short: deserializing it always fails, so the
/// frame goes to the full decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotShort {}

impl<'de> Deserialize<'de> for NotShort {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom("not a short message"))
    }
}

impl ShortReply {
    /// The same reply as the full enum.
    pub fn to_reply(self) -> Reply {
        match self {
            Self::Error(e) => Reply::Error(e),
            Self::Done => Reply::Done,
            Self::Hello {
                pid,
                arena_base,
                arena_size,
            } => Reply::Hello {
                pid,
                arena_base,
                arena_size,
            },
            Self::Cloned { pid, ticket } => Reply::Cloned { pid, ticket },
            Self::Mapped { addr } => Reply::Mapped { addr },
            Self::ProcText(never) => match never {},
            Self::Value(v) => Reply::Value(v),
        }
    }
}

/// A request frame, if it is exactly one whole frame of a short request.
/// `None` for every other frame, well-formed or not: [`crate::decode_request`]
/// of the same bytes then gives the request or says why it is refused.
///
/// The calls every program makes (`mmap`, `munmap`, the sysctl read) are
/// read by hand, a few varints as postcard reads them; the other short
/// requests go through serde.
#[inline]
pub fn decode_short_request(frame: &[u8]) -> Option<Frame<ShortRequest>> {
    let (tag, body) = whole_body(MessageKind::Request, frame)?;
    let mut r = Reader(body);
    let message = match r.u32()? {
        4 => ShortRequest::Mmap {
            addr: r.u64()?,
            len: r.u64()?,
            prot: r.u32()?,
            flags: r.u32()?,
            fd: r.i32()?,
            offset: r.u64()?,
            unit: match r.u32()? {
                0 => OffsetUnit::Bytes,
                1 => OffsetUnit::Pages,
                _ => return None,
            },
        },
        5 => ShortRequest::Munmap {
            addr: r.u64()?,
            len: r.u64()?,
        },
        7 => ShortRequest::ReadSysctl {
            name: match r.u32()? {
                0 => Sysctl::NrTrimPages,
                _ => return None,
            },
        },
        _ => return decode(MessageKind::Request, frame).ok(),
    };
    r.0.is_empty().then_some(Frame { tag, message })
}

/// A reply frame, if it is exactly one whole frame of a short reply
/// (otherwise as [`decode_short_request`]: [`crate::decode_reply`] tells).
/// The common replies (`Error`, `Done`, `Mapped`, `Value`) are read by
/// hand, the others through serde.
pub fn decode_short_reply(frame: &[u8]) -> Option<Frame<ShortReply>> {
    let (tag, body) = whole_body(MessageKind::Reply, frame)?;
    let mut r = Reader(body);
    let message = match r.u32()? {
        0 => ShortReply::Error(Errno(r.u16()?)),
        1 => ShortReply::Done,
        4 => ShortReply::Mapped { addr: r.u64()? },
        6 => ShortReply::Value(r.i64()?),
        _ => return decode(MessageKind::Reply, frame).ok(),
    };
    r.0.is_empty().then_some(Frame { tag, message })
}

impl ShortRequest {
    /// Encode this request as a whole frame with tag `tag` into `out`, the
    /// bytes [`crate::encode_request`] gives for the same request, without
    /// serde; returns the frame's length. `None` for `ReadProc` (its view
    /// goes through serde) and when `out` holds fewer than
    /// [`SHORT_REQUEST_FRAME`] bytes.
    pub fn encode_frame(&self, tag: u32, out: &mut [u8]) -> Option<usize> {
        let out = out.get_mut(..SHORT_REQUEST_FRAME)?;
        write_frame(MessageKind::Request, tag, out, |w| {
            match *self {
                Self::Hello { ticket } => {
                    w.varint(0);
                    match ticket {
                        None => w.varint(0),
                        Some(t) => {
                            w.varint(1);
                            w.varint(t);
                        }
                    }
                }
                Self::Clone { flags } => {
                    w.varint(1);
                    w.varint(flags);
                }
                Self::Fork {} => w.varint(2),
                Self::Exit {} => w.varint(3),
                Self::Mmap {
                    addr,
                    len,
                    prot,
                    flags,
                    fd,
                    offset,
                    unit,
                } => {
                    w.varint(4);
                    w.varint(addr);
                    w.varint(len);
                    w.varint(u64::from(prot));
                    w.varint(u64::from(flags));
                    // Zigzag, as postcard writes a signed integer.
                    w.varint(u64::from(((fd << 1) ^ (fd >> 31)) as u32));
                    w.varint(offset);
                    w.varint(unit as u64);
                }
                Self::Munmap { addr, len } => {
                    w.varint(5);
                    w.varint(addr);
                    w.varint(len);
                }
                Self::ReadProc { .. } => return None,
                Self::ReadSysctl { name } => {
                    w.varint(7);
                    w.varint(name as u64);
                }
            }
            Some(())
        })
    }
}

/// The longest frame [`ShortRequest::encode_frame`] writes: the header, the
/// variant and the widest `Mmap` (three 64-bit, three 32-bit varints and
/// the unit).
pub const SHORT_REQUEST_FRAME: usize = HEADER_LEN + 1 + 3 * 10 + 3 * 5 + 1;

impl ShortReply {
    /// Encode this reply as a whole frame with tag `tag` into `out`, the
    /// bytes [`crate::encode_reply`] gives for the same reply, without
    /// serde; returns the frame's length. `out` must hold
    /// [`SHORT_REPLY_FRAME`] bytes (else `None`).
    #[inline]
    pub fn encode_frame(&self, tag: u32, out: &mut [u8]) -> Option<usize> {
        let out = out.get_mut(..SHORT_REPLY_FRAME)?;
        write_frame(MessageKind::Reply, tag, out, |w| {
            self.encode_body(w);
            Some(())
        })
    }

    #[inline(always)]
    fn encode_body(&self, w: &mut Writer<'_>) {
        match *self {
            Self::Error(e) => {
                w.varint(0);
                w.varint(u64::from(e.0));
            }
            Self::Done => w.varint(1),
            Self::Hello {
                pid,
                arena_base,
                arena_size,
            } => {
                w.varint(2);
                w.varint(u64::from(pid));
                w.varint(arena_base);
                w.varint(arena_size);
            }
            Self::Cloned { pid, ticket } => {
                w.varint(3);
                w.varint(u64::from(pid));
                w.varint(ticket);
            }
            Self::Mapped { addr } => {
                w.varint(4);
                w.varint(addr);
            }
            Self::ProcText(never) => match never {},
            Self::Value(v) => {
                w.varint(6);
                // Zigzag, as postcard writes a signed integer.
                w.varint(((v << 1) ^ (v >> 63)) as u64);
            }
        }
    }
}

/// A whole frame of `kind` with tag `tag` in `out` (long enough for the
/// widest message `body` writes), its body written by `body` (`None`: not
/// a message written by hand); returns the frame's length.
#[inline(always)]
fn write_frame(
    kind: MessageKind,
    tag: u32,
    out: &mut [u8],
    body: impl FnOnce(&mut Writer<'_>) -> Option<()>,
) -> Option<usize> {
    let (head, rest) = out.split_at_mut(HEADER_LEN);
    let mut w = Writer { out: rest, at: 0 };
    body(&mut w)?;
    let body_len = w.at;
    match <[u64; 2]>::mut_from_bytes(head) {
        // A word-aligned frame (the board's buffers are): two word stores.
        Ok(words) => {
            words[0] = first_word(kind).to_le();
            words[1] = (u64::from(tag) | (body_len as u64) << 32).to_le();
        }
        Err(_) => head.copy_from_slice(FrameHeader::new(kind, tag, body_len).as_bytes()),
    }
    Some(HEADER_LEN + body_len)
}

/// The longest frame of a short reply: the header, the variant and the
/// widest `Hello` (a 32-bit and two 64-bit varints).
pub const SHORT_REPLY_FRAME: usize = HEADER_LEN + 1 + 5 + 10 + 10;

/// The tag and body of `frame` if it is exactly one whole frame of `kind`
/// (the checks of the full decoder, in any order: any failure is `None`).
#[inline(always)]
fn whole_body(kind: MessageKind, frame: &[u8]) -> Option<(u32, &[u8])> {
    // A word-aligned frame (the board's buffers are): the header is two
    // word loads, not sixteen byte loads put together.
    if let Ok((words, body)) = <[u64; 2]>::ref_from_prefix(frame) {
        let (head, rest) = (u64::from_le(words[0]), u64::from_le(words[1]));
        let body_len = (rest >> 32) as usize;
        let whole = head == first_word(kind) && body_len <= MAX_BODY && body.len() == body_len;
        return whole.then_some((rest as u32, body));
    }
    let (header, body) = FrameHeader::read_from_prefix(frame).ok()?;
    let whole = header.magic == MAGIC
        && header.version.get() == VERSION
        && header.kind.get() == kind as u16
        && header.body_len.get() as usize <= MAX_BODY
        && body.len() == header.body_len.get() as usize;
    whole.then_some((header.tag.get(), body))
}

/// The header's first eight bytes read as a little-endian word: the magic,
/// the version and `kind`.
#[inline(always)]
const fn first_word(kind: MessageKind) -> u64 {
    u32::from_le_bytes(MAGIC) as u64 | (VERSION as u64) << 32 | (kind as u16 as u64) << 48
}

/// Postcard's varints read off the front of a body, as its deserializer
/// reads them: up to `max` bytes, the last of which may carry only the
/// bits left of the type's width (a longer or wider one is refused).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    #[inline(always)]
    fn varint(&mut self, max: usize, last_max: u8) -> Option<u64> {
        // Most fields of the common calls fit one byte (`max` is at least
        // 3, so one byte is never the last that may carry fewer bits).
        match self.0.split_first() {
            Some((&byte, rest)) if byte < 0x80 => {
                self.0 = rest;
                Some(u64::from(byte))
            }
            _ => self.long_varint(max, last_max),
        }
    }

    #[inline(never)]
    fn long_varint(&mut self, max: usize, last_max: u8) -> Option<u64> {
        let mut out = 0u64;
        for (i, &byte) in self.0.iter().take(max).enumerate() {
            out |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return (i + 1 < max || byte <= last_max).then_some(out);
            }
        }
        None
    }

    #[inline(always)]
    fn u16(&mut self) -> Option<u16> {
        self.varint(3, 0x03).map(|v| v as u16)
    }

    #[inline(always)]
    fn u32(&mut self) -> Option<u32> {
        self.varint(5, 0x0f).map(|v| v as u32)
    }

    #[inline(always)]
    fn u64(&mut self) -> Option<u64> {
        self.varint(10, 0x01)
    }

    #[inline(always)]
    fn i32(&mut self) -> Option<i32> {
        let n = self.u32()?;
        Some(((n >> 1) as i32) ^ -((n & 1) as i32))
    }

    #[inline(always)]
    fn i64(&mut self) -> Option<i64> {
        let n = self.u64()?;
        Some(((n >> 1) as i64) ^ -((n & 1) as i64))
    }
}

/// Postcard's varints written into a body (the caller sized `out` for the
/// widest message).
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    #[inline(always)]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out[self.at] = (v as u8) | 0x80;
            self.at += 1;
            v >>= 7;
        }
        self.out[self.at] = v as u8;
        self.at += 1;
    }
}
