//! The C entry points of the host library (`nommu_*`, always exported;
//! with feature `posix` also `mmap`, `open`, `shmget`, `futex`, ... in
//! `posix`), over one process-wide connection to `memsrvd`.
//!
//! * [`mmap`]: `mmap`/`munmap`, `/proc` views, the pid and the arena;
//!   [`host_files`]: the host files it has handed to the daemon.
//! * [`fileapi`], [`fsapi`], [`attributes`]: the file calls, routed to
//!   the server or the host ([`files`] decides which).
//! * [`shm`]: SysV and POSIX shared memory; [`futex`]: futexes;
//!   [`memory`]: `mremap` and the small memory calls (`msync`, `mlock`, ...).
//! * [`process`]: the process-wide state all of them share (the
//!   connection, the descriptor table [`fd_table`], the mount list); the
//!   other modules hold no `static` and depend on it, never it on them.
//! * [`preload`]: what `nommu-run` asks of the library it
//!   preloads (counts, trace, the report at exit, `fork` refused);
//!   [`malloc_names`] (feature `preload-malloc`): the C library's
//!   allocator names over the mmap-only allocator.
//!
//! Raw system calls (the host's half of every routed call) go through
//! [`crate::sys`]; requests to the server through [`crate::transport`].

pub mod attributes;
pub mod fd_table;
pub mod fileapi;
pub mod files;
pub mod fsapi;
pub mod futex;
pub mod host_files;
#[cfg(feature = "preload-malloc")]
pub mod malloc_names;
pub mod memory;
pub mod mmap;
pub mod paths;
#[cfg(feature = "posix")]
pub mod posix;
pub mod preload;
pub mod process;
pub mod shm;

use core::ffi::c_int;
use protocol::Errno;

/// Set `errno` to `e` and return `value` (the C failure return).
pub(crate) fn fail<T>(e: Errno, value: T) -> T {
    crate::sys::set_errno(e);
    value
}

/// 0, or -1 with `errno` set: a C call's status.
pub(crate) fn status(result: Result<(), Errno>) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => fail(e, -1),
    }
}
