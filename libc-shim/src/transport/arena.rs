//! The client's view of the arena: the daemon's memory file mapped at the
//! daemon's own address, so one address means the same bytes everywhere.
//!
//! One process may hold several connections to the same daemon (a Rust
//! test speaking for several threads, say). They share one mapping, found
//! by the memory file's device and inode and counted; a second daemon's
//! arena at an address already taken fails with `EEXIST`.

use super::mapping::SharedMapping;
use crate::sys::file_identity;
use protocol::Errno;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

/// Most distinct arenas one process maps at once.
const MAX_ARENAS: usize = 16;

struct Entry {
    dev: u64,
    ino: u64,
    refs: usize,
    map: SharedMapping,
}

static ARENAS: Mutex<[Option<Entry>; MAX_ARENAS]> = Mutex::new([const { None }; MAX_ARENAS]);

/// A counted hold on the arena mapping; the last one unmaps it.
#[derive(Debug)]
pub struct ArenaLease {
    base: u64,
    size: u64,
    dev: u64,
    ino: u64,
}

impl ArenaLease {
    /// Map the arena memory file `fd` at `[base, base+size)`, or share the
    /// mapping this process already has of the same file there.
    pub fn map(fd: BorrowedFd<'_>, base: u64, size: u64) -> Result<Self, Errno> {
        let (file_size, dev, ino) = file_identity(fd)?;
        if file_size < size {
            return Err(Errno::EPROTO);
        }
        let addr = usize::try_from(base).map_err(|_| Errno::EINVAL)?;
        let len = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
        let mut arenas = ARENAS.lock().unwrap_or_else(|e| e.into_inner());
        for entry in arenas.iter_mut().flatten() {
            if entry.dev == dev && entry.ino == ino {
                if entry.map.addr() != addr || entry.map.len() != len {
                    return Err(Errno::EEXIST);
                }
                entry.refs += 1;
                return Ok(Self {
                    base,
                    size,
                    dev,
                    ino,
                });
            }
        }
        let free = arenas
            .iter_mut()
            .find(|e| e.is_none())
            .ok_or(Errno::ENOMEM)?;
        let map = SharedMapping::exactly_at(fd, len, addr)?;
        *free = Some(Entry {
            dev,
            ino,
            refs: 1,
            map,
        });
        Ok(Self {
            base,
            size,
            dev,
            ino,
        })
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for ArenaLease {
    fn drop(&mut self) {
        let mut arenas = ARENAS.lock().unwrap_or_else(|e| e.into_inner());
        for slot in arenas.iter_mut() {
            let ours = slot
                .as_ref()
                .is_some_and(|e| e.dev == self.dev && e.ino == self.ino);
            if ours {
                let last = slot.as_mut().is_some_and(|e| {
                    e.refs -= 1;
                    e.refs == 0
                });
                if last {
                    *slot = None;
                }
                return;
            }
        }
    }
}
