//! The descriptor table of the host C surface: which host descriptors
//! stand for server files, and the status flags each was opened with.
//! Plain data over atomics (no heap, no lock); the one instance of each
//! lives in [`super::process`].

use core::sync::atomic::{AtomicI32, Ordering};
use protocol::Errno;

/// Host descriptors below this number can stand for a server file (a
/// higher one is given back and the open fails `EMFILE`).
pub const MAX_TRACKED_FDS: usize = 4096;

/// One atomic word per trackable host descriptor, all zero at first.
struct Slots([AtomicI32; MAX_TRACKED_FDS]);

impl Slots {
    const fn new() -> Self {
        Self([const { AtomicI32::new(0) }; MAX_TRACKED_FDS])
    }

    /// Host descriptor `fd`'s word; `None` for one that cannot be tracked.
    fn of(&self, fd: i32) -> Option<&AtomicI32> {
        self.0.get(usize::try_from(fd).ok()?)
    }
}

/// The server descriptor a stored `server + 1` word names (0: none).
fn server_of(plus_one: i32) -> Option<i32> {
    match plus_one {
        0 => None,
        plus_one => Some(plus_one - 1),
    }
}

/// Host descriptor → server descriptor + 1 (0: not a server file).
pub struct FdTable {
    slots: Slots,
}

impl FdTable {
    pub(crate) const fn new() -> Self {
        Self {
            slots: Slots::new(),
        }
    }

    /// The server descriptor host descriptor `fd` stands for, if any.
    pub fn server_fd(&self, fd: i32) -> Option<i32> {
        server_of(self.slots.of(fd)?.load(Ordering::Acquire))
    }

    /// Record that host descriptor `fd` stands for server descriptor
    /// `server`; returns the server descriptor it stood for before (one
    /// whose host descriptor was closed behind the library's back).
    pub(crate) fn bind(&self, fd: i32, server: i32) -> Result<Option<i32>, Errno> {
        let slot = self.slots.of(fd).ok_or(Errno::EMFILE)?;
        let plus_one = server.checked_add(1).ok_or(Errno::EMFILE)?;
        Ok(server_of(slot.swap(plus_one, Ordering::AcqRel)))
    }

    /// Forget every binding; `each` is given each host descriptor that
    /// stood for a server file.
    pub(crate) fn unbind_all(&self, mut each: impl FnMut(i32)) {
        for (fd, slot) in self.slots.0.iter().enumerate() {
            if slot.swap(0, Ordering::AcqRel) != 0 {
                // Below MAX_TRACKED_FDS, so it fits.
                each(fd as i32);
            }
        }
    }

    /// Forget host descriptor `fd`; returns the server descriptor it stood
    /// for (only one of several racing callers gets it).
    pub(crate) fn unbind(&self, fd: i32) -> Option<i32> {
        server_of(self.slots.of(fd)?.swap(0, Ordering::AcqRel))
    }
}

/// Host descriptor → the file status flags of the server file it stands
/// for (access mode, `O_APPEND`, `O_NONBLOCK`, ...), as `fcntl(F_GETFL)`
/// answers them. Meaningful only while the [`FdTable`] has the descriptor.
pub struct FlagTable {
    slots: Slots,
}

impl FlagTable {
    pub(crate) const fn new() -> Self {
        Self {
            slots: Slots::new(),
        }
    }

    /// The flags recorded for host descriptor `fd` (0 if out of range).
    pub fn get(&self, fd: i32) -> i32 {
        self.slots.of(fd).map_or(0, |s| s.load(Ordering::Acquire))
    }

    /// Record the flags of host descriptor `fd`.
    pub fn set(&self, fd: i32, flags: i32) {
        if let Some(slot) = self.slots.of(fd) {
            slot.store(flags, Ordering::Release);
        }
    }
}

/// The flags `F_GETFL` reports for a file opened with `flags`: the access
/// mode and status flags, without the open-time-only ones (as Linux keeps
/// them).
pub fn status_flags(flags: i32) -> i32 {
    let open_only = libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOCTTY
        | libc::O_TRUNC
        | libc::O_CLOEXEC
        | libc::O_DIRECTORY
        | libc::O_NOFOLLOW;
    flags & !open_only
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_binds_and_unbinds_once() {
        let table = FdTable::new();
        assert_eq!(table.server_fd(7), None);
        assert_eq!(table.bind(7, 3), Ok(None));
        assert_eq!(table.server_fd(7), Some(3));
        assert_eq!(table.bind(7, 4), Ok(Some(3)));
        assert_eq!(table.unbind(7), Some(4));
        assert_eq!(table.unbind(7), None);
        assert_eq!(table.server_fd(-1), None);
        assert_eq!(table.bind(MAX_TRACKED_FDS as i32, 1), Err(Errno::EMFILE));
    }
}
