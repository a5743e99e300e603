//! The Rust client API: one method per call, `Result<_, Errno>` out.

mod lease;

use core::sync::atomic::{AtomicU32, Ordering};
use protocol::{
    decode_reply, decode_short_reply, encode_request, mmap_request, Bytes, DriverRegistration,
    Errno, FileStat, MemoryCall, MountName, OffsetUnit, Path, ProcView, Reply, Request, ShmStat,
    ShortReply, ShortRequest, Sysctl, DATA_CHUNK, MAX_FRAME,
};

/// Carries one request frame to the memory server and its reply back.
/// Implementations serialise concurrent callers themselves.
///
/// A frame is its header and `body_len` bytes: the client core encodes a
/// request straight into the place it travels from and decodes the reply
/// where it arrived ([`Transport::exchange`]), so a call costs what its
/// bytes cost, not the size of the largest frame.
pub trait Transport {
    /// Send `request` (one whole frame, as given: tests send malformed
    /// ones this way) and copy the reply frame into `reply`; returns the
    /// reply's length.
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno>;

    /// One round trip through the transport's own places: `encode` writes
    /// the request frame into the place it is sent from and returns its
    /// length; `decode` reads the reply frame (exactly its bytes) where it
    /// arrived. Either runs at most once, `decode` only after a reply came.
    ///
    /// The default lends two buffers on the stack to [`Transport::call`];
    /// a transport with a place of its own (a shared page, a buffer per
    /// connection) overrides it.
    fn exchange(
        &self,
        encode: &mut dyn FnMut(&mut [u8; MAX_FRAME]) -> usize,
        decode: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Errno> {
        let mut out = [0u8; MAX_FRAME];
        let len = encode(&mut out);
        let mut back = [0u8; MAX_FRAME];
        let got = self.call(out.get(..len).ok_or(Errno::EMSGSIZE)?, &mut back)?;
        decode(back.get(..got).ok_or(Errno::EMSGSIZE)?);
        Ok(())
    }

    /// Carry the futex call `request` (a [`Request::Futex`]) on the host
    /// kernel's own futex, where this transport can (`memsrvd`: words in
    /// the arena every process maps); `check` asks the server whether the
    /// word may hold a futex at all. `None`: the server carries the call.
    fn host_futex(
        &self,
        request: &Request,
        check: &mut dyn FnMut(&Request) -> Result<(), Errno>,
    ) -> Option<Result<i64, Errno>> {
        let _ = (request, check);
        None
    }

    /// Answer `mmap(hint, len, prot, flags, fd, offset)` without a round
    /// trip, if the transport holds a page reserve and the call is one it
    /// answers (a plain small anonymous private mapping); `None`: ask the
    /// server.
    fn local_mmap(
        &self,
        _len: u64,
        _prot: u32,
        _flags: u32,
        _fd: i32,
        _offset: u64,
    ) -> Option<u64> {
        None
    }

    /// `munmap` of a mapping [`Transport::local_mmap`] made, exactly;
    /// `false`: ask the server.
    fn local_munmap(&self, _addr: u64, _len: u64) -> bool {
        false
    }

    /// A request is about to change `[addr, addr + len)` (`munmap`,
    /// `mremap`): forget local mappings there.
    fn forget_local(&self, _addr: u64, _len: u64) {}

    /// The arena `(base, size)` when this process maps it as the server
    /// does, so `read`/`write` may lend an arena buffer by address
    /// (`crate::client::lease`); `None`: data travels in frames.
    fn lease_arena(&self) -> Option<(u64, u64)> {
        None
    }

    /// Run `transfer` with this connection's bulk window
    /// ([`Request::BulkWindow`], asked for with `grant` the first time),
    /// the window the caller's alone meanwhile; `None` if the transport
    /// has none or the server refused one.
    fn with_bulk_window(
        &self,
        _grant: &mut dyn FnMut() -> Result<u64, Errno>,
        _transfer: &mut dyn FnMut(u64) -> Result<usize, Errno>,
    ) -> Option<Result<usize, Errno>> {
        None
    }

    /// The next call this thread makes asks the server to copy `bytes`
    /// (a lease): a transport that spins for its reply may spin that much
    /// longer rather than sleep through the copy. Default: nothing.
    fn expect_copy(&self, _bytes: u64) {}
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
        let mut decoded = Err(Errno::EPROTO);
        self.transport
            .exchange(&mut |out| encode_call(tag, request, out), &mut |frame| {
                decoded = decode_reply(frame).map_err(|e| e.errno())
            })?;
        let frame = decoded?;
        if frame.tag != tag {
            return Err(Errno::EPROTO);
        }
        frame.message.into_result()
    }

    /// [`Client::call`] for a request whose answer is short (`Done`,
    /// `Mapped`, `Value`, ...): the reply is decoded where it arrived
    /// without building a kilobyte `Reply`. An error reply becomes `Err`,
    /// as does a reply that is not short (`EPROTO`: no caller of this
    /// expects one).
    fn call_short(&self, request: &Request) -> Result<ShortReply, Errno> {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let mut decoded = Err(Errno::EPROTO);
        self.transport
            .exchange(&mut |out| encode_call(tag, request, out), &mut |frame| {
                decoded = match decode_short_reply(frame) {
                    Some(f) if f.tag != tag => Err(Errno::EPROTO),
                    Some(f) => Ok(f.message),
                    None => Err(not_short(frame)),
                }
            })?;
        match decoded? {
            ShortReply::Error(e) => Err(e),
            reply => Ok(reply),
        }
    }

    /// Become a process: a new one, or the clone child named by `ticket`.
    pub fn hello(&self, ticket: Option<u64>) -> Result<Welcome, Errno> {
        match self.call_short(&Request::Hello { ticket })? {
            ShortReply::Hello {
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
        if let Some(addr) = self.transport.local_mmap(len, prot, flags, fd, offset) {
            return Ok(addr);
        }
        // The server fills the mapping (zeros, or a file's copy) before it
        // answers: worth spinning for rather than sleeping through; an
        // answer that comes sooner ends the spin.
        self.transport.expect_copy(len);
        self.expect_mapped(&mmap_request(addr, len, prot, flags, fd, offset, unit))
    }

    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if self.transport.local_munmap(addr, len) {
            return Ok(());
        }
        self.transport.forget_local(addr, len);
        self.expect_done(&Request::Munmap { addr, len })
    }

    /// `clone(flags)`: returns the child's pid and the ticket its own
    /// connection presents to [`Client::hello`].
    pub fn clone_process(&self, flags: u64) -> Result<(u32, u64), Errno> {
        match self.call_short(&Request::Clone { flags })? {
            ShortReply::Cloned { pid, ticket } => Ok((pid, ticket)),
            _ => Err(Errno::EPROTO),
        }
    }

    pub fn fork(&self) -> Result<u32, Errno> {
        match self.call_short(&Request::Fork)? {
            ShortReply::Cloned { pid, .. } => Ok(pid),
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
        self.expect_value(&Request::ReadSysctl { name })
    }

    pub fn write_sysctl(&self, name: Sysctl, value: i64) -> Result<(), Errno> {
        self.expect_done(&Request::WriteSysctl { name, value })
    }

    /// `open(path, flags, mode)` of a path under a server mount; returns
    /// the new descriptor. A path longer than [`protocol::PATH_MAX`] →
    /// `ENAMETOOLONG`. A path is bytes (UTF-8 or not).
    pub fn open(
        &self,
        path: &(impl AsRef<[u8]> + ?Sized),
        flags: u32,
        mode: u32,
    ) -> Result<i32, Errno> {
        let path = Path::try_from(path.as_ref()).map_err(|_| Errno::ENAMETOOLONG)?;
        match self.call(&Request::Open { path, flags, mode })? {
            Reply::Fd(fd) => Ok(fd),
            _ => Err(Errno::EPROTO),
        }
    }

    pub fn close(&self, fd: i32) -> Result<(), Errno> {
        self.expect_done(&Request::Close { fd })
    }

    /// `read(fd, buf)` at the file position, in [`DATA_CHUNK`] pieces until
    /// `buf` is full or a piece comes back short (end of file). Returns the
    /// bytes read; an error after some bytes were read ends the loop with
    /// the count so far, as a short read.
    pub fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_loop(fd, buf, None)
    }

    /// `pread(fd, buf, offset)`: as [`Client::read`] at `offset`, leaving
    /// the file position alone.
    pub fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        self.read_loop(fd, buf, Some(offset))
    }

    fn read_loop(&self, fd: i32, buf: &mut [u8], offset: Option<u64>) -> Result<usize, Errno> {
        if let Some(result) = self.read_by_lease(fd, buf, offset) {
            return result;
        }
        let mut done = 0usize;
        while done < buf.len() {
            let want = (buf.len() - done).min(DATA_CHUNK);
            let at = offset.map(|o| o.saturating_add(done as u64));
            let reply = self.call(&Request::Read {
                fd,
                len: want as u32,
                offset: at,
            });
            let data = match reply {
                Ok(Reply::Data(data)) => data,
                Ok(_) if done == 0 => return Err(Errno::EPROTO),
                Err(e) if done == 0 => return Err(e),
                _ => break,
            };
            // A server that sends more than asked is not believed.
            let got = data.len().min(want);
            buf[done..done + got].copy_from_slice(&data[..got]);
            done += got;
            if got < want {
                break;
            }
        }
        Ok(done)
    }

    /// `write(fd, data)` at the file position (or at the end with
    /// `O_APPEND`), in [`DATA_CHUNK`] pieces. Returns the bytes written; a
    /// short piece or an error after some bytes ends the loop with the
    /// count so far.
    pub fn write(&self, fd: i32, data: &[u8]) -> Result<usize, Errno> {
        self.write_loop(fd, data, None)
    }

    /// `pwrite(fd, data, offset)`.
    pub fn pwrite(&self, fd: i32, data: &[u8], offset: u64) -> Result<usize, Errno> {
        self.write_loop(fd, data, Some(offset))
    }

    fn write_loop(&self, fd: i32, data: &[u8], offset: Option<u64>) -> Result<usize, Errno> {
        if let Some(result) = self.write_by_lease(fd, data, offset) {
            return result;
        }
        let mut done = 0usize;
        // `write(fd, "", 0)` still reaches the server (it checks the fd).
        loop {
            let piece = &data[done..(done + DATA_CHUNK).min(data.len())];
            let mut bytes = Bytes::new();
            // Cannot fail: a piece is at most DATA_CHUNK long.
            let _ = bytes.extend_from_slice(piece);
            let at = offset.map(|o| o.saturating_add(done as u64));
            let reply = self.call(&Request::Write {
                fd,
                data: bytes,
                offset: at,
            });
            let count = match reply {
                Ok(Reply::Count(n)) => n,
                Ok(_) if done == 0 => return Err(Errno::EPROTO),
                Err(e) if done == 0 => return Err(e),
                _ => break,
            };
            let wrote = (count as usize).min(piece.len());
            done += wrote;
            if wrote < piece.len() || done >= data.len() {
                break;
            }
        }
        Ok(done)
    }

    pub fn ftruncate(&self, fd: i32, len: u64) -> Result<(), Errno> {
        self.expect_done(&Request::Ftruncate { fd, len })
    }

    /// `fsync(fd)`, or `fdatasync(fd)` with `data_only`: done once the
    /// server (and the file's backing device, where it keeps a cache)
    /// has the bytes on stable storage.
    pub fn fsync(&self, fd: i32, data_only: bool) -> Result<(), Errno> {
        self.expect_done(&Request::Fsync { fd, data_only })
    }

    pub fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        match self.call(&Request::Fstat { fd })? {
            Reply::Stat(stat) => Ok(stat),
            _ => Err(Errno::EPROTO),
        }
    }

    /// `lseek(fd, offset, whence)`; returns the new position.
    pub fn lseek(&self, fd: i32, offset: i64, whence: u32) -> Result<u64, Errno> {
        match self.call(&Request::Lseek { fd, offset, whence })? {
            Reply::Offset(pos) => Ok(pos),
            _ => Err(Errno::EPROTO),
        }
    }

    /// The mount points the server serves (at most [`protocol::MAX_MOUNTS`]).
    pub fn list_mounts(&self) -> Result<impl Iterator<Item = MountName>, Errno> {
        match self.call(&Request::ListMounts)? {
            Reply::Mounts(mounts) => Ok(mounts.into_iter()),
            _ => Err(Errno::EPROTO),
        }
    }

    /// Start tracing `pid`: its new private file mappings are never
    /// shareable (spec §2.3, §3.1).
    pub fn ptrace_attach(&self, pid: u32) -> Result<(), Errno> {
        self.expect_done(&Request::PtraceAttach { pid })
    }

    pub fn ptrace_detach(&self, pid: u32) -> Result<(), Errno> {
        self.expect_done(&Request::PtraceDetach { pid })
    }

    /// This connection becomes the backing-device server of one mount;
    /// returns the driver id.
    pub fn register_driver(&self, registration: DriverRegistration) -> Result<u32, Errno> {
        match self.call(&Request::RegisterDriver(registration))? {
            Reply::Registered { driver } => Ok(driver),
            _ => Err(Errno::EPROTO),
        }
    }

    /// [`Client::register_driver`], first saying `Hello` if memsrv wants
    /// the connection to be a process (`ESRCH`): how every home starts a
    /// driver on a fresh connection.
    pub fn register_driver_process(&self, registration: DriverRegistration) -> Result<u32, Errno> {
        match self.register_driver(registration.clone()) {
            Err(Errno::ESRCH) => {
                self.hello(None)?;
                self.register_driver(registration)
            }
            other => other,
        }
    }

    /// `pages` contiguous zeroed arena pages for a driver's own storage;
    /// returns their address.
    pub fn alloc_backing(&self, pages: u64) -> Result<u64, Errno> {
        self.expect_mapped(&Request::AllocBacking { pages })
    }

    pub fn free_backing(&self, addr: u64, pages: u64) -> Result<(), Errno> {
        self.expect_done(&Request::FreeBacking { addr, pages })
    }

    pub fn begin_exclusive(&self, object: u64) -> Result<(), Errno> {
        self.expect_done(&Request::BeginExclusive { object })
    }

    pub fn end_exclusive(&self, object: u64) -> Result<(), Errno> {
        self.expect_done(&Request::EndExclusive { object })
    }

    /// `shmget(key, size, shmflg)`; returns the segment id.
    pub fn shmget(&self, key: i32, size: u64, flags: i32) -> Result<i32, Errno> {
        let id = self.expect_value(&Request::Shmget { key, size, flags })?;
        i32::try_from(id).map_err(|_| Errno::EPROTO)
    }

    /// `shmat(shmid, shmaddr, shmflg)`; returns the attach address (on
    /// no-MMU every attach of a segment returns the same address).
    pub fn shmat(&self, shmid: i32, addr: u64, flags: i32) -> Result<u64, Errno> {
        self.expect_mapped(&Request::Shmat { shmid, addr, flags })
    }

    /// `shmdt(shmaddr)`: removes exactly one attachment.
    pub fn shmdt(&self, addr: u64) -> Result<(), Errno> {
        self.expect_done(&Request::Shmdt { addr })
    }

    /// `shmctl(shmid, IPC_STAT)`.
    pub fn shm_stat(&self, shmid: i32) -> Result<ShmStat, Errno> {
        match self.call(&Request::ShmStat { shmid })? {
            Reply::ShmStat(stat) => Ok(stat),
            _ => Err(Errno::EPROTO),
        }
    }

    /// `shmctl(shmid, IPC_SET)`: new owner and permission bits.
    pub fn shm_set(&self, shmid: i32, uid: u32, gid: u32, mode: u32) -> Result<(), Errno> {
        self.expect_done(&Request::ShmSet {
            shmid,
            uid,
            gid,
            mode,
        })
    }

    /// `shmctl(shmid, IPC_RMID)`.
    pub fn shm_remove(&self, shmid: i32) -> Result<(), Errno> {
        self.expect_done(&Request::ShmRemove { shmid })
    }

    /// `shmctl(shmid, SHM_LOCK)` (`lock`) or `SHM_UNLOCK`.
    pub fn shm_lock(&self, shmid: i32, lock: bool) -> Result<(), Errno> {
        self.expect_done(&Request::ShmLock { shmid, lock })
    }

    /// `unlink(path)` under a server mount (`shm_unlink`). A path longer
    /// than [`protocol::PATH_MAX`] → `ENAMETOOLONG`.
    pub fn unlink(&self, path: &(impl AsRef<[u8]> + ?Sized)) -> Result<(), Errno> {
        let path = Path::try_from(path.as_ref()).map_err(|_| Errno::ENAMETOOLONG)?;
        self.expect_done(&Request::Unlink { path })
    }

    /// `chmod`/`fchmod` (`mode`) and `chown`/`fchown` (`uid`, `gid`;
    /// `None` leaves it) of a path under a server mount or a server
    /// descriptor. A path longer than [`protocol::PATH_MAX`] →
    /// `ENAMETOOLONG`.
    pub fn set_attributes(
        &self,
        target: Target<'_>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(), Errno> {
        let target = match target {
            Target::Path(path) => protocol::AttributeTarget::Path(
                Path::try_from(path).map_err(|_| Errno::ENAMETOOLONG)?,
            ),
            Target::Fd(fd) => protocol::AttributeTarget::Fd(fd),
        };
        self.expect_done(&Request::SetAttributes {
            target,
            mode,
            uid,
            gid,
        })
    }

    /// `futex(uaddr, op, val, timeout, uaddr2, val3)`; returns the call's
    /// value (woken count, requeued count, 0 for a wait that was woken).
    ///
    /// Where the transport carries futexes on the host kernel's own
    /// ([`Transport::host_futex`]) the server only checks the word and the
    /// sleep and wake are the host's; otherwise:
    /// a wait (`FUTEX_WAIT`, `FUTEX_WAIT_BITSET`) does not return until the
    /// server answers: it blocks the calling thread and, because a
    /// transport carries one call at a time, every other call on the same
    /// connection. A thread that waits on a futex therefore needs its own
    /// connection (its own process, or a `CLONE_VM` child with its own
    /// transport) — the waker must not share the waiter's connection.
    #[allow(clippy::too_many_arguments)]
    pub fn futex(
        &self,
        uaddr: u64,
        op: u32,
        val: u32,
        timeout_ns: Option<u64>,
        val2: u32,
        uaddr2: u64,
        val3: u32,
    ) -> Result<i64, Errno> {
        let request = Request::Futex {
            uaddr,
            op,
            val,
            timeout_ns,
            val2,
            uaddr2,
            val3,
        };
        let mut check = |check: &Request| self.call(check).map(drop);
        if let Some(done) = self.transport.host_futex(&request, &mut check) {
            return done;
        }
        self.expect_value(&request)
    }

    /// `mremap(addr, old_len, new_len, flags, new_addr)`; returns the
    /// mapping's address afterwards.
    pub fn mremap(
        &self,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        self.transport.forget_local(addr, old_len);
        self.expect_mapped(&Request::Mremap {
            addr,
            old_len,
            new_len,
            flags,
            new_addr,
        })
    }

    /// `msync`, `mprotect`, `madvise`, `mlock`, `mlock2`, `munlock`,
    /// `mlockall`, `munlockall` (`arg` is the flags, prot or advice). For
    /// `mincore` use [`Client::mincore`].
    pub fn memory_call(
        &self,
        call: MemoryCall,
        addr: u64,
        len: u64,
        arg: u32,
    ) -> Result<(), Errno> {
        match self.call(&Request::MemoryCall {
            call,
            addr,
            len,
            arg,
        })? {
            Reply::Done => Ok(()),
            // A mincore through this entry: the page bytes are dropped.
            Reply::Data(_) if call == MemoryCall::Mincore => Ok(()),
            _ => Err(Errno::EPROTO),
        }
    }

    /// `mincore(addr, len, vec)`: one byte a page into `vec`, asked for in
    /// pieces of at most [`DATA_CHUNK`] pages. `vec` shorter than the
    /// range's page count → `EFAULT` before anything is sent. `page` is
    /// the page size the caller uses to count pages (the server checks the
    /// range itself).
    pub fn mincore(&self, addr: u64, len: u64, page: u64, vec: &mut [u8]) -> Result<(), Errno> {
        if page == 0 || !page.is_power_of_two() {
            return Err(Errno::EINVAL);
        }
        let pages = len.div_ceil(page);
        if pages > vec.len() as u64 {
            return Err(Errno::EFAULT);
        }
        let pages = pages as usize;
        let mut done = 0usize;
        // `mincore(addr, 0, vec)` still reaches the server (it checks addr).
        loop {
            let take = (pages - done).min(DATA_CHUNK);
            let at = addr.checked_add(done as u64 * page).ok_or(Errno::ENOMEM)?;
            let piece_len = if done + take == pages {
                len - done as u64 * page
            } else {
                take as u64 * page
            };
            let data = match self.call(&Request::MemoryCall {
                call: MemoryCall::Mincore,
                addr: at,
                len: piece_len,
                arg: 0,
            })? {
                Reply::Data(data) => data,
                _ => return Err(Errno::EPROTO),
            };
            if data.len() != take {
                return Err(Errno::EPROTO);
            }
            vec[done..done + take].copy_from_slice(&data);
            done += take;
            if done >= pages {
                return Ok(());
            }
        }
    }

    /// `execve`: the caller gets a new, empty address space.
    pub fn exec(&self) -> Result<(), Errno> {
        self.expect_done(&Request::Exec)
    }

    /// `PTRACE_PEEKDATA`: one word of `pid`'s memory.
    pub fn ptrace_peek(&self, pid: u32, addr: u64) -> Result<u64, Errno> {
        self.expect_value(&Request::PtracePeek { pid, addr })
            .map(|v| v as u64)
    }

    /// `PTRACE_POKEDATA`: store one word in `pid`'s memory.
    pub fn ptrace_poke(&self, pid: u32, addr: u64, word: u64) -> Result<(), Errno> {
        self.expect_done(&Request::PtracePoke { pid, addr, word })
    }

    /// A short call (the reply decoded in place, no 1 KiB `Reply` built)
    /// for a request answered by `Done`.
    fn expect_done(&self, request: &Request) -> Result<(), Errno> {
        match self.call_short(request)? {
            ShortReply::Done => Ok(()),
            _ => Err(Errno::EPROTO),
        }
    }

    /// A short call for a request answered by `Mapped`: the address.
    fn expect_mapped(&self, request: &Request) -> Result<u64, Errno> {
        match self.call_short(request)? {
            ShortReply::Mapped { addr } => Ok(addr),
            _ => Err(Errno::EPROTO),
        }
    }

    /// A short call for a request answered by `Value`.
    fn expect_value(&self, request: &Request) -> Result<i64, Errno> {
        match self.call_short(request)? {
            ShortReply::Value(v) => Ok(v),
            _ => Err(Errno::EPROTO),
        }
    }
}

/// The file [`Client::set_attributes`] changes.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A path under a server mount (bytes).
    Path(&'a [u8]),
    /// A descriptor the server gave this process.
    Fd(i32),
}

/// Encode `request` with tag `tag` into `out`: the short requests by hand
/// (the same bytes, a few varints), the others through postcard.
#[inline(always)]
fn encode_call(tag: u32, request: &Request, out: &mut [u8; MAX_FRAME]) -> usize {
    match ShortRequest::of(request).and_then(|short| short.encode_frame(tag, out)) {
        Some(len) => len,
        None => encode_request(tag, request, out),
    }
}

/// Why a reply frame that is not a short one fails a short call: the
/// full decoder's refusal, or `EPROTO` for a whole reply that is not short.
#[cold]
fn not_short(frame: &[u8]) -> Errno {
    match decode_reply(frame) {
        Err(e) => e.errno(),
        Ok(_) => Errno::EPROTO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use protocol::{decode_request, encode_reply};

    /// Answers every `mincore` with one byte a page (the page's index in
    /// the arena, truncated), and counts the calls.
    struct Mincore {
        calls: Cell<u32>,
    }

    impl Transport for Mincore {
        fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
            self.calls.set(self.calls.get() + 1);
            let frame = decode_request(request).map_err(|e| e.errno())?;
            let answer = match frame.message {
                Request::MemoryCall {
                    call: MemoryCall::Mincore,
                    addr,
                    len,
                    ..
                } => {
                    let pages = len.div_ceil(4096);
                    let mut data = Bytes::new();
                    for page in 0..pages {
                        if data.push(((addr / 4096 + page) & 0x7f) as u8).is_err() {
                            return Ok(encode_reply(
                                frame.tag,
                                &Reply::Error(Errno::EINVAL),
                                reply,
                            ));
                        }
                    }
                    Reply::Data(data)
                }
                _ => Reply::Error(Errno::ENOSYS),
            };
            Ok(encode_reply(frame.tag, &answer, reply))
        }
    }

    #[test]
    fn mincore_asks_in_pieces_of_at_most_data_chunk_pages() {
        let client = Client::new(Mincore {
            calls: Cell::new(0),
        });
        let pages = 2 * DATA_CHUNK + 3;
        let mut vec = [0xffu8; 2 * DATA_CHUNK + 3];
        let addr = 0x40_0000u64;
        // The last page is partial.
        let len = (pages as u64 - 1) * 4096 + 100;
        client.mincore(addr, len, 4096, &mut vec).unwrap();
        assert_eq!(client.transport().calls.get(), 3);
        for (i, &b) in vec.iter().enumerate() {
            assert_eq!(b, ((addr / 4096 + i as u64) & 0x7f) as u8, "page {i}");
        }
        let mut short = [0u8; 2];
        assert_eq!(
            client.mincore(addr, 3 * 4096, 4096, &mut short),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            client.mincore(addr, 4096, 1000, &mut short),
            Err(Errno::EINVAL)
        );
        // Zero length still asks the server (it checks the address).
        client.transport().calls.set(0);
        client.mincore(addr, 0, 4096, &mut short).unwrap();
        assert_eq!(client.transport().calls.get(), 1);
    }
}
