//! Message bodies. Variants are encoded by postcard as their index, so the
//! order of variants is part of the wire format: append, never reorder.

use crate::Errno;
use heapless::Vec;
use serde::{Deserialize, Serialize};

/// Most bytes of `/proc` text one [`Reply::ProcText`] carries.
pub const PROC_CHUNK: usize = 1024;

/// How [`Request::Mmap`] gives the file offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetUnit {
    /// A byte offset, as `mmap`/`mmap64` take it (must be page aligned).
    Bytes,
    /// A page offset, as `mmap2` takes it.
    Pages,
}

/// Which `/proc` text to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcView {
    /// `/proc/maps`: every region in the system.
    GlobalMaps,
    /// `/proc/<pid>/maps`: the mappings of one process.
    ProcessMaps { pid: u32 },
    /// `/proc/self/maps` of the requester.
    SelfMaps,
    /// `/proc/meminfo`.
    Meminfo,
}

/// A tunable under `/proc/sys/vm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sysctl {
    /// `/proc/sys/vm/nr_trim_pages`.
    NrTrimPages,
}

/// A client's request to the memory server. Who sends it is known from the
/// transport, never from a field here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// First message on a connection: become a process (a new one, or the
    /// child a [`Request::Clone`] prepared, named by its ticket).
    /// Answered by [`Reply::Hello`].
    Hello { ticket: Option<u64> },
    /// `clone(flags)`: with `CLONE_VM` the child shares the caller's address
    /// space; without it the child gets a new, empty one. Answered by
    /// [`Reply::Cloned`]; the child connects with the ticket.
    Clone { flags: u64 },
    /// `fork()`: refused with `EINVAL` on no-MMU.
    Fork,
    /// The process exits: every mapping it held is released.
    Exit,
    /// `mmap`/`mmap2`. `addr` is only a hint; `fd` is ignored with
    /// `MAP_ANONYMOUS`. Answered by [`Reply::Mapped`].
    Mmap {
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i32,
        offset: u64,
        unit: OffsetUnit,
    },
    /// `munmap(addr, len)`. Answered by [`Reply::Done`].
    Munmap { addr: u64, len: u64 },
    /// Read `/proc` text from byte `offset`. Answered by [`Reply::ProcText`].
    ReadProc { view: ProcView, offset: u32 },
    /// Read a `/proc/sys/vm` value. Answered by [`Reply::Value`].
    ReadSysctl { name: Sysctl },
    /// Write a `/proc/sys/vm` value. Answered by [`Reply::Done`].
    WriteSysctl { name: Sysctl, value: i64 },
}

/// The memory server's answer. Its frame echoes the request's tag.
// `ProcText` is large on purpose: frames are bounded and received into
// fixed buffers, so boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The call failed with this errno (also the answer to a frame that
    /// could not be decoded).
    Error(Errno),
    /// The call succeeded and has nothing to return.
    Done,
    /// The process id the connection now speaks for, and the arena every
    /// address lies in.
    Hello {
        pid: u32,
        arena_base: u64,
        arena_size: u64,
    },
    /// The child's process id, and the single-use ticket its connection
    /// presents in [`Request::Hello`].
    Cloned { pid: u32, ticket: u64 },
    /// The address of the new mapping.
    Mapped { addr: u64 },
    /// A slice of `/proc` text starting at the requested offset, and the
    /// length of the whole text.
    ProcText {
        total: u32,
        data: Vec<u8, PROC_CHUNK>,
    },
    /// A value read.
    Value(i64),
}

impl Reply {
    /// `Ok(self)` unless this is [`Reply::Error`].
    pub fn into_result(self) -> Result<Reply, Errno> {
        match self {
            Reply::Error(e) => Err(e),
            other => Ok(other),
        }
    }
}
