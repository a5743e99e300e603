use super::*;
use crate::flags::open::{CREAT, EXCL, RDONLY, RDWR, TRUNC, WRONLY};
use crate::flags::vm::{MAYOVERLAY, MAYSHARE, SHARED};
use crate::testing::*;
use alloc::vec;
use protocol::DriverRequest;

fn fs() -> (Ramfs, TestHost) {
    started(Ramfs::new(MountPoint::new("/tmp", (0, 12)).unwrap()))
}

fn scattered() -> (Ramfs, TestHost) {
    let mut host = TestHost::new();
    let mut fs =
        Ramfs::new(MountPoint::new("/dev/shm", (0, 13)).unwrap()).scatter_written_pages(true);
    fs.start(&mut host).unwrap();
    (fs, host)
}

fn create(fs: &mut Ramfs, host: &mut TestHost, name: &str) -> ObjectInfo {
    opened(fs.serve(lookup(name, CREAT | RDWR, 0o600), host))
}

fn truncate(fs: &mut Ramfs, host: &mut TestHost, object: u64, size: u64) -> DriverReply {
    fs.serve(DriverRequest::Truncate { object, size }, host)
}

#[test]
fn registration_names_the_mount() {
    let (fs, _) = fs();
    let r = fs.registration();
    assert_eq!(r.mount.as_str(), "/tmp");
    assert_eq!(r.dev, (0, 12));
    assert!(!r.read_only);
    assert_eq!(r.name.as_str(), "ramfs");
}

#[test]
fn create_open_and_refusals() {
    let (mut fs, mut host) = fs();
    assert_eq!(
        error(fs.serve(lookup("a", RDWR, 0), &mut host)),
        Errno::ENOENT
    );
    let a = create(&mut fs, &mut host, "a");
    assert_eq!(a.kind, ObjectKind::MemoryFile);
    assert_eq!(a.caps, Some(0x01 | 0x08 | 0x10 | 0x20 | 0x40));
    assert_eq!(
        a.ops.0,
        DriverOps::MMAP
            | DriverOps::READ
            | DriverOps::WRITE
            | DriverOps::GET_UNMAPPED_AREA
            | DriverOps::TRUNCATE
    );
    assert_eq!(a.mode, 0o600);
    assert_eq!(a.size, 0);
    // The same file is the same object, however it is opened.
    let again = opened(fs.serve(lookup("a", RDONLY, 0), &mut host));
    assert_eq!((again.object, again.ino), (a.object, a.ino));
    assert_eq!(
        error(fs.serve(lookup("a", CREAT | EXCL | RDWR, 0o600), &mut host)),
        Errno::EEXIST
    );
    let b = create(&mut fs, &mut host, "b");
    assert_ne!(b.object, a.object);
    assert_ne!(b.ino, a.ino);
    for bad in ["a/b", "x/", "/a"] {
        assert_eq!(
            error(fs.serve(lookup(bad, CREAT | RDWR, 0), &mut host)),
            Errno::ENOENT
        );
    }
    let long = "n".repeat(256);
    assert_eq!(
        error(fs.serve(lookup(&long, CREAT | RDWR, 0), &mut host)),
        Errno::ENAMETOOLONG
    );
}

#[test]
fn the_root_is_a_directory() {
    let (mut fs, mut host) = fs();
    let root = assert_root_is_a_directory(&mut fs, &mut host);
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (lookup("", CREAT, 0), Errno::EISDIR),
            (read_data(root.object, 0, 10), Errno::EISDIR),
            (write_data(root.object, 0, b"x"), Errno::EISDIR),
        ],
    );
}

#[test]
fn unknown_objects_are_bad_handles() {
    let (mut fs, mut host) = fs();
    for request in [
        read_data(99, 0, 1),
        write_data(99, 0, b"x"),
        get_unmapped_area(99, 4096, 0),
        mmap(99, 0, 4096, 0, SHARED),
        DriverRequest::Stat { object: 99 },
        DriverRequest::Truncate {
            object: 99,
            size: 1,
        },
        DriverRequest::Release { object: 99 },
    ] {
        assert_eq!(error(fs.serve(request, &mut host)), Errno::EBADF);
    }
}

/// Vector 35: truncate from 0 gives one contiguous run, mapped in place;
/// stores through it are seen by reads and writes are seen through it.
#[test]
fn truncate_from_zero_is_one_mappable_run() {
    let (mut fs, mut host) = fs();
    let s = create(&mut fs, &mut host, "s").object;
    host.clear_events();
    assert_eq!(truncate(&mut fs, &mut host, s, 8192), DriverReply::Done);
    assert!(matches!(host.events(), [HostEvent::Alloc { pages: 2, .. }]));
    let x = address(fs.serve(get_unmapped_area(s, 8192, 0), &mut host));
    assert_eq!(x % 4096, 0);
    assert_eq!(
        address(fs.serve(get_unmapped_area(s, 4096, 1), &mut host)),
        x + 4096
    );
    assert_eq!(
        fs.serve(mmap(s, x, 8192, 0, SHARED | MAYSHARE), &mut host),
        DriverReply::Done
    );
    host.store(x + 100, b"store");
    assert_eq!(data(fs.serve(read_data(s, 100, 5), &mut host)), b"store");
    assert_eq!(
        count(fs.serve(write_data(s, 5000, b"pwrite"), &mut host)),
        6
    );
    assert_eq!(host.read(x + 5000, 6), b"pwrite");
    assert_eq!(
        opened(fs.serve(DriverRequest::Stat { object: s }, &mut host)).size,
        8192
    );
    // Vector 37: beyond EOF, copy instead (the server makes it ENODEV).
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (get_unmapped_area(s, 12288, 0), Errno::ENOSYS),
            (get_unmapped_area(s, 4096, 2), Errno::ENOSYS),
        ],
    );
}

#[test]
fn mmap_approves_only_shareable_mappings() {
    let (mut fs, mut host) = fs();
    let s = create(&mut fs, &mut host, "s").object;
    truncate(&mut fs, &mut host, s, 4096);
    for flags in [SHARED, MAYSHARE, MAYOVERLAY, 0x1 | 0x10 | MAYOVERLAY] {
        assert_eq!(
            fs.serve(mmap(s, 0, 4096, 0, flags), &mut host),
            DriverReply::Done
        );
    }
    assert_eq!(
        error(fs.serve(mmap(s, 0, 4096, 0, 0x1 | 0x2 | 0x10 | 0x20), &mut host)),
        Errno::ENOSYS
    );
}

/// Vector 36: pages added by write() are scattered, so a shared mapping
/// of several of them cannot be direct; a single page always can.
#[test]
fn written_pages_are_scattered() {
    let (mut fs, mut host) = scattered();
    let w = create(&mut fs, &mut host, "w").object;
    let content: Vec<u8> = (0..3 * 4096).map(pattern).collect();
    let mut at = 0;
    host.clear_events();
    for chunk in content.chunks(1000) {
        assert_eq!(
            count(fs.serve(write_data(w, at, chunk), &mut host)),
            1000.min(chunk.len() as u64)
        );
        at += chunk.len() as u64;
    }
    let allocs: Vec<u64> = host
        .events()
        .iter()
        .filter_map(|e| match e {
            HostEvent::Alloc { pages, .. } => Some(*pages),
            _ => None,
        })
        .collect();
    assert!(
        allocs.iter().all(|p| *p == 1),
        "one page at a time: {allocs:?}"
    );
    let map = fs.page_map("w").unwrap();
    assert_eq!(map.len(), 3);
    for pair in map.windows(2) {
        assert_ne!(pair[0].1 + 4096, pair[1].1, "pages {pair:?} touch");
    }
    assert_eq!(
        error(fs.serve(get_unmapped_area(w, 3 * 4096, 0), &mut host)),
        Errno::ENOSYS
    );
    assert_eq!(
        address(fs.serve(get_unmapped_area(w, 4096, 1), &mut host)),
        map[1].1
    );
    // The copy the server makes instead reads the file bytes.
    let dest = host.alloc_backing(3).unwrap();
    assert_eq!(
        count(fs.serve(read_into(w, 0, 3 * 4096, dest), &mut host)),
        3 * 4096
    );
    assert_eq!(host.read(dest, 3 * 4096), content);
    // Spare pages held while scattering all went back.
    assert_eq!(host.allocated_pages(), 3 + 3);
}

#[test]
fn without_scattering_written_pages_take_what_comes() {
    let (mut fs, mut host) = fs();
    let w = create(&mut fs, &mut host, "w").object;
    fs.serve(write_data(w, 0, &[1; 1024]), &mut host);
    fs.serve(write_data(w, 4096, &[2; 1024]), &mut host);
    // The test host allocates first fit, so these happen to be adjacent.
    let map = fs.page_map("w").unwrap();
    assert_eq!(map[0].1 + 4096, map[1].1);
    assert_eq!(
        address(fs.serve(get_unmapped_area(w, 5000, 0), &mut host)),
        map[0].1
    );
}

/// Vectors 98 and 99.
#[test]
fn shrinking_and_growing_a_non_empty_file() {
    let (mut fs, mut host) = fs();
    let b = create(&mut fs, &mut host, "b").object;
    truncate(&mut fs, &mut host, b, 8192);
    let first = address(fs.serve(get_unmapped_area(b, 4096, 0), &mut host));
    host.store(first + 4000, &[7; 96]);
    host.clear_events();
    assert_eq!(truncate(&mut fs, &mut host, b, 4000), DriverReply::Done);
    assert!(host.events().contains(&HostEvent::Free {
        addr: first + 4096,
        pages: 1
    }));
    assert_eq!(host.allocated_pages(), 1);
    assert_eq!(
        error(fs.serve(get_unmapped_area(b, 8192, 0), &mut host)),
        Errno::ENOSYS
    );
    assert_eq!(
        address(fs.serve(get_unmapped_area(b, 4096, 0), &mut host)),
        first
    );
    // Growing again: size only, and the cut tail reads zero.
    assert_eq!(truncate(&mut fs, &mut host, b, 16384), DriverReply::Done);
    assert_eq!(host.allocated_pages(), 1);
    assert_eq!(
        data(fs.serve(read_data(b, 3990, 20), &mut host)),
        [[0; 10], [0; 10]].concat()
    );
    assert_eq!(data(fs.serve(read_data(b, 10000, 8), &mut host)), [0; 8]);
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (get_unmapped_area(b, 16384, 0), Errno::ENOSYS),
            (get_unmapped_area(b, 4096, 1), Errno::ENOSYS),
        ],
    );
    // Same size: nothing happens.
    host.clear_events();
    assert_eq!(truncate(&mut fs, &mut host, b, 16384), DriverReply::Done);
    assert!(host.events().is_empty());
    // To zero and from zero again: a fresh contiguous run.
    truncate(&mut fs, &mut host, b, 0);
    assert_eq!(host.allocated_pages(), 0);
    truncate(&mut fs, &mut host, b, 3 * 4096);
    assert!(
        fs.serve(get_unmapped_area(b, 3 * 4096, 0), &mut host) != DriverReply::Error(Errno::ENOSYS)
    );
}

/// Vector 100 (the 4 GiB limit is the driver's; the order limit the
/// server's), and Linux's out-of-memory quirk.
#[test]
fn truncate_limits() {
    let (mut fs, mut host) = fs();
    let c = create(&mut fs, &mut host, "c").object;
    assert_eq!(
        error(truncate(&mut fs, &mut host, c, 5 << 30)),
        Errno::EFBIG
    );
    assert_eq!(
        error(truncate(&mut fs, &mut host, c, 1 << 32)),
        Errno::EFBIG
    );
    assert_eq!(
        error(truncate(&mut fs, &mut host, c, u64::MAX)),
        Errno::EFBIG
    );
    assert_eq!(
        opened(fs.serve(DriverRequest::Stat { object: c }, &mut host)).size,
        0
    );
    host.limit_alloc(2);
    assert_eq!(
        error(truncate(&mut fs, &mut host, c, 3 * 4096)),
        Errno::ENOMEM
    );
    // Linux has set the size before the allocation failed.
    let info = opened(fs.serve(DriverRequest::Stat { object: c }, &mut host));
    assert_eq!(info.size, 3 * 4096);
    assert_eq!(data(fs.serve(read_data(c, 0, 16), &mut host)), [0; 16]);
    // Growing a non-empty file past 4 GiB is only a size.
    assert_eq!(truncate(&mut fs, &mut host, c, 5 << 30), DriverReply::Done);
}

#[test]
fn reads_are_short_at_end_of_file_and_holes_read_zero() {
    let (mut fs, mut host) = fs();
    let h = create(&mut fs, &mut host, "h").object;
    assert_eq!(count(fs.serve(write_data(h, 10000, b"tail"), &mut host)), 4);
    assert_eq!(
        opened(fs.serve(DriverRequest::Stat { object: h }, &mut host)).size,
        10004
    );
    assert_eq!(fs.page_map("h").unwrap().len(), 1, "only the written page");
    assert_eq!(
        data(fs.serve(read_data(h, 9998, 100), &mut host)),
        b"\0\0tail"
    );
    assert_eq!(data(fs.serve(read_data(h, 10004, 100), &mut host)), b"");
    assert_eq!(data(fs.serve(read_data(h, u64::MAX, 100), &mut host)), b"");
    assert_eq!(data(fs.serve(read_data(h, 0, 5000), &mut host)).len(), 1024);
    let dest = host.alloc_backing(3).unwrap();
    host.store(dest, &[0xEE; 3 * 4096]);
    assert_eq!(
        count(fs.serve(read_into(h, 4096, 3 * 4096, dest), &mut host)),
        10004 - 4096
    );
    let copy = host.read(dest, 3 * 4096);
    assert!(
        copy[..10000 - 4096].iter().all(|b| *b == 0),
        "the hole reads zero"
    );
    assert_eq!(&copy[10000 - 4096..10004 - 4096], b"tail");
    assert_eq!(
        count(fs.serve(read_into(h, 20000, 4096, dest), &mut host)),
        0
    );
}

#[test]
fn writes_past_the_size_limit_are_refused() {
    let (mut fs, mut host) = fs();
    let f = create(&mut fs, &mut host, "f").object;
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (write_data(f, u64::MAX - 1, b"xy"), Errno::EFBIG),
            (write_data(f, i64::MAX as u64, b"x"), Errno::EFBIG),
        ],
    );
    assert_eq!(count(fs.serve(write_data(f, 0, b""), &mut host)), 0);
    assert_eq!(host.allocated_pages(), 0);
}

#[test]
fn a_write_that_runs_out_of_memory_is_short() {
    let (mut fs, mut host) = fs();
    let f = create(&mut fs, &mut host, "f").object;
    host.limit_alloc(1);
    assert_eq!(
        count(fs.serve(write_data(f, 4000, &[5; 200]), &mut host)),
        96
    );
    assert_eq!(
        opened(fs.serve(DriverRequest::Stat { object: f }, &mut host)).size,
        4096
    );
    assert_eq!(
        error(fs.serve(write_data(f, 8192, &[5; 10]), &mut host)),
        Errno::ENOMEM
    );
}

#[test]
fn o_trunc_empties_the_file() {
    let (mut fs, mut host) = fs();
    let f = create(&mut fs, &mut host, "f").object;
    truncate(&mut fs, &mut host, f, 8192);
    assert_eq!(host.allocated_pages(), 2);
    let info = opened(fs.serve(lookup("f", WRONLY | TRUNC, 0), &mut host));
    assert_eq!(info.size, 0);
    assert_eq!(host.allocated_pages(), 0);
}

#[test]
fn unlinked_files_go_away_on_release() {
    let (mut fs, mut host) = fs();
    let held = create(&mut fs, &mut host, "held").object;
    truncate(&mut fs, &mut host, held, 8192);
    let idle = create(&mut fs, &mut host, "idle").object;
    fs.serve(write_data(idle, 0, b"x"), &mut host);
    assert_eq!(
        fs.serve(DriverRequest::Release { object: idle }, &mut host),
        DriverReply::Done
    );
    assert_eq!(host.allocated_pages(), 3);

    // Not held by the server: gone at once.
    fs.unlink("idle", &mut host).unwrap();
    assert_eq!(host.allocated_pages(), 2);
    assert_eq!(
        error(fs.serve(DriverRequest::Stat { object: idle }, &mut host)),
        Errno::EBADF
    );
    // Held: the name goes, the pages stay until Release.
    fs.unlink("held", &mut host).unwrap();
    assert_eq!(
        error(fs.serve(lookup("held", RDWR, 0), &mut host)),
        Errno::ENOENT
    );
    assert_eq!(host.allocated_pages(), 2);
    assert_eq!(data(fs.serve(read_data(held, 0, 4), &mut host)), [0; 4]);
    assert_eq!(
        fs.serve(DriverRequest::Release { object: held }, &mut host),
        DriverReply::Done
    );
    assert_eq!(host.allocated_pages(), 0);
    assert_eq!(fs.unlink("held", &mut host), Err(Errno::ENOENT));
    // A new file of the old name is a new object.
    let again = create(&mut fs, &mut host, "held").object;
    assert_ne!(again, held);
}

/// Pages from one truncate and pages from writes are separate runs: the
/// frees must not span two runs even where they touch.
#[test]
fn frees_never_span_two_runs() {
    let (mut fs, mut host) = fs();
    let f = create(&mut fs, &mut host, "f").object;
    truncate(&mut fs, &mut host, f, 2 * 4096);
    fs.serve(write_data(f, 2 * 4096, &[1; 1024]), &mut host);
    fs.serve(write_data(f, 3 * 4096, &[2; 1024]), &mut host);
    let map = fs.page_map("f").unwrap();
    assert!(map.windows(2).all(|p| p[0].1 + 4096 == p[1].1), "{map:?}");
    host.clear_events();
    assert_eq!(truncate(&mut fs, &mut host, f, 4096), DriverReply::Done);
    assert_eq!(host.allocated_pages(), 1);
    let frees: Vec<_> = host
        .events()
        .iter()
        .filter(|e| matches!(e, HostEvent::Free { .. }))
        .cloned()
        .collect();
    assert_eq!(frees.len(), 3, "{frees:?}");
}

/// Random writes, truncates and reads on a few files against a plain
/// model; the test host checks every allocation and free.
#[test]
fn random_operations_match_a_model() {
    for seed in 1..=12u64 {
        let mut rng = Rng::new(seed);
        let (mut fs, mut host) = if seed % 2 == 0 { scattered() } else { fs() };
        let names = ["a", "b", "c"];
        let objects: Vec<u64> = names
            .iter()
            .map(|n| create(&mut fs, &mut host, n).object)
            .collect();
        let mut model: Vec<Vec<u8>> = vec![Vec::new(); names.len()];
        for step in 0..300 {
            let i = rng.below(names.len() as u64) as usize;
            let object = objects[i];
            match rng.below(10) {
                0..=4 => {
                    let offset = rng.below(6 * 4096);
                    let len = 1 + rng.below(1024) as usize;
                    let byte = rng.next_u64() as u8;
                    let bytes = vec![byte; len];
                    let n = count(fs.serve(write_data(object, offset, &bytes), &mut host));
                    assert_eq!(n, len as u64);
                    let end = offset as usize + len;
                    if model[i].len() < end {
                        model[i].resize(end, 0);
                    }
                    model[i][offset as usize..end].fill(byte);
                }
                5 | 6 => {
                    let size = rng.below(7 * 4096);
                    assert_eq!(
                        truncate(&mut fs, &mut host, object, size),
                        DriverReply::Done
                    );
                    model[i].resize(size as usize, 0);
                }
                _ => {
                    let offset = rng.below(7 * 4096);
                    let len = rng.below(1100) as u32;
                    let got = data(fs.serve(read_data(object, offset, len), &mut host));
                    let m = &model[i];
                    let start = (offset as usize).min(m.len());
                    let end = (start + (len as usize).min(1024)).min(m.len());
                    assert_eq!(got, &m[start..end], "seed {seed} step {step}");
                }
            }
            assert_eq!(
                host.allocated_pages(),
                fs.pages_held(),
                "seed {seed} step {step}"
            );
        }
        for (i, object) in objects.iter().enumerate() {
            let size = model[i].len() as u64;
            let dest = host.alloc_backing(size.div_ceil(4096).max(1)).unwrap();
            assert_eq!(
                count(fs.serve(read_into(*object, 0, size, dest), &mut host)),
                size
            );
            assert_eq!(host.read(dest, size as usize), model[i]);
            host.free_backing(dest, size.div_ceil(4096).max(1)).unwrap();
            fs.unlink(names[i], &mut host).unwrap();
            fs.serve(DriverRequest::Release { object: *object }, &mut host);
        }
        assert_eq!(host.allocated_pages(), 0, "seed {seed}");
    }
}

#[test]
fn a_huge_sparse_copy_stops_at_the_arena_end() {
    let (mut fs, mut host) = fs();
    let f = create(&mut fs, &mut host, "f").object;
    fs.serve(write_data(f, 0, b"x"), &mut host);
    assert_eq!(truncate(&mut fs, &mut host, f, 5 << 30), DriverReply::Done);
    let dest = host.alloc_backing(1).unwrap();
    assert_eq!(
        error(fs.serve(read_into(f, 0, 5 << 30, dest), &mut host)),
        Errno::EFAULT
    );
}
