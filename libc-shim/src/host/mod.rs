//! The host side of the shim: a connection to the `memsrvd` daemon.
//!
//! A host process connects to the daemon's `SOCK_SEQPACKET` socket, sends a
//! Hello frame and receives, with the welcome, the arena memory file (mapped
//! here at the daemon's own address, so one address means the same bytes in
//! every process), a per-connection shared channel page and a doorbell
//! eventfd ([`channel`] explains the fast path). [`Connection`] is the
//! [`crate::Transport`] over it:
//!
//! ```no_run
//! let client = nommu::host::Connection::connect("/tmp/nommu.sock").unwrap();
//! let addr = client.mmap(0, 4096, 3, 0x22, -1, 0).unwrap();
//! client.munmap(addr, 4096).unwrap();
//! ```
//!
//! C programs use the `nommu_*` functions ([`capi`]) or, with feature
//! `posix`, plain `mmap`/`munmap` (`include/nommu.h`).

pub mod arena;
pub mod capi;
pub mod channel;
pub mod connection;
pub mod fileapi;
pub mod files;
pub mod fsapi;
pub mod ipc;
pub mod mapping;
#[cfg(feature = "posix")]
pub mod posix;
pub mod socket;
pub mod sys;

pub use connection::{ConnectError, ConnectOptions, Connection, DEFAULT_SOCKET};
