//! The short messages: [`Request`]'s first variants (no path, no data:
//! `mmap`, `munmap`, a sysctl read, ...) and [`Reply`]'s first ones,
//! decoded as small enums of the same wire form, so the common calls never
//! build, return or move a kilobyte `Request` or `Reply`. The encoding is
//! the same bytes by construction (same variant order, same field types;
//! `tests/short.rs` checks it against the full enums), so these are no
//! second format.

use crate::frame::{decode, Frame};
use crate::header::MessageKind;
use crate::{Errno, OffsetUnit, ProcView, Reply, Request, Sysctl};
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};

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
pub fn decode_short_request(frame: &[u8]) -> Option<Frame<ShortRequest>> {
    decode(MessageKind::Request, frame).ok()
}

/// A reply frame, if it is exactly one whole frame of a short reply
/// (otherwise as [`decode_short_request`]: [`crate::decode_reply`] tells).
pub fn decode_short_reply(frame: &[u8]) -> Option<Frame<ShortReply>> {
    decode(MessageKind::Reply, frame).ok()
}
