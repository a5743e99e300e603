//! POSIX memory calls as messages to the nommu memory server.
//!
//! The core ([`Client`]) is `no_std` and allocation free: it encodes a
//! [`protocol::Request`] into a stack buffer, hands it to a [`Transport`]
//! and decodes the reply. Homes supply the transport: a channel in the
//! threads home, the `memsrvd` connection ([`host`], feature `host`), kernel
//! IPC on the board. With feature `posix` the static library `libnommu.a`
//! also exports `mmap`, `mmap64` and `munmap` for C programs
//! (`include/nommu.h`).
#![cfg_attr(not(feature = "host"), no_std)]

#[cfg(feature = "conformance")]
extern crate alloc;

pub mod client;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "host")]
pub mod host;

pub use client::{Client, Transport};
pub use protocol::Errno;
