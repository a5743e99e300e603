use super::*;
use crate::testing::*;
use crate::BackingDevice;
use alloc::sync::Arc;
use core::sync::atomic::Ordering::SeqCst;
use protocol::DriverOps;
use protocol::DriverRequest;

const SECTOR: usize = 512;
const SECTORS: u64 = 24;
const SIZE: u64 = SECTOR as u64 * SECTORS;

fn contents() -> Vec<u8> {
    (0..SIZE as usize).map(pattern).collect()
}

fn disk() -> (BlockDev, TestHost, Arc<DiskStats>) {
    let mut host = TestHost::new();
    let sim = SimDisk::with_contents(SECTOR, contents());
    let stats = sim.stats.clone();
    let mut d = BlockDev::new(
        MountPoint::new("/dev/vda", (254, 0)).unwrap(),
        Box::new(sim),
    );
    BackingDevice::start(&mut d, &mut host).unwrap();
    (d, host, stats)
}

#[test]
fn it_is_a_copy_only_block_device() {
    let (mut d, mut host, _) = disk();
    let info = opened(d.serve(lookup("", 0o2, 0), &mut host));
    assert_eq!(info.kind, ObjectKind::BlockDevice);
    assert_eq!(info.caps, Some(0x01 | 0x10 | 0x20));
    assert_eq!(info.size, SIZE);
    assert!(!info.ops.has(DriverOps::GET_UNMAPPED_AREA));
    assert!(info.ops.has(DriverOps::MMAP) && info.ops.has(DriverOps::READ));
    assert_copy_only(&mut d, &mut host);
    assert_eq!(d.registration().name.as_str(), "blockdev");
    assert_eq!(host.allocated_pages(), 0, "nothing in the arena");
    assert_eq!(d.size(), Some(SIZE));
}

/// A private mapping's copy is filled from the sectors, short at the end.
#[test]
fn mapping_copies_come_from_the_sectors() {
    let (mut d, mut host, stats) = disk();
    let dest = host.alloc_backing(3).unwrap();
    assert_eq!(
        count(d.serve(read_into(1, 4096, 8192, dest), &mut host)),
        8192
    );
    assert_eq!(host.read(dest, 8192), &contents()[4096..12288]);
    assert_eq!(stats.sectors_read.load(SeqCst), 16);
    // Unaligned start, clipped at the end of the disk.
    assert_eq!(
        count(d.serve(read_into(1, SIZE - 700, 4096, dest), &mut host)),
        700
    );
    assert_eq!(host.read(dest, 700), &contents()[SIZE as usize - 700..]);
    assert_eq!(count(d.serve(read_into(1, SIZE, 4096, dest), &mut host)), 0);
    assert_eq!(stats.bad_calls.load(SeqCst), 0);
}

#[test]
fn unaligned_reads_and_writes_patch_sectors() {
    let (mut d, mut host, stats) = disk();
    let mut expect = contents();
    // Inside one sector, across a boundary, a run with a whole sector in
    // the middle and partial ones at both ends, two whole sectors.
    for (at, len) in [(10usize, 5usize), (510, 4), (700, 1000), (1536, 1024)] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + at) as u8 ^ 0x5A).collect();
        assert_eq!(
            count(d.serve(write_data(1, at as u64, &data), &mut host)),
            len as u64
        );
        expect[at..at + len].copy_from_slice(&data);
        assert_eq!(data_of(&mut d, &mut host, 0, SIZE), expect, "at {at}");
    }
    assert_eq!(
        data(d.serve(read_data(1, 509, 7), &mut host)),
        &expect[509..516]
    );
    assert_eq!(stats.bad_calls.load(SeqCst), 0);
    // An aligned whole-sector write does not read first.
    let reads = stats.reads.load(SeqCst);
    let block = [0xA5u8; 2 * SECTOR];
    assert_eq!(count(d.serve(write_data(1, 2048, &block), &mut host)), 1024);
    assert_eq!(stats.reads.load(SeqCst), reads);
}

fn data_of(d: &mut BlockDev, host: &mut TestHost, offset: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let chunk = data(d.serve(read_data(1, offset + out.len() as u64, 1024), host));
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    out
}

#[test]
fn out_of_range_is_linux_block_device_behaviour() {
    let (mut d, mut host, stats) = disk();
    assert_writes_stop_at(&mut d, &mut host, SIZE, Errno::ENOSPC);
    assert_eq!(
        error(d.serve(write_data(1, u64::MAX, b"x"), &mut host)),
        Errno::ENOSPC
    );
    assert_eq!(count(d.serve(write_data(1, 0, b""), &mut host)), 0);
    assert_eq!(data(d.serve(read_data(1, SIZE - 2, 100), &mut host)), b"ab");
    assert_eq!(data(d.serve(read_data(1, SIZE, 100), &mut host)), b"");
    assert_eq!(data(d.serve(read_data(1, u64::MAX, 100), &mut host)), b"");
    assert_eq!(stats.bad_calls.load(SeqCst), 0);
    assert_errors(
        &mut d,
        &mut host,
        &[
            (read_data(2, 0, 1), Errno::EBADF),
            (lookup("x", 0, 0), Errno::ENOENT),
            (lookup("", 0o300, 0), Errno::EEXIST),
            (
                DriverRequest::Truncate { object: 1, size: 0 },
                Errno::EINVAL,
            ),
        ],
    );
}

#[test]
fn device_errors_reach_the_caller() {
    let (mut d, mut host, stats) = disk();
    stats.fail_next.store(true, SeqCst);
    assert_eq!(error(d.serve(read_data(1, 0, 10), &mut host)), Errno::EIO);
    stats.fail_next.store(true, SeqCst);
    assert_eq!(
        error(d.serve(write_data(1, 3, b"xy"), &mut host)),
        Errno::EIO
    );
    assert_eq!(
        data(d.serve(read_data(1, 3, 2), &mut host)),
        &contents()[3..5]
    );
}

#[test]
fn bad_geometry_does_not_start() {
    let mut host = TestHost::new();
    let m = MountPoint::new("/dev/vdb", (254, 16)).unwrap();
    for sim in [
        SimDisk::new(SECTOR, 0),
        SimDisk::with_contents(0, Vec::new()),
    ] {
        let mut d = BlockDev::new(m.clone(), Box::new(sim));
        assert_eq!(BackingDevice::start(&mut d, &mut host), Err(Errno::EINVAL));
        assert_errors(
            &mut d,
            &mut host,
            &[
                (lookup("", 0, 0), Errno::EIO),
                (read_data(1, 0, 1), Errno::EIO),
            ],
        );
    }
    let mut d = BlockDev::new(m, Box::new(SimDisk::new(4096, 2)));
    BackingDevice::start(&mut d, &mut host).unwrap();
    assert_eq!(BackingDevice::start(&mut d, &mut host), Err(Errno::EBUSY));
}
