//! The memory server on a host operating system.
//!
//! Two homes live here: the threads home ([`threads`]), where memsrv runs on
//! its own thread and each client process is a handle on some other thread,
//! and the `memsrvd` daemon ([`daemon`]), which real host processes reach
//! over a Unix socket with the arena shared at the same address in each.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod cli;
pub mod daemon;
pub mod hostdir;
pub mod threads;

/// A secret drawn for one start (clone tickets, in both homes): std's
/// `RandomState` keys come from the host's random source (`getrandom`).
pub fn fresh_secret() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}
