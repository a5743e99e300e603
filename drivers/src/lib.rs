//! Backing-device servers (drivers) for the nommu memory server.
//!
//! Each driver is a module that owns one kind of backing device and
//! implements [`BackingDevice`]: it declares where it is mounted
//! ([`BackingDevice::registration`]) and answers the memory server's
//! [`DriverRequest`]s one at a time ([`BackingDevice::serve`], which hands
//! each request to its method in [`methods`]). A home runs
//! each driver as a server of its own (a thread, a host process, a task):
//! it registers the driver over an ordinary connection, then feeds it the
//! frames the memory server sends, through [`serve_frame`].
//!
//! Drivers keep their storage in the arena (memory they get from the server
//! with [`DriverHost::alloc_backing`]), so a direct mapping is simply the
//! address where the bytes already live, the same in every process.
//!
//! The drivers (one module each):
//!
//! | module | object | mapping |
//! | --- | --- | --- |
//! | [`ramfs`] | memory filesystem (`/tmp`, `/dev/shm`) | direct when contiguous (spec §7.5) |
//! | [`romfs`] | read-only filesystem image on ROM (copied in, or in place on flash) | direct, execute in place |
//! | [`ramdisk`] | block device | copy, or direct by choice |
//! | [`fbdev`] | framebuffer | direct (shared only) |
//! | [`mtd`] | flash: ROM, RAM or NOR with program/erase, in the arena or on a [`flash::FlashChip`] | per MTD type |
//! | [`blockdev`] | disk over a [`blockdev::BlockDevice`] (sectors) | copy only |
//! | [`copyfs`] | disk-like filesystem over a [`copyfs::FileStore`] | copy only |
//! | [`pipe`], [`socket`] | FIFO, socket | refused |
//! | [`devmem`], [`devzero`], [`iomem`] | `/dev/mem`, `/dev/zero`, register memory | as Linux |
//! | [`testdev`] | the configurable `/dev/tst` of spec §14.0 | as configured |
//!
//! [`flash`] and [`blockdev::BlockDevice`] are the narrow hardware
//! interfaces a board implements to put real chips and disks behind them.
//!
//! No request and no image can make a driver panic: every size and offset
//! from the wire is checked arithmetic, every slice access is checked (the
//! lints below hold the library code to that).
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
// Messages hold bounded buffers inline on purpose (see `protocol`).
#![allow(clippy::large_enum_variant)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod device;
pub mod flags;
pub mod methods;
pub mod mount;
mod window;

pub mod blockdev;
pub mod copyfs;
pub mod devmem;
pub mod devzero;
pub mod fbdev;
pub mod flash;
pub mod iomem;
pub mod mtd;
pub mod pipe;
pub mod ramdisk;
pub mod ramfs;
pub mod romfs;
pub mod socket;
pub mod stream;
pub mod testdev;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod robustness;
#[cfg(test)]
mod sync_tests;

pub use mount::MountPoint;

use protocol::{
    decode_driver_request, encode_driver_reply, DriverRegistration, DriverReply, DriverRequest,
    Errno, MAX_FRAME,
};

/// What a driver may ask of its home while serving: access to the arena
/// and the memory server's driver-side calls.
pub trait DriverHost {
    /// Copy `bytes` into the arena at `addr`.
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno>;
    /// Copy arena bytes at `addr` into `buf`.
    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// `pages` contiguous zeroed pages of the arena for the driver's own
    /// storage ([`protocol::Request::AllocBacking`]).
    fn alloc_backing(&mut self, pages: u64) -> Result<u64, Errno>;
    /// Give storage back ([`protocol::Request::FreeBacking`]).
    fn free_backing(&mut self, addr: u64, pages: u64) -> Result<(), Errno>;
    /// Ask to change mode ([`protocol::Request::BeginExclusive`]).
    fn begin_exclusive(&mut self, object: u64) -> Result<(), Errno>;
    /// Show data again ([`protocol::Request::EndExclusive`]).
    fn end_exclusive(&mut self, object: u64) -> Result<(), Errno>;

    /// Copy `len` arena bytes from `src` to `dest` (the ranges do not
    /// overlap). The provided version goes through a small buffer; a home
    /// that can move memory directly may do better.
    fn copy_arena(&mut self, src: u64, dest: u64, len: u64) -> Result<(), Errno> {
        let mut buf = [0u8; COPY_CHUNK];
        let mut done = 0u64;
        while done < len {
            let n = chunk_len(len.saturating_sub(done));
            let part = buf.get_mut(..n).ok_or(Errno::EIO)?;
            self.read_arena(src.checked_add(done).ok_or(Errno::EFAULT)?, part)?;
            self.write_arena(dest.checked_add(done).ok_or(Errno::EFAULT)?, part)?;
            done = done.saturating_add(n as u64);
        }
        Ok(())
    }

    /// Set `len` arena bytes at `addr` to `value`.
    fn fill_arena(&mut self, addr: u64, value: u8, len: u64) -> Result<(), Errno> {
        let buf = [value; COPY_CHUNK];
        let mut done = 0u64;
        while done < len {
            let n = chunk_len(len.saturating_sub(done));
            let part = buf.get(..n).ok_or(Errno::EIO)?;
            self.write_arena(addr.checked_add(done).ok_or(Errno::EFAULT)?, part)?;
            done = done.saturating_add(n as u64);
        }
        Ok(())
    }
}

/// Bytes the provided [`DriverHost`] copy loops move per step (small: a
/// bare-metal driver task has a small stack).
const COPY_CHUNK: usize = 1024;

fn chunk_len(remaining: u64) -> usize {
    usize::try_from(remaining).map_or(COPY_CHUNK, |r| r.min(COPY_CHUNK))
}

/// One backing device, served one request at a time.
pub trait BackingDevice {
    /// Name, mount point, device number and mount flags.
    fn registration(&self) -> DriverRegistration;
    /// Called once after registration, before any request: allocate
    /// storage, load images. A device that holds nothing until asked has
    /// nothing to do.
    fn start(&mut self, _host: &mut dyn DriverHost) -> Result<(), Errno> {
        Ok(())
    }
    /// Answer one request from the memory server.
    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply;
}

/// Decode one driver-request frame, serve it, and encode the reply (tag
/// echoed) into `out`; returns the reply's length. A frame that cannot be
/// decoded gets an error reply where its tag is known, else `None` (the
/// home drops the connection).
pub fn serve_frame(
    device: &mut dyn BackingDevice,
    frame: &[u8],
    host: &mut dyn DriverHost,
    out: &mut [u8; MAX_FRAME],
) -> Option<usize> {
    match decode_driver_request(frame) {
        Ok(request) => {
            let reply = device.serve(request.message, host);
            Some(encode_driver_reply(request.tag, &reply, out))
        }
        Err(e) => {
            let tag = e.tag()?;
            Some(encode_driver_reply(
                tag,
                &DriverReply::Error(e.errno()),
                out,
            ))
        }
    }
}
