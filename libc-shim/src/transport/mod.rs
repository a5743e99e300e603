//! The shim's transport to the `memsrvd` daemon.
//!
//! A host process connects to the daemon's `SOCK_SEQPACKET` socket, sends a
//! Hello frame and receives, with the welcome, the arena memory file (mapped
//! here at the daemon's own address, so one address means the same bytes in
//! every process), a per-connection shared channel page and a doorbell
//! eventfd ([`channel_page`] explains the fast path), and the daemon's map
//! generation (futexes on arena words sleep in the host kernel, see
//! [`futex`]). The channel file also holds the connection's page reserve
//! ([`reserve`]): small anonymous private mappings are made and unmapped
//! here, without a round trip. [`DaemonConnection`] is the
//! [`crate::Transport`] over it:
//!
//! ```no_run
//! let client = nommu::transport::DaemonConnection::connect("/tmp/nommu.sock").unwrap();
//! let addr = client.mmap(0, 4096, 3, 0x22, -1, 0).unwrap();
//! client.munmap(addr, 4096).unwrap();
//! ```
//!
//! C programs use the `nommu_*` functions ([`crate::capi::host`]) or, with
//! feature `posix`, plain `mmap`/`munmap` (`include/nommu.h`).

pub mod arena;
pub mod channel_page;
pub mod connection;
pub mod futex;
pub mod mapping;
pub mod reserve;

pub use connection::{ConnectError, ConnectOptions, DaemonConnection, DEFAULT_SOCKET};
