//! The test environment of spec §14.0, as a contract between the vectors
//! and the home that builds it: where each file and device is mounted,
//! the known contents of the files, the configurable test device, and the
//! addresses that cannot be the spec's absolute ones in a home whose
//! "physical memory" is an arena somewhere in a host address space.
//!
//! [`build`] mounts it, the same for every home: the home says how it
//! runs a driver ([`Mounter`]) and what differs on its machine ([`Setup`]:
//! `/rom` copied or in place, `/dev/mtd1` simulated or a real chip, where
//! `/dev/mem`'s window lies).
//!
//! | path | what | spec |
//! | --- | --- | --- |
//! | [`DATA_F`] | copy-only filesystem file, [`DATA_F_LEN`] bytes of [`data_f_byte`], device `1f:02`, inode 37 | `/data/f` |
//! | [`DATA_NOEXEC_F`] | the same file on a second mount of the same filesystem type, mounted `noexec` | `/data` remounted `noexec` (vector 18) |
//! | `/tmp`, `/dev/shm` | memory filesystem (§7.5); `write()` places pages apart | |
//! | [`ROM_T`] | romfs file of [`ROM_T_LEN`] bytes of [`rom_t_byte`], on an MTD-ROM-like image in the arena | `/rom/t` |
//! | [`FB0`] | framebuffer, 1 MiB | `/dev/fb0` |
//! | [`MTD0`], [`MTD1`] | MTD character devices, ROM type and NOR flash type | `/dev/mtd0`, `/dev/mtd1` |
//! | [`TST`] | the configurable test device (`drivers::testdev`, configured through [`TestDevControl`]) | `/dev/tst` |
//! | [`MEM`], [`ZERO`] | `/dev/mem`, `/dev/zero` | |
//! | [`PIPE`], [`SOCKET`] | a FIFO and a socket object | "pipe read end", "socket" |
//! | [`RAMDISK`], [`RAMDISK_DIRECT`] | ramdisk with default capabilities, and one declaring `DIRECT\|COPY\|READ\|WRITE` | vector 122 |
//!
//! Removing the noexec mount's separate name would need a `mount -o
//! remount` request the protocol does not have; a second mount of the same
//! file, made `noexec` at registration, is how the environment offers it.

pub use drivers::testdev::{TestDevConfig, TestDevControl, TestDevCounters};

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;
use drivers::copyfs::{CopyFs, MemStore};
use drivers::devmem::DevMem;
use drivers::devzero::DevZero;
use drivers::fbdev::Framebuffer;
use drivers::flash::FlashChip;
use drivers::mtd::{Mtd, MtdType};
use drivers::pipe::Pipe;
use drivers::ramdisk::{Ramdisk, RamdiskMapping};
use drivers::ramfs::Ramfs;
use drivers::romfs::Romfs;
use drivers::socket::Socket;
use drivers::testdev::TestDev;
use drivers::{BackingDevice, MountPoint};
use protocol::Errno;

/// `/data/f`: 10000 bytes on the copy-only filesystem.
pub const DATA_F: &str = "/data/f";
/// The same file on the `noexec` mount (vector 18's remount).
pub const DATA_NOEXEC_F: &str = "/data-noexec/f";
/// `/data/f`'s length.
pub const DATA_F_LEN: u64 = 10_000;
/// `/data`'s device number, as `/proc/<pid>/maps` shows it.
pub const DATA_DEV: (u8, u8) = (0x1f, 0x02);
/// `/data/f`'s inode number.
pub const DATA_F_INO: u64 = 37;
/// `/rom/t`: 20000 bytes on romfs, direct (XIP) mappable.
pub const ROM_T: &str = "/rom/t";
/// `/rom/t`'s length.
pub const ROM_T_LEN: u64 = 20_000;
pub const FB0: &str = "/dev/fb0";
/// `/dev/fb0`'s screen size.
pub const FB0_LEN: u64 = 1 << 20;
pub const MTD0: &str = "/dev/mtd0";
pub const MTD1: &str = "/dev/mtd1";
pub const TST: &str = "/dev/tst";
pub const MEM: &str = "/dev/mem";
pub const ZERO: &str = "/dev/zero";
/// A FIFO (no mmap method).
pub const PIPE: &str = "/dev/pipe0";
/// A socket object (an mmap method, no capabilities).
pub const SOCKET: &str = "/dev/socket0";
/// A ramdisk declaring nothing (block device default: `COPY`).
pub const RAMDISK: &str = "/dev/ram0";
/// A ramdisk declaring `DIRECT|COPY|READ|WRITE` over one contiguous array.
pub const RAMDISK_DIRECT: &str = "/dev/ram1";

/// Linux `open` flags (asm-generic values), carried raw.
pub use protocol::linux::{O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};

/// Capability bits a backing declares (spec §1.1).
pub use drivers::flags::cap as caps;

/// Byte `i` of `/data/f` (and of `/data-noexec/f`): not periodic in the
/// page size, so a page read from the wrong offset shows.
pub const fn data_f_byte(i: u64) -> u8 {
    ((i * 31 + 7) % 251) as u8
}

/// Byte `i` of `/rom/t`.
pub const fn rom_t_byte(i: u64) -> u8 {
    ((i * 13 + 101) % 241) as u8
}

/// Addresses the spec gives absolutely, which a home places wherever its
/// arena is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landmark {
    /// Where the data of `/rom/t` sits in the romfs image: the spec's
    /// `0x40000000 + 0x1230` (image base + data offset; not page aligned).
    RomTData,
    /// `/dev/fb0`'s screen base, the spec's `0x30000000`.
    FrameBuffer,
    /// A page-aligned physical address `/dev/mem` maps (physical =
    /// virtual), standing for the spec's `0x20000000`.
    DevMemWindow,
    /// The array of [`RAMDISK_DIRECT`] (vector 122).
    RamdiskArray,
}

/// The byte every read of `/dev/tst` gives.
pub const TST_READ_BYTE: u8 = drivers::testdev::DEFAULT_READ_BYTE;

/// Every mount point of the environment, as `ListMounts` names them.
pub const MOUNT_POINTS: &[&str] = &[
    "/data",
    "/data-noexec",
    "/tmp",
    "/dev/shm",
    "/rom",
    FB0,
    MTD0,
    MTD1,
    TST,
    MEM,
    ZERO,
    PIPE,
    SOCKET,
    RAMDISK,
    RAMDISK_DIRECT,
];

/// How a home runs one backing device: as a driver of its own (a thread,
/// a task, a connection), registered with memsrv and started.
pub trait Mounter {
    /// What keeps the driver running; dropping it stops the driver.
    type Mount;
    /// Build the device at `point` with `make` where the driver runs (a
    /// board's driver task builds it in its own memory, which is all it
    /// may touch), then run it; once its `start` is done, `look` runs on
    /// it and what it returns comes back (where the driver put its
    /// storage).
    fn mount<D, F, R>(
        &mut self,
        point: MountPoint,
        make: F,
        look: fn(&D) -> R,
    ) -> Result<(Self::Mount, R), Errno>
    where
        D: BackingDevice + Send + 'static,
        F: FnOnce(MountPoint) -> Result<D, Errno> + Send + Clone + 'static,
        R: Send + 'static;
}

/// Where `/rom`'s image (a romfs holding `t`) comes from.
#[derive(Clone, Copy)]
pub enum RomImage {
    /// Copied into the arena when the driver starts (a host).
    Copied(&'static [u8]),
    /// Read where it lies, at `addr` (a board's flash bank).
    InPlace { image: &'static [u8], addr: u64 },
}

/// What `/dev/mtd1` (NOR flash) is.
pub enum NorFlash {
    /// 64 KiB of flash simulated in the arena.
    Simulated,
    /// A real chip, with its program and erase commands: taken where
    /// its driver runs (`None`: no chip).
    Chip(fn() -> Option<Box<dyn FlashChip + Send>>),
}

/// What differs between homes' environments.
pub struct Setup {
    pub rom: RomImage,
    pub nor: NorFlash,
    /// Memory outside the arena standing for device memory: `/dev/mem`'s
    /// window (memsrv lets a driver hand out arena addresses only from its
    /// own storage, and device memory lies outside). At least one page.
    pub device_memory: Range<u64>,
}

/// The environment, mounted: the drivers keep running while it lives.
pub struct Environment<M> {
    /// `/dev/tst`'s handle.
    pub tst: TestDevControl,
    rom_t: u64,
    screen: u64,
    ramdisk: u64,
    device_memory: u64,
    /// Mount handles, in mount order.
    pub mounts: Vec<M>,
}

impl<M> Environment<M> {
    /// Where this environment placed a landmark.
    pub fn landmark(&self, which: Landmark) -> u64 {
        match which {
            Landmark::RomTData => self.rom_t,
            Landmark::FrameBuffer => self.screen,
            Landmark::DevMemWindow => self.device_memory,
            Landmark::RamdiskArray => self.ramdisk,
        }
    }
}

fn at(path: &str, dev: (u8, u8)) -> Result<MountPoint, String> {
    MountPoint::new(path, dev).map_err(|e| format!("mount point {path}: {e:?}"))
}

/// Bytes that are not a multiple of anything the vectors use.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Mount every device of the table above through `mounter`.
///
/// * `/data` and `/data-noexec`: copy-only filesystems over in-memory
///   stores, each holding `f` ([`DATA_F_LEN`] bytes of [`data_f_byte`],
///   inode [`DATA_F_INO`], device [`DATA_DEV`]). `/data-noexec` is mounted
///   `noexec`: it stands for `/data` remounted `noexec` (vector 18); its
///   copy of `f` is separate, so a `pwrite` to `/data/f` does not reach it.
/// * `/tmp`, `/dev/shm`: ramfs, pages added by `write()` scattered.
/// * `/rom`: romfs over [`Setup::rom`]; the spec's `0x40001230` is the
///   image's address plus `t`'s data offset in it.
/// * `/dev/fb0` (512×512 bytes), `/dev/mtd0` (ROM type), `/dev/mtd1`
///   ([`Setup::nor`]), `/dev/tst` (a window of 16 arena pages as its base),
///   `/dev/mem` over [`Setup::device_memory`], `/dev/zero`, a FIFO and a
///   socket object, `/dev/ram0` (default capabilities) and `/dev/ram1`
///   (`DIRECT`, vector 122).
pub fn build<M: Mounter>(mounter: &mut M, setup: Setup) -> Result<Environment<M::Mount>, String> {
    fn fail(what: &str) -> impl Fn(Errno) -> String + '_ {
        move |e| format!("mounting {what}: {e:?}")
    }
    fn none<D>(_: &D) {}
    /// Mount a device whose driver reports nothing back.
    fn plain<M, D, F>(
        mounter: &mut M,
        mounts: &mut Vec<M::Mount>,
        point: MountPoint,
        make: F,
    ) -> Result<(), String>
    where
        M: Mounter,
        D: BackingDevice + Send + 'static,
        F: FnOnce(MountPoint) -> Result<D, Errno> + Send + Clone + 'static,
    {
        let path = String::from(point.path());
        let (mount, ()) = mounter.mount(point, make, none).map_err(fail(&path))?;
        mounts.push(mount);
        Ok(())
    }
    let mut mounts = Vec::new();
    for (path, minor, noexec) in [("/data", DATA_DEV.1, false), ("/data-noexec", 0x03, true)] {
        let mut point = at(path, (DATA_DEV.0, minor))?;
        if noexec {
            point = point.noexec();
        }
        plain(mounter, &mut mounts, point, |point| {
            let data: Vec<u8> = (0..DATA_F_LEN).map(data_f_byte).collect();
            let store = MemStore::new().with_file("f", DATA_F_INO, &data);
            Ok(CopyFs::new(point, store))
        })?;
    }
    for (path, minor) in [("/tmp", 0x10), ("/dev/shm", 0x11)] {
        plain(mounter, &mut mounts, at(path, (0, minor))?, |point| {
            Ok(Ramfs::new(point).scatter_written_pages(true))
        })?;
    }
    let rom = setup.rom;
    let make_rom = move |point| {
        match rom {
            RomImage::Copied(image) => Romfs::mount(image, point),
            RomImage::InPlace { image, addr } => Romfs::in_place(image, addr, point),
        }
        // The image is the environment's own: an index that fails is a
        // broken build, reported as the mount's failure.
        .map_err(|_| Errno::EINVAL)
    };
    let (mount, rom_t) = mounter
        .mount(at("/rom", (0x1f, 0x00))?, make_rom, |rom| {
            Some(rom.image_base()? + u64::from(rom.data_offset("t")?))
        })
        .map_err(fail("/rom"))?;
    mounts.push(mount);
    let rom_t = rom_t.ok_or("romfs: no address for t")?;
    let make_fb = |point| Ok(Framebuffer::new(point, 512, 512));
    let (mount, screen) = mounter
        .mount(at(FB0, (29, 0))?, make_fb, Framebuffer::screen_base)
        .map_err(fail(FB0))?;
    mounts.push(mount);
    let screen = screen.ok_or("fbdev: no screen")?;
    plain(mounter, &mut mounts, at(MTD0, (90, 0))?, |point| {
        let contents = pattern(64 << 10, 7);
        Ok(Mtd::new(point, MtdType::Rom, &contents, 16 << 10))
    })?;
    let point = at(MTD1, (90, 2))?;
    match setup.nor {
        NorFlash::Simulated => plain(mounter, &mut mounts, point, |point| {
            let contents = pattern(64 << 10, 13);
            Ok(Mtd::new(point, MtdType::Nor, &contents, 16 << 10))
        })?,
        NorFlash::Chip(take) => plain(mounter, &mut mounts, point, move |point| {
            let chip = take().ok_or(Errno::ENODEV)?;
            Ok(Mtd::on_chip(point, MtdType::Nor, chip))
        })?,
    }
    let make_tst = |point| Ok(TestDev::new(point).0.with_window(16));
    let (mount, tst) = mounter
        .mount(at(TST, (240, 0))?, make_tst, TestDev::control)
        .map_err(fail(TST))?;
    mounts.push(mount);
    let device_memory = setup.device_memory.start;
    let window = setup.device_memory;
    plain(mounter, &mut mounts, at(MEM, (1, 1))?, move |point| {
        Ok(DevMem::new(point, window))
    })?;
    plain(mounter, &mut mounts, at(ZERO, (1, 5))?, |point| {
        Ok(DevZero::new(point))
    })?;
    plain(mounter, &mut mounts, at(PIPE, (0, 0x12))?, |point| {
        Ok(Pipe::new(point))
    })?;
    plain(mounter, &mut mounts, at(SOCKET, (0, 0x13))?, |point| {
        Ok(Socket::new(point))
    })?;
    plain(mounter, &mut mounts, at(RAMDISK, (1, 0))?, |point| {
        Ok(Ramdisk::new(point, 64 << 10, RamdiskMapping::Copy))
    })?;
    let make_ram1 = |point| Ok(Ramdisk::new(point, 64 << 10, RamdiskMapping::Direct));
    let (mount, ramdisk) = mounter
        .mount(at(RAMDISK_DIRECT, (1, 1))?, make_ram1, Ramdisk::base)
        .map_err(fail(RAMDISK_DIRECT))?;
    mounts.push(mount);
    Ok(Environment {
        tst,
        rom_t,
        screen,
        ramdisk: ramdisk.ok_or("ramdisk: no array")?,
        device_memory,
        mounts,
    })
}
