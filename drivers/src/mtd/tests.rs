use super::*;
use crate::flags::open::{RDONLY, RDWR, WRONLY};
use crate::flags::vm::{MAYOVERLAY, MAYSHARE, SHARED};
use crate::testing::*;
use alloc::boxed::Box;
use alloc::vec::Vec;

const BLOCK: u64 = 4096;

fn image() -> Vec<u8> {
    (0..4 * BLOCK as usize).map(pattern).collect()
}

fn device(kind: MtdType) -> (Mtd, TestHost) {
    started(Mtd::new(
        MountPoint::new("/dev/mtd0", (90, 0)).unwrap(),
        kind,
        &image(),
        BLOCK,
    ))
}

#[test]
fn capabilities_follow_the_type() {
    for (kind, caps) in [
        (MtdType::Rom, 0x01 | 0x08 | 0x10 | 0x40),
        (MtdType::Ram, 0x01 | 0x08 | 0x10 | 0x20 | 0x40),
        (MtdType::Nor, 0x01),
    ] {
        let (mut mtd, mut host) = device(kind);
        let info = opened(mtd.serve(lookup("", RDONLY, 0), &mut host));
        assert_eq!(info.caps, Some(caps), "{kind:?}");
        assert_eq!(info.kind, ObjectKind::CharDevice);
        assert_eq!(info.size, 4 * BLOCK);
        assert_eq!(
            info.ops.0,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA
        );
        assert_eq!(
            data(mtd.serve(read_data(1, 100, 8), &mut host)),
            &image()[100..108]
        );
        let dest = host.alloc_backing(1).unwrap();
        assert_eq!(
            count(mtd.serve(read_into(1, 4096, 4096, dest), &mut host)),
            4096
        );
        assert_eq!(host.read(dest, 4096), &image()[4096..8192]);
    }
    assert_eq!(device(MtdType::Nor).0.registration().name.as_str(), "mtd");
}

/// Vector 40, and the shared mappings that do work on ROM.
#[test]
fn rom_is_read_only_and_maps_shared_only() {
    let (mut mtd, mut host) = device(MtdType::Rom);
    let base = mtd.base().unwrap();
    assert_errors(
        &mut mtd,
        &mut host,
        &[
            (lookup("", RDWR, 0), Errno::EACCES),
            (lookup("", WRONLY, 0), Errno::EACCES),
            (lookup(ERASE_PATH, RDONLY, 0), Errno::ENOENT),
        ],
    );
    assert_eq!(
        address(mtd.serve(get_unmapped_area(1, 8192, 1), &mut host)),
        base + 4096
    );
    assert_eq!(
        mtd.serve(mmap(1, base, 4096, 0, SHARED | MAYSHARE), &mut host),
        DriverReply::Done
    );
    assert_errors(
        &mut mtd,
        &mut host,
        &[
            (
                mmap(1, base, 4096, 0, 0x1 | 0x10 | MAYOVERLAY),
                Errno::EACCES,
            ),
            (write_data(1, 0, b"x"), Errno::EROFS),
        ],
    );
    assert_eq!(mtd.erase(&mut host, 0, BLOCK), Err(Errno::EROFS));
}

#[test]
fn get_unmapped_area_checks_like_mtdchar() {
    let (mut mtd, mut host) = device(MtdType::Ram);
    let base = mtd.base().unwrap();
    assert_eq!(
        address(mtd.serve(get_unmapped_area(1, 4 * BLOCK, 0), &mut host)),
        base
    );
    assert_eq!(
        address(mtd.serve(get_unmapped_area(1, 10, 3), &mut host)),
        base + 3 * 4096
    );
    assert_bad_ranges(
        &mut mtd,
        &mut host,
        1,
        &[(4 * BLOCK + 1, 0), (4096, 4), (8192, 3), (1, u64::MAX)],
    );
    // NOR flash cannot be pointed at (Current Linux: ENODEV).
    let (mut nor, mut host) = device(MtdType::Nor);
    assert_eq!(
        error(nor.serve(get_unmapped_area(1, 4096, 0), &mut host)),
        Errno::ENODEV
    );
}

#[test]
fn ram_writes_and_erases_in_place() {
    let (mut mtd, mut host) = device(MtdType::Ram);
    let base = mtd.base().unwrap();
    host.clear_events();
    assert_eq!(
        count(mtd.serve(write_data(1, 10, &[0xFF, 0x00, 0x5A]), &mut host)),
        3
    );
    assert_eq!(
        host.read(base + 10, 3),
        [0xFF, 0x00, 0x5A],
        "overwritten, not programmed"
    );
    mtd.erase(&mut host, BLOCK, BLOCK).unwrap();
    assert!(host
        .read(base + BLOCK, BLOCK as usize)
        .iter()
        .all(|b| *b == ERASED));
    assert!(
        !host
            .events()
            .iter()
            .any(|e| matches!(e, HostEvent::BeginExclusive(_))),
        "RAM has no modes"
    );
    assert_eq!(
        count(mtd.serve(write_data(1, 4 * BLOCK - 1, b"ab"), &mut host)),
        1
    );
    assert_eq!(
        error(mtd.serve(write_data(1, 4 * BLOCK, b"ab"), &mut host)),
        Errno::ENOSPC
    );
}

/// Programming clears bits only; erasing sets a whole block; both go
/// through the exclusive section with the status pattern showing while
/// the chip is busy.
#[test]
fn nor_programs_and_erases_through_the_status_window() {
    let (mut mtd, mut host) = device(MtdType::Nor);
    let base = mtd.base().unwrap();
    mtd.erase(&mut host, 0, BLOCK).unwrap();
    assert!(host.read(base, BLOCK as usize).iter().all(|b| *b == ERASED));
    host.clear_events();
    assert_eq!(
        count(mtd.serve(write_data(1, 100, &[0x0F, 0xF0]), &mut host)),
        2
    );
    assert_eq!(host.read(base + 100, 2), [0x0F, 0xF0]);
    assert_eq!(
        host.events(),
        [
            HostEvent::BeginExclusive(1),
            HostEvent::Write {
                addr: base,
                len: BLOCK,
                fill: Some(STATUS)
            },
            HostEvent::Write {
                addr: base,
                len: BLOCK,
                fill: None
            },
            HostEvent::EndExclusive(1),
        ]
        .iter()
        .flat_map(|e| match e {
            // fill_arena writes in chunks of 1 KiB
            HostEvent::Write {
                addr,
                fill: Some(s),
                ..
            } => (0..4)
                .map(|i| HostEvent::Write {
                    addr: addr + i * 1024,
                    len: 1024,
                    fill: Some(*s),
                })
                .collect::<Vec<_>>(),
            other => alloc::vec![other.clone()],
        })
        .collect::<Vec<_>>()
    );
    assert!(!host.in_exclusive(1));
    // A second program can only clear more bits.
    mtd.serve(write_data(1, 100, &[0xF0, 0xFF]), &mut host);
    assert_eq!(host.read(base + 100, 2), [0x00, 0xF0]);
    // Reads see data, never status.
    assert_eq!(
        data(mtd.serve(read_data(1, 100, 2), &mut host)),
        [0x00, 0xF0]
    );
    // Erase brings the bits back; the other blocks are untouched.
    mtd.erase(&mut host, 0, BLOCK).unwrap();
    assert_eq!(host.read(base + 100, 2), [0xFF, 0xFF]);
    assert_eq!(
        host.read(base + BLOCK, BLOCK as usize),
        &image()[BLOCK as usize..2 * BLOCK as usize]
    );
}

#[test]
fn a_program_spanning_two_blocks_changes_both() {
    let (mut mtd, mut host) = device(MtdType::Nor);
    let base = mtd.base().unwrap();
    mtd.erase(&mut host, 0, 2 * BLOCK).unwrap();
    assert_eq!(
        count(mtd.serve(write_data(1, BLOCK - 2, &[0; 4]), &mut host)),
        4
    );
    assert_eq!(host.read(base + BLOCK - 3, 6), [0xFF, 0, 0, 0, 0, 0xFF]);
    // Short at the end of the device, ENOSPC at it.
    assert_eq!(
        count(mtd.serve(write_data(1, 4 * BLOCK - 1, &[0; 4]), &mut host)),
        1
    );
    assert_eq!(
        error(mtd.serve(write_data(1, 4 * BLOCK, &[0]), &mut host)),
        Errno::ENOSPC
    );
    assert_eq!(count(mtd.serve(write_data(1, 0, &[]), &mut host)), 0);
}

/// While a direct mapping exists the server refuses the mode change: the
/// write fails EBUSY and the window never shows status words.
#[test]
fn a_mapped_device_refuses_program_and_erase() {
    let (mut mtd, mut host) = started(
        Mtd::new(
            MountPoint::new("/dev/mtd2", (90, 4)).unwrap(),
            MtdType::Nor,
            &image(),
            BLOCK,
        )
        .with_direct_window(),
    );
    let base = mtd.base().unwrap();
    let info = opened(mtd.serve(lookup("", RDWR, 0), &mut host));
    assert_eq!(info.caps, Some(0x01 | 0x08 | 0x10 | 0x40));
    assert_eq!(
        address(mtd.serve(get_unmapped_area(1, 4096, 2), &mut host)),
        base + 8192
    );
    host.set_mapped(1);
    host.clear_events();
    assert_eq!(
        error(mtd.serve(write_data(1, 0, &[0]), &mut host)),
        Errno::EBUSY
    );
    assert_eq!(mtd.erase(&mut host, 0, BLOCK), Err(Errno::EBUSY));
    assert!(host.events().is_empty(), "{:?}", host.events());
    assert_eq!(host.read(base, 4 * BLOCK as usize), image());
    host.set_unmapped(1);
    assert_eq!(count(mtd.serve(write_data(1, 0, &[0]), &mut host)), 1);
    assert_eq!(host.read(base, 1), [0]);
}

#[test]
fn the_erase_control_object_takes_erase_info_user() {
    let (mut mtd, mut host) = device(MtdType::Nor);
    let base = mtd.base().unwrap();
    let ctl = opened(mtd.serve(lookup(ERASE_PATH, WRONLY, 0), &mut host));
    assert_eq!(ctl.object, ERASE_OBJECT);
    assert_eq!(ctl.ops.0, DriverOps::WRITE);
    let mut cmd = Vec::new();
    cmd.extend_from_slice(&(2 * BLOCK as u32).to_le_bytes());
    cmd.extend_from_slice(&(BLOCK as u32).to_le_bytes());
    assert_eq!(
        count(mtd.serve(write_data(ERASE_OBJECT, 0, &cmd), &mut host)),
        8
    );
    assert!(host
        .read(base + 2 * BLOCK, BLOCK as usize)
        .iter()
        .all(|b| *b == ERASED));
    let mut cmd64 = Vec::new();
    cmd64.extend_from_slice(&0u64.to_le_bytes());
    cmd64.extend_from_slice(&BLOCK.to_le_bytes());
    assert_eq!(
        count(mtd.serve(write_data(ERASE_OBJECT, 0, &cmd64), &mut host)),
        16
    );
    assert!(host.read(base, BLOCK as usize).iter().all(|b| *b == ERASED));
    for bad in [
        &[1u8, 2, 3][..],
        &[0, 0, 0, 0, 1, 0, 0, 0][..],              // not whole blocks
        &[1, 0, 0, 0, 0, 16, 0, 0][..],             // misaligned start
        &[0, 0, 0, 0, 0, 0, 1, 0][..],              // beyond the device
        &[0, 0, 0, 0, 0, 0, 0, 0][..],              // nothing
        &[0xFF, 0xFF, 0xFF, 0xFF, 0, 16, 0, 0][..], // start + len overflows the device
    ] {
        assert_eq!(
            error(mtd.serve(write_data(ERASE_OBJECT, 0, bad), &mut host)),
            Errno::EINVAL,
            "{bad:?}"
        );
    }
    assert_errors(
        &mut mtd,
        &mut host,
        &[
            (read_data(ERASE_OBJECT, 0, 8), Errno::EINVAL),
            (get_unmapped_area(ERASE_OBJECT, 4096, 0), Errno::EBADF),
        ],
    );
    assert!(!host.in_exclusive(1));
}

#[test]
fn blank_devices_and_bad_geometry() {
    let mut host = TestHost::new();
    let m = MountPoint::new("/dev/mtd3", (90, 6)).unwrap();
    let mut nor = Mtd::blank(m.clone(), MtdType::Nor, 2 * BLOCK, BLOCK);
    nor.start(&mut host).unwrap();
    assert!(host
        .read(nor.base().unwrap(), 2 * BLOCK as usize)
        .iter()
        .all(|b| *b == ERASED));
    let mut ram = Mtd::blank(m.clone(), MtdType::Ram, BLOCK, BLOCK);
    ram.start(&mut host).unwrap();
    assert!(host
        .read(ram.base().unwrap(), BLOCK as usize)
        .iter()
        .all(|b| *b == 0));
    assert_eq!(
        Mtd::blank(m.clone(), MtdType::Nor, 5000, BLOCK).start(&mut host),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        Mtd::blank(m.clone(), MtdType::Nor, BLOCK, 0).start(&mut host),
        Err(Errno::EINVAL)
    );
    let mut unstarted = Mtd::blank(m, MtdType::Nor, BLOCK, BLOCK);
    assert_eq!(
        error(unstarted.serve(lookup("", 0, 0), &mut host)),
        Errno::EIO
    );
    assert_eq!(unstarted.erase(&mut host, 0, BLOCK), Err(Errno::EIO));
}

/// A host that tells the simulated chip when an exclusive section is held.
struct Probe<'a> {
    host: &'a mut TestHost,
    stats: alloc::sync::Arc<FlashStats>,
}

impl DriverHost for Probe<'_> {
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.host.write_arena(addr, bytes)
    }
    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.host.read_arena(addr, buf)
    }
    fn alloc_backing(&mut self, pages: u64) -> Result<u64, Errno> {
        self.host.alloc_backing(pages)
    }
    fn free_backing(&mut self, addr: u64, pages: u64) -> Result<(), Errno> {
        self.host.free_backing(addr, pages)
    }
    fn begin_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.host.begin_exclusive(object)?;
        self.stats.exclusive.store(true, SeqCst);
        Ok(())
    }
    fn end_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.stats.exclusive.store(false, SeqCst);
        self.host.end_exclusive(object)
    }
}

use core::sync::atomic::Ordering::SeqCst;

const FLASH_AT: u64 = 0x2200_0000;

fn on_chip(addr: Option<u64>) -> (Mtd, TestHost, alloc::sync::Arc<FlashStats>) {
    let chip = SimFlash::new(&image(), BLOCK, addr);
    let stats = chip.stats.clone();
    let (mtd, host) = started(
        Mtd::on_chip(
            MountPoint::new("/dev/mtd4", (90, 8)).unwrap(),
            MtdType::Nor,
            Box::new(chip),
        )
        .with_direct_window(),
    );
    (mtd, host, stats)
}

fn sections(host: &TestHost) -> (usize, usize) {
    let begins = host
        .events()
        .iter()
        .filter(|e| matches!(e, HostEvent::BeginExclusive(1)))
        .count();
    let ends = host
        .events()
        .iter()
        .filter(|e| matches!(e, HostEvent::EndExclusive(1)))
        .count();
    (begins, ends)
}

/// Nothing is copied into the arena; reads and mapping copies come from
/// the chip; a direct mapping is the chip's read-array address.
#[test]
fn a_chip_is_read_in_place_and_mapped_at_its_address() {
    let (mut mtd, mut host, stats) = on_chip(Some(FLASH_AT));
    assert_eq!(host.allocated_pages(), 0);
    assert_eq!(mtd.base(), Some(FLASH_AT));
    let info = opened(mtd.serve(lookup("", RDWR, 0), &mut host));
    assert_eq!(info.caps, Some(0x01 | 0x08 | 0x10 | 0x40));
    assert_eq!(info.size, 4 * BLOCK);
    assert_eq!(
        address(mtd.serve(get_unmapped_area(1, 4096, 2), &mut host)),
        FLASH_AT + 8192
    );
    assert_eq!(
        data(mtd.serve(read_data(1, 4 * BLOCK - 3, 8), &mut host)),
        &image()[4 * BLOCK as usize - 3..]
    );
    let dest = host.alloc_backing(2).unwrap();
    assert_eq!(
        count(mtd.serve(read_into(1, 100, 8192, dest), &mut host)),
        8192
    );
    assert_eq!(host.read(dest, 8192), &image()[100..8292]);
    assert!(stats.reads.load(SeqCst) > 0);
    // A chip without a read-array address is copy only.
    let (mut hidden, mut host, _) = on_chip(None);
    assert_eq!(
        opened(hidden.serve(lookup("", RDONLY, 0), &mut host)).caps,
        Some(0x01)
    );
    assert_eq!(
        error(hidden.serve(get_unmapped_area(1, 4096, 0), &mut host)),
        Errno::ENODEV
    );
}

/// Programs and erases are the chip's own commands, each inside one
/// exclusive section; the chip's NOR rules are never broken (the driver
/// asks it for `old & new` only).
#[test]
fn a_chip_programs_and_erases_inside_exclusive_sections() {
    let (mut mtd, mut host, stats) = on_chip(Some(FLASH_AT));
    host.clear_events();
    let mut probe = Probe {
        host: &mut host,
        stats: stats.clone(),
    };
    mtd.erase(&mut probe, 0, 2 * BLOCK).unwrap();
    assert_eq!(stats.erases.load(SeqCst), 2);
    assert_eq!(
        count(mtd.serve(
            write_data(1, BLOCK - 2, &[0x0F, 0xF0, 0x00, 0x3C]),
            &mut probe
        )),
        4
    );
    // 0 → 1 asked for: the bits stay 0 (AND), the chip is not refused.
    assert_eq!(
        count(mtd.serve(write_data(1, BLOCK - 2, &[0xF0, 0xFF]), &mut probe)),
        2
    );
    assert_eq!(
        data(mtd.serve(read_data(1, BLOCK - 3, 6), &mut probe)),
        [0xFF, 0x00, 0xF0, 0x00, 0x3C, 0xFF]
    );
    // The erase control object goes to the chip as well.
    let mut cmd = Vec::new();
    cmd.extend_from_slice(&0u32.to_le_bytes());
    cmd.extend_from_slice(&(BLOCK as u32).to_le_bytes());
    assert_eq!(
        count(mtd.serve(write_data(ERASE_OBJECT, 0, &cmd), &mut probe)),
        8
    );
    assert_eq!(
        data(mtd.serve(read_data(1, BLOCK - 2, 4), &mut probe)),
        [0xFF, 0xFF, 0x00, 0x3C]
    );
    assert_eq!(stats.outside_exclusive.load(SeqCst), 0);
    assert_eq!(stats.erases.load(SeqCst), 3);
    assert_eq!(sections(&host), (4, 4), "one section per operation");
    assert!(!host.in_exclusive(1));
    // Untouched blocks keep the image; nothing went into the arena.
    assert_eq!(host.allocated_pages(), 0);
    assert_eq!(
        data(mtd.serve(read_data(1, 3 * BLOCK, 16), &mut host)),
        &image()[3 * BLOCK as usize..3 * BLOCK as usize + 16]
    );
}

/// A chip error fails the operation with the chip's errno and still ends
/// the section; a mapped device never reaches the chip.
#[test]
fn chip_errors_and_mapped_devices() {
    let (mut mtd, mut host, stats) = on_chip(Some(FLASH_AT));
    host.clear_events();
    stats.fail_next.store(true, SeqCst);
    assert_eq!(
        error(mtd.serve(write_data(1, 0, &[0]), &mut host)),
        Errno::EIO
    );
    stats.fail_next.store(true, SeqCst);
    assert_eq!(mtd.erase(&mut host, 0, BLOCK), Err(Errno::EIO));
    assert_eq!(sections(&host), (2, 2));
    assert!(!host.in_exclusive(1));
    host.set_mapped(1);
    host.clear_events();
    let before = (stats.programs.load(SeqCst), stats.erases.load(SeqCst));
    assert_eq!(
        error(mtd.serve(write_data(1, 0, &[0]), &mut host)),
        Errno::EBUSY
    );
    assert_eq!(mtd.erase(&mut host, BLOCK, BLOCK), Err(Errno::EBUSY));
    assert!(host.events().is_empty());
    assert_eq!(
        (stats.programs.load(SeqCst), stats.erases.load(SeqCst)),
        before
    );
    // Bad ranges are refused before the chip is asked.
    host.set_unmapped(1);
    assert_eq!(mtd.erase(&mut host, 1, BLOCK), Err(Errno::EINVAL));
    assert_eq!(
        error(mtd.serve(write_data(1, 4 * BLOCK, &[0]), &mut host)),
        Errno::ENOSPC
    );
}

#[test]
fn chip_geometry_and_types() {
    let mut host = TestHost::new();
    let m = MountPoint::new("/dev/mtd5", (90, 10)).unwrap();
    // A ROM chip reads and maps but refuses writes and erases.
    let mut rom = Mtd::on_chip(
        m.clone(),
        MtdType::Rom,
        Box::new(SimFlash::new(&image(), BLOCK, Some(FLASH_AT))),
    );
    rom.start(&mut host).unwrap();
    assert_eq!(
        address(rom.serve(get_unmapped_area(1, 4096, 1), &mut host)),
        FLASH_AT + 4096
    );
    assert_eq!(rom.erase(&mut host, 0, BLOCK), Err(Errno::EROFS));
    for (chip, why) in [
        (
            SimFlash::new(&image(), 5000, None),
            "blocks must divide the chip",
        ),
        (SimFlash::new(&image(), 0, None), "no erase size"),
        (SimFlash::new(&[], BLOCK, None), "empty"),
    ] {
        let mut mtd = Mtd::on_chip(m.clone(), MtdType::Nor, Box::new(chip));
        assert_eq!(mtd.start(&mut host), Err(Errno::EINVAL), "{why}");
    }
    let mut ram = Mtd::on_chip(
        m,
        MtdType::Ram,
        Box::new(SimFlash::new(&image(), BLOCK, None)),
    );
    assert_eq!(ram.start(&mut host), Err(Errno::EINVAL));
}
