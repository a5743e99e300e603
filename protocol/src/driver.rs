//! Messages between the memory server and backing-device servers
//! (drivers). A driver registers over an ordinary connection with
//! [`crate::Request::RegisterDriver`]; the server then sends it
//! [`DriverRequest`]s (frame kind 3, tags chosen by the server) and the
//! driver answers each with a [`DriverReply`] (kind 4, tag echoed). The
//! server never waits for a driver in-line: every request it sends is a
//! pending continuation, failed with a clear errno if the driver dies,
//! answers nonsense or does not answer in time.

use crate::message::{Bytes, MountName, Path};
use crate::Errno;
use serde::{Deserialize, Serialize};

/// What kind of object a driver serves (spec §1.1 picks default
/// capabilities by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    /// A regular file on a disk-like filesystem (default `COPY`).
    RegularFile,
    /// A regular file on a memory filesystem (ramfs/tmpfs, spec §7.5).
    MemoryFile,
    /// A block device (default `COPY`).
    BlockDevice,
    /// A character device (default `DIRECT|READ|WRITE`).
    CharDevice,
    /// A pipe or FIFO (no mmap method: `ENODEV`).
    Fifo,
    /// A socket (an mmap method but no capabilities: `EINVAL`).
    Socket,
    /// A directory.
    Directory,
}

impl ObjectKind {
    /// Every kind, in declaration (wire) order.
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::RegularFile,
        ObjectKind::MemoryFile,
        ObjectKind::BlockDevice,
        ObjectKind::CharDevice,
        ObjectKind::Fifo,
        ObjectKind::Socket,
        ObjectKind::Directory,
    ];
}

/// Which methods an object has, as bits (Linux's file operations that
/// the mmap rules look at).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverOps(pub u8);

impl DriverOps {
    /// Has an mmap method at all (without it: `ENODEV`, spec §2.2 step 6).
    pub const MMAP: u8 = 0x01;
    /// Has a read method (`COPY` is dropped without it, step 8).
    pub const READ: u8 = 0x02;
    /// Has a write method.
    pub const WRITE: u8 = 0x04;
    /// Has `get_unmapped_area` (`DIRECT` is dropped without it, step 8).
    pub const GET_UNMAPPED_AREA: u8 = 0x08;
    /// Wants a [`DriverRequest::CloseVma`] for every mapping removed.
    pub const CLOSE_VMA: u8 = 0x10;
    /// Can change size ([`DriverRequest::Truncate`]).
    pub const TRUNCATE: u8 = 0x20;
    /// Moves a lease's bytes itself in one step
    /// ([`DriverRequest::Transfer`]): a driver whose bytes are not arena
    /// pages (a host directory) reads or writes its file straight from or
    /// into the arena range the server names.
    pub const TRANSFER: u8 = 0x40;
    /// Has an `fsync` method ([`DriverRequest::Sync`]): the object's bytes
    /// may sit in a cache (a host's page cache) until asked to reach
    /// stable storage. Without it, `fsync` of a memory filesystem's file
    /// succeeds at once (tmpfs's `noop_fsync`), of a block device too
    /// (nothing cached beyond the driver), and of any other object fails
    /// `EINVAL`, as Linux's `vfs_fsync_range` for a file without one.
    pub const SYNC: u8 = 0x80;

    pub const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// A driver's registration: where it sits and how it is mounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverRegistration {
    /// A name for `/proc` and logs (`romfs`, `fbdev`).
    pub name: heapless::String<32>,
    /// The mount point: a directory (`/rom`) or a single device (`/dev/fb0`).
    pub mount: MountName,
    /// Device number shown in `/proc/<pid>/maps` (major, minor).
    pub dev: (u8, u8),
    /// Mounted `noexec`: `PROT_EXEC` file mappings fail `EPERM`.
    pub noexec: bool,
    /// Mounted read-only: no descriptor with write access can be opened.
    pub read_only: bool,
}

/// What the server knows of one object after a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The driver's handle for the object (the same object, however often
    /// opened, has the same handle: region sharing keys on it).
    pub object: u64,
    /// Inode number for `/proc` and `fstat`.
    pub ino: u64,
    pub kind: ObjectKind,
    /// `st_mode` permission bits (the type bits follow `kind`).
    pub mode: u32,
    pub size: u64,
    /// Declared `NOMMU_MAP_*`/`NOMMU_VMFLAGS` capabilities (spec §1.1:
    /// `COPY` 0x01, `DIRECT` 0x08, `READ` 0x10, `WRITE` 0x20, `EXEC` 0x40);
    /// `None` takes the defaults for `kind`.
    pub caps: Option<u8>,
    pub ops: DriverOps,
    /// Direct mappings of it are device I/O memory (no futexes, no ptrace).
    pub io_memory: bool,
}

/// A user and group id pair: the owner an object has, or the caller a
/// request acts for (its effective ids, as the server knows them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What `fstat` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    /// Device (major, minor) of the filesystem.
    pub dev: (u8, u8),
    pub ino: u64,
    /// `st_mode` with Linux's type bits (`S_IFREG` 0o100000, `S_IFCHR`
    /// 0o020000, `S_IFBLK` 0o060000, `S_IFIFO` 0o010000, `S_IFSOCK`
    /// 0o140000, `S_IFDIR` 0o040000).
    pub mode: u32,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverRequest {
    /// Find (or, with `O_CREAT`, create) `path` relative to the mount
    /// (`""` for a single-device mount), honouring `O_TRUNC`. A created
    /// object is owned by `caller` (a filesystem that keeps owners).
    /// Answered by [`DriverReply::Opened`] or [`DriverReply::Owned`].
    Lookup {
        path: Path,
        flags: u32,
        mode: u32,
        caller: Owner,
    },
    /// Copy `len` bytes from `offset` of the object into the arena at
    /// `dest` (a private copy being filled). Answered by
    /// [`DriverReply::Count`] with the bytes delivered (short at EOF).
    Read {
        object: u64,
        offset: u64,
        len: u64,
        dest: u64,
    },
    /// `read()` data for a client: at most [`crate::DATA_CHUNK`] bytes.
    /// Answered by [`DriverReply::Data`].
    ReadData { object: u64, offset: u64, len: u32 },
    /// `write()` data from a client. Answered by [`DriverReply::Count`].
    WriteData {
        object: u64,
        offset: u64,
        data: Bytes,
    },
    /// `get_unmapped_area(file, 0, len, pgoff, flags)`: where the range
    /// already lives. Answered by [`DriverReply::Address`], or
    /// `Error(ENOSYS)` for "copy instead", or another error.
    GetUnmappedArea {
        object: u64,
        len: u64,
        pgoff: u64,
        flags: u32,
    },
    /// Approve one new direct mapping (also every reuse of a direct
    /// region). `vm_flags` are Linux's. Answered by [`DriverReply::Done`]
    /// or an error (`ENOSYS`: not possible).
    Mmap {
        object: u64,
        start: u64,
        len: u64,
        pgoff: u64,
        vm_flags: u32,
    },
    /// One mapping of the object went away (only for objects with
    /// [`DriverOps::CLOSE_VMA`]). Answered by [`DriverReply::Done`].
    CloseVma { object: u64, start: u64, len: u64 },
    /// Change the size (memory filesystems). The server has already
    /// refused shrinking under a mapping. Answered by [`DriverReply::Done`].
    Truncate { object: u64, size: u64 },
    /// Current size and attributes. Answered by [`DriverReply::Opened`] or
    /// [`DriverReply::Owned`].
    Stat { object: u64 },
    /// No descriptor and no mapping refers to the object any more.
    /// Answered by [`DriverReply::Done`].
    Release { object: u64 },
    /// Remove the name `path` (relative to the mount) for `caller`; the
    /// object lives on while referenced. A filesystem that keeps owners
    /// applies the sticky-directory rule (`EPERM`). Answered by
    /// [`DriverReply::Done`].
    Unlink { path: Path, caller: Owner },
    /// Store the object's new permission bits (`0o7777`) and owner; the
    /// server has judged the change (`chmod`, `chown`). A driver that keeps
    /// no attributes answers `EPERM`. Answered by [`DriverReply::Owned`].
    SetAttributes {
        object: u64,
        mode: u32,
        owner: Owner,
    },
    /// Where the object's bytes `[offset, offset + len)` lie in the arena
    /// (`len` at most [`LEASE_STEP`]), for the server to copy a lease
    /// to or from them. With `write`, missing pages are added and the size
    /// grows to cover the range first. Answered by [`DriverReply::Pages`],
    /// or `Error(ENOSYS)` from a driver whose bytes are not arena pages
    /// (the server then moves them in [`DriverRequest::ReadData`] /
    /// [`DriverRequest::WriteData`] steps).
    Pages {
        object: u64,
        offset: u64,
        len: u64,
        write: bool,
    },
    /// Move `[offset, offset + len)` of the object (`len` at most
    /// [`LEASE_STEP`]) between the file and the arena at `at`: with
    /// `write`, the arena bytes go into the file (growing it); without,
    /// the file's bytes come into the arena (short at end of file). `at`
    /// is a staging buffer the server owns for the length of the request,
    /// never a client's memory; the server copies between it and the
    /// lease. Sent only for objects whose methods include
    /// [`DriverOps::TRANSFER`]. Answered by [`DriverReply::Count`], at
    /// most `len`.
    Transfer {
        object: u64,
        offset: u64,
        len: u64,
        at: u64,
        write: bool,
    },
    /// `fsync` (`fdatasync` with `data_only`) of the object: its bytes,
    /// and without `data_only` its attributes, reach stable storage
    /// before the answer. Sent only for objects whose methods include
    /// [`DriverOps::SYNC`]. Answered by [`DriverReply::Done`] or the
    /// storage's error (`EIO`, `ENOSPC`, `EDQUOT`).
    Sync { object: u64, data_only: bool },
}

/// Most bytes one [`DriverRequest::Pages`] covers.
pub const LEASE_STEP: u64 = 256 << 10;
/// Most pages a [`DriverReply::Pages`] lists: a [`LEASE_STEP`] range at an
/// offset inside a page touches one page more.
pub const LEASE_PAGES: usize = (LEASE_STEP / crate::PAGE_SIZE) as usize + 1;

/// The arena pages of a range ([`DriverRequest::Pages`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageList {
    /// Bytes of the range the object holds (short at end of file when
    /// reading).
    pub len: u64,
    /// The arena address of each page the range touches, from the page of
    /// `offset` on; 0 for a hole (reads as zeros).
    pub pages: heapless::Vec<u64, LEASE_PAGES>,
}

/// A driver's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverReply {
    Error(Errno),
    Done,
    Opened(ObjectInfo),
    Count(u64),
    Data(Bytes),
    Address(u64),
    /// As [`DriverReply::Opened`], from a filesystem that keeps an owner
    /// per object (the memory filesystem); a plain `Opened` object is
    /// owned by the driver's connection.
    Owned {
        info: ObjectInfo,
        owner: Owner,
    },
    /// Where a range's bytes lie ([`DriverRequest::Pages`]).
    Pages(PageList),
}
