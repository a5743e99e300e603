//! `read`/`write` by lease on the client side: a buffer that lies in the
//! arena (every process maps it at the same address) is named to the
//! server by address (`ReadLease`, `WriteLease`), and the server copies
//! the whole request between it and the file in one round trip, where the
//! framed path carries 1 KiB a frame. The server checks that the range is
//! one of this process's own mappings (`EFAULT` otherwise); a buffer
//! outside the arena, or one the server refuses, takes the framed path.

use super::{Client, Transport};
use protocol::{Errno, Reply, Request, DATA_CHUNK};

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
    /// One `ReadLease` (`write` false) or `WriteLease` of `len` bytes at
    /// `addr`, if the transport shares the arena, the range lies in it and
    /// it is longer than one frame carries; `None`: use the framed path.
    pub(crate) fn lease(
        &self,
        fd: i32,
        addr: u64,
        len: usize,
        offset: Option<u64>,
        write: bool,
    ) -> Option<Result<usize, Errno>> {
        let arena = self.transport().lease_arena()?;
        let len64 = len as u64;
        if len <= DATA_CHUNK || !in_arena(arena, addr, len64) {
            return None;
        }
        let request = if write {
            Request::WriteLease {
                fd,
                buf: addr,
                len: len64,
                offset,
            }
        } else {
            Request::ReadLease {
                fd,
                buf: addr,
                len: len64,
                offset,
            }
        };
        match self.call(&request) {
            // A server that claims more than asked is not believed.
            Ok(Reply::Count(n)) => Some(Ok((n as usize).min(len))),
            Ok(_) => Some(Err(Errno::EPROTO)),
            // Not this process's memory to the server: the framed path
            // copies through the process's own view (and faults there, as
            // the call would).
            Err(Errno::EFAULT) => None,
            Err(e) => Some(Err(e)),
        }
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
