//! Spec §14.1 (argument validation) and §14.2 (direct versus copy) for
//! file mappings.

use super::*;

// §14.1.

#[test]
fn vectors_9_to_21_validation_with_files() {
    let mut r = env();
    // 8, 9: the byte offset is checked before the descriptor.
    let req = mmap_request(0, P, R, PR, 1234, 100, protocol::OffsetUnit::Bytes);
    assert_eq!(r.call(1, req), Reply::Error(Errno::EINVAL));
    assert_eq!(r.mmap(1, P, R, PR, 1234, 0), Err(Errno::EBADF));
    // 12.
    let root = 3;
    r.process(root, 0);
    let wo = r.open(root, "/data/f", WRONLY).unwrap();
    assert_eq!(r.mmap(root, P, R, PR, wo, 0), Err(Errno::EACCES));
    // 13.
    let x = r.open(root, "/tmp/x", RDWR | O_CREAT).unwrap();
    r.ftruncate(root, x, 8192).unwrap();
    let xr = r.open(root, "/tmp/x", RDONLY).unwrap();
    assert_eq!(r.mmap(root, P, RW, SH, xr, 0), Err(Errno::EACCES));
    // 14.
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    assert_eq!(r.mmap(1, P, R, SH, f, 0), Err(Errno::ENODEV));
    // 15–17.
    let fb = r.open(1, "/dev/fb0", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, R, PR, fb, 0), Err(Errno::ENODEV));
    assert_eq!(r.mmap(1, P, RX, SH, fb, 0), Err(Errno::EINVAL));
    assert_eq!(r.mmap(1, 8192, RW, SH, fb, 0), Ok(FB_BASE));
    // MAP_FIXED still first; len 0.
    assert_eq!(r.mmap(1, P, R, PR | MAP_FIXED, f, 0), Err(Errno::EINVAL));
    assert_eq!(r.mmap(1, 0, R, PR, f, 0), Err(Errno::EINVAL));
    // 20: no get_unmapped_area.
    set_tst(&mut r, |o| o.info.ops.0 &= !DriverOps::GET_UNMAPPED_AREA);
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, R, SH, t, 0), Err(Errno::ENODEV));
    r.close(1, t).unwrap();
    // 21: no read method.
    set_tst(&mut r, |o| {
        o.info.ops.0 = DriverOps::MMAP | DriverOps::GET_UNMAPPED_AREA;
        o.info.caps = Some(0x01 | 0x08 | 0x10);
    });
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, R, PR, t, 0), Err(Errno::ENODEV));
    r.ok();
}

#[test]
fn vector_18_noexec_mount() {
    let mut r = env();
    r.driver(105, "/mnt", (8, 1), true, false);
    r.add(105, "f", |_, _| {
        FakeObject::heap(
            ObjectKind::RegularFile,
            DriverOps::MMAP | DriverOps::READ,
            pattern(100),
        )
    });
    let fd = r.open(1, "/mnt/f", RDONLY).unwrap();
    assert_eq!(r.mmap(1, P, RX, PR, fd, 0), Err(Errno::EPERM));
    assert!(r.mmap(1, P, R, PR, fd, 0).is_ok());
    r.ok();
}

#[test]
fn vectors_10_11_pipes_and_sockets() {
    let mut r = env();
    r.driver(106, "/dev/pipe", (0, 12), false, false);
    r.add(106, "", |_, _| {
        FakeObject::heap(ObjectKind::Fifo, DriverOps::READ, Vec::new())
    });
    r.driver(107, "/dev/sock", (0, 8), false, false);
    r.add(107, "", |_, _| {
        FakeObject::heap(
            ObjectKind::Socket,
            DriverOps::READ | DriverOps::MMAP,
            Vec::new(),
        )
    });
    let p = r.open(1, "/dev/pipe", RDONLY).unwrap();
    assert_eq!(r.mmap(1, P, R, PR, p, 0), Err(Errno::ENODEV));
    assert_eq!(r.lseek(1, p, 0, 0), Err(Errno::ESPIPE));
    assert_eq!(r.pread(1, p, 1, 0), Err(Errno::ESPIPE));
    let s = r.open(1, "/dev/sock", RDONLY).unwrap();
    assert_eq!(r.mmap(1, P, R, PR, s, 0), Err(Errno::EINVAL));
    r.ok();
}

// §14.2.

#[test]
fn vectors_22_to_24_xip_rom() {
    let mut r = env();
    let t = r.open(1, "/rom/t", RDONLY).unwrap();
    let x = r.mmap(1, 8192, R, PR, t, 0).unwrap();
    assert_eq!(x % P, ROM_DATA % P, "not page aligned");
    assert_eq!(mc(&r), 0);
    assert_eq!(r.bytes(x, 8192), pattern(8192));
    // 23.
    let c = r.mmap(1, 8192, RW, PR, t, 0).unwrap();
    assert_eq!(c % P, 0);
    assert_ne!(c, x);
    assert_eq!(r.bytes(c, 8192), pattern(8192));
    assert_eq!(mc(&r), 8);
    // 24: same region.
    assert_eq!(r.mmap(1, 8192, RX, PR, t, 0), Ok(x));
    assert_eq!(r.s.stats().regions, 2);
    // 72: munmap with the unaligned start and the original length.
    assert_eq!(r.munmap(1, x + 1, 8192), Err(Errno::EINVAL));
    assert_eq!(r.munmap(1, x, 8192), Ok(()));
    assert_eq!(r.munmap(1, x, 8191), Ok(()));
    assert_eq!(r.s.stats().regions, 1);
    r.ok();
}

#[test]
fn vectors_25_to_32_test_device() {
    let mut r = env();
    // 25.
    set_tst(&mut r, |o| o.info.caps = Some(0x08 | 0x01 | 0x10));
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, RW, SH, t, 0), Err(Errno::EINVAL));
    // 26, 27: get_unmapped_area → ENOSYS.
    set_tst(&mut r, |o| {
        o.info.caps = Some(0x01 | 0x08 | 0x10 | 0x20);
        o.gua = Some(Err(Errno::ENOSYS));
    });
    // A lookup refreshes what the server knows of the object.
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    let before = mc(&r);
    let a = r.mmap(1, P, R, PR, t, 0).unwrap();
    assert_eq!(a % P, 0);
    assert!(r.bytes(a, P).iter().all(|&b| b == 0xAA));
    assert_eq!(mc(&r) - before, 4);
    // (While the copy stands, a shared request of the range would alias
    // it, §3.2.)
    assert_eq!(r.mmap(1, P, R, SH, t, 0), Ok(a));
    r.munmap(1, a, P).unwrap();
    r.munmap(1, a, P).unwrap();
    assert_eq!(r.mmap(1, P, R, SH, t, 0), Err(Errno::ENODEV));
    // 28: another error is returned as is.
    set_tst(&mut r, |o| o.gua = Some(Err(Errno::EINVAL)));
    assert_eq!(r.mmap(1, P, R, PR, t, 1), Err(Errno::EINVAL));
    // 29: mmap → ENOSYS.
    set_tst(&mut r, |o| {
        o.gua = None;
        o.mmap = Some(Errno::ENOSYS);
    });
    let c = r.mmap(1, P, R, PR, t, 2).unwrap();
    assert_ne!(c, TST_BASE + 2 * P);
    assert!(r.bytes(c, P).iter().all(|&b| b == 0xAA));
    assert_eq!(r.mmap(1, P, R, SH, t, 3), Err(Errno::ENODEV));
    // 30: mmap → EIO leaves no region.
    set_tst(&mut r, |o| o.mmap = Some(Errno::EIO));
    let regions = r.s.stats().regions;
    assert_eq!(r.mmap(1, P, R, SH, t, 4), Err(Errno::EIO));
    assert_eq!(r.s.stats().regions, regions);
    assert!(!global_lines(&mut r)
        .iter()
        .any(|l| l.starts_with("50004000")));
    // 31.
    set_tst(&mut r, |o| {
        o.mmap = None;
        o.info.caps = Some(0x08 | 0x10);
    });
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, R, PR, t, 0), Err(Errno::ENODEV));
    // 32: no EXEC → RX private is a copy.
    set_tst(&mut r, |o| o.info.caps = Some(0x08 | 0x01 | 0x10));
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    let d = r.mmap(1, P, RX, PR, t, 5).unwrap();
    assert_ne!(d, TST_BASE + 5 * P);
    assert!(r.bytes(d, P).iter().all(|&b| b == 0xAA));
    r.ok();
}

#[test]
fn vectors_33_34_copies_zero_fill_past_eof() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let a = r.mmap(1, 12288, R, PR, f, 0).unwrap();
    assert_eq!(r.bytes(a, 10000), pattern(10000));
    assert_eq!(r.bytes(a + 10000, 2288), zeroes(2288));
    let b = r.mmap(1, P, R, PR, f, 5).unwrap();
    assert_eq!(r.bytes(b, P), zeroes(P));
    // The copy read asked the driver for the whole aligned length.
    assert!(r.d(DATA).log.iter().any(|q| matches!(
        q,
        DriverRequest::Read {
            offset: 0,
            len: 12288,
            ..
        }
    )));
    r.ok();
}

#[test]
fn vectors_35_to_37_memory_files() {
    let mut r = env();
    // 35.
    let s = r.memory_file(1, "/tmp/s", 8192);
    let x = r.mmap(1, 8192, RW, SH, s, 0).unwrap();
    r.s.memory_mut().bytes_at(x + 10, 1)[0] = 0x5a;
    assert_eq!(r.pread(1, s, 1, 10).unwrap(), [0x5a]);
    r.pwrite(1, s, b"hi", Some(4096)).unwrap();
    assert_eq!(r.bytes(x + 4096, 2), b"hi");
    assert_eq!(mc(&r), 0);
    assert_eq!(r.s.stats().backing_pages, 2 + 8);
    // 37: beyond EOF.
    assert_eq!(r.mmap(1, 12288, R, SH, s, 0), Err(Errno::ENODEV));
    // 36: pages from write() that are not consecutive.
    let w = r.open(1, "/tmp/w", RDWR | O_CREAT).unwrap();
    let gap = r.open(1, "/tmp/gap", RDWR | O_CREAT).unwrap();
    for i in 0..3u64 {
        r.pwrite(1, w, &[i as u8 + 1; 4096], Some(i * P)).unwrap();
        r.pwrite(1, gap, &[9; 1], Some(i * P)).unwrap();
    }
    assert_eq!(r.mmap(1, 3 * P, R, SH, w, 0), Err(Errno::ENODEV));
    let before = mc(&r);
    let c = r.mmap(1, 3 * P, R, PR, w, 0).unwrap();
    assert_eq!(mc(&r) - before, 12);
    assert_eq!(r.bytes(c + 2 * P, P), [3; 4096]);
    // One page is always contiguous.
    assert!(r.mmap(1, P, R, SH, w, 1).is_ok());
    r.ok();
}

#[test]
fn vector_38_rom_beyond_eof() {
    let mut r = env();
    let t = r.open(1, "/rom/t", RDONLY).unwrap();
    assert_eq!(r.mmap(1, P, R, PR, t, 10), Err(Errno::EINVAL));
    let a = r.mmap(1, P, RW, PR, t, 10).unwrap();
    assert_eq!(r.bytes(a, P), zeroes(P));
    r.ok();
}

#[test]
fn vectors_39_43_copy_only_devices() {
    let mut r = env();
    r.driver(108, "/dev/zero", (1, 5), false, false);
    r.add(108, "", |_, _| {
        let mut o = FakeObject::new(
            0,
            ObjectKind::CharDevice,
            Some(0x01),
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE,
            Store::Heap(Vec::new()),
        );
        o.read_fill = Some(0);
        o
    });
    let z = r.open(1, "/dev/zero", RDWR).unwrap();
    let before = mc(&r);
    let a = r.mmap(1, 8192, RW, PR, z, 0).unwrap();
    assert_eq!(r.bytes(a, 8192), zeroes(8192));
    assert_eq!(mc(&r) - before, 8);
    assert_eq!(r.mmap(1, 8192, RW, SH, z, 0), Err(Errno::ENODEV));
    let zr = r.open(1, "/dev/zero", RDONLY).unwrap();
    assert_eq!(r.mmap(1, 8192, RW, SH, zr, 0), Err(Errno::EACCES));
    r.ok();
}
