//! copyfs: a disk-like filesystem whose regular files have a read method
//! and nothing to map in place. They declare no capabilities (a regular
//! file's default `COPY`), so every private mapping is a copy read through
//! the driver and every shared one fails `ENODEV` (spec §2.4, `/data` of
//! §14.0).
//!
//! The files come from a [`FileStore`]: [`MemStore`] keeps them in memory
//! (tests, bare metal); a hosted home can put a host directory behind the
//! same trait. A `pwrite` changes the file, never a copy already made:
//! copies are the server's. Files declare `TRANSFER`: a `read`/`write`
//! lease moves through the store in one request per step, between the
//! file and the server's staging buffer. Files and directories declare
//! `SYNC`: `fsync`/`fdatasync` reach the store ([`FileStore::sync`]).

mod mem_store;

pub use mem_store::MemStore;

use crate::flags::{data_len, open};
use crate::methods::{self, Lookup, Methods, ReadData, ReadInto, TransferOf, WriteData};
use crate::mount::MountPoint;
use crate::{BackingDevice, DriverHost};
use protocol::{
    Bytes, DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

/// Where a copy-only filesystem's files live. Ids are the store's own;
/// the same file must always have the same id (the server shares copies
/// by it).
pub trait FileStore {
    /// Find `path` (relative to the mount, `""` for its root), creating it
    /// with `O_CREAT` (`O_EXCL` → `EEXIST`) and emptying it with `O_TRUNC`.
    fn lookup(&mut self, path: &str, flags: u32, mode: u32) -> Result<u64, Errno>;
    /// The file's size in bytes.
    fn size(&mut self, id: u64) -> Result<u64, Errno>;
    /// The inode number shown in `/proc/<pid>/maps` and `fstat`.
    fn ino(&mut self, id: u64) -> Result<u64, Errno>;
    /// Read from `offset` into `buf`; fewer bytes at the end, none past it.
    fn read(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Write `data` at `offset`, growing the file as needed.
    fn write(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<usize, Errno>;
    /// Permission bits.
    fn mode(&mut self, _id: u64) -> Result<u32, Errno> {
        Ok(0o644)
    }
    /// Is it a directory (which can be opened but not read or mapped)?
    fn is_dir(&mut self, _id: u64) -> Result<bool, Errno> {
        Ok(false)
    }
    /// `fsync` of the file or directory (`fdatasync` with `data_only`):
    /// what the store wrote reaches stable storage before it returns.
    /// Default: the store keeps nothing in a cache between it and its
    /// storage (memory), so there is nothing to do.
    fn sync(&mut self, _id: u64, _data_only: bool) -> Result<(), Errno> {
        Ok(())
    }
    /// The server dropped its last reference to the file.
    fn release(&mut self, _id: u64) {}
}

/// A copy-only filesystem over a store.
pub struct CopyFs<S: FileStore> {
    mount: MountPoint,
    store: S,
}

/// Bytes moved per piece when filling a copy or moving a lease step: one
/// buffer this large from the heap (one store read for a 64 KiB mapping),
/// or, where the heap cannot give it, [`SMALL_STEP`] on the stack.
const STEP: usize = 64 << 10;
/// The stack buffer's size (a bare-metal driver task has a small stack).
const SMALL_STEP: usize = 1024;

impl<S: FileStore> CopyFs<S> {
    pub fn new(mount: MountPoint, store: S) -> Self {
        Self { mount, store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    fn info(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        let dir = self.store.is_dir(object)?;
        Ok(ObjectInfo {
            object,
            ino: self.store.ino(object)?,
            kind: if dir {
                ObjectKind::Directory
            } else {
                ObjectKind::RegularFile
            },
            mode: self.store.mode(object)?,
            size: if dir { 0 } else { self.store.size(object)? },
            caps: None,
            // A disk-like filesystem's files and directories have an
            // fsync method (a host directory's bytes sit in the host's
            // page cache until asked).
            ops: DriverOps(if dir {
                DriverOps::SYNC
            } else {
                DriverOps::MMAP
                    | DriverOps::READ
                    | DriverOps::WRITE
                    | DriverOps::TRANSFER
                    | DriverOps::SYNC
            }),
            io_memory: false,
        })
    }

    fn file(&mut self, object: u64) -> Result<(), Errno> {
        if self.store.is_dir(object)? {
            Err(Errno::EISDIR)
        } else {
            Ok(())
        }
    }
}

impl<S: FileStore> Methods for CopyFs<S> {
    fn check(&mut self, object: u64) -> Result<(), Errno> {
        self.file(object)
    }

    fn lookup(&mut self, _host: &mut dyn DriverHost, req: Lookup<'_>) -> Result<ObjectInfo, Errno> {
        let path = crate::mount::text_path(req.path)?;
        let object = self.store.lookup(path, req.flags, req.mode)?;
        let info = self.info(object)?;
        if info.kind == ObjectKind::Directory && open::wants_write(req.flags) {
            return Err(Errno::EISDIR);
        }
        if info.kind != ObjectKind::Directory && req.flags & open::DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        Ok(info)
    }

    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        self.info(object)
    }

    fn read_data(&mut self, _host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        self.file(req.object)?;
        let mut buf = [0u8; protocol::DATA_CHUNK];
        let want = buf.get_mut(..data_len(req.len)).ok_or(Errno::EIO)?;
        let n = self.store.read(req.object, req.offset, want)?;
        Bytes::from_slice(want.get(..n).ok_or(Errno::EIO)?).map_err(|()| Errno::EIO)
    }

    /// Fill a private copy at `dest`; short at end of file.
    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        self.file(req.object)?;
        self.copy_steps(host, req.object, req.offset, req.len, req.dest, false)
    }

    fn write_data(&mut self, _host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        self.file(req.object)?;
        Ok(self.store.write(req.object, req.offset, req.data)? as u64)
    }

    /// A lease's bytes in one step: the file's bytes into the staging
    /// buffer (short at end of file), or the staging buffer's into the
    /// file.
    fn transfer(&mut self, host: &mut dyn DriverHost, req: TransferOf) -> Result<u64, Errno> {
        self.file(req.object)?;
        if req.len > protocol::LEASE_STEP {
            return Err(Errno::EINVAL);
        }
        self.copy_steps(host, req.object, req.offset, req.len, req.at, req.write)
    }

    /// `fsync`/`fdatasync` of a file or a directory: the store's.
    fn sync(&mut self, object: u64, data_only: bool) -> Result<(), Errno> {
        // Any object the store knows (`EBADF` for one it never gave out),
        // directories too: Linux syncs a directory's entries.
        self.store.is_dir(object)?;
        self.store.sync(object, data_only)
    }

    // Nothing to map in place: the default `ENOSYS`, the generic no-MMU
    // answer; nor to resize (`EINVAL`).

    fn release(&mut self, _host: &mut dyn DriverHost, object: u64) -> Result<(), Errno> {
        self.store.release(object);
        Ok(())
    }
}

impl<S: FileStore> CopyFs<S> {
    /// Move `len` bytes between the file from `offset` and the arena at
    /// `at` (into the file with `write`) through one buffer, piece by
    /// piece; short at the end of the file, or when a piece fails after
    /// some bytes moved (as a short `read`/`write`).
    fn copy_steps(
        &mut self,
        host: &mut dyn DriverHost,
        object: u64,
        offset: u64,
        len: u64,
        at: u64,
        write: bool,
    ) -> Result<u64, Errno> {
        let mut small = [0u8; SMALL_STEP];
        let mut large = alloc::vec::Vec::new();
        let buf = step_buffer(len, &mut small, &mut large);
        let step = buf.len();
        let mut done = 0u64;
        while done < len {
            let want = usize::try_from(len.saturating_sub(done)).map_or(step, |n| n.min(step));
            let part = buf.get_mut(..want).ok_or(Errno::EIO)?;
            let arena = at.checked_add(done).ok_or(Errno::EFAULT)?;
            let pos = offset.checked_add(done).ok_or(Errno::EINVAL)?;
            let moved = if write {
                host.read_arena(arena, part)?;
                self.store.write(object, pos, part)
            } else {
                self.store.read(object, pos, part).and_then(|n| {
                    host.write_arena(arena, part.get(..n).ok_or(Errno::EIO)?)?;
                    Ok(n)
                })
            };
            let n = match moved {
                Ok(n) => n,
                Err(e) if done == 0 || !write => return Err(e),
                Err(_) => break,
            };
            done = done.saturating_add(n as u64);
            if n < want {
                break;
            }
        }
        Ok(done)
    }
}

/// The buffer a copy of `len` bytes moves through: [`STEP`] bytes (or
/// fewer) from the heap, or, where the heap cannot give them, `small`.
fn step_buffer<'a>(
    len: u64,
    small: &'a mut [u8; SMALL_STEP],
    large: &'a mut alloc::vec::Vec<u8>,
) -> &'a mut [u8] {
    let size = usize::try_from(len).map_or(STEP, |n| n.min(STEP));
    if size > SMALL_STEP && large.try_reserve_exact(size).is_ok() {
        large.resize(size, 0);
        large
    } else {
        small
    }
}

impl<S: FileStore> BackingDevice for CopyFs<S> {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("copyfs", false)
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        methods::serve(self, request, host)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;
