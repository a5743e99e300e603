//! POSIX memory calls as messages to the nommu memory server.
//!
//! The core ([`Client`]) is `no_std` and allocation free: it encodes a
//! [`protocol::Request`] into a stack buffer, hands it to a [`Transport`]
//! and decodes the reply. Homes supply the transport: a channel in the
//! threads home, the `memsrvd` connection ([`host`], feature `host`), kernel
//! IPC on the board. With feature `posix` the static library `libnommu.a`
//! also exports `mmap`, `mmap64` and `munmap` for C programs
//! (`include/nommu.h`). With feature `c-abi` ([`c_abi`], `no_std`) the
//! same names go to a home without an OS underneath (the riscv64 board),
//! which registers how a call reaches the calling task's connection.
//! With feature `malloc` ([`malloc`]) it has a `malloc` family for ported
//! programs that takes all its memory from the server's `mmap`
//! (`include/nommu_malloc.h`). With feature `driver` ([`driver_link`],
//! `no_std` with `alloc`) it has the one connection loop a backing device
//! runs in every home.
#![cfg_attr(not(feature = "host"), no_std)]

#[cfg(any(feature = "conformance", feature = "driver"))]
extern crate alloc;

pub mod abi;
#[cfg(feature = "c-abi")]
pub mod c_abi;
pub mod client;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "driver")]
pub mod driver_link;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "malloc")]
pub mod malloc;

pub use client::{Client, Transport};
pub use protocol::Errno;
