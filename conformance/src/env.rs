//! The test environment of spec §14.0, as a contract between the vectors
//! and the home that builds it: where each file and device is mounted,
//! the known contents of the files, the configurable test device, and the
//! addresses that cannot be the spec's absolute ones in a home whose
//! "physical memory" is an arena somewhere in a host address space.
//!
//! | path | what | spec |
//! | --- | --- | --- |
//! | [`DATA_F`] | copy-only filesystem file, [`DATA_F_LEN`] bytes of [`data_f_byte`], device `1f:02`, inode 37 | `/data/f` |
//! | [`DATA_NOEXEC_F`] | the same file on a second mount of the same filesystem type, mounted `noexec` | `/data` remounted `noexec` (vector 18) |
//! | `/tmp`, `/dev/shm` | memory filesystem (§7.5); `write()` places pages apart | |
//! | [`ROM_T`] | romfs file of [`ROM_T_LEN`] bytes of [`rom_t_byte`], on an MTD-ROM-like image in the arena | `/rom/t` |
//! | [`FB0`] | framebuffer, 1 MiB | `/dev/fb0` |
//! | [`MTD0`], [`MTD1`] | MTD character devices, ROM type and NOR flash type | `/dev/mtd0`, `/dev/mtd1` |
//! | [`TST`] | the configurable test device ([`TestDevice`]) | `/dev/tst` |
//! | [`MEM`], [`ZERO`] | `/dev/mem`, `/dev/zero` | |
//! | [`PIPE`], [`SOCKET`] | a FIFO and a socket object | "pipe read end", "socket" |
//! | [`RAMDISK`], [`RAMDISK_DIRECT`] | ramdisk with default capabilities, and one declaring `DIRECT\|COPY\|READ\|WRITE` | vector 122 |
//!
//! Removing the noexec mount's separate name would need a `mount -o
//! remount` request the protocol does not have; a second mount of the same
//! file, made `noexec` at registration, is how the environment offers it.

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
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 0o1;
pub const O_RDWR: u32 = 0o2;
pub const O_CREAT: u32 = 0o100;
pub const O_TRUNC: u32 = 0o1000;

/// Capability bits a backing declares (spec §1.1).
pub mod caps {
    pub const COPY: u8 = 0x01;
    pub const DIRECT: u8 = 0x08;
    pub const READ: u8 = 0x10;
    pub const WRITE: u8 = 0x20;
    pub const EXEC: u8 = 0x40;
}

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

/// How `/dev/tst` answers; [`TestDeviceConfig::default`] is the spec's
/// default device (§14.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestDeviceConfig {
    /// Declared capabilities ([`caps`]); `None` declares nothing (the
    /// character-device defaults `DIRECT|READ|WRITE` apply).
    pub caps: Option<u8>,
    /// `None`: no `get_unmapped_area` method. `Some(Ok(()))`: it answers
    /// [`TestDevice::base`] `+ pgoff·P`. `Some(Err(e))`: it fails with `e`
    /// (`ENOSYS` = "copy instead").
    pub get_unmapped_area: Option<Result<(), Errno>>,
    /// What its `mmap` answers.
    pub mmap: Result<(), Errno>,
    /// Whether it has a read method (reads give `0xAA` bytes).
    pub read: bool,
    /// Whether it has a per-mapping `close` hook.
    pub close: bool,
}

impl Default for TestDeviceConfig {
    fn default() -> Self {
        Self {
            caps: None,
            get_unmapped_area: Some(Ok(())),
            mmap: Ok(()),
            read: true,
            close: true,
        }
    }
}

/// The byte every read of `/dev/tst` gives.
pub const TST_READ_BYTE: u8 = 0xAA;

/// What `/dev/tst` has been asked so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestDeviceCounters {
    /// `mmap` approvals asked for.
    pub mmap_calls: u64,
    /// `close` calls for removed mappings.
    pub close_calls: u64,
}

/// The configuration handle of `/dev/tst`. A new configuration applies to
/// opens made after it (memsrv learns capabilities and methods at lookup).
pub trait TestDevice {
    fn configure(&self, config: TestDeviceConfig);
    /// Where page 0 of the device lives: the spec's `0x50000000`.
    fn base(&self) -> u64;
    fn counters(&self) -> TestDeviceCounters;
}
