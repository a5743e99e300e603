//! Message bodies. Variants are encoded by postcard as their index, so the
//! order of variants is part of the wire format: append, never reorder.

use crate::Errno;
use heapless::Vec;
use serde::{Deserialize, Serialize};

/// Most bytes of `/proc` text one [`Reply::ProcText`] carries.
pub const PROC_CHUNK: usize = 1024;
/// Most file bytes one `read`/`write` frame carries; longer calls loop.
pub const DATA_CHUNK: usize = 1024;
/// Longest path on the wire, in bytes (`open`, driver lookups).
pub const PATH_MAX: usize = 256;
/// Most mounts [`Reply::Mounts`] lists.
pub const MAX_MOUNTS: usize = 16;

/// A path as the client gave it: bytes, not text (a name is any byte but
/// `/` and NUL; `/` separates). On the wire a varint length and the bytes,
/// as a string would be.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Path(Vec<u8, PATH_MAX>);

/// A path longer than [`PATH_MAX`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathTooLong;

impl Path {
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Append `bytes`; `Err` past [`PATH_MAX`] (nothing appended).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), PathTooLong> {
        self.0.extend_from_slice(bytes).map_err(|()| PathTooLong)
    }
}

impl core::ops::Deref for Path {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Path {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<&[u8]> for Path {
    type Error = PathTooLong;

    fn try_from(bytes: &[u8]) -> Result<Self, PathTooLong> {
        Vec::from_slice(bytes).map(Self).map_err(|()| PathTooLong)
    }
}

impl TryFrom<&str> for Path {
    type Error = PathTooLong;

    fn try_from(text: &str) -> Result<Self, PathTooLong> {
        Self::try_from(text.as_bytes())
    }
}

impl core::fmt::Debug for Path {
    /// As text where it is UTF-8, escaped where not.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}
/// Where a backing device sits in the namespace (`/rom`, `/dev/fb0`).
pub type MountName = heapless::String<64>;
/// File bytes carried in a frame.
pub type Bytes = Vec<u8, DATA_CHUNK>;

/// How [`Request::Mmap`] gives the file offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetUnit {
    /// A byte offset, as `mmap`/`mmap64` take it (must be page aligned).
    Bytes,
    /// A page offset, as `mmap2` takes it.
    Pages,
}

/// Which `/proc` text to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcView {
    /// `/proc/maps`: every region in the system.
    GlobalMaps,
    /// `/proc/<pid>/maps`: the mappings of one process.
    ProcessMaps { pid: u32 },
    /// `/proc/self/maps` of the requester.
    SelfMaps,
    /// `/proc/meminfo`.
    Meminfo,
    /// `/proc/sysvipc/shm`: every SysV segment, in Linux's format.
    SysvShm,
    /// `/proc/buddyinfo`: the arena's free blocks per order.
    Buddyinfo,
    /// Not text: the arena's counts for tools, postcard-encoded as one
    /// [`ArenaUsage`], then its `processes` [`ProcessUsage`]s, then its
    /// `free_blocks` [`FreeBlock`]s (so no tool parses `/proc` text back).
    Usage,
    /// `/proc/<pid>/status`, in Linux's format.
    ProcessStatus { pid: u32 },
    /// `/proc/self/status` of the requester.
    SelfStatus,
    /// Not text: what each uid holds against the limits, postcard-encoded
    /// as one [`UsersHead`], then its `users` [`UserUsage`]s.
    Users,
}

/// How [`ProcView::Users`] begins: the limits (`None`: unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersHead {
    /// `--max-process-memory`, in pages.
    pub process_limit_pages: Option<u64>,
    /// `--max-user-memory`, in pages.
    pub user_limit_pages: Option<u64>,
    /// `--max-clients-per-user`.
    pub clients_limit: Option<u32>,
    pub users: u32,
}

/// One uid in [`ProcView::Users`]: what is charged to it, in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUsage {
    pub uid: u32,
    /// Anonymous mappings and private copies its processes made.
    pub mapped_pages: u64,
    /// SysV segments it created.
    pub shm_pages: u64,
    /// Memory-filesystem pages its writes and truncates took.
    pub fs_pages: u64,
    /// Its live processes.
    pub processes: u32,
    /// Its connections (slots).
    pub clients: u32,
}

/// How [`ProcView::Usage`] begins: the arena and its counts, in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaUsage {
    pub arena_base: u64,
    pub total_pages: u64,
    pub free_pages: u64,
    /// Pages of copy and anonymous regions (`MmapCopy`).
    pub mmap_copy_pages: u64,
    /// Pages drivers keep their storage in.
    pub backing_pages: u64,
    /// Pages SysV segments hold.
    pub shm_pages: u64,
    pub regions: u32,
    pub vmas: u32,
    pub processes: u32,
    pub free_blocks: u32,
}

/// One process in [`ProcView::Usage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUsage {
    pub pid: u32,
    /// Its mappings (VMAs).
    pub mappings: u32,
    /// The bytes they span.
    pub bytes: u64,
}

/// One free block of the arena in [`ProcView::Usage`]: `2^order` pages
/// from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeBlock {
    pub start: u64,
    pub order: u32,
}

/// A tunable under `/proc/sys/vm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sysctl {
    /// `/proc/sys/vm/nr_trim_pages`.
    NrTrimPages,
}

/// A client's request to the memory server. Who sends it is known from the
/// transport, never from a field here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// First message on a connection: become a process (a new one, or the
    /// child a [`Request::Clone`] prepared, named by its ticket).
    /// Answered by [`Reply::Hello`].
    Hello { ticket: Option<u64> },
    /// `clone(flags)`: with `CLONE_VM` the child shares the caller's address
    /// space; without it the child gets a new, empty one. Answered by
    /// [`Reply::Cloned`]; the child connects with the ticket.
    Clone { flags: u64 },
    /// `fork()`: refused with `EINVAL` on no-MMU.
    Fork,
    /// The process exits: every mapping it held is released.
    Exit,
    /// `mmap`/`mmap2`. `addr` is only a hint; `fd` is ignored with
    /// `MAP_ANONYMOUS`. Answered by [`Reply::Mapped`].
    Mmap {
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i32,
        offset: u64,
        unit: OffsetUnit,
    },
    /// `munmap(addr, len)`. Answered by [`Reply::Done`].
    Munmap { addr: u64, len: u64 },
    /// Read `/proc` text from byte `offset`. Answered by [`Reply::ProcText`].
    ReadProc { view: ProcView, offset: u32 },
    /// Read a `/proc/sys/vm` value. Answered by [`Reply::Value`].
    ReadSysctl { name: Sysctl },
    /// Write a `/proc/sys/vm` value. Answered by [`Reply::Done`].
    WriteSysctl { name: Sysctl, value: i64 },
    /// `open(path, flags, mode)` of a path under a server mount. Answered
    /// by [`Reply::Fd`]; the fd belongs to the caller's process alone.
    Open { path: Path, flags: u32, mode: u32 },
    /// `close(fd)`. Answered by [`Reply::Done`].
    Close { fd: i32 },
    /// `read`/`pread` of at most [`DATA_CHUNK`] bytes (`offset: None` reads
    /// at and advances the file position). Answered by [`Reply::Data`].
    Read {
        fd: i32,
        len: u32,
        offset: Option<u64>,
    },
    /// `write`/`pwrite`. Answered by [`Reply::Count`].
    Write {
        fd: i32,
        data: Bytes,
        offset: Option<u64>,
    },
    /// `ftruncate(fd, len)`. Answered by [`Reply::Done`].
    Ftruncate { fd: i32, len: u64 },
    /// `fstat(fd)`. Answered by [`Reply::Stat`].
    Fstat { fd: i32 },
    /// `lseek(fd, offset, whence)`. Answered by [`Reply::Offset`].
    Lseek { fd: i32, offset: i64, whence: u32 },
    /// The connection becomes a backing-device server for one mount.
    /// Answered by [`Reply::Registered`]; from then on the server sends it
    /// [`crate::DriverRequest`] frames.
    RegisterDriver(crate::DriverRegistration),
    /// A backing device asks for `pages` contiguous zeroed pages of the
    /// arena for its own storage (a memory filesystem's file, a ramdisk, a
    /// screen). Answered by [`Reply::Mapped`].
    AllocBacking { pages: u64 },
    /// A backing device returns storage it got with `AllocBacking`.
    /// Answered by [`Reply::Done`].
    FreeBacking { addr: u64, pages: u64 },
    /// A backing device is about to change mode (flash program/erase):
    /// granted ([`Reply::Done`]) only while no direct mapping of the
    /// object exists; until `EndExclusive`, new mappings of it are copies
    /// read through the device or refused (`EBUSY`).
    BeginExclusive { object: u64 },
    /// The device shows data again.
    EndExclusive { object: u64 },
    /// The mounts the server serves. Answered by [`Reply::Mounts`].
    ListMounts,
    /// Start tracing `pid` (ptrace attach): its new private file mappings
    /// are never shareable. Answered by [`Reply::Done`].
    PtraceAttach { pid: u32 },
    /// Stop tracing `pid`.
    PtraceDetach { pid: u32 },
    /// `shmget(key, size, shmflg)`. Answered by [`Reply::Value`] (the id).
    Shmget { key: i32, size: u64, flags: i32 },
    /// `shmat(shmid, shmaddr, shmflg)`. Answered by [`Reply::Mapped`].
    Shmat { shmid: i32, addr: u64, flags: i32 },
    /// `shmdt(shmaddr)`. Answered by [`Reply::Done`].
    Shmdt { addr: u64 },
    /// `shmctl(shmid, IPC_STAT)`. Answered by [`Reply::ShmStat`].
    ShmStat { shmid: i32 },
    /// `shmctl(shmid, IPC_SET)` with the new owner and mode bits.
    /// Answered by [`Reply::Done`].
    ShmSet {
        shmid: i32,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    /// `shmctl(shmid, IPC_RMID)`. Answered by [`Reply::Done`].
    ShmRemove { shmid: i32 },
    /// `unlink(path)` under a server mount (`shm_unlink`). Answered by
    /// [`Reply::Done`].
    Unlink { path: Path },
    /// `futex(uaddr, op, val, timeout, uaddr2, val3)`. `timeout_ns` is
    /// relative for `FUTEX_WAIT` and absolute (on the server's clock) for
    /// `FUTEX_WAIT_BITSET`; for the requeue operations and
    /// `FUTEX_WAKE_OP` `val2` carries the count the C call passes in the
    /// timeout argument. Answered by
    /// [`Reply::Value`] — for a wait, when it is woken or times out.
    Futex {
        uaddr: u64,
        op: u32,
        val: u32,
        timeout_ns: Option<u64>,
        val2: u32,
        uaddr2: u64,
        val3: u32,
    },
    /// `mremap(addr, old_len, new_len, flags, new_addr)`. Answered by
    /// [`Reply::Mapped`].
    Mremap {
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    },
    /// `msync`, `mprotect`, `madvise`, `mlock`, `mlock2`, `munlock`,
    /// `mlockall`, `munlockall`, `mincore` (`arg` is the flags, prot or
    /// advice). Answered by [`Reply::Done`], or [`Reply::Data`] (one byte a
    /// page, at most [`DATA_CHUNK`] pages a call) for `mincore`.
    MemoryCall {
        call: MemoryCall,
        addr: u64,
        len: u64,
        arg: u32,
    },
    /// `execve`: the process gets a new, empty address space (the old one
    /// loses a user; a `vfork` parent resumes). Answered by [`Reply::Done`].
    Exec,
    /// `PTRACE_PEEKDATA`: one word of `pid`'s memory, for the process
    /// tracing `pid` alone (`PtraceAttach` first; `ESRCH` for anyone
    /// else). Answered by [`Reply::Value`].
    PtracePeek { pid: u32, addr: u64 },
    /// `PTRACE_POKEDATA`: store one word (the tracer alone, as for
    /// `PtracePeek`). Answered by [`Reply::Done`].
    PtracePoke { pid: u32, addr: u64, word: u64 },
    /// `shmctl(shmid, SHM_LOCK)` (`lock: true`) or `SHM_UNLOCK`: sets or
    /// clears the segment's `SHM_LOCKED` mode bit. Answered by
    /// [`Reply::Done`].
    ShmLock { shmid: i32, lock: bool },
    /// The sender's effective user and group ids changed (`seteuid`,
    /// `setegid`). The ids are not in the message: the transport carries
    /// them where the host kernel vouches for them (`SCM_CREDENTIALS` on
    /// the daemon's socket), and the home answers [`Reply::Done`] once the
    /// calls after it are judged by them. A home without such a transport
    /// answers `EINVAL`.
    Identity,
    /// `chmod`/`fchmod` (`mode`) and `chown`/`fchown`/`lchown` (`uid`,
    /// `gid`; `None` for -1, "leave it") of a file under a server mount.
    /// Answered by [`Reply::Done`].
    SetAttributes {
        target: AttributeTarget,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// `read`/`pread` of up to `len` bytes into the caller's own memory at
    /// arena address `buf` (a lease: the bytes move in one copy, not in
    /// frames). `[buf, buf + len)` must lie inside one of the caller's
    /// mappings that it may write, else `EFAULT`. Answered by
    /// [`Reply::Count`] (short at end of file).
    ReadLease {
        fd: i32,
        buf: u64,
        len: u64,
        offset: Option<u64>,
    },
    /// `write`/`pwrite` of `len` bytes from the caller's own memory at
    /// arena address `buf` (inside one of its readable mappings, else
    /// `EFAULT`). Answered by [`Reply::Count`].
    WriteLease {
        fd: i32,
        buf: u64,
        len: u64,
        offset: Option<u64>,
    },
    /// This connection's bulk window: [`BULK_WINDOW`] bytes of the arena,
    /// zeroed, charged to the caller's process and freed when the
    /// connection closes, that leases may always name (a client copies a
    /// buffer that lies outside the arena through it). Asked again, the
    /// same window. Answered by [`Reply::Mapped`].
    BulkWindow,
    /// `fsync(fd)`, or `fdatasync(fd)` with `data_only`: the file's bytes
    /// (and, without `data_only`, its attributes) reach stable storage
    /// before the answer. `EBADF` for a descriptor not open, `EINVAL` for
    /// an object that has nothing to sync with (a pipe, a socket, most
    /// character devices: Linux's file without an `fsync` method); a
    /// memory filesystem's file answers at once. Answered by
    /// [`Reply::Done`], or the backing device's error (`EIO`, `ENOSPC`).
    Fsync { fd: i32, data_only: bool },
}

/// [`Request::WriteLease`] (`write`) or [`Request::ReadLease`] of `len`
/// bytes at arena address `buf`.
pub fn lease_request(write: bool, fd: i32, buf: u64, len: u64, offset: Option<u64>) -> Request {
    if write {
        Request::WriteLease {
            fd,
            buf,
            len,
            offset,
        }
    } else {
        Request::ReadLease {
            fd,
            buf,
            len,
            offset,
        }
    }
}

/// The size of a connection's bulk window ([`Request::BulkWindow`]).
pub const BULK_WINDOW: u64 = 256 << 10;

/// Which file [`Request::SetAttributes`] changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeTarget {
    /// A path under a server mount (the server's files have no symbolic
    /// links, so `chown` and `lchown` name the same file).
    Path(Path),
    /// An open descriptor of the caller's process.
    Fd(i32),
}

impl Request {
    /// Whether the server judges this request by the caller's identity
    /// (permissions, a new object's owner, a child's credentials): before
    /// sending one, a client whose effective ids changed says
    /// [`Request::Identity`].
    pub fn checks_identity(&self) -> bool {
        match self {
            Request::Clone { .. }
            | Request::ReadProc { .. }
            | Request::WriteSysctl { .. }
            | Request::Open { .. }
            | Request::PtraceAttach { .. }
            | Request::Shmget { .. }
            | Request::Shmat { .. }
            | Request::ShmStat { .. }
            | Request::ShmSet { .. }
            | Request::ShmRemove { .. }
            | Request::ShmLock { .. }
            | Request::Unlink { .. }
            | Request::SetAttributes { .. }
            | Request::RegisterDriver(_) => true,
            Request::Hello { .. }
            | Request::Fork
            | Request::Exit
            | Request::Mmap { .. }
            | Request::Munmap { .. }
            | Request::ReadSysctl { .. }
            | Request::Close { .. }
            | Request::Read { .. }
            | Request::Write { .. }
            | Request::Ftruncate { .. }
            | Request::Fstat { .. }
            | Request::Lseek { .. }
            | Request::AllocBacking { .. }
            | Request::FreeBacking { .. }
            | Request::BeginExclusive { .. }
            | Request::EndExclusive { .. }
            | Request::ListMounts
            | Request::PtraceDetach { .. }
            | Request::Shmdt { .. }
            | Request::Futex { .. }
            | Request::Mremap { .. }
            | Request::MemoryCall { .. }
            | Request::Exec
            | Request::PtracePeek { .. }
            | Request::PtracePoke { .. }
            | Request::ReadLease { .. }
            | Request::WriteLease { .. }
            | Request::BulkWindow
            | Request::Fsync { .. }
            | Request::Identity => false,
        }
    }
}

/// The [`Request::Mmap`] of `mmap(addr, len, prot, flags, fd, offset)`
/// (`mmap2` with [`OffsetUnit::Pages`]), as every client sends it.
pub fn mmap_request(
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    fd: i32,
    offset: u64,
    unit: OffsetUnit,
) -> Request {
    Request::Mmap {
        addr,
        len,
        prot,
        flags,
        fd,
        offset,
        unit,
    }
}

/// Variant indices of the requests [`Request::checks_identity`] names,
/// so a transport can tell from an encoded frame's first body byte.
const IDENTITY_CHECKED: [u8; 14] = [1, 6, 8, 9, 16, 22, 24, 25, 27, 28, 29, 30, 37, 39];

/// [`Request::checks_identity`] of an encoded request frame, read from
/// its first body byte (every variant index is below 128, one varint
/// byte) without decoding it. `false` for a frame too short to say.
pub fn frame_checks_identity(frame: &[u8]) -> bool {
    frame
        .get(crate::HEADER_LEN)
        .is_some_and(|index| IDENTITY_CHECKED.contains(index))
}

/// Which of the small memory calls [`Request::MemoryCall`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryCall {
    Msync,
    Mprotect,
    Madvise,
    Mlock,
    Mlock2,
    Munlock,
    Mlockall,
    Munlockall,
    Mincore,
}

impl MemoryCall {
    /// Every call, in declaration (wire) order.
    pub const ALL: [MemoryCall; 9] = [
        MemoryCall::Msync,
        MemoryCall::Mprotect,
        MemoryCall::Madvise,
        MemoryCall::Mlock,
        MemoryCall::Mlock2,
        MemoryCall::Munlock,
        MemoryCall::Mlockall,
        MemoryCall::Munlockall,
        MemoryCall::Mincore,
    ];
}

/// What `shmctl(IPC_STAT)` tells (`struct shmid_ds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmStat {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// Permission bits, plus `SHM_DEST` (0o1000) once removal is pending.
    pub mode: u32,
    pub size: u64,
    /// Seconds on the server's clock.
    pub atime: u64,
    pub dtime: u64,
    pub ctime: u64,
    pub cpid: u32,
    pub lpid: u32,
    pub nattch: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The call failed with this errno (also the answer to a frame that
    /// could not be decoded).
    Error(Errno),
    /// The call succeeded and has nothing to return.
    Done,
    /// The process id the connection now speaks for, and the arena every
    /// address lies in.
    Hello {
        pid: u32,
        arena_base: u64,
        arena_size: u64,
    },
    /// The child's process id, and the single-use ticket its connection
    /// presents in [`Request::Hello`].
    Cloned { pid: u32, ticket: u64 },
    /// The address of the new mapping.
    Mapped { addr: u64 },
    /// A slice of `/proc` text starting at the requested offset, and the
    /// length of the whole text.
    ProcText {
        total: u32,
        data: Vec<u8, PROC_CHUNK>,
    },
    /// A value read.
    Value(i64),
    /// A new file descriptor.
    Fd(i32),
    /// Bytes read (fewer than asked at end of file; none at or past it).
    Data(Bytes),
    /// Bytes written.
    Count(u64),
    /// What `fstat` tells.
    Stat(crate::FileStat),
    /// The new file position.
    Offset(u64),
    /// The connection now serves a mount; requests name this driver id.
    Registered { driver: u32 },
    /// Every mount point served.
    Mounts(Vec<MountName, MAX_MOUNTS>),
    /// What `shmctl(IPC_STAT)` tells.
    ShmStat(ShmStat),
}

impl Reply {
    /// `Ok(self)` unless this is [`Reply::Error`].
    pub fn into_result(self) -> Result<Reply, Errno> {
        match self {
            Reply::Error(e) => Err(e),
            other => Ok(other),
        }
    }
}
