//! `read`/`write` by lease on the client side: a buffer that lies in the
//! arena (every process maps it at the same address) is named to the
//! server by address (`ReadLease`, `WriteLease`), and the server copies
//! the whole request between it and the file in one round trip, where the
//! framed path carries 1 KiB a frame. The server checks that the range is
//! this process's own memory (`EFAULT` otherwise). A buffer outside the
//! arena goes through the connection's bulk window (`BulkWindow`): one
//! copy here, one in the server, one round trip per window's worth.
//! Calls of at most one frame, and transports without an arena, keep the
//! framed path.

use super::{Client, Transport};
use protocol::{lease_request, Errno, Reply, Request, BULK_WINDOW, DATA_CHUNK};

/// Whether `[addr, addr + len)` lies inside the arena `(base, size)`.
fn in_arena(arena: (u64, u64), addr: u64, len: u64) -> bool {
    let (base, size) = arena;
    addr >= base
        && addr
            .checked_add(len)
            .zip(base.checked_add(size))
            .is_some_and(|(end, top)| end <= top)
}

impl<T: Transport> Client<T> {
    /// `read`/`pread` into `buf` by lease (the buffer itself, or the
    /// window); `None`: use the framed path.
    pub(crate) fn read_by_lease(
        &self,
        fd: i32,
        buf: &mut [u8],
        offset: Option<u64>,
    ) -> Option<Result<usize, Errno>> {
        let addr = buf.as_mut_ptr() as u64;
        if let Some(done) = self.lease(fd, addr, buf.len(), offset, false) {
            return Some(done);
        }
        self.through_window(fd, buf.len(), offset, false, &mut |window, at, n| {
            let piece = &mut buf[at..at + n];
            // SAFETY: the window is `BULK_WINDOW` bytes of the arena, which
            // this process maps at the server's address, and is this
            // caller's alone while the transport's window lock is held; `n`
            // is at most `BULK_WINDOW` and `piece` is ours, apart from it.
            unsafe {
                let from: *const u8 = core::ptr::with_exposed_provenance(window as usize);
                core::ptr::copy_nonoverlapping(from, piece.as_mut_ptr(), n);
            }
        })
    }

    /// `write`/`pwrite` of `data` by lease; `None`: use the framed path.
    pub(crate) fn write_by_lease(
        &self,
        fd: i32,
        data: &[u8],
        offset: Option<u64>,
    ) -> Option<Result<usize, Errno>> {
        if let Some(done) = self.lease(fd, data.as_ptr() as u64, data.len(), offset, true) {
            return Some(done);
        }
        self.through_window(fd, data.len(), offset, true, &mut |window, at, n| {
            let piece = &data[at..at + n];
            // SAFETY: as in `read_by_lease`, the other way.
            unsafe {
                let to: *mut u8 = core::ptr::with_exposed_provenance_mut(window as usize);
                core::ptr::copy_nonoverlapping(piece.as_ptr(), to, n);
            }
        })
    }

    /// One `ReadLease` (`write` false) or `WriteLease` of `len` bytes at
    /// `addr`, if the transport shares the arena, the range lies in it and
    /// it is longer than one frame carries; `None`: not by lease (also when
    /// the server says the range is not this process's: the caller's own
    /// view then moves it, and faults there as the call would; or does not
    /// know leases).
    pub(crate) fn lease(
        &self,
        fd: i32,
        addr: u64,
        len: usize,
        offset: Option<u64>,
        write: bool,
    ) -> Option<Result<usize, Errno>> {
        let arena = self.transport().lease_arena()?;
        if len <= DATA_CHUNK || !in_arena(arena, addr, len as u64) {
            return None;
        }
        match self.lease_call(fd, addr, len, offset, write) {
            // EBADMSG: a server from before leases, which cannot decode
            // the request (nothing was moved).
            Err(Errno::EFAULT | Errno::EBADMSG) => None,
            done => Some(done),
        }
    }

    fn lease_call(
        &self,
        fd: i32,
        buf: u64,
        len: usize,
        offset: Option<u64>,
        write: bool,
    ) -> Result<usize, Errno> {
        let request = lease_request(write, fd, buf, len as u64, offset);
        match self.call(&request)? {
            // A server that claims more than asked is not believed.
            Reply::Count(n) => Ok((n as usize).min(len)),
            _ => Err(Errno::EPROTO),
        }
    }

    /// Move `len` bytes through the bulk window, a window's worth per
    /// round trip: `copy(window, done, n)` fills the window from the
    /// caller's bytes `[done, done + n)` before a write, or empties it into
    /// them after a read. The count so far on a short piece, or on an
    /// error after some bytes; `None` without a window.
    fn through_window(
        &self,
        fd: i32,
        len: usize,
        offset: Option<u64>,
        write: bool,
        copy: &mut dyn FnMut(u64, usize, usize),
    ) -> Option<Result<usize, Errno>> {
        if len <= DATA_CHUNK {
            return None;
        }
        let mut grant = || match self.call(&Request::BulkWindow)? {
            Reply::Mapped { addr } => Ok(addr),
            _ => Err(Errno::EPROTO),
        };
        let mut transfer = |window: u64| {
            let mut done = 0usize;
            while done < len {
                let n = (len - done).min(BULK_WINDOW as usize);
                let at = offset.map(|o| o.saturating_add(done as u64));
                if write {
                    copy(window, done, n);
                }
                let moved = match self.lease_call(fd, window, n, at, write) {
                    Ok(moved) => moved,
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => break,
                };
                if !write {
                    copy(window, done, moved);
                }
                done += moved;
                if moved < n {
                    break;
                }
            }
            Ok(done)
        };
        self.transport().with_bulk_window(&mut grant, &mut transfer)
    }
}

#[cfg(test)]
mod tests {
    use super::in_arena;

    #[test]
    fn a_range_is_in_the_arena_only_whole() {
        let arena = (0x1000, 0x4000);
        assert!(in_arena(arena, 0x1000, 0x4000));
        assert!(in_arena(arena, 0x2000, 0x10));
        assert!(!in_arena(arena, 0xfff, 2));
        assert!(!in_arena(arena, 0x4fff, 2));
        assert!(!in_arena(arena, u64::MAX, 2));
    }
}
