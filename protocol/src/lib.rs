//! Wire format of the nommu memory server.
//!
//! This crate owns everything that crosses a transport: the fixed frame
//! header ([`FrameHeader`]), the message bodies ([`Request`], [`Reply`]), the
//! Linux errno values ([`Errno`]), the Linux flag constants ([`linux`]),
//! the encode/decode helpers over fixed buffers ([`frame`]) and the one
//! header read a home routes frames by ([`peek`]). Every frame has a
//! known maximum size ([`MAX_FRAME`]), so no home needs a heap to receive one.
//!
//! `docs/protocol.md` at the repository root describes the format; the golden
//! vectors in `tests/golden.rs` pin it.
#![no_std]
#![forbid(unsafe_code)]
// Messages hold bounded buffers inline on purpose: frames are decoded into
// fixed storage, and boxing would need a heap that not every home has.
#![allow(clippy::large_enum_variant)]

pub mod driver;
pub mod errno;
pub mod frame;
pub mod header;
pub mod linux;
pub mod message;
pub mod reserve;
pub mod short;

pub use driver::{
    DriverOps, DriverRegistration, DriverReply, DriverRequest, FileStat, ObjectInfo, ObjectKind,
    Owner, PageList, LEASE_PAGES, LEASE_STEP,
};
pub use errno::Errno;
pub use frame::{
    decode_driver_reply, decode_driver_request, decode_incoming, decode_reply, decode_request,
    encode_driver_reply, encode_driver_request, encode_reply, encode_request, DecodeError, Frame,
    Incoming,
};
pub use header::{peek, FrameHeader, MessageKind, HEADER_LEN, MAGIC, VERSION};
pub use message::{
    frame_checks_identity, lease_request, mmap_request, AttributeTarget, Bytes, MemoryCall,
    MountName, OffsetUnit, Path, ProcView, Reply, Request, ShmStat, Sysctl, BULK_WINDOW,
    DATA_CHUNK, MAX_MOUNTS, PATH_MAX, PROC_CHUNK,
};
pub use short::{
    decode_short_reply, decode_short_request, ShortReply, ShortRequest, SHORT_REPLY_FRAME,
    SHORT_REQUEST_FRAME,
};

/// Largest body a frame may carry, in bytes.
pub const MAX_BODY: usize = 2032;
/// Largest frame (header and body), in bytes. Receive buffers of this size
/// always suffice.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_BODY;
/// The page size of every home.
pub const PAGE_SIZE: u64 = 4096;
