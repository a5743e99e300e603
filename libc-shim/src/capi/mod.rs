//! The C surface of the shim: the functions a C program calls, one module
//! per home that can serve them.
//!
//! * [`host`] (feature `host`): the `nommu_*` functions (and with feature
//!   `posix` their libc names) of `libnommu.a`, over one process-wide
//!   connection to `memsrvd` ([`crate::transport`]) and the host kernel.
//! * `board` (feature `c-abi`, `no_std`): the same C names for a home
//!   without an OS underneath (the riscv64 board), which registers how a
//!   call reaches the calling task's connection.
//! * `signatures`: the C signatures defined more than once (in both homes
//!   and in [`crate::sys`]), each written once.

#[cfg(feature = "c-abi")]
pub mod board;
pub(crate) mod signatures;

/// `mremap`'s `new_address` as both homes read it: the argument is
/// variadic in C and passed only with `MREMAP_FIXED`, so without that flag
/// whatever its register holds is ignored (0).
#[cfg(any(feature = "c-abi", feature = "host"))]
fn mremap_new_address(flags: core::ffi::c_int, new_address: *mut core::ffi::c_void) -> u64 {
    if flags as u32 & protocol::linux::MREMAP_FIXED != 0 {
        new_address as u64
    } else {
        0
    }
}
#[cfg(feature = "host")]
pub mod host;

/// A C `off_t` (a file offset or length) as the server reads it: negative
/// fails `EINVAL`, as Linux's `mmap`, `pread`, `pwrite` and `ftruncate` do.
#[cfg(any(feature = "c-abi", feature = "host"))]
fn offset_of(offset: i64) -> Result<u64, protocol::Errno> {
    u64::try_from(offset).map_err(|_| protocol::Errno::EINVAL)
}
