//! §14.2 Direct versus copy: which requests get the backing's own memory
//! (§2.4, §2.6, §11) and which get a private copy, and what a copy holds.
//!
//! The spec's absolute addresses become the home's landmarks: `/rom/t`'s
//! data (`0x40001230`: image base in the arena + the file's data offset,
//! not page aligned), the test device's base (`0x50000000`) and the
//! `/dev/mem` window (`0x20000000`).

use super::env::{
    caps, data_f_byte, rom_t_byte, TestDevConfig, DATA_F, DATA_F_LEN, MEM, MTD0, MTD1, O_RDONLY,
    O_RDWR, ROM_T, TST, TST_READ_BYTE, ZERO,
};
use super::support::{expect_bytes, expect_filled, fill, landmark, open, Process, Tst, P, RW};
use super::{Failure, Harness, Landmark};
use alloc::vec;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ};
use protocol::Errno;

const R: u32 = PROT_READ;
const RX: u32 = PROT_READ | PROT_EXEC;

/// The capabilities vectors 26–29 give `/dev/tst`.
const DCRW: u8 = caps::DIRECT | caps::COPY | caps::READ | caps::WRITE;

/// `/rom/t`'s data is the spec's `0x40001230` ([`Landmark::RomTData`]).
pub(super) fn v22_rom_xip(harness: &dyn Harness) -> Result<(), Failure> {
    let t = landmark(harness, Landmark::RomTData)?;
    let p = Process::spawn(harness)?;
    let before = p.mmap_copy_kb()?;
    let x = p.open_map(ROM_T, O_RDONLY, 8192, R, MAP_PRIVATE, 0)?;
    ensure_eq!(
        x,
        t,
        "address of PRIVATE R of /rom/t (the file's data in the image)"
    );
    ensure!(
        x % P != 0,
        "{x:#x} is page aligned; the spec's XIP address is not"
    );
    ensure_eq!(p.mc_delta(before)?, 0, "MC delta");
    expect_bytes(
        harness,
        x,
        8192,
        rom_t_byte,
        "/rom/t through the XIP mapping",
    )?;
    ok!(p.munmap(x, 8192), "munmap");
    // The whole file, its last page running past its data (and perhaps past
    // the image): still in place, as Linux's romfs clips only what it asks
    // of the device.
    let whole = p.open_map(ROM_T, O_RDONLY, 20480, R, MAP_PRIVATE, 0)?;
    ensure_eq!(whole, t, "address of the whole of /rom/t (20480 bytes)");
    ensure_eq!(p.mc_delta(before)?, 0, "MC delta of the whole file");
    ok!(p.munmap(whole, 20480), "munmap of the whole file");
    Ok(())
}

pub(super) fn v23_rom_private_rw(harness: &dyn Harness) -> Result<(), Failure> {
    let t = landmark(harness, Landmark::RomTData)?;
    let p = Process::spawn(harness)?;
    let before = p.mmap_copy_kb()?;
    let x = p.open_map(ROM_T, O_RDONLY, 8192, RW, MAP_PRIVATE, 0)?;
    ensure!(x != t, "PRIVATE RW got the XIP address {t:#x}");
    ensure_eq!(x % P, 0, "alignment of the copy {x:#x}");
    expect_bytes(
        harness,
        x,
        8192,
        rom_t_byte,
        "the copy of /rom/t bytes 0-8191",
    )?;
    ensure_eq!(p.mc_delta(before)?, 8, "MC delta");
    // The copy is private: writing it leaves the image alone.
    fill(harness, x, 16, 0)?;
    expect_bytes(
        harness,
        t,
        16,
        rom_t_byte,
        "/rom/t in the image after writing the copy",
    )?;
    Ok(())
}

/// The R and R|X mappings share one region: one line in `/proc/maps`.
pub(super) fn v24_rom_rx(harness: &dyn Harness) -> Result<(), Failure> {
    let t = landmark(harness, Landmark::RomTData)?;
    let (p, q) = Process::two(harness)?;
    let rx = p.open_map(ROM_T, O_RDONLY, 8192, RX, MAP_PRIVATE, 0)?;
    ensure_eq!(rx, t, "address of PRIVATE R|X of /rom/t");
    let r = q.open_map(ROM_T, O_RDONLY, 8192, R, MAP_PRIVATE, 0)?;
    ensure_eq!(
        r,
        t,
        "address of PRIVATE R of /rom/t while the R|X mapping lives"
    );
    let maps = p.global_maps()?;
    let lines = maps
        .lines()
        .filter(|l| l.starts_with(&alloc::format!("{t:08x}-")))
        .count();
    ensure_eq!(lines, 1, "/proc/maps lines for the XIP region: {maps:?}");
    Ok(())
}

pub(super) fn v25_shared_rw_without_write(harness: &dyn Harness) -> Result<(), Failure> {
    let config = TestDevConfig {
        caps: Some(caps::DIRECT | caps::COPY | caps::READ),
        ..TestDevConfig::default()
    };
    let (_tst, p, fd) = Tst::opened(harness, config, O_RDWR)?;
    ensure_errno!(
        p.map_fd(P, RW, MAP_SHARED, fd, 0),
        Errno::EINVAL,
        "SHARED RW of /dev/tst declaring DIRECT|COPY|READ"
    );
    Ok(())
}

fn gua_fails(errno: Errno) -> TestDevConfig {
    TestDevConfig {
        caps: Some(DCRW),
        get_unmapped_area: Some(Err(errno)),
        ..TestDevConfig::default()
    }
}

pub(super) fn v26_gua_enosys_private(harness: &dyn Harness) -> Result<(), Failure> {
    let tst = Tst::set(harness, gua_fails(Errno::ENOSYS))?;
    let p = Process::spawn(harness)?;
    let before = p.mmap_copy_kb()?;
    let fd = open(&p, TST, O_RDONLY)?;
    let x = ok!(p.map_fd(P, R, MAP_PRIVATE, fd, 0), "PRIVATE R of /dev/tst");
    ensure_eq!(x % P, 0, "alignment of the copy {x:#x}");
    ensure!(x != tst.base(), "the copy is at the device's base {x:#x}");
    expect_filled(harness, x, P, TST_READ_BYTE, "the copy")?;
    ensure_eq!(p.mc_delta(before)?, 4, "MC delta");
    Ok(())
}

pub(super) fn v27_gua_enosys_shared(harness: &dyn Harness) -> Result<(), Failure> {
    let (_tst, p, fd) = Tst::opened(harness, gua_fails(Errno::ENOSYS), O_RDONLY)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_SHARED, fd, 0),
        Errno::ENODEV,
        "SHARED R of /dev/tst whose get_unmapped_area says ENOSYS"
    );
    Ok(())
}

pub(super) fn v28_gua_einval(harness: &dyn Harness) -> Result<(), Failure> {
    let _tst = Tst::set(harness, gua_fails(Errno::EINVAL))?;
    let p = Process::spawn(harness)?;
    let before = p.mmap_copy_kb()?;
    let fd = open(&p, TST, O_RDONLY)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_PRIVATE, fd, 0),
        Errno::EINVAL,
        "PRIVATE R of /dev/tst whose get_unmapped_area says EINVAL"
    );
    ensure_eq!(p.mc_delta(before)?, 0, "MC delta");
    Ok(())
}

/// The shared request comes first: a private read-only copy would be
/// shareable, and a later `MAP_SHARED` request of the same range lands on
/// it (§3.2) instead of asking the device.
pub(super) fn v29_mmap_enosys(harness: &dyn Harness) -> Result<(), Failure> {
    let config = TestDevConfig {
        caps: Some(DCRW),
        mmap: Err(Errno::ENOSYS),
        ..TestDevConfig::default()
    };
    let (tst, p, fd) = Tst::opened(harness, config, O_RDONLY)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_SHARED, fd, 0),
        Errno::ENODEV,
        "SHARED R of /dev/tst whose mmap says ENOSYS"
    );
    let x = ok!(p.map_fd(P, R, MAP_PRIVATE, fd, 0), "PRIVATE R of /dev/tst");
    ensure!(x != tst.base(), "PRIVATE R got the device's base {x:#x}");
    ensure_eq!(x % P, 0, "alignment of the copy {x:#x}");
    expect_filled(harness, x, P, TST_READ_BYTE, "the copy")?;
    Ok(())
}

pub(super) fn v30_mmap_eio(harness: &dyn Harness) -> Result<(), Failure> {
    let config = TestDevConfig {
        mmap: Err(Errno::EIO),
        ..TestDevConfig::default()
    };
    let _tst = Tst::set(harness, config)?;
    let p = Process::spawn(harness)?;
    let regions = p.global_maps()?;
    let fd = open(&p, TST, O_RDONLY)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_SHARED, fd, 0),
        Errno::EIO,
        "SHARED R of /dev/tst whose mmap says EIO"
    );
    ensure_eq!(p.global_maps()?, regions, "/proc/maps after the refusal");
    ensure_eq!(p.maps()?, "", "the process's maps after the refusal");
    Ok(())
}

pub(super) fn v31_private_without_copy(harness: &dyn Harness) -> Result<(), Failure> {
    let config = TestDevConfig {
        caps: Some(caps::DIRECT | caps::READ),
        ..TestDevConfig::default()
    };
    let (_tst, p, fd) = Tst::opened(harness, config, O_RDONLY)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_PRIVATE, fd, 0),
        Errno::ENODEV,
        "PRIVATE R of /dev/tst declaring DIRECT|READ"
    );
    Ok(())
}

pub(super) fn v32_rx_without_exec(harness: &dyn Harness) -> Result<(), Failure> {
    let config = TestDevConfig {
        caps: Some(caps::DIRECT | caps::COPY | caps::READ),
        ..TestDevConfig::default()
    };
    let (tst, p, fd) = Tst::opened(harness, config, O_RDONLY)?;
    let x = ok!(
        p.map_fd(P, RX, MAP_PRIVATE, fd, 0),
        "PRIVATE R|X of /dev/tst"
    );
    ensure!(x != tst.base(), "PRIVATE R|X got the device's base {x:#x}");
    expect_filled(harness, x, P, TST_READ_BYTE, "the copy")?;
    Ok(())
}

/// Byte `i` of a copy of `/data/f` from offset 0: the file, then zeros.
pub(super) fn data_or_zero(i: u64) -> u8 {
    if i < DATA_F_LEN {
        data_f_byte(i)
    } else {
        0
    }
}

pub(super) fn v33_copy_past_eof(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let x = p.open_map(DATA_F, O_RDONLY, 12288, R, MAP_PRIVATE, 0)?;
    expect_bytes(
        harness,
        x,
        12288,
        data_or_zero,
        "/data/f copy of 12288 bytes",
    )?;
    Ok(())
}

pub(super) fn v34_copy_beyond_eof(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = open(&p, DATA_F, O_RDONLY)?;
    let x = ok!(
        p.client().mmap2(0, P, R, MAP_PRIVATE, fd, 5),
        "PRIVATE R of /data/f at pgoff 5"
    );
    expect_filled(harness, x, P, 0, "the copy beyond EOF")?;
    Ok(())
}

pub(super) fn v35_memfs_shared_aliases(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let (fd, x) = p.shared_fresh_file("/tmp/s", 8192)?;
    ok!(harness.write(x + 5000, b"through X"), "store through X");
    let mut seen = [0u8; 9];
    let got = ok!(p.client().pread(fd, &mut seen, 5000), "pread of /tmp/s");
    ensure_eq!(
        &seen[..got],
        b"through X",
        "pread after the store through X"
    );
    let wrote = ok!(p.client().pwrite(fd, b"by pwrite", 100), "pwrite of /tmp/s");
    ensure_eq!(wrote, 9, "bytes written by pwrite");
    ok!(harness.read(x + 100, &mut seen), "load through X");
    ensure_eq!(&seen, b"by pwrite", "bytes through X after pwrite");
    Ok(())
}

pub(super) fn v36_memfs_written_pages(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = p.fresh_file("/tmp/w", 0)?;
    let data = vec![0x5au8; 3 * P as usize];
    let wrote = ok!(p.client().write(fd, &data), "write() of 3 pages to /tmp/w");
    ensure_eq!(wrote, data.len(), "bytes written");
    let before = p.mmap_copy_kb()?;
    ensure_errno!(
        p.map_fd(3 * P, R, MAP_SHARED, fd, 0),
        Errno::ENODEV,
        "SHARED R of /tmp/w (pages written apart)"
    );
    let x = ok!(
        p.map_fd(3 * P, R, MAP_PRIVATE, fd, 0),
        "PRIVATE R of /tmp/w"
    );
    expect_filled(harness, x, 3 * P, 0x5a, "the copy of /tmp/w")?;
    ensure_eq!(p.mc_delta(before)?, 12, "MC delta");
    Ok(())
}

pub(super) fn v37_memfs_shared_past_eof(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = p.fresh_file("/tmp/s", 8192)?;
    ensure_errno!(
        p.map_fd(12288, R, MAP_SHARED, fd, 0),
        Errno::ENODEV,
        "SHARED R of the 8192-byte /tmp/s, len 12288"
    );
    Ok(())
}

pub(super) fn v38_rom_beyond_eof(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = open(&p, ROM_T, O_RDONLY)?;
    ensure_errno!(
        p.client().mmap2(0, P, R, MAP_PRIVATE, fd, 10),
        Errno::EINVAL,
        "PRIVATE R of /rom/t at pgoff 10"
    );
    let x = ok!(
        p.client().mmap2(0, P, RW, MAP_PRIVATE, fd, 10),
        "PRIVATE RW of /rom/t at pgoff 10"
    );
    expect_filled(harness, x, P, 0, "the copy beyond EOF")?;
    Ok(())
}

/// "Contents = flash contents": compared with what `pread` of the device
/// gives.
pub(super) fn v39_mtd_flash(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = open(&p, MTD1, O_RDONLY)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_SHARED, fd, 0),
        Errno::ENODEV,
        "SHARED R of /dev/mtd1 (NOR flash)"
    );
    for pages in [1u64, 2] {
        let before = p.mmap_copy_kb()?;
        let x = ok!(
            p.map_fd(pages * P, R, MAP_PRIVATE, fd, 0),
            "PRIVATE R of /dev/mtd1, {pages} page(s)"
        );
        ensure_eq!(
            p.mc_delta(before)? as u64,
            4 * pages,
            "MC delta for {pages} page(s)"
        );
        let mut flash = vec![0u8; (pages * P) as usize];
        let got = ok!(p.client().pread(fd, &mut flash, 0), "pread of /dev/mtd1");
        ensure_eq!(got, flash.len(), "bytes read from /dev/mtd1");
        expect_bytes(
            harness,
            x,
            pages * P,
            |i| flash[i as usize],
            "the copy of the flash",
        )?;
        ok!(p.munmap(x, pages * P), "munmap");
    }
    Ok(())
}

pub(super) fn v40_mtd_rom_private(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = open(&p, MTD0, O_RDONLY)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_PRIVATE, fd, 0),
        Errno::EACCES,
        "PRIVATE R of /dev/mtd0 (ROM type)"
    );
    Ok(())
}

/// The spec's physical address `0x20000000` is a page-aligned address of
/// this home's memory ([`Landmark::DevMemWindow`]).
pub(super) fn v41_dev_mem_shared(harness: &dyn Harness) -> Result<(), Failure> {
    let window = landmark(harness, Landmark::DevMemWindow)?;
    let p = Process::spawn(harness)?;
    let fd = open(&p, MEM, O_RDWR)?;
    let what = alloc::format!("SHARED RW of /dev/mem at offset {window:#x}");
    let x = p.map_direct(fd, (P, RW, MAP_SHARED, window), window, &what)?;
    ok!(p.munmap(x, P), "munmap");
    Ok(())
}

pub(super) fn v42_dev_mem_private(harness: &dyn Harness) -> Result<(), Failure> {
    let window = landmark(harness, Landmark::DevMemWindow)?;
    let p = Process::spawn(harness)?;
    let fd = open(&p, MEM, O_RDWR)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_PRIVATE, fd, window),
        Errno::ENODEV,
        "PRIVATE R of /dev/mem"
    );
    Ok(())
}

pub(super) fn v43_dev_zero(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let before = p.mmap_copy_kb()?;
    let fd = open(&p, ZERO, O_RDWR)?;
    let x = ok!(
        p.map_fd(8192, RW, MAP_PRIVATE, fd, 0),
        "PRIVATE RW of /dev/zero"
    );
    expect_filled(harness, x, 8192, 0, "the /dev/zero copy")?;
    ensure_eq!(p.mc_delta(before)?, 8, "MC delta");
    ensure_errno!(
        p.map_fd(8192, RW, MAP_SHARED, fd, 0),
        Errno::ENODEV,
        "SHARED RW of /dev/zero opened O_RDWR"
    );
    let read_only = open(&p, ZERO, O_RDONLY)?;
    ensure_errno!(
        p.map_fd(8192, RW, MAP_SHARED, read_only, 0),
        Errno::EACCES,
        "SHARED RW of /dev/zero opened O_RDONLY"
    );
    Ok(())
}

pub(super) fn v44_shared_anon_is_private(harness: &dyn Harness) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    let shared_anon = MAP_SHARED | MAP_ANONYMOUS;
    let x = ok!(a.mmap(0, P, RW, shared_anon), "A: mmap SHARED|ANON");
    ok!(
        harness.write(x, &1u32.to_ne_bytes()),
        "A: store 1 at {x:#x}"
    );
    let y = ok!(b.mmap(0, P, RW, shared_anon), "B: mmap SHARED|ANON");
    ensure!(y != x, "B got A's address {x:#x}");
    expect_filled(harness, y, P, 0, "B's page")?;
    let mut word = [0u8; 4];
    ok!(harness.read(x, &mut word), "A: load {x:#x}");
    ensure_eq!(u32::from_ne_bytes(word), 1, "A's word after B mapped");
    Ok(())
}
