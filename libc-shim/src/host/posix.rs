//! The POSIX names (`mmap`, `mmap64`, `munmap`), exported only by the
//! static library built with feature `posix`: a C program linking it gets
//! the memory server's mapping calls in place of the host kernel's.

use super::capi::{nommu_mmap, nommu_munmap};
use core::ffi::{c_int, c_void};

/// `void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)`.
#[no_mangle]
pub extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: libc::off_t,
) -> *mut c_void {
    nommu_mmap(addr, len, prot, flags, fd, offset)
}

/// `mmap` with a 64-bit offset (the same call on a 64-bit host).
#[no_mangle]
pub extern "C" fn mmap64(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: libc::off64_t,
) -> *mut c_void {
    nommu_mmap(addr, len, prot, flags, fd, offset)
}

/// `int munmap(void *addr, size_t len)`.
#[no_mangle]
pub extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    nommu_munmap(addr, len)
}
