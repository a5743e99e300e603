//! The C signatures the shim defines more than once, each written once:
//! `mmap` and `mremap` stand in the board's C ABI, among the host's
//! `nommu_*` calls and among the host's libc names (feature `posix`);
//! `futex` and `fchownat` among the host's `nommu_*` calls, its libc names
//! and the host kernel's calls in [`crate::sys::host`], which take the C
//! caller's arguments as they came. A definition ([`c_fn`]) names its
//! qualifiers, its parameters, its body and whose signature it has; the
//! macro gives the parameters their C types, so every definition of one
//! call takes the same arguments. A call exported under two names (a call
//! and its large-file twin, one call on the 64-bit targets the shim builds
//! for) is defined once with [`exported_as`]; `mmap64`, which every home
//! that exports `mmap` exports alike, is defined here once.

/// A function with one of the shim's repeated C signatures:
/// `c_fn! { #[no_mangle] pub [extern "C"] fn nommu_mmap as mmap(addr, len,
/// prot, flags, fd, offset) { ... } }`. The signatures:
///
/// * `void *mmap(void *addr, size_t len, int prot, int flags, int fd,
///   off_t offset)` (`off_t` is 64 bits on every target the shim builds
///   for);
/// * `void *mremap(void *old, size_t old_len, size_t new_len, int flags,
///   ... /* void *new_address */)`: variadic in C, the new address a fixed
///   fifth argument here, which the RISC-V, x86-64 and AArch64 calling
///   conventions pass in the same register as a variadic one (read only
///   with `MREMAP_FIXED`);
/// * `int futex(int *uaddr, int op, int val, const struct timespec
///   *timeout, int *uaddr2, int val3)` (host only: the system call's
///   shape, with the host's `struct timespec`);
/// * `int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int
///   flags)`.
macro_rules! c_fn {
    ($(#[$attr:meta])* $vis:vis [$($qual:tt)*] fn $name:ident as mmap(
        $addr:ident, $len:ident, $prot:ident, $flags:ident, $fd:ident, $offset:ident $(,)?
    ) $body:block) => {
        $crate::capi::signatures::c_fn! { @define $(#[$attr])* $vis [$($qual)*] $name(
            $addr: *mut ::core::ffi::c_void,
            $len: usize,
            $prot: ::core::ffi::c_int,
            $flags: ::core::ffi::c_int,
            $fd: ::core::ffi::c_int,
            $offset: i64
        ) -> *mut ::core::ffi::c_void $body }
    };
    ($(#[$attr:meta])* $vis:vis [$($qual:tt)*] fn $name:ident as mremap(
        $old:ident, $old_len:ident, $new_len:ident, $flags:ident, $new_address:ident $(,)?
    ) $body:block) => {
        $crate::capi::signatures::c_fn! { @define $(#[$attr])* $vis [$($qual)*] $name(
            $old: *mut ::core::ffi::c_void,
            $old_len: usize,
            $new_len: usize,
            $flags: ::core::ffi::c_int,
            $new_address: *mut ::core::ffi::c_void
        ) -> *mut ::core::ffi::c_void $body }
    };
    ($(#[$attr:meta])* $vis:vis [$($qual:tt)*] fn $name:ident as futex(
        $uaddr:ident, $op:ident, $val:ident, $timeout:ident, $uaddr2:ident, $val3:ident $(,)?
    ) $body:block) => {
        $crate::capi::signatures::c_fn! { @define $(#[$attr])* $vis [$($qual)*] $name(
            $uaddr: *mut ::core::ffi::c_int,
            $op: ::core::ffi::c_int,
            $val: ::core::ffi::c_int,
            $timeout: *const ::libc::timespec,
            $uaddr2: *mut ::core::ffi::c_int,
            $val3: ::core::ffi::c_int
        ) -> ::core::ffi::c_int $body }
    };
    ($(#[$attr:meta])* $vis:vis [$($qual:tt)*] fn $name:ident as fchownat(
        $dirfd:ident, $path:ident, $uid:ident, $gid:ident, $flags:ident $(,)?
    ) $body:block) => {
        $crate::capi::signatures::c_fn! { @define $(#[$attr])* $vis [$($qual)*] $name(
            $dirfd: ::core::ffi::c_int,
            $path: *const ::core::ffi::c_char,
            $uid: u32,
            $gid: u32,
            $flags: ::core::ffi::c_int
        ) -> ::core::ffi::c_int $body }
    };
    // Every signature's definition: the parameters with their types.
    (@define $(#[$attr:meta])* $vis:vis [$($qual:tt)*] $name:ident(
        $($arg:ident: $ty:ty),*
    ) -> $ret:ty $body:block) => {
        $(#[$attr])*
        $vis $($qual)* fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use c_fn;

/// One C function exported (`#[no_mangle]`) under each of several names:
/// `exported_as! { [open, open64] /// docs
/// pub [unsafe extern "C"] fn(path: *const c_char, ...) -> c_int { ... } }`.
#[cfg(any(feature = "c-abi", feature = "posix"))]
macro_rules! exported_as {
    ([] $($definition:tt)*) => {};
    ([$name:ident $(, $more:ident)* $(,)?] $(#[$attr:meta])* $vis:vis [$($qual:tt)*] fn(
        $($arg:ident: $ty:ty),* $(,)?
    ) -> $ret:ty $body:block) => {
        $(#[$attr])*
        #[no_mangle]
        $vis $($qual)* fn $name($($arg: $ty),*) -> $ret $body

        $crate::capi::signatures::exported_as! {
            [$($more),*] $(#[$attr])* $vis [$($qual)*] fn($($arg: $ty),*) -> $ret $body
        }
    };
}
#[cfg(any(feature = "c-abi", feature = "posix"))]
pub(crate) use exported_as;

#[cfg(feature = "c-abi")]
use super::board::mmap;
#[cfg(feature = "posix")]
use super::host::posix::mmap;

#[cfg(any(feature = "c-abi", feature = "posix"))]
c_fn! {
    /// `mmap` with a 64-bit offset: the same call on the 64-bit targets the
    /// shim builds for.
    #[no_mangle]
    pub [extern "C"] fn mmap64 as mmap(addr, len, prot, flags, fd, offset) {
        mmap(addr, len, prot, flags, fd, offset)
    }
}
