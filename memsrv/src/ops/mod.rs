//! Driver-bound operations (continuations): every client call that needs a driver becomes an
//! operation that sends one driver request at a time and continues when
//! the answer comes (MINIX's suspended reply). The client's reply is held
//! meanwhile; other clients are served.
//!
//! Operations on one object wait their turn in the object's queue, so the
//! §3 reuse search and the set-up after it are never interleaved for one
//! object, and a driver never has two requests for one object outstanding.
//! A driver that dies, answers with the wrong variant or an unknown tag, or
//! does not answer within [`crate::Config::driver_timeout_ms`] fails the
//! operation with `EIO`; the operation's undo step then removes whatever
//! it had built (region usage, pages, object references).
//!
//! The folder: `queue` (submit, wait for the object, finish), `step`
//! (advance an operation, driver answers), `undo` (fail, time out, give
//! back), one file per operation (`open`, `file_io`, `file_mmap`,
//! `unlink`, `sync`, `lease` with its staging buffers in `transfer` and the pages
//! it remembers in `page_map`), and `driver_calls`, the calls a driver
//! makes on its own connection and what its death undoes.

mod driver_calls;
pub mod file_io;
pub mod file_mmap;
pub mod lease;
pub mod open;
pub mod page_map;
mod queue;
mod step;
pub mod sync;
pub mod transfer;
mod undo;
mod unlink;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::ops::file_io::{ReadOp, SeekOp, StatOp, TruncateOp, WriteOp};
use crate::ops::file_mmap::MmapOp;
use crate::ops::open::{OpenOp, OpenState};
use crate::region::{DriverId, ObjectKey};
use crate::{Caller, ClientId, Effect, FrameBuf, MemoryServer, PhysicalMemory};
use protocol::{DriverReply, DriverRequest, Errno, Reply};

/// An operation's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

/// What an operation is doing, with its state.
pub enum OpKind {
    Open(OpenOp),
    Read(ReadOp),
    Write(WriteOp),
    /// `read`/`write` by lease.
    Lease(lease::LeaseOp),
    Seek(SeekOp),
    Stat(StatOp),
    Truncate(TruncateOp),
    Mmap(MmapOp),
    /// `unlink` of this path (relative to the mount), for this caller.
    Unlink(protocol::Path, protocol::Owner),
    /// `chmod`/`chown` of an open object.
    Attributes(crate::attributes::AttributesOp),
    /// `fsync`/`fdatasync` of an open object.
    Sync(sync::SyncOp),
    /// A request nobody waits for (`CloseVma`, `Release`): it still takes
    /// its turn in the object's queue.
    Notify(DriverRequest),
}

pub struct Op {
    /// The client waiting for the answer, and its tag.
    pub client: Option<(ClientId, u32)>,
    /// The calling process (0 for notifications).
    pub pid: u32,
    pub driver: DriverId,
    /// The object whose queue the operation waits in, once known.
    pub object: Option<ObjectKey>,
    /// The operation holds one reference to `object`.
    pub holds_object: bool,
    /// The tag of the driver request in flight.
    pub call: Option<u32>,
    pub kind: OpKind,
}

impl Op {
    /// An operation `who` waits for: on `object` (holding a reference to
    /// it) when the call names an open object, else on the driver alone
    /// until a lookup names one.
    pub fn for_caller(
        who: &Caller,
        driver: DriverId,
        object: Option<ObjectKey>,
        kind: OpKind,
    ) -> Self {
        Self {
            client: Some((who.client, who.tag)),
            pid: who.pid,
            driver,
            object,
            holds_object: object.is_some(),
            call: None,
            kind,
        }
    }
}

/// What one step of an operation decided.
pub enum Step {
    /// Send this to the operation's driver and wait.
    Send(DriverRequest),
    /// Wait for the object (the operation now knows it): join its queue.
    Queue,
    /// The operation is over.
    Done(Result<Reply, Errno>),
}

/// What wakes an operation.
// Passed by value once per driver answer; boxing would allocate for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Input {
    Start,
    Reply(DriverReply),
}

/// One driver request in flight.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub driver: DriverId,
    pub op: OpId,
    /// The clock when it was sent (`None` before the first tick).
    pub sent: Option<u64>,
    /// Its place in the order requests went to drivers: a driver serves
    /// its requests one at a time in that order, so its oldest one in
    /// flight is the one it is serving.
    pub seq: u64,
}

/// Every operation not finished yet, the driver requests in flight, and
/// what is due next.
#[derive(Default)]
pub struct Operations {
    /// Operations not finished yet.
    pub live: BTreeMap<OpId, Op>,
    pub calls: BTreeMap<u32, Call>,
    /// Operations whose turn came, to be started.
    pub ready: VecDeque<OpId>,
    /// Client operations outstanding per connection.
    pub per_client: BTreeMap<ClientId, usize>,
    /// The home's clock at the last tick.
    pub clock: Option<u64>,
    /// Objects whose last reference went: `Release` is due.
    pub releases: Vec<ObjectKey>,
    /// Each connection's bulk window (`lease`): its first address and
    /// whom its pages are charged to.
    pub windows: BTreeMap<ClientId, (u64, Option<crate::charge::Payer>)>,
    /// Staging buffers of `Transfer` requests that failed unanswered, by
    /// driver: freed when the driver's connection closes.
    pub orphan_stages: BTreeMap<crate::region::DriverId, Vec<transfer::Stage>>,
    /// Where leased objects' pages lie, as their drivers last said.
    pub page_maps: page_map::PageMaps,
    /// The operation being submitted, and its answer if it finished at once.
    submitting: Option<OpId>,
    sync_reply: Option<Reply>,
    next_op: u64,
    next_tag: u32,
    next_seq: u64,
}

impl Operations {
    fn new_tag(&mut self) -> u32 {
        loop {
            self.next_tag = self.next_tag.wrapping_add(1);
            if !self.calls.contains_key(&self.next_tag) {
                return self.next_tag;
            }
        }
    }

    fn new_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The driver request `driver` is serving now: its oldest one in
    /// flight ([`Call::seq`]).
    pub fn serving(&self, driver: DriverId) -> Option<&Call> {
        self.calls
            .values()
            .filter(|call| call.driver == driver)
            .min_by_key(|call| call.seq)
    }
}

/// `EINPROGRESS` (asm-generic 115): no call a driver serves answers it in
/// Linux, and a client would read it as "still under way".
const EINPROGRESS: Errno = Errno(115);

/// A driver's errno as a client may see it: `ENOSYS` (an internal signal,
/// spec §13), `EINPROGRESS` and nonsense (0) become `EIO`.
pub fn driver_errno(e: Errno) -> Errno {
    if e == Errno::ENOSYS || e == EINPROGRESS || e.0 == 0 {
        Errno::EIO
    } else {
        e
    }
}

/// The step for a driver answer an operation did not expect at this
/// point: the driver's error as a client may see it, else `EIO`.
pub fn unexpected(reply: DriverReply) -> Step {
    match reply {
        DriverReply::Error(e) => Step::Done(Err(driver_errno(e))),
        _ => Step::Done(Err(Errno::EIO)),
    }
}
