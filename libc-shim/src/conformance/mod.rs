//! The spec's conformance vectors (§14) as table tests every home runs.
//!
//! A home (the threads home, the `memsrvd` daemon, the bare-metal kernel)
//! implements [`Home`]; a runner calls each [`Vector`]'s `run` on it and
//! collects the [`Failure`]s. The tables use only `core` and `alloc` and
//! speak through the real client core ([`Client`]), so every home runs the
//! same code unchanged.
//!
//! Each vector starts from whatever state the home is in and measures
//! against it ("MC" deltas are relative to the value before the vector); it
//! releases what it made by dropping its processes, and restores any sysctl
//! it changed, so a home may run all vectors on one server or give each a
//! fresh one.
//!
//! # Coverage
//!
//! Encoded: §14.1 vectors 1–9 and 19, §14.2 vector 44, §14.4 vectors 57–63,
//! §14.5 vectors 64–68, 70 and 71, §14.10 vectors 108 and 111, §14.11
//! vectors 113–115. [`VECTORS`] lists them.
//!
//! Deferred until the server has what they need ([`DEFERRED`] lists each
//! with its reason): files on the copy-only filesystem (`/data/f`: 12, 14,
//! 18, 69, 73, 109), the memory filesystem (13, 110), pipes (10), sockets
//! (11), device backings (`/dev/fb0`, `/dev/tst`, `/rom/t`: 15–17, 20, 21,
//! 72, 112), ptrace (116, 117), brk (118) and execve (119). The other
//! sections of §14 (direct mappings, sharing, mremap, shm, futex, backing
//! contract) wait for their requests in the protocol.

#[macro_use]
mod support;

mod allocation;
mod direct;
mod munmap;
mod proc;
mod process;
mod validation;

pub use support::{DynTransport, Process, TrimPages};

use crate::{Client, Transport};
use alloc::boxed::Box;
use alloc::string::String;
use protocol::Errno;

/// A connection the home opened and greeted (Hello already said), speaking
/// for one process. Dropping it closes the connection, which releases what
/// the process alone held.
pub trait Connection {
    /// The pid the server gave in its Hello reply.
    fn pid(&self) -> u32;
    /// The transport this process's calls go through.
    fn transport(&self) -> &dyn Transport;
}

/// What a home offers the vectors.
pub trait Home {
    /// A new process with an empty address space.
    fn spawn(&self) -> Result<Box<dyn Connection + '_>, Errno>;
    /// The connection of a clone child, named by the ticket its parent's
    /// `clone` returned.
    fn attach(&self, ticket: u64) -> Result<Box<dyn Connection + '_>, Errno>;
    /// Load bytes from an arena address (any process's memory: no MMU).
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Store bytes at an arena address.
    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno>;
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
    /// §14.4 Allocation and trimming.
    Allocation,
    /// §14.5 `munmap`.
    Munmap,
    /// §14.10 `/proc`.
    Proc,
    /// §14.11 Process model.
    ProcessModel,
}

impl Section {
    /// The spec's section number.
    pub const fn number(self) -> &'static str {
        match self {
            Section::Validation => "14.1",
            Section::DirectCopy => "14.2",
            Section::Allocation => "14.4",
            Section::Munmap => "14.5",
            Section::Proc => "14.10",
            Section::ProcessModel => "14.11",
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
    pub run: fn(&mut dyn Home) -> Result<(), Failure>,
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
    /// What the server must offer first.
    pub needs: &'static str,
}

const SECTIONS: &[&[Vector]] = &[
    validation::VECTORS,
    direct::VECTORS,
    allocation::VECTORS,
    munmap::VECTORS,
    proc::VECTORS,
    process::VECTORS,
];

const DEFERRED_SECTIONS: &[&[Deferred]] = &[
    validation::DEFERRED,
    munmap::DEFERRED,
    proc::DEFERRED,
    process::DEFERRED,
];

const fn total<T>(parts: &[&[T]]) -> usize {
    let mut sum = 0;
    let mut i = 0;
    while i < parts.len() {
        sum += parts[i].len();
        i += 1;
    }
    sum
}

const fn concat<T: Copy, const N: usize>(parts: &[&[T]], filler: T) -> [T; N] {
    let mut out = [filler; N];
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[n] = parts[i][j];
            n += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

const ALL: [Vector; total(SECTIONS)] = concat(SECTIONS, validation::VECTORS[0]);
const ALL_DEFERRED: [Deferred; total(DEFERRED_SECTIONS)] =
    concat(DEFERRED_SECTIONS, validation::DEFERRED[0]);

/// Every encoded vector, in spec order.
pub const VECTORS: &[Vector] = &ALL;

/// Every vector of the covered sections that waits for a later feature.
pub const DEFERRED: &[Deferred] = &ALL_DEFERRED;

/// A client core over a connection's transport.
pub fn client(connection: &dyn Connection) -> Client<DynTransport<'_>> {
    Client::new(DynTransport(connection.transport()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vector of the sections named in the coverage list is either
    /// encoded or deferred, exactly once.
    #[test]
    fn covered_sections_are_complete_and_unique() {
        let mut expected: alloc::vec::Vec<u32> = (1..=21).chain(44..=44).collect();
        expected.extend((57..=73).chain(108..=112).chain(113..=119));
        let mut seen: alloc::vec::Vec<u32> = VECTORS
            .iter()
            .map(|v| v.id)
            .chain(DEFERRED.iter().map(|d| d.id))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, expected);
        assert!(VECTORS.windows(2).all(|w| w[0].id < w[1].id));
    }
}
