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

/// `lseek`'s `SEEK_CUR` (Linux's number, as the server reads it).
const SEEK_CUR: u32 = 1;

/// Takes a window's worth read for the caller's bytes from the given
/// count on.
pub(crate) type Deliver<'a> = dyn FnMut(&[u8], usize) -> Result<(), Errno> + 'a;
/// Fills the window from the caller's bytes from the given count on.
pub(crate) type Fill<'a> = dyn FnMut(&mut [u8], usize) -> Result<(), Errno> + 'a;

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
        self.read_through_window(fd, buf.len(), offset, &mut |piece, at| {
            buf[at..at + piece.len()].copy_from_slice(piece);
            Ok(())
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
        self.write_through_window(fd, data.len(), offset, &mut |piece, at| {
            piece.copy_from_slice(&data[at..at + piece.len()]);
            Ok(())
        })
    }

    /// `read`/`pread` of `len` bytes through the bulk window, a window's
    /// worth per round trip: `deliver(piece, done)` takes the bytes read
    /// into the window for the caller's bytes from `done` on. If it fails
    /// (the caller's memory cannot take them), the call ends there — with
    /// its error when nothing was delivered, else short — and a read at the
    /// file position moves the position back over what was not delivered
    /// (as the kernel advances it only by what it copied out). `None`:
    /// no window, or at most one frame's worth.
    pub(crate) fn read_through_window(
        &self,
        fd: i32,
        len: usize,
        offset: Option<u64>,
        deliver: &mut Deliver<'_>,
    ) -> Option<Result<usize, Errno>> {
        self.through_window(fd, len, offset, false, &mut |window, at, n| {
            // SAFETY: `through_window` passes its granted window and at
            // most a window's worth, with the window lock held.
            let result = deliver(unsafe { window_bytes(window, n) }, at);
            if result.is_err() && offset.is_none() && n > 0 {
                // A pipe or socket cannot seek: its bytes are gone, as
                // after any failed copy-out of them.
                let _ = self.lseek(fd, -(n as i64), SEEK_CUR);
            }
            result
        })
    }

    /// `write`/`pwrite` of `len` bytes through the bulk window:
    /// `fill(piece, done)` fills the window from the caller's bytes from
    /// `done` on before each round trip. If it fails, nothing more is
    /// written: the call fails with its error when nothing was written,
    /// else ends short. `None` as for [`Self::read_through_window`].
    pub(crate) fn write_through_window(
        &self,
        fd: i32,
        len: usize,
        offset: Option<u64>,
        fill: &mut Fill<'_>,
    ) -> Option<Result<usize, Errno>> {
        self.through_window(fd, len, offset, true, &mut |window, at, n| {
            // SAFETY: as in `read_through_window`.
            fill(unsafe { window_bytes(window, n) }, at)
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
        self.transport().expect_copy(len as u64);
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
    /// error (the server's or the copy's) after some bytes; `None` without
    /// a window.
    fn through_window(
        &self,
        fd: i32,
        len: usize,
        offset: Option<u64>,
        write: bool,
        copy: &mut dyn FnMut(u64, usize, usize) -> Result<(), Errno>,
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
                let step = if write {
                    copy(window, done, n).and_then(|()| self.lease_call(fd, window, n, at, write))
                } else {
                    self.lease_call(fd, window, n, at, write)
                        .and_then(|moved| copy(window, done, moved).map(|()| moved))
                };
                let moved = match step {
                    Ok(moved) => moved,
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => break,
                };
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

/// The first `n` bytes of the bulk window at `window`.
///
/// # Safety
/// `window` must be this connection's bulk window as the server granted it
/// (`BULK_WINDOW` bytes of the arena, which this process maps read-write at
/// the server's address for as long as it lives), `n` at most
/// `BULK_WINDOW`, and the transport's window lock held for as long as the
/// slice lives (`through_window`'s `copy` runs only then), so the window is
/// this caller's alone: the server touches it only inside this caller's
/// lease call, not while the slice is used.
unsafe fn window_bytes<'a>(window: u64, n: usize) -> &'a mut [u8] {
    debug_assert!(n <= BULK_WINDOW as usize);
    // SAFETY: this function's contract.
    unsafe {
        core::slice::from_raw_parts_mut(core::ptr::with_exposed_provenance_mut(window as usize), n)
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
