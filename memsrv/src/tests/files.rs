//! File calls, file mappings and the driver link at the memsrv level, with
//! fake drivers standing in for the spec's test environment (§14.0):
//! the vectors of §14.1–§14.3, §14.8, §14.10 and §14.12 that a fake
//! driver can express, plus deferred replies, timeouts, driver death,
//! backing storage, exclusive mode and ptrace.

use alloc::vec::Vec;

use super::fake_driver::*;
use super::rig::*;
use super::sim::{BASE, P};
use crate::ClientId;
use protocol::linux::*;
use protocol::{DriverOps, DriverRequest, Errno, ObjectKind, ProcView, Reply, Request};

const R: u32 = PROT_READ;
const RW: u32 = PROT_READ | PROT_WRITE;
const RX: u32 = PROT_READ | PROT_EXEC;

pub(super) const DATA: u64 = 100;
pub(super) const TMP: u64 = 101;
pub(super) const ROM: u64 = 102;
const TST: u64 = 103;
const FB: u64 = 104;

pub(super) const ROM_DATA: u64 = 0x1230;
const TST_BASE: u64 = 0x5000_0000;
const FB_BASE: u64 = 0x3000_0000;

/// `/data/f`, `/tmp`, `/rom/t`, `/dev/tst`, `/dev/fb0` as §14.0 has them,
/// and two processes on connections 1 and 2.
pub(super) fn env() -> Rig {
    env_with(|_| {})
}

pub(super) fn env_with(tweak: impl FnOnce(&mut crate::Config)) -> Rig {
    let mut r = Rig::with(512, |c| {
        c.word_size = 4;
        tweak(c);
    });
    r.driver(DATA, "/data", (0x1f, 2), false, false);
    r.add(DATA, "f", |_, _| {
        let mut o = FakeObject::new(
            37,
            ObjectKind::RegularFile,
            None,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE,
            Store::Heap(pattern(10000)),
        );
        o.info.mode = 0o644;
        o
    });
    r.driver(TMP, "/tmp", (0, 0x10), false, false);
    r.driver(ROM, "/rom", (0x1f, 0), false, true);
    r.add(ROM, "t", |d, s| {
        // The image holds the file at offset 0x1230.
        let base = match s.handle_now(d.client, Request::AllocBacking { pages: 8 }) {
            Reply::Mapped { addr } => addr,
            other => panic!("{other:?}"),
        };
        let data = pattern(20000);
        s.memory_mut()
            .bytes_at(base + ROM_DATA, data.len() as u64)
            .copy_from_slice(&data);
        let mut o = FakeObject::new(
            0,
            ObjectKind::RegularFile,
            Some(0x01 | 0x08 | 0x10 | 0x40),
            DriverOps::MMAP | DriverOps::READ | DriverOps::GET_UNMAPPED_AREA,
            Store::Window {
                base: base + ROM_DATA,
            },
        );
        o.info.size = 20000;
        o
    });
    r.driver(TST, "/dev/tst", (0xa, 1), false, false);
    r.add(TST, "", |_, _| tst(0x01 | 0x08 | 0x10 | 0x20));
    r.driver(FB, "/dev/fb0", (29, 0), false, false);
    r.add(FB, "", |_, _| {
        let mut o = FakeObject::new(
            0,
            ObjectKind::CharDevice,
            None,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA,
            Store::Window { base: FB_BASE },
        );
        o.info.size = 1 << 20;
        o
    });
    r.process(1, 1000);
    r.process(2, 1000);
    r.ok();
    r
}

/// `/dev/tst` with these capabilities: every method, a close hook,
/// `get_unmapped_area` → 0x50000000 + pgoff·P, reads of 0xAA.
fn tst(caps: u8) -> FakeObject {
    let mut o = FakeObject::new(
        0,
        ObjectKind::CharDevice,
        Some(caps),
        DriverOps::MMAP
            | DriverOps::READ
            | DriverOps::WRITE
            | DriverOps::GET_UNMAPPED_AREA
            | DriverOps::CLOSE_VMA,
        Store::Window { base: TST_BASE },
    );
    o.info.size = 1 << 20;
    o.read_fill = Some(0xAA);
    o
}

fn set_tst(r: &mut Rig, f: impl FnOnce(&mut FakeObject)) {
    f(r.d(TST).obj(""));
}

fn mc(r: &Rig) -> u64 {
    r.s.stats().mmap_copy_pages * 4
}

fn global_lines(r: &mut Rig) -> Vec<alloc::string::String> {
    r.maps(1, ProcView::GlobalMaps)
        .lines()
        .map(Into::into)
        .collect()
}

// Descriptors and the mount table.

#[test]
fn open_read_write_seek_stat_close() {
    let mut r = env();
    let fd = r.open(1, "/data/f", RDWR).unwrap();
    assert_eq!(fd, 3);
    assert_eq!(r.open(1, "/data/f", RDONLY), Ok(4));
    assert_eq!(r.read(1, fd, 5).unwrap(), pattern(5));
    assert_eq!(r.read(1, fd, 5).unwrap(), pattern(10)[5..]);
    assert_eq!(r.lseek(1, fd, 0, 1), Ok(10));
    assert_eq!(r.lseek(1, fd, -10, 2), Ok(9990));
    assert_eq!(r.read(1, fd, 100).unwrap().len(), 10);
    assert_eq!(r.read(1, fd, 100).unwrap().len(), 0);
    assert_eq!(r.lseek(1, fd, -1, 0), Err(Errno::EINVAL));
    assert_eq!(r.lseek(1, fd, 0, 7), Err(Errno::EINVAL));
    assert_eq!(r.pwrite(1, fd, b"xyz", Some(1)), Ok(3));
    assert_eq!(
        r.pread(1, fd, 4, 0).unwrap(),
        [pattern(1)[0], b'x', b'y', b'z']
    );
    // Reads are cut to DATA_CHUNK.
    assert_eq!(r.pread(1, fd, 5000, 0).unwrap().len(), protocol::DATA_CHUNK);
    let st = r.fstat(1, fd).unwrap();
    assert_eq!((st.dev, st.ino, st.size), ((0x1f, 2), 37, 10000));
    assert_eq!(st.mode, 0o100_644);
    // Descriptors are per process.
    assert_eq!(r.read(2, fd, 1), Err(Errno::EBADF));
    assert_eq!(r.close(1, fd), Ok(()));
    assert_eq!(r.close(1, fd), Err(Errno::EBADF));
    assert_eq!(r.open(1, "/data/f", RDONLY), Ok(3));
    r.ok();
    assert_eq!(r.s.stats().objects, 1);
    r.close(1, 3).unwrap();
    r.close(1, 4).unwrap();
    // The last reference went: Release.
    assert_eq!(r.s.stats().objects, 0);
    assert_eq!(r.d(DATA).obj("f").releases, 1);
    r.ok();
}

#[test]
fn open_checks() {
    let mut r = env();
    assert_eq!(r.open(1, "/nowhere/x", RDONLY), Err(Errno::ENOENT));
    assert_eq!(r.open(1, "/data/missing", RDONLY), Err(Errno::ENOENT));
    assert_eq!(r.open(1, "relative", RDONLY), Err(Errno::ENOENT));
    assert_eq!(r.open(1, "/data/f", 3), Err(Errno::EINVAL));
    // Read-only mount.
    assert_eq!(r.open(1, "/rom/t", RDWR), Err(Errno::EROFS));
    assert_eq!(r.open(1, "/rom/t", RDONLY | O_TRUNC), Err(Errno::EROFS));
    assert_eq!(r.open(1, "/rom/new", RDONLY | O_CREAT), Err(Errno::EROFS));
    assert!(r.open(1, "/rom/t", RDONLY | O_CREAT).is_ok());
    assert_eq!(
        r.open(1, "/rom/t", RDONLY | O_CREAT | 0o200),
        Err(Errno::EEXIST)
    );
    // Permission bits against the driver's owner (uid 1000): others need
    // the "other" bits, root passes.
    r.process(7, 2000);
    r.process(8, 0);
    r.d(DATA).obj("f").info.mode = 0o640;
    assert_eq!(r.open(7, "/data/f", RDONLY), Err(Errno::EACCES));
    assert!(r.open(1, "/data/f", RDWR).is_ok());
    assert!(r.open(8, "/data/f", RDWR).is_ok());
    r.d(DATA).obj("f").info.mode = 0o644;
    assert_eq!(r.open(7, "/data/f", RDWR), Err(Errno::EACCES));
    assert!(r.open(7, "/data/f", RDONLY).is_ok());
    // Access modes of the description.
    let wo = r.process(3, 0);
    assert!(wo > 0);
    let fd = r.open(3, "/data/f", WRONLY).unwrap();
    assert_eq!(r.read(3, fd, 1), Err(Errno::EBADF));
    let fd = r.open(3, "/data/f", RDONLY).unwrap();
    assert_eq!(r.pwrite(3, fd, b"a", None), Err(Errno::EBADF));
    assert_eq!(r.ftruncate(3, fd, 0), Err(Errno::EINVAL));
    // No TRUNCATE method.
    let fd = r.open(3, "/data/f", RDWR).unwrap();
    assert_eq!(r.ftruncate(3, fd, 0), Err(Errno::EINVAL));
    // Descriptor limits.
    r.ok();
}

#[test]
fn descriptor_limit_and_lowest_free() {
    let mut r = env_with(|c| c.max_open_files = 3);
    let fds: Vec<i32> = (0..3)
        .map(|_| r.open(1, "/data/f", RDONLY).unwrap())
        .collect();
    assert_eq!(fds, [3, 4, 5]);
    assert_eq!(r.open(1, "/data/f", RDONLY), Err(Errno::EMFILE));
    r.close(1, 4).unwrap();
    assert_eq!(r.open(1, "/data/f", RDONLY), Ok(4));
    r.ok();
}

#[test]
fn mounts_are_exclusive_and_listed() {
    let mut r = env();
    let reg = protocol::DriverRegistration {
        name: heapless::String::try_from("x").unwrap(),
        mount: protocol::MountName::try_from("/data").unwrap(),
        dev: (1, 1),
        noexec: false,
        read_only: false,
    };
    r.s.connect(
        ClientId(200),
        crate::Credentials {
            pid: None,
            uid: 0,
            gid: 0,
        },
    );
    assert_eq!(
        r.call(200, Request::RegisterDriver(reg.clone())),
        Reply::Error(Errno::EBUSY)
    );
    match r.call(1, Request::ListMounts) {
        Reply::Mounts(m) => {
            let names: Vec<&str> = m.iter().map(|n| n.as_str()).collect();
            assert_eq!(names, ["/data", "/dev/fb0", "/dev/tst", "/rom", "/tmp"]);
        }
        other => panic!("{other:?}"),
    }
    // A dead driver's mount is free again.
    r.kill_driver(DATA);
    assert!(matches!(
        r.call(200, Request::RegisterDriver(reg)),
        Reply::Registered { .. }
    ));
    r.ok();
}

#[test]
fn clone_copies_descriptors_and_exit_closes_them() {
    let mut r = env();
    let fd = r.open(1, "/data/f", RDONLY).unwrap();
    r.read(1, fd, 100).unwrap();
    let Reply::Cloned { ticket, .. } = r.call(1, Request::Clone { flags: CLONE_VM }) else {
        panic!()
    };
    super::sim::hello(&mut r.s, 5, 1000, Some(ticket)).unwrap();
    // The child shares the description, position included.
    assert_eq!(r.read(5, fd, 10).unwrap(), pattern(110)[100..]);
    assert_eq!(r.lseek(1, fd, 0, 1), Ok(110));
    r.close(1, fd).unwrap();
    assert_eq!(r.d(DATA).obj("f").releases, 0);
    assert_eq!(r.call(5, Request::Exit), Reply::Done);
    assert_eq!(r.d(DATA).obj("f").releases, 1);
    assert_eq!(r.s.stats().open_files, 0);
    r.ok();
}

#[test]
fn append_writes_go_to_the_end() {
    let mut r = env();
    let fd = r.open(1, "/tmp/a", RDWR | O_CREAT | O_APPEND).unwrap();
    r.pwrite(1, fd, b"abc", None).unwrap();
    r.pwrite(1, fd, b"def", None).unwrap();
    assert_eq!(r.pread(1, fd, 10, 0).unwrap(), b"abcdef");
    let fd2 = r.open(1, "/tmp/a", RDWR | O_TRUNC).unwrap();
    assert_eq!(r.fstat(1, fd2).unwrap().size, 0);
    r.pwrite(1, fd, b"g", None).unwrap();
    assert_eq!(r.pread(1, fd, 10, 0).unwrap(), b"g");
    r.ok();
}

// §14.1.

#[test]
fn vectors_9_to_21_validation_with_files() {
    let mut r = env();
    // 8, 9: the byte offset is checked before the descriptor.
    let req = Request::Mmap {
        addr: 0,
        len: P,
        prot: R,
        flags: PR,
        fd: 1234,
        offset: 100,
        unit: protocol::OffsetUnit::Bytes,
    };
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
        FakeObject::new(
            0,
            ObjectKind::RegularFile,
            None,
            DriverOps::MMAP | DriverOps::READ,
            Store::Heap(pattern(100)),
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
        FakeObject::new(
            0,
            ObjectKind::Fifo,
            None,
            DriverOps::READ,
            Store::Heap(Vec::new()),
        )
    });
    r.driver(107, "/dev/sock", (0, 8), false, false);
    r.add(107, "", |_, _| {
        FakeObject::new(
            0,
            ObjectKind::Socket,
            None,
            DriverOps::READ | DriverOps::MMAP,
            Store::Heap(Vec::new()),
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
    let s = r.open(1, "/tmp/s", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, s, 8192).unwrap();
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

// §14.3.

#[test]
fn vectors_45_46_55_shared_copies() {
    let mut r = env();
    let fa = r.open(1, "/data/f", RDONLY).unwrap();
    let fb = r.open(2, "/data/f", RDONLY).unwrap();
    let a = r.mmap(1, 8192, R, PR, fa, 0).unwrap();
    let b = r.mmap(2, 8192, R, PR, fb, 0).unwrap();
    assert_eq!(a, b);
    assert_eq!(mc(&r), 8);
    // 55: one line for the region.
    let lines = global_lines(&mut r);
    let head = alloc::format!("{:08x}-{:08x}", a, a + 8192);
    assert_eq!(lines.iter().filter(|l| l.starts_with(&head)).count(), 1);
    // A reused copy does not ask the driver to read again.
    let reads = r
        .d(DATA)
        .log
        .iter()
        .filter(|q| matches!(q, DriverRequest::Read { .. }))
        .count();
    assert_eq!(reads, 1);
    // 46: contained range.
    let big = r.mmap(1, 4 * P, R, PR, fa, 4).unwrap();
    assert_eq!(r.mmap(2, 2 * P, R, PR, fb, 5), Ok(big + P));
    r.ok();
}

#[test]
fn vectors_47_48_mismatched_copies() {
    let mut r = env();
    let fa = r.open(1, "/data/f", RDONLY).unwrap();
    let fb = r.open(2, "/data/f", RDONLY).unwrap();
    r.mmap(1, 2 * P, R, PR, fa, 0).unwrap();
    assert_eq!(r.mmap(2, 3 * P, R, PR, fb, 1), Err(Errno::EINVAL));
    // 48 in one process.
    r.mmap(1, P, R, PR, fa, 10).unwrap();
    assert_eq!(r.mmap(1, 4 * P, R, PR, fa, 10), Err(Errno::EINVAL));
    r.ok();
}

#[test]
fn vectors_49_to_51_writable_copies_and_snapshots() {
    let mut r = env();
    let fa = r.open(1, "/data/f", RDONLY).unwrap();
    let fb = r.open(2, "/data/f", RDONLY).unwrap();
    let x = r.mmap(1, P, R, PR, fa, 0).unwrap();
    assert_ne!(r.mmap(2, P, RW, PR, fb, 0).unwrap(), x);
    let w = r.mmap(1, P, RW, PR, fa, 1).unwrap();
    assert_ne!(r.mmap(2, P, R, PR, fb, 1).unwrap(), w);
    // 51: the copy is a snapshot.
    r.process(3, 0);
    let rw = r.open(3, "/data/f", RDWR).unwrap();
    r.pwrite(3, rw, &[0xff; 16], Some(0)).unwrap();
    assert_eq!(r.mmap(2, P, R, PR, fb, 0), Ok(x));
    assert_eq!(r.bytes(x, 16), pattern(16));
    r.ok();
}

#[test]
fn vector_52_traced_mappings_are_not_shared() {
    let mut r = env();
    r.process(3, 1000);
    let t_pid = r.process(4, 1000);
    // Process 3 traces process 4.
    assert_eq!(r.call(3, Request::PtraceAttach { pid: t_pid }), Reply::Done);
    let ft = r.open(4, "/data/f", RDONLY).unwrap();
    let fu = r.open(1, "/data/f", RDONLY).unwrap();
    let fv = r.open(2, "/data/f", RDONLY).unwrap();
    let x = r.mmap(4, P, R, PR, ft, 0).unwrap();
    let u = r.mmap(1, P, R, PR, fu, 0).unwrap();
    assert_ne!(u, x);
    assert_eq!(r.mmap(2, P, R, PR, fv, 0), Ok(u));
    // The traced mapping shows `p` and holds its own copy.
    assert_eq!(mc(&r), 8);
    // A traced process still shares MAP_SHARED mappings.
    let s = r.open(4, "/tmp/s", RDWR | O_CREAT).unwrap();
    r.ftruncate(4, s, P).unwrap();
    let a = r.mmap(4, P, RW, SH, s, 0).unwrap();
    let s1 = r.open(1, "/tmp/s", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, RW, SH, s1, 0), Ok(a));
    // Detached: shares again.
    assert_eq!(r.call(3, Request::PtraceDetach { pid: t_pid }), Reply::Done);
    assert_eq!(r.mmap(4, P, R, PR, ft, 0), Ok(u));
    r.ok();
}

#[test]
fn vector_53_identical_mappings_in_one_process() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let a = r.mmap(1, 2 * P, R, PR, f, 0).unwrap();
    assert_eq!(r.mmap(1, 2 * P, R, PR, f, 0), Ok(a));
    assert_eq!(r.munmap(1, a, 2 * P), Ok(()));
    assert_eq!(r.bytes(a, 16), pattern(16));
    assert_eq!(r.munmap(1, a, 2 * P), Ok(()));
    assert_eq!(mc(&r), 0);
    assert_eq!(r.munmap(1, a, 2 * P), Err(Errno::EINVAL));
    r.ok();
}

#[test]
fn vectors_54_56_112_120_direct_device_sharing() {
    let mut r = env();
    let ta = r.open(1, "/dev/tst", RDWR).unwrap();
    let tb = r.open(2, "/dev/tst", RDWR).unwrap();
    assert_eq!(r.mmap(1, P, R, SH, ta, 0), Ok(TST_BASE));
    assert_eq!(r.mmap(2, P, R, SH, tb, 0), Ok(TST_BASE));
    assert_eq!(r.d(TST).obj("").mmaps, 2);
    // 112: /proc/maps lists the direct region once.
    let lines = global_lines(&mut r);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("50000000")).count(),
        1
    );
    r.munmap(1, TST_BASE, P).unwrap();
    r.munmap(2, TST_BASE, P).unwrap();
    assert_eq!(r.d(TST).obj("").closes, 2);
    // 120: twice in one process.
    assert_eq!(r.mmap(1, P, R, SH, ta, 0), Ok(TST_BASE));
    assert_eq!(r.mmap(1, P, R, SH, ta, 0), Ok(TST_BASE));
    assert_eq!(r.d(TST).obj("").mmaps, 4);
    r.munmap(1, TST_BASE, P).unwrap();
    r.munmap(1, TST_BASE, P).unwrap();
    assert_eq!(r.d(TST).obj("").closes, 4);
    // 56: pages 0–1, then 0–3 (not contained): both at the base.
    assert_eq!(r.mmap(1, 2 * P, R, SH, ta, 0), Ok(TST_BASE));
    assert_eq!(r.mmap(1, 4 * P, R, SH, ta, 0), Ok(TST_BASE));
    assert_eq!(r.s.stats().regions, 2);
    // A later request contained in both takes the first in (start, seq).
    assert_eq!(r.mmap(2, P, R, SH, tb, 1), Ok(TST_BASE + P));
    r.ok();
    r.munmap(1, TST_BASE, 4 * P).unwrap();
    r.munmap(1, TST_BASE, 2 * P).unwrap();
    r.munmap(2, TST_BASE + P, P).unwrap();
    assert_eq!(r.s.stats().regions, 0);
    r.ok();
}

#[test]
fn reuse_of_a_direct_region_calls_mmap_again_and_has_no_copy_fallback() {
    let mut r = env();
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    assert_eq!(r.mmap(1, 2 * P, R, SH, t, 0), Ok(TST_BASE));
    // The driver now refuses private mappings with ENOSYS (old MTD).
    set_tst(&mut r, |o| o.mmap = Some(Errno::ENOSYS));
    assert_eq!(
        {
            let fd = t_of(&mut r, 2);
            r.mmap(2, P, R, PR, fd, 0)
        },
        Err(Errno::ENODEV)
    );
    // Where no region matches, the same answer means a copy.
    let c = r.mmap(1, P, R, PR, t, 8).unwrap();
    assert_ne!(c, TST_BASE + 8 * P);
    r.ok();
}

fn t_of(r: &mut Rig, c: u64) -> i32 {
    r.open(c, "/dev/tst", RDWR).unwrap()
}

#[test]
fn a_shared_request_may_land_on_a_private_copy() {
    let mut r = env();
    let s = r.open(1, "/tmp/s", RDWR | O_CREAT).unwrap();
    // Pages written one by one: a private read-only mapping is a copy.
    for i in 0..2 {
        r.pwrite(1, s, &[7; 10], Some(i * 2 * P)).unwrap();
    }
    let c = r.mmap(1, P, R, PR, s, 0).unwrap();
    assert_eq!(
        {
            let fd = r_open(&mut r, 2, "/tmp/s");
            r.mmap(2, P, RW, SH, fd, 0)
        },
        Ok(c)
    );
    r.ok();
}

fn r_open(r: &mut Rig, c: u64, path: &str) -> i32 {
    r.open(c, path, RDWR).unwrap()
}

// §14.8.

#[test]
fn vectors_96_to_100_posix_shm() {
    let mut r = env();
    let a = r.open(1, "/tmp/a", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, a, 8192).unwrap();
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
    let b = r.open(1, "/tmp/b", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, b, 8192).unwrap();
    r.ftruncate(1, b, 4096).unwrap();
    assert_eq!(r.mmap(1, 8192, R, SH, b, 0), Err(Errno::ENODEV));
    assert!(r.mmap(1, 4096, R, SH, b, 0).is_ok());
    // 99.
    let c = r.open(1, "/tmp/c", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, c, 8192).unwrap();
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
    let a = r.open(1, "/tmp/a", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, a, 4 * P).unwrap();
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
    let a = r.open(1, "/tmp/a", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, a, 2 * P).unwrap();
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
    let s = r.open(1, "/tmp/s", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, s, P).unwrap();
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
        FakeObject::new(
            0,
            ObjectKind::BlockDevice,
            None,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE,
            Store::Heap(pattern(3 * P as usize)),
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

// Deferred replies, queues, timeouts, death.

#[test]
fn replies_wait_for_the_driver_while_others_are_served() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    assert_eq!(r.reply(1, tag), None);
    // Another client is served meanwhile.
    assert!(r
        .call(
            2,
            Request::Mmap {
                addr: 0,
                len: P,
                prot: RW,
                flags: MAP_PRIVATE | MAP_ANONYMOUS,
                fd: -1,
                offset: 0,
                unit: protocol::OffsetUnit::Bytes
            }
        )
        .into_result()
        .is_ok());
    // An open of the same driver waits as well (it needs a lookup).
    let open = r.send(
        2,
        Request::Open {
            path: protocol::Path::try_from("/data/f").unwrap(),
            flags: RDONLY,
            mode: 0,
        },
    );
    assert_eq!(r.reply(2, open), None);
    assert_eq!(r.s.stats().pending_ops, 2);
    r.ok();
    r.release_held(DATA);
    assert!(matches!(r.reply(1, tag), Some(Reply::Mapped { .. })));
    assert_eq!(r.reply(2, open), Some(Reply::Fd(3)));
    assert_eq!(r.s.stats().pending_ops, 0);
    r.ok();
}

#[test]
fn one_object_one_request_at_a_time() {
    let mut r = env();
    let fa = r.open(1, "/data/f", RDONLY).unwrap();
    let fb = r.open(2, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    let t1 = r.send(1, Rig::mmap_req(P, R, PR, fa, 0));
    let t2 = r.send(2, Rig::mmap_req(P, R, PR, fb, 0));
    assert_eq!(r.d(DATA).held.len(), 1, "the second waits in the queue");
    r.release_held(DATA);
    let a = r.reply(1, t1).unwrap();
    let b = r.reply(2, t2).unwrap();
    // The second found the first's copy (the search ran after set-up).
    assert_eq!(a, b);
    assert_eq!(mc(&r), 4);
    r.ok();
}

#[test]
fn a_timeout_fails_with_eio_and_undoes_the_copy() {
    let mut r = env_with(|c| c.driver_timeout_ms = 100);
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.tick(1_000_000);
    r.d(DATA).hold = true;
    let free = r.s.stats().free_pages;
    let tag = r.send(1, Rig::mmap_req(2 * P, R, PR, f, 0));
    assert!(r.s.stats().free_pages < free, "the copy is allocated");
    r.tick(1_000_050);
    assert_eq!(r.reply(1, tag), None);
    // Whole milliseconds: at exactly the timeout the call may be up to
    // 1 ms short of it, so it fails only past it.
    r.tick(1_000_100);
    assert_eq!(r.reply(1, tag), None);
    r.tick(1_000_101);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    assert_eq!(r.s.stats().free_pages, free);
    assert_eq!(mc(&r), 0);
    r.ok();
    // The late answer is ignored; the driver keeps working.
    r.release_held(DATA);
    assert!(r.mmap(1, P, R, PR, f, 0).is_ok());
    r.ok();
}

#[test]
fn the_first_tick_starts_the_clock() {
    let mut r = env_with(|c| c.driver_timeout_ms = 100);
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    // A home whose clock reads large numbers does not expire it at once.
    r.tick(5_000_000);
    assert_eq!(r.reply(1, tag), None);
    r.tick(5_000_101);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    r.ok();
}

#[test]
fn driver_death_fails_pending_and_queued_operations() {
    let mut r = env();
    let sa = r.open(1, "/tmp/s", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, sa, 2 * P).unwrap();
    let x = r.mmap(1, 2 * P, RW, SH, sa, 0).unwrap();
    r.d(TMP).hold = true;
    let t1 = r.send(1, Rig::mmap_req(P, R, PR, sa, 1));
    let t2 = r.send(
        2,
        Request::Open {
            path: protocol::Path::try_from("/tmp/s").unwrap(),
            flags: RDONLY,
            mode: 0,
        },
    );
    let t3 = r.send(1, Request::Fstat { fd: sa });
    let free_before_death = r.s.stats().free_pages;
    r.kill_driver(TMP);
    for (c, t) in [(1, t1), (2, t2), (1, t3)] {
        assert_eq!(r.reply(c, t), Some(Reply::Error(Errno::EIO)));
    }
    // The mapping still stands; its storage is kept while it does.
    assert_eq!(r.s.stats().free_pages, free_before_death);
    assert_eq!(r.pread(1, sa, 1, 0), Err(Errno::EIO));
    assert_eq!(r.open(1, "/tmp/s", RDONLY), Err(Errno::ENOENT));
    r.ok();
    r.munmap(1, x, 2 * P).unwrap();
    r.ok();
    // Region gone: the dead driver's storage is free (the ROM image
    // stays).
    assert_eq!(r.s.stats().backing_pages, 8);
    r.close(1, sa).unwrap();
    assert_eq!(r.s.stats().objects, 0);
    r.ok();
}

#[test]
fn a_release_waiting_its_turn_is_dropped_when_the_object_is_opened_again() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    // A read holds the object; the close makes the Release due behind it.
    let read = r.send(
        1,
        Request::Read {
            fd: f,
            len: 4,
            offset: Some(0),
        },
    );
    assert_eq!(r.call(1, Request::Close { fd: f }), Reply::Done);
    // Another open looks the object up again before the Release's turn.
    let open = r.send(
        2,
        Request::Open {
            path: protocol::Path::try_from("/data/f").unwrap(),
            flags: RDONLY,
            mode: 0,
        },
    );
    r.release_held(DATA);
    assert!(matches!(r.reply(1, read), Some(Reply::Data(_))));
    assert_eq!(r.reply(2, open), Some(Reply::Fd(3)));
    // The read's answer dropped the last reference while the lookup was
    // in flight: the Release waited for it, the lookup named the object
    // again, and no Release was sent (the driver never saw a lookup of an
    // object it was then told to release).
    assert_eq!(r.d(DATA).obj("f").releases, 0);
    r.ok();
}

#[test]
fn a_caller_gone_mid_operation_leaves_nothing_behind() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    r.d(DATA).hold = true;
    r.d(TST).hold = true;
    let free = r.s.stats().free_pages;
    let copy = r.send(1, Rig::mmap_req(2 * P, R, PR, f, 0));
    let direct = r.send(1, Rig::mmap_req(P, R, SH, t, 0));
    r.disconnect(1);
    r.release_held(DATA);
    r.release_held(TST);
    assert_eq!((r.reply(1, copy), r.reply(1, direct)), (None, None));
    let st = r.s.stats();
    assert_eq!((st.free_pages, st.regions, st.vmas), (free, 0, 0));
    assert_eq!((st.objects, st.open_files, st.pending_ops), (0, 0, 0));
    // The driver approved a mapping that never came to be; nothing closes
    // it, but both objects were released.
    let log = r.d(TST).log.clone();
    assert_eq!(r.d(TST).obj("").releases, 1, "{log:?}");
    assert_eq!(r.d(DATA).obj("f").releases, 1);
    r.ok();
}

#[test]
fn bad_answers_fail_with_eio() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    // Wrong variant.
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    let (dtag, _) = r.d(DATA).held.pop().unwrap();
    r.d(DATA).hold = false;
    let mut buf = [0u8; protocol::MAX_FRAME];
    let len = protocol::encode_driver_reply(dtag, &protocol::DriverReply::Address(1), &mut buf);
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(DATA), &buf[..len], &mut fx);
    assert_eq!(replies_to(&fx, 1), [(tag, Reply::Error(Errno::EIO))]);
    assert_eq!(mc(&r), 0);
    r.ok();
    // An unknown tag fails what is in flight to that driver.
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 1));
    let len = protocol::encode_driver_reply(0xdead, &protocol::DriverReply::Done, &mut buf);
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(DATA), &buf[..len], &mut fx);
    assert_eq!(replies_to(&fx, 1), [(tag, Reply::Error(Errno::EIO))]);
    r.d(DATA).held.clear();
    r.d(DATA).hold = false;
    // A garbled driver reply is a bad answer too.
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 2));
    let (dtag, _) = r.d(DATA).held.pop().unwrap();
    r.d(DATA).hold = false;
    let len = protocol::encode_driver_reply(dtag, &protocol::DriverReply::Count(1), &mut buf);
    buf[len - 1] = 0xff;
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(DATA), &buf[..len], &mut fx);
    assert_eq!(replies_to(&fx, 1), [(tag, Reply::Error(Errno::EIO))]);
    // A driver reply from a connection that is no driver.
    let len = protocol::encode_driver_reply(7, &protocol::DriverReply::Done, &mut buf);
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(1), &buf[..len], &mut fx);
    assert_eq!(replies_to(&fx, 1), [(7, Reply::Error(Errno::EPROTO))]);
    r.ok();
}

#[test]
fn enosys_never_reaches_a_client() {
    let mut r = env();
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    set_tst(&mut r, |o| o.read_error = Some(Errno::ENOSYS));
    set_tst(&mut r, |o| o.gua = Some(Err(Errno::ENOSYS)));
    assert_eq!(r.mmap(1, P, R, PR, t, 0), Err(Errno::EIO));
    assert_eq!(r.mmap(1, P, R, SH, t, 0), Err(Errno::ENODEV));
    r.ok();
}

/// The replies in `fx` to connection `c`.
fn replies_to(fx: &[crate::Effect], c: u64) -> Vec<(u32, Reply)> {
    fx.iter()
        .filter_map(|e| match e {
            crate::Effect::Send { to, frame } if *to == ClientId(c) => {
                protocol::decode_reply(frame.as_slice())
                    .ok()
                    .map(|f| (f.tag, f.message))
            }
            _ => None,
        })
        .collect()
}

// Backing storage, exclusive mode.

#[test]
fn backing_calls_are_for_drivers_only() {
    let mut r = env();
    assert_eq!(
        r.call(1, Request::AllocBacking { pages: 1 }),
        Reply::Error(Errno::EPERM)
    );
    assert_eq!(
        r.call(
            1,
            Request::FreeBacking {
                addr: BASE,
                pages: 1
            }
        ),
        Reply::Error(Errno::EPERM)
    );
    assert_eq!(
        r.call(1, Request::BeginExclusive { object: 1 }),
        Reply::Error(Errno::EPERM)
    );
    let Reply::Mapped { addr } = r.call(TMP, Request::AllocBacking { pages: 2 }) else {
        panic!()
    };
    assert_eq!(r.s.stats().backing_pages, 10);
    // Another driver cannot free it.
    assert_eq!(
        r.call(DATA, Request::FreeBacking { addr, pages: 2 }),
        Reply::Error(Errno::EINVAL)
    );
    assert_eq!(
        r.call(TMP, Request::FreeBacking { addr, pages: 2 }),
        Reply::Done
    );
    r.ok();
}

#[test]
fn storage_under_a_mapping_cannot_be_freed() {
    let mut r = env();
    let s = r.open(1, "/tmp/s", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, s, P).unwrap();
    let x = r.mmap(1, P, RW, SH, s, 0).unwrap();
    assert_eq!(
        r.call(TMP, Request::FreeBacking { addr: x, pages: 1 }),
        Reply::Error(Errno::EBUSY)
    );
    r.ok();
}

#[test]
fn exclusive_mode() {
    let mut r = env();
    let s = r.open(1, "/tmp/s", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, s, 2 * P).unwrap();
    let obj = r.d(TMP).paths["s"];
    let x = r.mmap(1, P, R, SH, s, 0).unwrap();
    assert_eq!(
        r.call(TMP, Request::BeginExclusive { object: obj }),
        Reply::Error(Errno::EBUSY)
    );
    r.munmap(1, x, P).unwrap();
    assert_eq!(
        r.call(TMP, Request::BeginExclusive { object: obj }),
        Reply::Done
    );
    assert_eq!(
        r.call(TMP, Request::BeginExclusive { object: obj }),
        Reply::Error(Errno::EBUSY)
    );
    // Shared → EBUSY; private → a copy read through the driver.
    assert_eq!(r.mmap(1, P, R, SH, s, 0), Err(Errno::EBUSY));
    let c = r.mmap(1, P, R, PR, s, 0).unwrap();
    assert!(r
        .d(TMP)
        .log
        .iter()
        .any(|q| matches!(q, DriverRequest::Read { dest, .. } if *dest == c)));
    assert_eq!(mc(&r), 4);
    assert_eq!(
        r.call(TMP, Request::EndExclusive { object: obj }),
        Reply::Done
    );
    assert_eq!(
        r.call(TMP, Request::EndExclusive { object: obj }),
        Reply::Error(Errno::EINVAL)
    );
    // The copy is shareable: a later private request reuses it.
    assert_eq!(
        {
            let fd = r_open(&mut r, 2, "/tmp/s");
            r.mmap(2, P, R, PR, fd, 0)
        },
        Ok(c)
    );
    r.ok();
}

#[test]
fn ptrace_permissions() {
    let mut r = env();
    let other = r.process(3, 1001);
    let root = r.process(4, 0);
    let p1 = 1;
    assert_eq!(
        r.call(1, Request::PtraceAttach { pid: other }),
        Reply::Error(Errno::EPERM)
    );
    assert_eq!(
        r.call(1, Request::PtraceAttach { pid: 999_999 }),
        Reply::Error(Errno::ESRCH)
    );
    assert_eq!(
        r.call(1, Request::PtraceAttach { pid: p1 }),
        Reply::Error(Errno::EPERM),
        "not itself"
    );
    assert_eq!(r.call(4, Request::PtraceAttach { pid: other }), Reply::Done);
    assert_eq!(
        r.call(2, Request::PtraceAttach { pid: other }),
        Reply::Error(Errno::EPERM)
    );
    assert_eq!(
        r.call(1, Request::PtraceDetach { pid: other }),
        Reply::Error(Errno::ESRCH)
    );
    // The tracer exits: the tracee is free.
    r.call(4, Request::Exit);
    assert_eq!(
        r.call(2, Request::PtraceDetach { pid: other }),
        Reply::Error(Errno::ESRCH)
    );
    let _ = root;
    r.ok();
}
