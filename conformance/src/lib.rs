//! The spec's conformance vectors (§14) as table tests every home runs,
//! and the §14.0 test environment they run in ([`env`](mod@env)).
//!
//! A home (the threads home, the `memsrvd` daemon, the bare-metal kernel,
//! memsrv's bare state machine) implements [`Harness`]; a runner calls each
//! [`Vector`]'s `run` on it and collects the [`Failure`]s. The tables use
//! only `core` and `alloc` and speak through the real client core
//! ([`Client`], crate `nommu`), so every home runs the same code unchanged.
//! The crate depends on `protocol`, the client core and `drivers` (the
//! environment's devices), never on a home.
//!
//! Each vector starts from whatever state the home is in and measures
//! against it ("MC" deltas are relative to the value before the vector); it
//! releases what it made by dropping its processes, and restores any sysctl
//! it changed, so a home may run all vectors on one server or give each a
//! fresh one.
//!
//! # Coverage
//!
//! Encoded ([`VECTORS`]): every vector of §14.1 (1–21), §14.2 (22–44),
//! §14.3 (45–56), §14.4 (57–63), §14.5 (64–73), §14.6 (74–83), §14.7
//! (84–95), §14.8 (96–100), §14.9 (102–107), §14.10 (108–112) and §14.12
//! (120–122), and §14.11 vectors 113–117 and 119. Beyond the spec's list,
//! the project's own vectors for its server decisions follow in
//! [`VECTORS`]: 123 (futex `EFAULT` on an unreadable mapping) and 124
//! (`FUTEX_WAKE_OP`).
//!
//! Vectors with files and devices need the §14.0 test environment: the
//! home builds it as [`env`](mod@env) describes and offers the `/dev/tst` handle and
//! the addresses the spec gives absolutely through [`Harness::test_device`]
//! and [`Harness::landmark`]. Where the spec names an absolute address
//! (`0x40001230`, `0x30000000`, `0x50000000`, `0x20000000`, `0x00a50000`)
//! the vector compares with the home's landmark or with the address the
//! server returned, and says so in its documentation.
//!
//! Encoded but pending ([`PENDING`]: the server answers their calls with
//! `ENOSYS` until the feature lands, then they move into [`VECTORS`]):
//! none at present.
//!
//! §14.6 describes the strict profile: a home runs it with memsrv's
//! `Config::strict_mremap` (the default moves a grown private anonymous
//! mapping when `MREMAP_MAYMOVE` allows, which vector 75 refuses). §14.7
//! vectors 92 and 93 need processes with chosen credentials
//! ([`Harness::spawn_as`]); §14.9 vectors 105 and 106 need a call outstanding
//! on one connection while another makes calls ([`ProcessConnection::begin`],
//! [`ProcessConnection::finish`]).
//!
//! Deferred ([`DEFERRED`] lists each with its reason): 101 (no resource
//! limits or signals in the protocol) and 118 (brk).

#![no_std]

extern crate alloc;

#[macro_use]
mod support;

mod allocation;
mod backing;
mod direct;
pub mod env;
pub mod futex;
mod memfs;
pub mod mremap;
mod munmap;
mod proc;
mod process;
mod sharing;
pub mod sysv_shm;
mod validation;
mod vectors;

pub use env::{Landmark, TestDevConfig, TestDevControl, TestDevCounters};
pub use support::{DynTransport, Process, SplitCall, TrimPages};
pub use vectors::{DEFERRED, PENDING, VECTORS};

use alloc::boxed::Box;
use alloc::string::String;
use nommu::{Client, Transport};
use protocol::Errno;

/// A connection the home opened and greeted (Hello already said), speaking
/// for one process. Dropping it closes the connection, which releases what
/// the process alone held.
pub trait ProcessConnection {
    /// The pid the server gave in its Hello reply.
    fn pid(&self) -> u32;
    /// The transport this process's calls go through.
    fn transport(&self) -> &dyn Transport;
    /// The first half of a split call: queue one request frame and return
    /// without waiting for the reply, so that a call the server answers
    /// late (a futex wait) can be outstanding on this connection while the
    /// same thread of control makes calls on others. A home must deliver
    /// the frame to the server before any frame sent after `begin`
    /// returns, on any connection (the vectors rely on the order). Until
    /// [`ProcessConnection::finish`] no other call may use this connection. A
    /// home without split calls answers `ENOSYS` (the futex vectors then
    /// fail, naming it).
    ///
    /// Bare metal implements it as "post the message, do not block"; the
    /// threads home as "queue the frame"; memsrv's bare state machine as
    /// "handle the frame"; the `memsrvd` test home, whose daemon orders no
    /// connection after another, as "call on a thread of its own and give
    /// the frame time to arrive".
    fn begin(&self, request: &[u8]) -> Result<(), Errno> {
        let _ = request;
        Err(Errno::ENOSYS)
    }
    /// The second half of a split call: block until the reply to the frame
    /// [`ProcessConnection::begin`] sent arrives; returns its length.
    fn finish(&self, reply: &mut [u8; protocol::MAX_FRAME]) -> Result<usize, Errno> {
        let _ = reply;
        Err(Errno::ENOSYS)
    }
}

/// What a home offers the vectors.
pub trait Harness {
    /// A new process with an empty address space.
    fn spawn(&self) -> Result<Box<dyn ProcessConnection + '_>, Errno>;
    /// A new process with an empty address space and the given user and
    /// group (SysV permission vectors). A home that cannot choose
    /// credentials answers `ENOSYS`.
    fn spawn_as(&self, uid: u32, gid: u32) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        let _ = (uid, gid);
        Err(Errno::ENOSYS)
    }
    /// The connection of a clone child, named by the ticket its parent's
    /// `clone` returned.
    fn attach(&self, ticket: u64) -> Result<Box<dyn ProcessConnection + '_>, Errno>;
    /// Load bytes from an arena address (any process's memory: no MMU).
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Store bytes at an arena address.
    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno>;
    /// The configuration handle of `/dev/tst` (§14.0), if the home built
    /// the test environment ([`env`](mod@env)).
    fn test_device(&self) -> Option<&TestDevControl> {
        None
    }
    /// Where an object the spec places at an absolute address lives here.
    fn landmark(&self, which: Landmark) -> Option<u64> {
        let _ = which;
        None
    }
    /// `sizeof(long)` of the server's clients (`/proc` maps column).
    fn word_size(&self) -> u32 {
        8
    }
}

/// Why a vector failed: what was expected and what happened, with the line
/// of the assertion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The part of §14 a vector comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// §14.1 Argument validation.
    Validation,
    /// §14.2 Direct versus copy.
    DirectCopy,
    /// §14.3 Region sharing.
    Sharing,
    /// §14.4 Allocation and trimming.
    Allocation,
    /// §14.5 `munmap`.
    Munmap,
    /// §14.6 `mremap`.
    Mremap,
    /// §14.7 SysV shared memory.
    SysvShm,
    /// §14.8 POSIX shared memory (memory filesystem).
    MemoryFs,
    /// §14.9 Futexes.
    Futex,
    /// §14.10 `/proc`.
    Proc,
    /// §14.11 Process model.
    ProcessModel,
    /// §14.12 Backing contract.
    Backing,
}

impl Section {
    /// The spec's section number.
    pub const fn number(self) -> &'static str {
        match self {
            Section::Validation => "14.1",
            Section::DirectCopy => "14.2",
            Section::Sharing => "14.3",
            Section::Allocation => "14.4",
            Section::Munmap => "14.5",
            Section::Mremap => "14.6",
            Section::SysvShm => "14.7",
            Section::MemoryFs => "14.8",
            Section::Futex => "14.9",
            Section::Proc => "14.10",
            Section::ProcessModel => "14.11",
            Section::Backing => "14.12",
        }
    }
}

/// One conformance vector.
#[derive(Clone, Copy)]
pub struct Vector {
    /// The spec's vector number.
    pub id: u32,
    pub section: Section,
    /// What it checks, briefly.
    pub name: &'static str,
    pub run: fn(&dyn Harness) -> Result<(), Failure>,
}

impl core::fmt::Debug for Vector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "§{} vector {}: {}",
            self.section.number(),
            self.id,
            self.name
        )
    }
}

/// A vector of the covered sections that cannot run yet, and why.
#[derive(Clone, Copy, Debug)]
pub struct Deferred {
    pub id: u32,
    pub section: Section,
    /// What the server must offer first, or why the vector cannot be
    /// expressed here.
    pub needs: &'static str,
}

/// A client core over a connection's transport.
pub fn client(connection: &dyn ProcessConnection) -> Client<DynTransport<'_>> {
    Client::new(DynTransport(connection.transport()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vector of the sections named in the coverage list is either
    /// encoded or deferred, exactly once.
    #[test]
    fn covered_sections_are_complete_and_unique() {
        let expected: alloc::vec::Vec<u32> = (1..=124).collect();
        let mut seen: alloc::vec::Vec<u32> = VECTORS
            .iter()
            .chain(PENDING)
            .map(|v| v.id)
            .chain(DEFERRED.iter().map(|d| d.id))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, expected);
        assert!(VECTORS.windows(2).all(|w| w[0].id < w[1].id));
        assert!(PENDING.windows(2).all(|w| w[0].id < w[1].id));
    }
}
