use super::*;
use crate::flags::open::{RDONLY, RDWR, WRONLY};
use crate::flags::vm::{MAYOVERLAY, MAYSHARE, SHARED};
use crate::testing::*;
use alloc::vec::Vec;

const BLOCK: u64 = 4096;

fn image() -> Vec<u8> {
    (0..4 * BLOCK as usize).map(pattern).collect()
}

fn device(kind: MtdType) -> (Mtd, TestHost) {
    let mut host = TestHost::new();
    let mut mtd = Mtd::new(
        MountPoint::new("/dev/mtd0", (90, 0)).unwrap(),
        kind,
        &image(),
        BLOCK,
    );
    mtd.start(&mut host).unwrap();
    (mtd, host)
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
    assert_eq!(
        error(mtd.serve(lookup("", RDWR, 0), &mut host)),
        Errno::EACCES
    );
    assert_eq!(
        error(mtd.serve(lookup("", WRONLY, 0), &mut host)),
        Errno::EACCES
    );
    assert_eq!(
        error(mtd.serve(lookup(ERASE_PATH, RDONLY, 0), &mut host)),
        Errno::ENOENT
    );
    assert_eq!(
        address(mtd.serve(get_unmapped_area(1, 8192, 1), &mut host)),
        base + 4096
    );
    assert_eq!(
        mtd.serve(mmap(1, base, 4096, 0, SHARED | MAYSHARE), &mut host),
        DriverReply::Done
    );
    assert_eq!(
        error(mtd.serve(mmap(1, base, 4096, 0, 0x1 | 0x10 | MAYOVERLAY), &mut host)),
        Errno::EACCES
    );
    assert_eq!(
        error(mtd.serve(write_data(1, 0, b"x"), &mut host)),
        Errno::EROFS
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
    for (len, pgoff) in [(4 * BLOCK + 1, 0), (4096, 4), (8192, 3), (1, u64::MAX)] {
        assert_eq!(
            error(mtd.serve(get_unmapped_area(1, len, pgoff), &mut host)),
            Errno::EINVAL,
            "len {len} pgoff {pgoff}"
        );
    }
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
    let mut host = TestHost::new();
    let mut mtd = Mtd::new(
        MountPoint::new("/dev/mtd2", (90, 4)).unwrap(),
        MtdType::Nor,
        &image(),
        BLOCK,
    )
    .with_direct_window();
    mtd.start(&mut host).unwrap();
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
    assert_eq!(
        error(mtd.serve(read_data(ERASE_OBJECT, 0, 8), &mut host)),
        Errno::EINVAL
    );
    assert_eq!(
        error(mtd.serve(get_unmapped_area(ERASE_OBJECT, 4096, 0), &mut host)),
        Errno::EBADF
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
