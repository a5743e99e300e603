//! The C surface of the shim: the functions a C program calls, one module
//! per home that can serve them.
//!
//! * [`host`] (feature `host`): the `nommu_*` functions (and with feature
//!   `posix` their libc names) of `libnommu.a`, over one process-wide
//!   connection to `memsrvd` ([`crate::transport`]) and the host kernel.
//! * `board` (feature `c-abi`, `no_std`): the same C names for a home
//!   without an OS underneath (the riscv64 board), which registers how a
//!   call reaches the calling task's connection.

#[cfg(feature = "c-abi")]
pub mod board;
#[cfg(feature = "host")]
pub mod host;
