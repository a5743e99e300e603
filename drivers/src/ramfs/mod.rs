//! ramfs: the memory filesystem behind `/tmp`, `/dev/shm` and POSIX shared
//! memory (on no-MMU Linux, tmpfs *is* ramfs), with spec §7.5's rules.
//!
//! A file's pages are arena pages the driver got with `AllocBacking`, so a
//! direct mapping is the address where the bytes already are. Truncating a
//! file from size 0 to N is the way to get mappable memory: it allocates
//! pages(N) contiguous zeroed pages at once. `write()` past the allocated
//! pages adds pages one at a time, generally not contiguous with anything
//! (with [`Ramfs::scatter_written_pages`], never contiguous with their
//! neighbours, as spec §14.0 wants for `/tmp` and `/dev/shm`), so
//! `get_unmapped_area` finds a contiguous run only when there is one and
//! otherwise answers `ENOSYS` ("copy instead").
//!
//! The namespace is flat: names directly under the mount, bytes as Linux
//! takes them (any byte but `/` and NUL; not necessarily UTF-8).
//! Every file, and the root, keeps a mode and an owner (`attributes`).

mod attributes;
mod runs;

use crate::flags::{available, cap, data_len, open, pages, P};
use crate::methods::{self, Lookup, Methods, PagesOf, ReadData, ReadInto, WriteData};
use crate::mount::MountPoint;
use crate::{BackingDevice, DriverHost};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use protocol::{
    Bytes, DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo,
    ObjectKind, Owner, PageList,
};
use runs::Runs;

/// The handle of the mount's root directory.
pub const ROOT: u64 = 1;
/// Longest name (Linux `NAME_MAX`).
const NAME_MAX: usize = 255;
/// Truncating an empty file to this size or more fails `EFBIG` (§7.5).
const TRUNCATE_LIMIT: u64 = 1 << 32;
/// Largest file size (Linux `MAX_LFS_FILESIZE`).
const MAX_SIZE: u64 = i64::MAX as u64;

const CAPS: u8 = cap::DIRECT | cap::COPY | cap::READ | cap::WRITE | cap::EXEC;
const OPS: u8 = DriverOps::MMAP
    | DriverOps::READ
    | DriverOps::WRITE
    | DriverOps::GET_UNMAPPED_AREA
    | DriverOps::TRUNCATE;

struct File {
    ino: u64,
    mode: u32,
    owner: Owner,
    size: u64,
    /// File page index → arena address. Bytes past `size` inside a page
    /// are always zero.
    pages: BTreeMap<u64, u64>,
    /// Still has a name.
    linked: bool,
    /// The server holds it (looked up and not released yet).
    in_use: bool,
}

/// A memory filesystem.
pub struct Ramfs {
    mount: MountPoint,
    scatter: bool,
    /// The root directory's permission bits and owner.
    root: attributes::Attributes,
    names: BTreeMap<Vec<u8>, u64>,
    files: BTreeMap<u64, File>,
    runs: Runs,
    next_object: u64,
    next_ino: u64,
}

impl Ramfs {
    /// An empty filesystem mounted at `mount`.
    pub fn new(mount: MountPoint) -> Self {
        Self {
            mount,
            scatter: false,
            root: attributes::Attributes::ROOT,
            names: BTreeMap::new(),
            files: BTreeMap::new(),
            runs: Runs::default(),
            next_object: ROOT.saturating_add(1),
            next_ino: 2,
        }
    }

    /// Never place a page `write()` adds next to the file's neighbouring
    /// pages in the arena (spec §14.0: `/tmp`, `/dev/shm`).
    pub fn scatter_written_pages(mut self, scatter: bool) -> Self {
        self.scatter = scatter;
        self
    }

    /// Remove `name`. Its pages go back at once if the server holds no
    /// reference to it, else when it sends `Release`.
    pub fn unlink(
        &mut self,
        name: impl AsRef<[u8]>,
        host: &mut dyn DriverHost,
    ) -> Result<(), Errno> {
        let object = self.names.remove(name.as_ref()).ok_or(Errno::ENOENT)?;
        let file = self.files.get_mut(&object).ok_or(Errno::EIO)?;
        file.linked = false;
        if file.in_use {
            Ok(())
        } else {
            self.destroy(object, host)
        }
    }

    /// The arena address of each page of the file `name`, by page index.
    pub fn page_map(&self, name: impl AsRef<[u8]>) -> Option<Vec<(u64, u64)>> {
        let file = self.files.get(self.names.get(name.as_ref())?)?;
        Some(file.pages.iter().map(|(i, a)| (*i, *a)).collect())
    }

    /// Pages held by all files.
    pub fn pages_held(&self) -> u64 {
        self.files.values().map(|f| f.pages.len() as u64).sum()
    }

    fn destroy(&mut self, object: u64, host: &mut dyn DriverHost) -> Result<(), Errno> {
        match self.files.remove(&object) {
            Some(file) => self.runs.free(host, file.pages.values().copied()),
            None => Ok(()),
        }
    }

    fn file(&self, object: u64) -> Result<&File, Errno> {
        match self.files.get(&object) {
            Some(file) => Ok(file),
            None if object == ROOT => Err(Errno::EISDIR),
            None => Err(Errno::EBADF),
        }
    }

    fn file_mut(&mut self, object: u64) -> Result<&mut File, Errno> {
        match self.files.get_mut(&object) {
            Some(file) => Ok(file),
            None if object == ROOT => Err(Errno::EISDIR),
            None => Err(Errno::EBADF),
        }
    }

    fn info(&self, object: u64) -> Result<ObjectInfo, Errno> {
        if object == ROOT {
            return Ok(ObjectInfo {
                object: ROOT,
                ino: 1,
                kind: ObjectKind::Directory,
                mode: self.root.mode,
                size: 0,
                caps: None,
                // A directory's `fsync` is ramfs's `noop_fsync`; the files'
                // the server answers itself (a memory filesystem's file).
                ops: DriverOps(DriverOps::SYNC),
                io_memory: false,
            });
        }
        let file = self.file(object)?;
        Ok(ObjectInfo {
            object,
            ino: file.ino,
            kind: ObjectKind::MemoryFile,
            mode: file.mode,
            size: file.size,
            caps: Some(CAPS),
            ops: DriverOps(OPS),
            io_memory: false,
        })
    }

    fn lookup(
        &mut self,
        path: &[u8],
        flags: u32,
        mode: u32,
        caller: Owner,
        host: &mut dyn DriverHost,
    ) -> Result<ObjectInfo, Errno> {
        if matches!(path, b"" | b"." | b"..") {
            if open::creates_exclusively(flags) {
                return Err(Errno::EEXIST);
            }
            if open::wants_write(flags) || flags & open::CREAT != 0 {
                return Err(Errno::EISDIR);
            }
            return self.info(ROOT);
        }
        if path.contains(&b'/') {
            return Err(Errno::ENOENT);
        }
        // A C path ends at its NUL: no name holds one.
        if path.contains(&0) {
            return Err(Errno::EINVAL);
        }
        if path.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let object = match self.names.get(path) {
            Some(&object) => {
                if open::creates_exclusively(flags) {
                    return Err(Errno::EEXIST);
                }
                if flags & open::DIRECTORY != 0 {
                    return Err(Errno::ENOTDIR);
                }
                if flags & open::TRUNC != 0 {
                    self.set_size(object, 0, host)?;
                }
                object
            }
            None if flags & open::CREAT != 0 => self.create(path, mode, caller)?,
            None => return Err(Errno::ENOENT),
        };
        self.file_mut(object)?.in_use = true;
        self.info(object)
    }

    fn create(&mut self, name: &[u8], mode: u32, owner: Owner) -> Result<u64, Errno> {
        let object = self.next_object;
        self.next_object = object.checked_add(1).ok_or(Errno::ENOSPC)?;
        let ino = self.next_ino;
        self.next_ino = ino.checked_add(1).ok_or(Errno::ENOSPC)?;
        self.names.insert(Vec::from(name), object);
        self.files.insert(
            object,
            File {
                ino,
                mode: mode & 0o7777,
                owner,
                size: 0,
                pages: BTreeMap::new(),
                linked: true,
                in_use: false,
            },
        );
        Ok(object)
    }

    /// `ftruncate`, spec §7.5.
    fn set_size(&mut self, object: u64, size: u64, host: &mut dyn DriverHost) -> Result<(), Errno> {
        let runs = &mut self.runs;
        let file = match self.files.get_mut(&object) {
            Some(file) => file,
            None if object == ROOT => return Err(Errno::EISDIR),
            None => return Err(Errno::EBADF),
        };
        if size == file.size {
            return Ok(());
        }
        if size > MAX_SIZE {
            return Err(Errno::EFBIG);
        }
        if file.size == 0 {
            // From empty: a request for mappable memory, one contiguous run.
            if size >= TRUNCATE_LIMIT {
                return Err(Errno::EFBIG);
            }
            // Linux sets the size before allocating: a failed allocation
            // leaves the file at `size` with no pages (§7.5).
            file.size = size;
            let count = pages(size);
            let base = host.alloc_backing(count)?;
            runs.add(base, count);
            for i in 0..count {
                let addr = base.checked_add(i.saturating_mul(P)).ok_or(Errno::EIO)?;
                file.pages.insert(i, addr);
            }
            return Ok(());
        }
        if size > file.size {
            // Growing a non-empty file changes the size only.
            file.size = size;
            return Ok(());
        }
        // Shrinking (the server refused it under mappings): drop the pages
        // past the new end and clear the tail of the last one, so that a
        // later extension reads zeros.
        let keep = pages(size);
        let dropped = file.pages.split_off(&keep);
        file.size = size;
        let mut result = runs.free(host, dropped.into_values());
        let tail = size % P;
        if tail != 0 {
            if let Some(&addr) = file.pages.get(&(size / P)) {
                let at = addr.checked_add(tail).ok_or(Errno::EIO)?;
                let cleared = host.fill_arena(at, 0, P.saturating_sub(tail));
                result = result.and(cleared);
            }
        }
        result
    }

    /// One new page for file page `index`, away from its neighbours when
    /// scattering.
    fn new_page(&self, object: u64, index: u64, host: &mut dyn DriverHost) -> Result<u64, Errno> {
        let file = self.file(object)?;
        let before = index
            .checked_sub(1)
            .and_then(|i| file.pages.get(&i))
            .and_then(|a| a.checked_add(P));
        let after = index
            .checked_add(1)
            .and_then(|i| file.pages.get(&i))
            .and_then(|a| a.checked_sub(P));
        if !self.scatter {
            return host.alloc_backing(1);
        }
        // Hold each page that would touch a neighbour so the allocator
        // cannot return it again; at most two such pages exist.
        let mut held = Vec::new();
        let result = loop {
            match host.alloc_backing(1) {
                Ok(page) if (Some(page) == before || Some(page) == after) && held.len() < 2 => {
                    held.push(page)
                }
                other => break other,
            }
        };
        for page in held {
            // The page is ours; a refusal would be the home's bug and
            // leaves only a spare page behind.
            let _ = host.free_backing(page, 1);
        }
        result
    }

    fn write(
        &mut self,
        object: u64,
        offset: u64,
        data: &[u8],
        host: &mut dyn DriverHost,
    ) -> Result<u64, Errno> {
        self.file(object)?;
        let total = data.len() as u64;
        let end = offset.checked_add(total).ok_or(Errno::EFBIG)?;
        if end > MAX_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut done = 0u64;
        while done < total {
            let pos = offset.saturating_add(done);
            let index = pos / P;
            let in_page = pos % P;
            let n = (P.saturating_sub(in_page)).min(total.saturating_sub(done));
            let page = match self.file(object)?.pages.get(&index) {
                Some(&page) => page,
                None => match self.new_page(object, index, host) {
                    Ok(page) => {
                        self.runs.add(page, 1);
                        self.file_mut(object)?.pages.insert(index, page);
                        page
                    }
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => break,
                },
            };
            let from = usize::try_from(done).map_err(|_| Errno::EIO)?;
            let to = usize::try_from(done.saturating_add(n)).map_err(|_| Errno::EIO)?;
            let chunk = data.get(from..to).ok_or(Errno::EIO)?;
            host.write_arena(page.checked_add(in_page).ok_or(Errno::EIO)?, chunk)?;
            done = done.saturating_add(n);
            let file = self.file_mut(object)?;
            file.size = file.size.max(offset.saturating_add(done));
        }
        Ok(done)
    }

    /// The arena pages of `[offset, offset + len)` for a lease: clipped
    /// at the size when reading (a hole is 0); when writing, missing pages
    /// are added as `write` adds them (short if the arena runs out after
    /// the first) and the size grows to the range's end.
    fn pages_of(&mut self, req: PagesOf, host: &mut dyn DriverHost) -> Result<PageList, Errno> {
        let object = req.object;
        let size = self.file(object)?.size;
        let mut len = if req.write {
            let end = req.offset.checked_add(req.len).ok_or(Errno::EFBIG)?;
            if end > MAX_SIZE {
                return Err(Errno::EFBIG);
            }
            req.len
        } else {
            available(req.offset, req.len, size)
        };
        let mut list = PageList {
            len: 0,
            pages: heapless::Vec::new(),
        };
        if len == 0 {
            return Ok(list);
        }
        let first = req.offset / P;
        let last = req.offset.saturating_add(len.saturating_sub(1)) / P;
        for index in first..=last {
            let page = match self.file(object)?.pages.get(&index) {
                Some(&page) => page,
                None if !req.write => 0,
                None => match self.new_page(object, index, host) {
                    Ok(page) => {
                        self.runs.add(page, 1);
                        self.file_mut(object)?.pages.insert(index, page);
                        page
                    }
                    Err(e) if index == first => return Err(e),
                    Err(_) => {
                        len = index.saturating_mul(P).saturating_sub(req.offset);
                        break;
                    }
                },
            };
            list.pages.push(page).map_err(|_| Errno::EIO)?;
        }
        list.len = len;
        if req.write {
            let file = self.file_mut(object)?;
            file.size = file.size.max(req.offset.saturating_add(len));
        }
        Ok(list)
    }

    /// Visit the file's bytes `[offset, offset + len)` (clipped at its
    /// size) page by page: `visit(done, addr, n)` for each piece, `addr`
    /// being its arena address or `None` for a hole (reads as zero).
    /// Returns the bytes visited.
    fn each_piece(
        &self,
        object: u64,
        offset: u64,
        len: u64,
        mut visit: impl FnMut(u64, Option<u64>, u64) -> Result<(), Errno>,
    ) -> Result<u64, Errno> {
        let file = self.file(object)?;
        let n = available(offset, len, file.size);
        let mut done = 0u64;
        while done < n {
            let pos = offset.saturating_add(done);
            let in_page = pos % P;
            let step = P.saturating_sub(in_page).min(n.saturating_sub(done));
            let addr = match file.pages.get(&(pos / P)) {
                Some(page) => Some(page.checked_add(in_page).ok_or(Errno::EIO)?),
                None => None,
            };
            visit(done, addr, step)?;
            done = done.saturating_add(step);
        }
        Ok(done)
    }

    fn read_data(
        &self,
        object: u64,
        offset: u64,
        len: u32,
        host: &mut dyn DriverHost,
    ) -> Result<Bytes, Errno> {
        let size = self.file(object)?.size;
        let total = available(offset, data_len(len) as u64, size);
        let mut bytes =
            crate::flags::zeroed_bytes(usize::try_from(total).map_err(|_| Errno::EIO)?)?;
        self.each_piece(object, offset, total, |done, addr, n| {
            if let Some(addr) = addr {
                let at = usize::try_from(done).map_err(|_| Errno::EIO)?;
                let end = at
                    .checked_add(usize::try_from(n).map_err(|_| Errno::EIO)?)
                    .ok_or(Errno::EIO)?;
                host.read_arena(addr, bytes.get_mut(at..end).ok_or(Errno::EIO)?)?;
            }
            Ok(())
        })?;
        Ok(bytes)
    }

    fn read_into(
        &self,
        object: u64,
        offset: u64,
        len: u64,
        dest: u64,
        host: &mut dyn DriverHost,
    ) -> Result<u64, Errno> {
        self.each_piece(object, offset, len, |done, addr, n| {
            let at = dest.checked_add(done).ok_or(Errno::EFAULT)?;
            match addr {
                Some(addr) => host.copy_arena(addr, at, n),
                None => host.fill_arena(at, 0, n),
            }
        })
    }

    /// Spec §7.5: the page of `pgoff` when `[pgoff, pgoff + pages(len))`
    /// lies inside the file and its pages are present and physically
    /// consecutive; otherwise `ENOSYS` (copy instead).
    fn get_unmapped_area(&self, object: u64, len: u64, pgoff: u64) -> Result<u64, Errno> {
        let file = self.file(object)?;
        let want = pages(len);
        let have = pages(file.size);
        if want == 0 || pgoff >= have || have.saturating_sub(pgoff) < want {
            return Err(Errno::ENOSYS);
        }
        let first = *file.pages.get(&pgoff).ok_or(Errno::ENOSYS)?;
        let mut expect = first;
        for i in 0..want {
            let index = pgoff.checked_add(i).ok_or(Errno::ENOSYS)?;
            if file.pages.get(&index) != Some(&expect) {
                return Err(Errno::ENOSYS);
            }
            expect = expect.checked_add(P).ok_or(Errno::ENOSYS)?;
        }
        Ok(first)
    }
}

/// The requests, answered by the methods above (inherent names win in
/// `Ramfs::…` paths, so these calls do not recurse).
impl Methods for Ramfs {
    fn check(&mut self, object: u64) -> Result<(), Errno> {
        self.file(object).map(|_| ())
    }

    fn lookup(&mut self, host: &mut dyn DriverHost, req: Lookup<'_>) -> Result<ObjectInfo, Errno> {
        Ramfs::lookup(self, req.path, req.flags, req.mode, req.caller, host)
    }

    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        self.info(object)
    }

    fn read_data(&mut self, host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        Ramfs::read_data(self, req.object, req.offset, req.len, host)
    }

    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        Ramfs::read_into(self, req.object, req.offset, req.len, req.dest, host)
    }

    fn pages(&mut self, host: &mut dyn DriverHost, req: PagesOf) -> Result<PageList, Errno> {
        self.pages_of(req, host)
    }

    fn write_data(&mut self, host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        self.write(req.object, req.offset, req.data, host)
    }

    fn truncate(&mut self, host: &mut dyn DriverHost, object: u64, size: u64) -> Result<(), Errno> {
        self.set_size(object, size, host)
    }

    fn get_unmapped_area(&mut self, object: u64, len: u64, pgoff: u64) -> Result<u64, Errno> {
        Ramfs::get_unmapped_area(self, object, len, pgoff)
    }

    fn mmap(&mut self, object: u64, _len: u64, _pgoff: u64, vm_flags: u32) -> Result<(), Errno> {
        self.check(object)?;
        methods::shareable_only(vm_flags)
    }

    fn unlink(
        &mut self,
        host: &mut dyn DriverHost,
        path: &[u8],
        caller: Owner,
    ) -> Result<(), Errno> {
        self.may_unlink(path, caller)?;
        Ramfs::unlink(self, path, host)
    }

    fn set_attributes(&mut self, object: u64, mode: u32, owner: Owner) -> Result<(), Errno> {
        Ramfs::set_attributes(self, object, mode, owner)
    }

    fn owner_of(&self, object: u64) -> Option<Owner> {
        Ramfs::owner(self, object).ok()
    }

    /// `noop_fsync`: the bytes are memory, nothing is ever cached.
    fn sync(&mut self, object: u64, _data_only: bool) -> Result<(), Errno> {
        if object == ROOT {
            return Ok(());
        }
        self.check(object)
    }

    fn release(&mut self, host: &mut dyn DriverHost, object: u64) -> Result<(), Errno> {
        if object != ROOT {
            let file = self.file_mut(object)?;
            file.in_use = false;
            if !file.linked {
                self.destroy(object, host)?;
            }
        }
        Ok(())
    }
}

impl BackingDevice for Ramfs {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("ramfs", false)
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        methods::serve(self, request, host)
    }
}

#[cfg(test)]
mod tests;
