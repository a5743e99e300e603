//! A request's outcome inside the server, before it is a [`Reply`]: the
//! common answers carried as their values, encoded straight into their
//! frame ([`Outcome::push_frame`]) or made a reply where a caller receives one.

use alloc::vec::Vec;

use crate::effects::{Answer, Effect, FrameBuf};
use crate::ClientId;
use protocol::{Errno, Reply, ShortReply};

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

    /// Push the reply frame with tag `tag` to `effects` for `to`, unless
    /// the reply comes later. The common replies are encoded by hand in
    /// the effect's own slot: no frame is built elsewhere and moved in.
    #[inline(always)]
    pub(crate) fn push_frame(&self, to: ClientId, tag: u32, effects: &mut Vec<Effect>) {
        let short = match self {
            Self::Mapped(addr) => ShortReply::Mapped { addr: *addr },
            Self::Done => ShortReply::Done,
            Self::Value(value) => ShortReply::Value(*value),
            Self::Failed(e) => ShortReply::Error(*e),
            Self::Answer(Answer::Now(reply)) => {
                let frame = FrameBuf::reply(tag, reply);
                return effects.push(Effect::Send { to, frame });
            }
            Self::Answer(Answer::Later) => return,
        };
        FrameBuf::push_short_reply(effects, to, tag, &short);
    }
}
