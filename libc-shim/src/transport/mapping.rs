//! An owned `MAP_SHARED` mapping of a memory file, unmapped on drop.

use crate::sys::{file_identity, map_shared, sealed_memfd, unmap};
use core::ffi::CStr;
use protocol::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A shared read-write mapping this value owns. It never replaces an
/// existing mapping (see [`crate::sys::map_shared`]).
#[derive(Debug)]
pub struct SharedMapping {
    addr: usize,
    len: usize,
}

impl SharedMapping {
    /// Map `len` bytes of `fd` wherever the kernel likes.
    pub fn anywhere(fd: BorrowedFd<'_>, len: usize) -> Result<Self, Errno> {
        Ok(Self {
            addr: map_shared(fd, len, None)?,
            len,
        })
    }

    /// A new memory file of `len` bytes named `name`, sealed against
    /// resizing, and this side's mapping of it (the side that hands the
    /// file over).
    pub fn new_file(name: &CStr, len: usize) -> Result<(Self, OwnedFd), Errno> {
        let fd = sealed_memfd(name, len as u64)?;
        let map = Self::anywhere(fd.as_fd(), len)?;
        Ok((map, fd))
    }

    /// Map `len` bytes of a memory file handed over by the peer; `EPROTO`
    /// if the file is shorter.
    pub fn received(fd: BorrowedFd<'_>, len: usize) -> Result<Self, Errno> {
        let (size, _, _) = file_identity(fd)?;
        if size < len as u64 {
            return Err(Errno::EPROTO);
        }
        Self::anywhere(fd, len)
    }

    /// Map `len` bytes of `fd` exactly at `addr`; `EEXIST` if anything is
    /// mapped there already.
    pub fn exactly_at(fd: BorrowedFd<'_>, len: usize, addr: usize) -> Result<Self, Errno> {
        Ok(Self {
            addr: map_shared(fd, len, Some(addr))?,
            len,
        })
    }

    pub fn addr(&self) -> usize {
        self.addr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: this value created the mapping and owns it; borrows of
        // its memory (e.g. a channel page) cannot outlive `self`.
        unsafe { unmap(self.addr, self.len) };
    }
}
