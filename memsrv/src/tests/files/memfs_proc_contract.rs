//! Spec §14.8 (POSIX shared memory on the memory filesystem), §14.10
//! (`/proc`) and §14.12 (the backing contract).

use super::*;

// §14.8.

#[test]
fn vectors_96_to_100_posix_shm() {
    let mut r = env();
    let a = r.memory_file(1, "/tmp/a", 8192);
    let x = r.mmap(1, 8192, RW, SH, a, 0).unwrap();
    let ab = r.open(2, "/tmp/a", RDWR).unwrap();
    assert_eq!(r.mmap(2, 8192, RW, SH, ab, 0), Ok(x));
    // 97.
    assert_eq!(r.ftruncate(1, a, 4096), Err(Errno::ETXTBSY));
    // Through O_TRUNC too.
    assert_eq!(r.open(1, "/tmp/a", RDWR | O_TRUNC), Err(Errno::ETXTBSY));
    // Growing is fine.
    r.ftruncate(1, a, 3 * P).unwrap();
    // 98.
    let b = r.memory_file(1, "/tmp/b", 8192);
    r.ftruncate(1, b, 4096).unwrap();
    assert_eq!(r.mmap(1, 8192, R, SH, b, 0), Err(Errno::ENODEV));
    assert!(r.mmap(1, 4096, R, SH, b, 0).is_ok());
    // 99.
    let c = r.memory_file(1, "/tmp/c", 8192);
    r.ftruncate(1, c, 16384).unwrap();
    assert_eq!(r.mmap(1, 16384, R, SH, c, 0), Err(Errno::ENODEV));
    assert!(r.mmap(1, 8192, R, SH, c, 0).is_ok());
    // 100: sizes the contiguous run cannot have.
    let d = r.open(1, "/tmp/d", RDWR | O_CREAT).unwrap();
    assert_eq!(r.ftruncate(1, d, 5 << 30), Err(Errno::EFBIG));
    assert_eq!(r.ftruncate(1, d, 8 << 20), Err(Errno::EFBIG));
    assert!(!r
        .d(TMP)
        .log
        .iter()
        .any(|q| matches!(q, DriverRequest::Truncate { size, .. } if *size > (1 << 20))));
    r.ok();
}

#[test]
fn shrinking_cuts_direct_regions_and_checks_private_direct_mappings() {
    let mut r = env();
    let a = r.memory_file(1, "/tmp/a", 4 * P);
    // Private read-only of a contiguous memory file: direct.
    let x = r.mmap(1, 2 * P, R, PR, a, 2).unwrap();
    let base = r.mmap(1, 4 * P, R, SH, a, 0).unwrap();
    assert_eq!(x, base + 2 * P);
    r.munmap(1, base, 4 * P).unwrap();
    // Server decision: a private direct mapping also refuses the shrink.
    assert_eq!(r.ftruncate(1, a, 2 * P + 1), Err(Errno::ETXTBSY));
    r.munmap(1, x, 2 * P).unwrap();
    // A mapping of pages 0–1 survives a shrink to 2 pages; its region is
    // cut.
    let y = r.mmap(1, 4 * P, R, SH, a, 0).unwrap();
    let z = {
        let fd = r_open(&mut r, 2, "/tmp/a");
        r.mmap(2, P, R, SH, fd, 0)
    }
    .unwrap();
    assert_eq!(y, z);
    r.munmap(1, y, 4 * P).unwrap();
    r.ftruncate(1, a, 2 * P).unwrap();
    let lines = global_lines(&mut r);
    let head = alloc::format!("{:08x}-{:08x}", y, y + 2 * P);
    assert!(lines.iter().any(|l| l.starts_with(&head)), "{lines:?}");
    r.ok();
}

#[test]
fn a_region_cut_inside_a_page_is_still_shared_by_whole_pages() {
    let mut r = env();
    let a = r.memory_file(1, "/tmp/a", 2 * P);
    let x = r.mmap(1, 2 * P, R, SH, a, 0).unwrap();
    assert_eq!(r.mmap(1, P, R, SH, a, 0), Ok(x));
    r.munmap(1, x, 2 * P).unwrap();
    // Page 1 stays (5000 bytes need two pages); the region ends at 5000.
    r.ftruncate(1, a, 5000).unwrap();
    let head = alloc::format!("{:08x}-{:08x}", x, x + 5000);
    assert!(global_lines(&mut r).iter().any(|l| l.starts_with(&head)));
    // A two-page request is contained in the region's two pages (§3.2
    // counts pages): it shares it, as Linux does.
    let a2 = r_open(&mut r, 2, "/tmp/a");
    assert_eq!(r.mmap(2, 2 * P, R, SH, a2, 0), Ok(x));
    r.ok();
}

// §14.10.

#[test]
fn vectors_109_110_proc_lines() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let a = r.mmap(1, 3 * P, R, PR, f, 0).unwrap();
    let maps = r.maps(1, ProcView::SelfMaps);
    let line = maps.lines().next().unwrap();
    let head = alloc::format!("{:08x}-{:08x} r--p 00000000 1f:02 37 ", a, a + 3 * P);
    assert!(line.starts_with(&head), "{line:?}");
    assert_eq!(line.find('/'), Some(49));
    assert!(line.ends_with(" /data/f"));
    let s = r.memory_file(1, "/tmp/s", P);
    let b = r.mmap(1, P, RW, SH, s, 0).unwrap();
    let maps = r.maps(1, ProcView::SelfMaps);
    let line = maps
        .lines()
        .find(|l| l.starts_with(&alloc::format!("{b:08x}")))
        .unwrap();
    assert!(line.contains(" rw-S 00000000 00:10 "), "{line:?}");
    assert!(line.ends_with(" /tmp/s"));
    // A device mount shows its own name.
    let t = r.open(1, "/dev/fb0", RDWR).unwrap();
    r.mmap(1, P, RW, SH, t, 0).unwrap();
    let maps = r.maps(1, ProcView::GlobalMaps);
    assert!(maps.lines().any(
        |l| l.starts_with("30000000-30001000 rw-S 00000000 1d:00") && l.ends_with(" /dev/fb0")
    ));
    // Shmem counts driver storage.
    let meminfo = r.maps(1, ProcView::Meminfo);
    let kb = r.s.stats().backing_pages * 4;
    assert!(meminfo.contains(&alloc::format!("\nShmem:          {kb:>8} kB\n")));
    r.ok();
}

// §14.12.

#[test]
fn vector_121_default_chardev_capabilities() {
    let mut r = env();
    set_tst(&mut r, |o| o.info.caps = None);
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, RW, SH, t, 0), Ok(TST_BASE));
    assert_eq!(r.mmap(1, P, R, PR, t, 0), Err(Errno::ENODEV));
    assert_eq!(r.mmap(1, P, RX, SH, t, 0), Err(Errno::EINVAL));
    r.ok();
}

#[test]
fn vector_122_ramdisk() {
    let mut r = env();
    r.driver(109, "/dev/ram0", (1, 0), false, false);
    r.add(109, "", |_, _| {
        FakeObject::heap(
            ObjectKind::BlockDevice,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE,
            pattern(3 * P as usize),
        )
    });
    let d = r.open(1, "/dev/ram0", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, R, SH, d, 0), Err(Errno::ENODEV));
    let c = r.mmap(1, P, R, PR, d, 1).unwrap();
    assert_eq!(r.bytes(c, P), pattern(2 * P as usize)[P as usize..]);
    // A ramdisk declaring DIRECT with a contiguous array.
    r.driver(110, "/dev/ram1", (1, 1), false, false);
    let base = { r.add(110, "", |d, s| arena_file(d, s, 0, 4 * P, 0x33)) };
    let _ = base;
    let d1 = r.open(1, "/dev/ram1", RDWR).unwrap();
    let a = r.mmap(1, 2 * P, RW, SH, d1, 0).unwrap();
    assert_eq!(r.bytes(a, 4), [0x33; 4]);
    r.ok();
}
