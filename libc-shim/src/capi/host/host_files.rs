//! The host files this process has already handed to the daemon: host
//! descriptor → the server descriptor its file was opened as, so a host
//! file mapped again costs no descriptor pass (`SCM_RIGHTS`, a wake-up of
//! the daemon's connection thread) and no close.
//!
//! An entry is used only while the host descriptor still shows the file it
//! was made for, exactly: the same (device, inode), size, modification and
//! change times, type and permission bits, and open flags (`fstat` and
//! `F_GETFL`, two host calls). Anything else — the file changed since, the
//! descriptor closed and its number reused, reopened write-only — opens the
//! file afresh, so a new `MAP_PRIVATE` copy is taken of the file as it is
//! at `mmap` (the server reads it through the daemon's descriptor for each
//! copy, and a fresh open refreshes the size memsrv knows); a read-only
//! private mapping of a range still mapped shares that copy (spec §3.3),
//! cached or not.
//!
//! The server descriptors are this process's own (its table, its limits),
//! closed when a slot is reused, when the host descriptor is closed through
//! the shim, and by the daemon when the process goes; a forked child has
//! another server process and never uses its parent's entries. The table
//! is tried, never waited for: under contention (or in a forked child whose
//! parent held it) a call takes the uncached path.

use core::ffi::c_int;
use protocol::Errno;
use std::sync::{Mutex, TryLockError};

/// Host files kept per process (each holds one server descriptor).
const SLOTS: usize = 8;

/// What must not have changed for an entry to be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
    flags: c_int,
}

impl Identity {
    /// Host descriptor `fd`'s file as it is now (`EBADF` for a closed one).
    pub fn of(fd: c_int) -> Result<Self, Errno> {
        // SAFETY: all-zero is a valid `stat` (plain integers).
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: `st` is a live, writable `stat`.
        if unsafe { crate::sys::host::fstat(fd, &mut st) } < 0 {
            return Err(crate::sys::last_errno());
        }
        let flags = crate::sys::host::getfl(fd);
        if flags < 0 {
            return Err(crate::sys::last_errno());
        }
        Ok(Self {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
            mode: st.st_mode,
            flags: flags & (libc::O_ACCMODE | libc::O_APPEND | libc::O_PATH),
        })
    }
}

#[derive(Clone, Copy)]
struct Entry {
    /// The server process the descriptor belongs to.
    owner: u32,
    fd: c_int,
    identity: Identity,
    server: i32,
    last_used: u64,
}

struct Table {
    slots: [Option<Entry>; SLOTS],
    clock: u64,
}

/// Host descriptor → server descriptor, for [`SLOTS`] host files.
pub struct HostFileCache {
    table: Mutex<Table>,
}

/// Server descriptors of this process that a cache call let go of; the
/// caller closes them on the server.
pub type Released = Option<i32>;

impl HostFileCache {
    pub(crate) const fn new() -> Self {
        Self {
            table: Mutex::new(Table {
                slots: [None; SLOTS],
                clock: 0,
            }),
        }
    }

    fn try_table(&self) -> Option<std::sync::MutexGuard<'_, Table>> {
        match self.table.try_lock() {
            Ok(table) => Some(table),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Take out the server descriptor `owner` holds for host descriptor
    /// `fd`, if it was opened for exactly `identity` (the caller
    /// [`put`](Self::put)s it back after use, so no other thread closes it
    /// meanwhile). `Err(released)`: none to use; `released` is a stale
    /// entry's descriptor to close.
    pub fn take(&self, owner: u32, fd: c_int, identity: &Identity) -> Result<i32, Released> {
        let Some(mut table) = self.try_table() else {
            return Err(None);
        };
        let slot = table
            .slots
            .iter_mut()
            .find(|s| s.is_some_and(|e| e.fd == fd && e.owner == owner));
        let Some(slot) = slot else {
            return Err(None);
        };
        let entry = slot.take().ok_or(None)?;
        if entry.identity == *identity {
            Ok(entry.server)
        } else {
            Err(Some(entry.server))
        }
    }

    /// Keep `server` (opened by `owner` for host descriptor `fd`, showing
    /// `identity`). `Some`: a descriptor to close instead — `server` itself
    /// when the table is busy or already has an entry for `fd`, or the
    /// least recently used entry's it replaced. A forked child's entries
    /// from its parent (another owner) are dropped unclosed: they are not
    /// its own.
    pub fn put(&self, owner: u32, fd: c_int, identity: Identity, server: i32) -> Released {
        let Some(mut table) = self.try_table() else {
            return Some(server);
        };
        table.clock += 1;
        let now = table.clock;
        let entry = Entry {
            owner,
            fd,
            identity,
            server,
            last_used: now,
        };
        if table
            .slots
            .iter()
            .any(|s| s.is_some_and(|e| e.fd == fd && e.owner == owner))
        {
            return Some(server);
        }
        for slot in table.slots.iter_mut() {
            if slot.is_some_and(|e| e.owner != owner) {
                *slot = None;
            }
        }
        if let Some(free) = table.slots.iter_mut().find(|s| s.is_none()) {
            *free = Some(entry);
            return None;
        }
        let oldest = table
            .slots
            .iter_mut()
            .min_by_key(|s| s.map_or(0, |e| e.last_used))?;
        let evicted = oldest.replace(entry);
        evicted.map(|e| e.server)
    }

    /// Host descriptor `fd` is being closed: let go of its entry (its
    /// server descriptor returned to close), so the daemon does not keep
    /// the file open for a descriptor the program has given up.
    pub fn forget(&self, owner: u32, fd: c_int) -> Released {
        let mut table = self.try_table()?;
        let slot = table
            .slots
            .iter_mut()
            .find(|s| s.is_some_and(|e| e.fd == fd && e.owner == owner))?;
        slot.take().map(|e| e.server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(ino: u64, size: i64) -> Identity {
        Identity {
            dev: 1,
            ino,
            size,
            mtime: (5, 6),
            ctime: (7, 8),
            mode: 0o100644,
            flags: libc::O_RDONLY,
        }
    }

    #[test]
    fn an_entry_serves_only_the_file_it_was_made_for() {
        let cache = HostFileCache::new();
        assert_eq!(cache.take(1, 3, &identity(10, 4096)), Err(None));
        assert_eq!(cache.put(1, 3, identity(10, 4096), 7), None);
        assert_eq!(cache.take(1, 3, &identity(10, 4096)), Ok(7));
        // Taken out while in use: a second user opens its own.
        assert_eq!(cache.take(1, 3, &identity(10, 4096)), Err(None));
        assert_eq!(cache.put(1, 3, identity(10, 4096), 7), None);
        // The file grew: the entry is stale and handed back to close.
        assert_eq!(cache.take(1, 3, &identity(10, 8192)), Err(Some(7)));
        assert_eq!(cache.take(1, 3, &identity(10, 8192)), Err(None));
        // Another process (a forked child) never sees it, nor closes it.
        assert_eq!(cache.put(1, 3, identity(11, 1), 8), None);
        assert_eq!(cache.take(2, 3, &identity(11, 1)), Err(None));
        assert_eq!(cache.put(2, 4, identity(12, 1), 3), None);
        assert_eq!(cache.take(1, 3, &identity(11, 1)), Err(None));
        assert_eq!(cache.forget(2, 4), Some(3));
        assert_eq!(cache.forget(2, 4), None);
    }

    #[test]
    fn a_full_table_gives_up_its_least_recently_used_entry() {
        let cache = HostFileCache::new();
        for fd in 0..SLOTS as c_int {
            assert_eq!(cache.put(1, fd, identity(fd as u64, 1), 100 + fd), None);
        }
        // fd 0 used again: fd 1 is now the oldest.
        assert_eq!(cache.take(1, 0, &identity(0, 1)), Ok(100));
        assert_eq!(cache.put(1, 0, identity(0, 1), 100), None);
        assert_eq!(cache.put(1, 50, identity(50, 1), 150), Some(101));
        // A second entry for one descriptor is not kept.
        assert_eq!(cache.put(1, 50, identity(50, 1), 151), Some(151));
        assert_eq!(cache.take(1, 50, &identity(50, 1)), Ok(150));
    }
}
