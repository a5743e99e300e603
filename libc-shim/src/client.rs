//! The Rust client API: one method per call, `Result<_, Errno>` out.

use core::sync::atomic::{AtomicU32, Ordering};
use protocol::{
    decode_reply, encode_request, Errno, OffsetUnit, ProcView, Reply, Request, Sysctl, MAX_FRAME,
};

/// Carries one request frame to the memory server and its reply back.
/// Implementations serialise concurrent callers themselves.
pub trait Transport {
    /// Send `request` (one whole frame) and write the reply frame into
    /// `reply`; returns the reply's length.
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno>;
}

/// What [`Client::hello`] learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Welcome {
    pub pid: u32,
    pub arena_base: u64,
    pub arena_size: u64,
}

/// A connection to the memory server, speaking for one process.
pub struct Client<T: Transport> {
    transport: T,
    next_tag: AtomicU32,
}

impl<T: Transport> Client<T> {
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            next_tag: AtomicU32::new(1),
        }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Send one request and wait for its reply; an error reply becomes `Err`.
    pub fn call(&self, request: &Request) -> Result<Reply, Errno> {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let mut out = [0u8; MAX_FRAME];
        let len = encode_request(tag, request, &mut out);
        let mut back = [0u8; MAX_FRAME];
        let got = self.transport.call(&out[..len], &mut back)?;
        let frame = decode_reply(&back[..got]).map_err(|e| e.errno())?;
        if frame.tag != tag {
            return Err(Errno::EPROTO);
        }
        frame.message.into_result()
    }

    /// Become a process: a new one, or the clone child named by `ticket`.
    pub fn hello(&self, ticket: Option<u64>) -> Result<Welcome, Errno> {
        match self.call(&Request::Hello { ticket })? {
            Reply::Hello {
                pid,
                arena_base,
                arena_size,
            } => Ok(Welcome {
                pid,
                arena_base,
                arena_size,
            }),
            _ => Err(Errno::EPROTO),
        }
    }

    /// `mmap` with a byte offset.
    pub fn mmap(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i32,
        offset: u64,
    ) -> Result<u64, Errno> {
        self.mmap_unit(addr, len, prot, flags, fd, offset, OffsetUnit::Bytes)
    }

    /// `mmap2`: the offset is in pages.
    pub fn mmap2(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i32,
        pgoff: u64,
    ) -> Result<u64, Errno> {
        self.mmap_unit(addr, len, prot, flags, fd, pgoff, OffsetUnit::Pages)
    }

    #[allow(clippy::too_many_arguments)]
    fn mmap_unit(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i32,
        offset: u64,
        unit: OffsetUnit,
    ) -> Result<u64, Errno> {
        match self.call(&Request::Mmap {
            addr,
            len,
            prot,
            flags,
            fd,
            offset,
            unit,
        })? {
            Reply::Mapped { addr } => Ok(addr),
            _ => Err(Errno::EPROTO),
        }
    }

    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        self.expect_done(&Request::Munmap { addr, len })
    }

    /// `clone(flags)`: returns the child's pid and the ticket its own
    /// connection presents to [`Client::hello`].
    pub fn clone_process(&self, flags: u64) -> Result<(u32, u64), Errno> {
        match self.call(&Request::Clone { flags })? {
            Reply::Cloned { pid, ticket } => Ok((pid, ticket)),
            _ => Err(Errno::EPROTO),
        }
    }

    pub fn fork(&self) -> Result<u32, Errno> {
        match self.call(&Request::Fork)? {
            Reply::Cloned { pid, .. } => Ok(pid),
            _ => Err(Errno::EPROTO),
        }
    }

    pub fn exit(&self) -> Result<(), Errno> {
        self.expect_done(&Request::Exit)
    }

    /// Copy `/proc` text into `buf`; returns the whole text's length (which
    /// may exceed `buf`, in which case the text is cut).
    pub fn read_proc(&self, view: ProcView, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut offset = 0usize;
        loop {
            let (total, data) = match self.call(&Request::ReadProc {
                view,
                offset: offset as u32,
            })? {
                Reply::ProcText { total, data } => (total as usize, data),
                _ => return Err(Errno::EPROTO),
            };
            let room = buf.len().saturating_sub(offset);
            let take = data.len().min(room);
            buf[offset..offset + take].copy_from_slice(&data[..take]);
            offset += data.len();
            if data.is_empty() || offset >= total || take < data.len() {
                return Ok(total);
            }
        }
    }

    pub fn read_sysctl(&self, name: Sysctl) -> Result<i64, Errno> {
        match self.call(&Request::ReadSysctl { name })? {
            Reply::Value(v) => Ok(v),
            _ => Err(Errno::EPROTO),
        }
    }

    pub fn write_sysctl(&self, name: Sysctl, value: i64) -> Result<(), Errno> {
        self.expect_done(&Request::WriteSysctl { name, value })
    }

    fn expect_done(&self, request: &Request) -> Result<(), Errno> {
        match self.call(request)? {
            Reply::Done => Ok(()),
            _ => Err(Errno::EPROTO),
        }
    }
}
