//! A driver's methods, one per [`DriverRequest`] (as Linux's
//! `file_operations` has one per call), and [`serve`], the one place that
//! turns a request into its method call and the result into the
//! [`DriverReply`]. Where most drivers answer alike, the method's default
//! is that answer, so a driver writes only what is its own. Every driver
//! here answers through it, and so can a home's own (the daemon's host
//! files): its [`crate::BackingDevice::serve`] is one call to [`serve`].

use crate::DriverHost;
use protocol::{Bytes, DriverReply, DriverRequest, Errno, ObjectInfo, Owner, PageList};

/// The fields of a `Lookup` request.
#[derive(Clone, Copy, Debug)]
pub struct Lookup<'a> {
    /// Bytes, as Linux takes a name (a filesystem whose names are text
    /// reads it with [`crate::mount::text_path`]).
    pub path: &'a [u8],
    pub flags: u32,
    pub mode: u32,
    /// Who the request acts for: a created object's owner.
    pub caller: Owner,
}

/// The fields of a `ReadData` request.
#[derive(Clone, Copy, Debug)]
pub struct ReadData {
    pub object: u64,
    pub offset: u64,
    pub len: u32,
}

/// The fields of a `Read` request (a private copy at `dest` to fill).
#[derive(Clone, Copy, Debug)]
pub struct ReadInto {
    pub object: u64,
    pub offset: u64,
    pub len: u64,
    pub dest: u64,
}

/// The fields of a `WriteData` request.
#[derive(Clone, Copy, Debug)]
pub struct WriteData<'a> {
    pub object: u64,
    pub offset: u64,
    pub data: &'a [u8],
}

/// The fields of a `Pages` request.
#[derive(Clone, Copy, Debug)]
pub struct PagesOf {
    pub object: u64,
    pub offset: u64,
    pub len: u64,
    /// Add missing pages and grow the size to cover the range.
    pub write: bool,
}

/// The fields of a `Transfer` request.
#[derive(Clone, Copy, Debug)]
pub struct TransferOf {
    pub object: u64,
    pub offset: u64,
    pub len: u64,
    /// The server's staging buffer in the arena.
    pub at: u64,
    /// From the arena into the file (else from the file into the arena).
    pub write: bool,
}

/// The methods of one driver's objects. The data requests' fields come
/// as one struct each, so no driver can swap two of their numbers.
pub trait Methods {
    /// What the default [`Methods::truncate`] answers: the size cannot
    /// change (`EINVAL`), or, on a read-only filesystem, nothing can
    /// (`EROFS`).
    const FIXED_SIZE: Errno = Errno::EINVAL;

    /// Refuse an `object` these requests cannot name: `EBADF` for a
    /// handle this driver never gave out (a filesystem also refuses its
    /// directories, `EISDIR`). The default methods check this first.
    fn check(&mut self, object: u64) -> Result<(), Errno>;

    /// Find (or create) `path`; what the server learns of the object.
    fn lookup(&mut self, host: &mut dyn DriverHost, req: Lookup<'_>) -> Result<ObjectInfo, Errno>;

    /// Current size and attributes.
    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno>;

    /// `read()` data: at most `len` bytes from `offset`.
    fn read_data(&mut self, host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno>;

    /// Fill the private copy at arena address `dest`; the bytes delivered.
    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno>;

    /// `write()`: the bytes taken.
    fn write_data(&mut self, host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno>;

    /// Where a range's bytes lie in the arena, for the server to copy a
    /// `read`/`write` lease. Default: the bytes are not arena pages
    /// (`ENOSYS`: the server moves them with `ReadData`/`WriteData`).
    fn pages(&mut self, host: &mut dyn DriverHost, req: PagesOf) -> Result<PageList, Errno> {
        let _ = host;
        self.check(req.object)?;
        Err(Errno::ENOSYS)
    }

    /// Move a lease's bytes between the file and the server's staging
    /// buffer in one step; the bytes moved (at most `len`). Only objects
    /// whose methods include `TRANSFER` are asked. Default: not supported
    /// (`ENOSYS`: the server moves them with `ReadData`/`WriteData`).
    fn transfer(&mut self, host: &mut dyn DriverHost, req: TransferOf) -> Result<u64, Errno> {
        let _ = host;
        self.check(req.object)?;
        Err(Errno::ENOSYS)
    }

    /// Where `[pgoff·P, pgoff·P + len)` lives. Default: nothing lives in
    /// place, the generic no-MMU answer `ENOSYS` (copy instead).
    fn get_unmapped_area(&mut self, object: u64, _len: u64, _pgoff: u64) -> Result<u64, Errno> {
        self.check(object)?;
        Err(Errno::ENOSYS)
    }

    /// Approve one direct mapping. Default: none is possible (`ENOSYS`).
    fn mmap(&mut self, object: u64, _len: u64, _pgoff: u64, _vm_flags: u32) -> Result<(), Errno> {
        self.check(object)?;
        Err(Errno::ENOSYS)
    }

    /// Change the size. Default: it is fixed ([`Methods::FIXED_SIZE`]).
    fn truncate(
        &mut self,
        _host: &mut dyn DriverHost,
        object: u64,
        _size: u64,
    ) -> Result<(), Errno> {
        self.check(object)?;
        Err(Self::FIXED_SIZE)
    }

    /// Remove a name for `caller`. Default: device names and read-mostly
    /// files are not removed through the server (`EPERM`).
    fn unlink(
        &mut self,
        _host: &mut dyn DriverHost,
        _path: &[u8],
        _caller: Owner,
    ) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    /// Store the permission bits and owner the server decided (`chmod`,
    /// `chown`). Default: this driver keeps no attributes (`EPERM`).
    fn set_attributes(&mut self, _object: u64, _mode: u32, _owner: Owner) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    /// The object's owner, for a filesystem that keeps one per object
    /// (its lookups and stats then answer [`DriverReply::Owned`]).
    /// Default: none (the driver's connection owns its objects).
    fn owner_of(&self, _object: u64) -> Option<Owner> {
        None
    }

    /// `fsync` (`fdatasync` with `data_only`): the object's bytes (and,
    /// without `data_only`, its attributes) reach stable storage before
    /// the answer. Only objects whose methods include `SYNC` are asked.
    /// Default: no such method (`EINVAL`, as Linux's `vfs_fsync_range`
    /// for a file without `fsync`).
    fn sync(&mut self, object: u64, _data_only: bool) -> Result<(), Errno> {
        self.check(object)?;
        Err(Errno::EINVAL)
    }

    /// One mapping went away. Default: nothing to do.
    fn close_vma(&mut self, _object: u64) -> Result<(), Errno> {
        Ok(())
    }

    /// Nothing refers to the object any more. Default: nothing to free.
    fn release(&mut self, _host: &mut dyn DriverHost, _object: u64) -> Result<(), Errno> {
        Ok(())
    }
}

/// Answer `request` with the method it names; an error is the reply.
pub fn serve<M: Methods + ?Sized>(
    driver: &mut M,
    request: DriverRequest,
    host: &mut dyn DriverHost,
) -> DriverReply {
    let result = match request {
        DriverRequest::Lookup {
            path,
            flags,
            mode,
            caller,
        } => {
            let req = Lookup {
                path: &path,
                flags,
                mode,
                caller,
            };
            driver.lookup(host, req).map(|info| opened(driver, info))
        }
        DriverRequest::Stat { object } => driver.stat(object).map(|info| opened(driver, info)),
        DriverRequest::ReadData {
            object,
            offset,
            len,
        } => {
            let req = ReadData {
                object,
                offset,
                len,
            };
            driver.read_data(host, req).map(DriverReply::Data)
        }
        DriverRequest::Read {
            object,
            offset,
            len,
            dest,
        } => {
            let req = ReadInto {
                object,
                offset,
                len,
                dest,
            };
            driver.read_into(host, req).map(DriverReply::Count)
        }
        DriverRequest::WriteData {
            object,
            offset,
            data,
        } => {
            let req = WriteData {
                object,
                offset,
                data: &data,
            };
            driver.write_data(host, req).map(DriverReply::Count)
        }
        DriverRequest::GetUnmappedArea {
            object, len, pgoff, ..
        } => driver
            .get_unmapped_area(object, len, pgoff)
            .map(DriverReply::Address),
        DriverRequest::Mmap {
            object,
            len,
            pgoff,
            vm_flags,
            ..
        } => driver
            .mmap(object, len, pgoff, vm_flags)
            .map(|()| DriverReply::Done),
        DriverRequest::Truncate { object, size } => driver
            .truncate(host, object, size)
            .map(|()| DriverReply::Done),
        DriverRequest::Unlink { path, caller } => driver
            .unlink(host, &path, caller)
            .map(|()| DriverReply::Done),
        DriverRequest::SetAttributes {
            object,
            mode,
            owner,
        } => driver
            .set_attributes(object, mode, owner)
            .and_then(|()| driver.stat(object))
            .map(|info| opened(driver, info)),
        DriverRequest::CloseVma { object, .. } => {
            driver.close_vma(object).map(|()| DriverReply::Done)
        }
        DriverRequest::Release { object } => {
            driver.release(host, object).map(|()| DriverReply::Done)
        }
        DriverRequest::Pages {
            object,
            offset,
            len,
            write,
        } => {
            let req = PagesOf {
                object,
                offset,
                len,
                write,
            };
            driver.pages(host, req).map(DriverReply::Pages)
        }
        DriverRequest::Transfer {
            object,
            offset,
            len,
            at,
            write,
        } => {
            let req = TransferOf {
                object,
                offset,
                len,
                at,
                write,
            };
            driver.transfer(host, req).map(DriverReply::Count)
        }
        DriverRequest::Sync { object, data_only } => {
            driver.sync(object, data_only).map(|()| DriverReply::Done)
        }
    };
    result.unwrap_or_else(DriverReply::Error)
}

/// What a lookup or stat answers: the object, with its owner where the
/// driver keeps one.
fn opened<M: Methods + ?Sized>(driver: &M, info: ObjectInfo) -> DriverReply {
    match driver.owner_of(info.object) {
        Some(owner) => DriverReply::Owned { info, owner },
        None => DriverReply::Opened(info),
    }
}

/// Spec §1.2/§11.1: approve only shareable mappings for direct use;
/// anything else is "not possible" (`ENOSYS`).
pub(crate) fn shareable_only(vm_flags: u32) -> Result<(), Errno> {
    if crate::flags::vm::is_shareable(vm_flags) {
        Ok(())
    } else {
        Err(Errno::ENOSYS)
    }
}
