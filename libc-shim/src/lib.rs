//! POSIX memory calls as messages to the nommu memory server.
//!
//! The core ([`Client`]) is `no_std` and allocation free: it encodes a
//! [`protocol::Request`] into a stack buffer, hands it to a [`Transport`]
//! and decodes the reply. Homes supply the transport: a channel in the
//! threads home, the `memsrvd` connection ([`transport`], feature `host`),
//! kernel IPC on the board. The C surface ([`capi`]) is apart from the
//! transports: with feature `host` the static library `libnommu.a` exports
//! the `nommu_*` calls, and with feature `posix` also `mmap`, `mmap64`,
//! `munmap`, ... for C programs (`include/nommu.h`); with feature `c-abi`
//! (`capi::board`, `no_std`) the same names go to a home without an OS
//! underneath (the riscv64 board), which registers how a call reaches the
//! calling task's connection. Every raw system call the host side makes
//! goes through [`sys`]. With feature `malloc` ([`malloc`]) it has a
//! `malloc` family for ported programs that takes all its memory from the
//! server's `mmap` (`include/nommu_malloc.h`). With feature `driver`
//! ([`driver_link`], `no_std` with `alloc`) it has the one connection loop
//! a backing device runs in every home.
#![cfg_attr(not(feature = "host"), no_std)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "driver")]
extern crate alloc;

pub mod abi;
#[cfg(any(feature = "host", feature = "c-abi"))]
pub mod capi;
pub mod client;
#[cfg(feature = "driver")]
pub mod driver_link;
#[cfg(feature = "malloc")]
pub mod malloc;
#[cfg(feature = "host")]
pub mod spin;
#[cfg(feature = "host")]
pub mod sys;
#[cfg(feature = "host")]
pub mod transport;

pub use client::{Client, Transport};
pub use protocol::Errno;
