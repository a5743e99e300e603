//! The C signatures both homes define, each written once: `mmap` (and
//! `mmap64`) and `mremap` stand in the board's C ABI, among the host's
//! `nommu_*` calls and among the host's libc names (feature `posix`). A
//! definition names its qualifiers, its parameters and its body; the macro
//! gives the parameters their C types, so every definition of one call
//! takes the same arguments. (The host-only signatures that its C surface
//! shares with the host kernel's calls are in [`crate::sys`].) `mmap64`,
//! which every home that exports `mmap` exports alike, is defined here once.

/// A function with `mmap`'s C signature, `void *mmap(void *addr, size_t
/// len, int prot, int flags, int fd, off_t offset)` (`off_t` is 64 bits
/// on every target the shim builds for).
macro_rules! mmap_fn {
    ($(#[$attr:meta])* $vis:vis [$($qual:tt)*] fn $name:ident(
        $addr:ident, $len:ident, $prot:ident, $flags:ident, $fd:ident, $offset:ident $(,)?
    ) $body:block) => {
        $(#[$attr])*
        $vis $($qual)* fn $name(
            $addr: *mut ::core::ffi::c_void,
            $len: usize,
            $prot: ::core::ffi::c_int,
            $flags: ::core::ffi::c_int,
            $fd: ::core::ffi::c_int,
            $offset: i64,
        ) -> *mut ::core::ffi::c_void $body
    };
}
pub(crate) use mmap_fn;

/// A function with `mremap`'s C signature, `void *mremap(void *old, size_t
/// old_len, size_t new_len, int flags, ... /* void *new_address */)`. It
/// is variadic in C; the new address is a fixed fifth argument here, which
/// the RISC-V, x86-64 and AArch64 calling conventions pass in the same
/// register as a variadic one (read only with `MREMAP_FIXED`).
macro_rules! mremap_fn {
    ($(#[$attr:meta])* $vis:vis [$($qual:tt)*] fn $name:ident(
        $old:ident, $old_len:ident, $new_len:ident, $flags:ident, $new_address:ident $(,)?
    ) $body:block) => {
        $(#[$attr])*
        $vis $($qual)* fn $name(
            $old: *mut ::core::ffi::c_void,
            $old_len: usize,
            $new_len: usize,
            $flags: ::core::ffi::c_int,
            $new_address: *mut ::core::ffi::c_void,
        ) -> *mut ::core::ffi::c_void $body
    };
}
pub(crate) use mremap_fn;

#[cfg(feature = "c-abi")]
use super::board::mmap;
#[cfg(feature = "posix")]
use super::host::posix::mmap;

#[cfg(any(feature = "c-abi", feature = "posix"))]
mmap_fn! {
    /// `mmap` with a 64-bit offset: the same call on the 64-bit targets the
    /// shim builds for.
    #[no_mangle]
    pub [extern "C"] fn mmap64(addr, len, prot, flags, fd, offset) {
        mmap(addr, len, prot, flags, fd, offset)
    }
}
