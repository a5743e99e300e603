//! A request's outcome inside the server, before it is a [`Reply`]: the
//! common answers carried as their values, encoded straight into their
//! frame ([`Outcome::frame`]) or made a reply where a caller receives one.

use crate::effects::{Answer, FrameBuf};
use protocol::{Errno, Reply};

/// What [`crate::MemoryServer`]'s dispatch produced. The common small replies are
/// carried as their values and become a `Reply` only where the caller
/// receives it (its return slot, or the frame they are encoded into): a
/// `Reply` is a kilobyte, and every move of one on the way — into a
/// `Result`, out of it — would copy all of it.
// Boxing the large variant would cost an allocation per other request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    Mapped(u64),
    Done,
    Value(i64),
    Failed(Errno),
    Answer(Answer),
}

impl Outcome {
    #[inline(always)]
    pub(crate) fn into_answer(self) -> Answer {
        match self {
            Self::Mapped(addr) => Answer::Now(Reply::Mapped { addr }),
            Self::Done => Answer::Now(Reply::Done),
            Self::Value(value) => Answer::Now(Reply::Value(value)),
            Self::Failed(e) => Answer::Now(Reply::Error(e)),
            Self::Answer(answer) => answer,
        }
    }

    /// The reply frame with tag `tag`, unless the reply comes later.
    #[inline(always)]
    pub(crate) fn frame(&self, tag: u32) -> Option<FrameBuf> {
        Some(match self {
            Self::Mapped(addr) => FrameBuf::reply(tag, &Reply::Mapped { addr: *addr }),
            Self::Done => FrameBuf::reply(tag, &Reply::Done),
            Self::Value(value) => FrameBuf::reply(tag, &Reply::Value(*value)),
            Self::Failed(e) => FrameBuf::reply(tag, &Reply::Error(*e)),
            Self::Answer(Answer::Now(reply)) => FrameBuf::reply(tag, reply),
            Self::Answer(Answer::Later) => return None,
        })
    }
}
