//! The C entry points of the host library (`nommu_*`, always exported;
//! with feature `posix` also `mmap`, `open`, `shmget`, `futex`, ... in
//! `posix`), over one process-wide connection to `memsrvd`.
//!
//! * [`mmap`]: `mmap`/`munmap`, `/proc` views, the pid and the arena.
//! * [`fileapi`], [`fsapi`]: the file calls, routed to the server or the
//!   host ([`files`] decides which).
//! * [`ipc`]: shared memory, futexes, `mremap` and the small memory calls.
//!
//! Raw system calls (the host's half of every routed call) go through
//! [`crate::sys`]; requests to the server through [`crate::transport`].

pub mod fileapi;
pub mod files;
pub mod fsapi;
pub mod ipc;
pub mod mmap;
#[cfg(feature = "posix")]
pub mod posix;
