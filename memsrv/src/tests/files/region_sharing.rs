//! Spec §14.3: region sharing between file mappings.

use super::*;

// §14.3.

#[test]
fn vectors_45_46_55_shared_copies() {
    let mut r = env();
    let (fa, fb) = open_in_both(&mut r, "/data/f", RDONLY);
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
    let (fa, fb) = open_in_both(&mut r, "/data/f", RDONLY);
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
    let (fa, fb) = open_in_both(&mut r, "/data/f", RDONLY);
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
    let (fu, fv) = open_in_both(&mut r, "/data/f", RDONLY);
    let x = r.mmap(4, P, R, PR, ft, 0).unwrap();
    let u = r.mmap(1, P, R, PR, fu, 0).unwrap();
    assert_ne!(u, x);
    assert_eq!(r.mmap(2, P, R, PR, fv, 0), Ok(u));
    // The traced mapping shows `p` and holds its own copy.
    assert_eq!(mc(&r), 8);
    // A traced process still shares MAP_SHARED mappings.
    let s = r.memory_file(4, "/tmp/s", P);
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
    let (ta, tb) = open_in_both(&mut r, "/dev/tst", RDWR);
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
