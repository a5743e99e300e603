//! romfs: a read-only filesystem image on ROM, mapped in place.
//!
//! The image stands for a flash chip: [`Romfs::mount`] checks it whole
//! (superblock and header checksums, every offset, every chain) and
//! indexes it; [`BackingDevice::start`] copies it into the arena, where it
//! then lives like memory-mapped ROM. A read-only private or shared
//! mapping of a file is simply the address of its data inside the image
//! (execute in place), usually not page aligned (spec §4.3, vector 22).
//!
//! In place ([`Romfs::in_place`]): an image that already sits in flash
//! outside the arena, at a fixed physical address. Nothing is allocated or
//! copied; reads come from the image, direct mappings are its address.
//!
//! `get_unmapped_area` follows Linux's `romfs_get_unmapped_area` with the
//! MTD "point" of a ROM that is always mapped (spec §11.2 romfs row); the
//! [`Medium`] chooses the capabilities, as the MTD type under romfs does.

mod format;
mod index;
mod lookup;

pub use format::RomfsError;

use crate::flags::{available, cap, data_len, open, page_offset, pages, P};
use crate::methods::{self, Lookup, Methods, ReadData, ReadInto, WriteData};
use crate::mount::MountPoint;
use crate::window::Window;
use crate::{BackingDevice, DriverHost};
use alloc::vec::Vec;
use index::{Index, Node};
use protocol::{
    Bytes, DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

/// What the image sits on, which decides the capabilities (spec §2.4 rows
/// "romfs on MTD ROM / MTD RAM / block device").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// MTD ROM: `COPY|DIRECT|READ|EXEC` (the default).
    MtdRom,
    /// MTD RAM: `COPY|DIRECT|READ|WRITE|EXEC` (still a read-only mount).
    MtdRam,
    /// A block device or flash that cannot be pointed at: `COPY` only,
    /// `get_unmapped_area` answers `ENOSYS`.
    Block,
}

impl Medium {
    fn caps(self) -> u8 {
        match self {
            Self::MtdRom => cap::COPY | cap::DIRECT | cap::READ | cap::EXEC,
            Self::MtdRam => cap::COPY | cap::DIRECT | cap::READ | cap::WRITE | cap::EXEC,
            Self::Block => cap::COPY,
        }
    }
}

/// Where the image's bytes are.
enum Source {
    /// Ours until [`BackingDevice::start`] moves it into the arena.
    Owned(Vec<u8>),
    /// Already in memory (flash) at `addr`, for good.
    InPlace { image: &'static [u8], addr: u64 },
}

/// A mounted romfs image.
pub struct Romfs {
    mount: MountPoint,
    medium: Medium,
    index: Index,
    source: Source,
    /// The device size (`mtd->size`): the whole image as given.
    device_len: u64,
    window: Option<Window>,
}

/// The full size the superblock at the start of `header` announces (the
/// length of the slice [`Romfs::in_place`] needs), if it is a romfs
/// superblock; only the first 12 bytes are read.
pub fn image_size(header: &[u8]) -> Option<u64> {
    if header.get(..8)? != format::MAGIC.as_slice() {
        return None;
    }
    let size = header.get(8..12)?;
    Some(size.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
}

const FILE_OPS: u8 = DriverOps::MMAP | DriverOps::READ | DriverOps::GET_UNMAPPED_AREA;

impl Romfs {
    /// Check and index `image`; mounted on an MTD ROM. Nothing in a bad
    /// image can make this (or anything later) panic or read outside it.
    pub fn mount(image: &[u8], mount: MountPoint) -> Result<Self, RomfsError> {
        let index = Index::build(image)?;
        Ok(Self {
            mount,
            medium: Medium::MtdRom,
            index,
            source: Source::Owned(image.to_vec()),
            device_len: image.len() as u64,
            window: None,
        })
    }

    /// Check and index an image that stays where it is: `image` is the
    /// memory at physical address `addr` (flash in read-array mode, outside
    /// the arena), readable for the life of the driver and never written.
    /// Start allocates nothing; mappings are `addr + ` the file's offset.
    pub fn in_place(
        image: &'static [u8],
        addr: u64,
        mount: MountPoint,
    ) -> Result<Self, RomfsError> {
        let index = Index::build(image)?;
        Ok(Self {
            mount,
            medium: Medium::MtdRom,
            index,
            source: Source::InPlace { image, addr },
            device_len: image.len() as u64,
            window: None,
        })
    }

    /// Put it on another medium (changes the capabilities).
    pub fn on(mut self, medium: Medium) -> Self {
        self.medium = medium;
        self
    }

    /// The volume name from the superblock.
    pub fn volume(&self) -> &[u8] {
        &self.index.volume
    }

    /// Where the image lives (in the arena, or its address in place),
    /// once started.
    pub fn image_base(&self) -> Option<u64> {
        self.window.map(|w| w.base)
    }

    /// The image offset of the data of the regular file at `path`.
    pub fn data_offset(&self, path: &str) -> Option<u32> {
        match self.index.nodes.get(&self.resolve(path, 0).ok()?)? {
            Node::Regular { data, .. } => Some(*data),
            _ => None,
        }
    }

    fn resolve(&self, path: &str, flags: u32) -> Result<u32, Errno> {
        lookup::resolve(&self.index, self.mount.path(), path, flags)
    }

    fn node(&self, object: u64) -> Result<&Node, Errno> {
        let key = u32::try_from(object).map_err(|_| Errno::EBADF)?;
        self.index.nodes.get(&key).ok_or(Errno::EBADF)
    }

    fn info(&self, object: u64) -> Result<ObjectInfo, Errno> {
        let (kind, exec, size, caps, ops) = match self.node(object)? {
            Node::Directory { exec, .. } => (ObjectKind::Directory, *exec, 0, None, 0),
            Node::Regular { exec, size, .. } => (
                ObjectKind::RegularFile,
                *exec,
                u64::from(*size),
                Some(self.medium.caps()),
                FILE_OPS,
            ),
            Node::Symlink { .. } | Node::Special => return Err(Errno::ENXIO),
        };
        Ok(ObjectInfo {
            object,
            ino: object,
            kind,
            mode: 0o644 | if exec { 0o111 } else { 0 },
            size,
            caps,
            ops: DriverOps(ops),
            io_memory: false,
        })
    }

    /// The file's data as (image offset, size).
    fn file(&self, object: u64) -> Result<(u64, u64), Errno> {
        match self.node(object)? {
            Node::Regular { data, size, .. } => Ok((u64::from(*data), u64::from(*size))),
            Node::Directory { .. } => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// A window onto the file's data inside the started image.
    fn file_window(&self, object: u64) -> Result<Window, Errno> {
        let (data, size) = self.file(object)?;
        let image = self.window.ok_or(Errno::EIO)?;
        Ok(Window {
            base: image.addr(data)?,
            len: size,
        })
    }

    /// The bytes of an in-place image at `[data + offset, …)` of a file of
    /// `size` bytes at image offset `data`: at most `want`, none past the
    /// file's end.
    fn in_place_bytes(&self, object: u64, offset: u64, want: u64) -> Result<&[u8], Errno> {
        let (data, size) = self.file(object)?;
        let Source::InPlace { image, .. } = &self.source else {
            return Err(Errno::EIO);
        };
        self.window.ok_or(Errno::EIO)?;
        let n = available(offset, want, size);
        let start = data.saturating_add(offset.min(size));
        let start = usize::try_from(start).map_err(|_| Errno::EIO)?;
        let end = start.saturating_add(usize::try_from(n).map_err(|_| Errno::EIO)?);
        image.get(start..end).ok_or(Errno::EIO)
    }
}

impl Methods for Romfs {
    const FIXED_SIZE: Errno = Errno::EROFS;

    fn check(&mut self, object: u64) -> Result<(), Errno> {
        self.node(object).map(|_| ())
    }

    fn lookup(&mut self, _host: &mut dyn DriverHost, req: Lookup<'_>) -> Result<ObjectInfo, Errno> {
        let path = crate::mount::text_path(req.path)?;
        let found = match self.resolve(path, req.flags) {
            Ok(found) => found,
            Err(e) if e == Errno::ENOENT && req.flags & open::CREAT != 0 => {
                // Creating is a write; a missing leaf in an existing
                // directory is EROFS, a missing directory stays ENOENT.
                return Err(lookup::create_error(&self.index, self.mount.path(), path));
            }
            Err(e) => return Err(e),
        };
        if open::creates_exclusively(req.flags) {
            return Err(Errno::EEXIST);
        }
        let info = self.info(u64::from(found))?;
        if info.kind == ObjectKind::Directory {
            if open::wants_write(req.flags) || req.flags & open::CREAT != 0 {
                return Err(Errno::EISDIR);
            }
        } else if req.flags & open::DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        } else if open::wants_write(req.flags) || req.flags & open::TRUNC != 0 {
            return Err(Errno::EROFS);
        }
        Ok(info)
    }

    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        self.info(object)
    }

    fn read_data(&mut self, host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        if !matches!(self.source, Source::InPlace { .. }) {
            return self
                .file_window(req.object)?
                .read_data(host, req.offset, req.len);
        }
        let part = self.in_place_bytes(req.object, req.offset, data_len(req.len) as u64)?;
        Bytes::from_slice(part).map_err(|()| Errno::EIO)
    }

    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        if !matches!(self.source, Source::InPlace { .. }) {
            return self
                .file_window(req.object)?
                .read_into(host, req.offset, req.len, req.dest);
        }
        let part = self.in_place_bytes(req.object, req.offset, req.len)?;
        host.write_arena(req.dest, part)?;
        Ok(part.len() as u64)
    }

    /// A read-only filesystem: no write (and no resize, `FIXED_SIZE`).
    fn write_data(&mut self, _host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        self.check(req.object)?;
        Err(Errno::EROFS)
    }

    /// Linux's `romfs_get_unmapped_area` over a ROM that is always mapped.
    fn get_unmapped_area(&mut self, object: u64, len: u64, pgoff: u64) -> Result<u64, Errno> {
        let (data, isize) = self.file(object)?;
        let image = self.window.ok_or(Errno::EIO)?;
        if self.medium == Medium::Block {
            return Err(Errno::ENOSYS);
        }
        // The mapping must fit entirely within the file, in pages.
        let maxpages = pages(isize);
        if pgoff >= maxpages || maxpages.saturating_sub(pgoff) < pages(len) {
            return Err(Errno::EINVAL);
        }
        if len > self.device_len || pgoff >= self.device_len / P {
            return Err(Errno::EINVAL);
        }
        let offset = page_offset(pgoff)?.checked_add(data).ok_or(Errno::EINVAL)?;
        if offset >= self.device_len {
            return Err(Errno::EINVAL);
        }
        image.addr(offset)
    }

    fn mmap(&mut self, object: u64, _len: u64, _pgoff: u64, vm_flags: u32) -> Result<(), Errno> {
        self.file(object)?;
        methods::shareable_only(vm_flags)
    }
}

impl BackingDevice for Romfs {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("romfs", true)
    }

    /// Copy the image into the arena (the "flash" the files are mapped
    /// from); an image in place only gets its window.
    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        if self.window.is_some() {
            return Err(Errno::EBUSY);
        }
        let image = match &self.source {
            Source::Owned(image) => image,
            Source::InPlace { addr, .. } => {
                // One more page must stay addressable (see below).
                let end = self.device_len.checked_add(P);
                addr.checked_add(end.ok_or(Errno::EFBIG)?)
                    .ok_or(Errno::EFAULT)?;
                self.window = Some(Window {
                    base: *addr,
                    len: self.device_len,
                });
                return Ok(());
            }
        };
        // One spare page past the image: a mapping of a file's last page
        // may run past the image's end (Linux clips only what it asks of the
        // device), and memsrv maps directly only inside a driver's storage.
        let reserved = self.device_len.checked_add(P).ok_or(Errno::EFBIG)?;
        let mut window =
            Window::allocate_filled(host, reserved, |host, base| host.write_arena(base, image))?;
        window.len = self.device_len;
        self.window = Some(window);
        self.source = Source::Owned(Vec::new());
        Ok(())
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        methods::serve(self, request, host)
    }
}

#[cfg(test)]
mod tests;
