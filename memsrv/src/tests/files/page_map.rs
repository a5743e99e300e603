//! Leases to a memory filesystem whose pages the server already knows
//! (`ops::page_map`): a second lease of the same pages asks the driver
//! nothing, and whatever may move or drop pages makes the server ask again
//! — truncation (shrinking and growing), a write past the known size, the
//! driver giving storage back; two writers see each other's bytes, and an
//! unlinked file keeps its pages.

use super::*;

/// `/tmp/g` (`size` bytes, one contiguous run) opened read-write by
/// process 1, its driver answering `Pages`.
fn env_pages(size: u64) -> (Rig, i32) {
    let mut r = env();
    let fd = r.memory_file(1, "/tmp/g", size);
    r.d(TMP).obj("g").answers_pages = true;
    (r, fd)
}

/// `pread`/`pwrite` (`write`) of `len` bytes at `at` by lease, from or
/// into `buf`.
pub(super) fn lease(
    r: &mut Rig,
    c: u64,
    write: bool,
    fd: i32,
    buf: u64,
    len: u64,
    at: u64,
) -> Reply {
    r.call(c, protocol::lease_request(write, fd, buf, len, Some(at)))
}

fn pages_asked(r: &mut Rig) -> usize {
    r.d(TMP)
        .log
        .iter()
        .filter(|q| matches!(q, DriverRequest::Pages { .. }))
        .count()
}

/// A fresh private anonymous mapping of `len` bytes for process `c`.
pub(super) fn buffer(r: &mut Rig, c: u64, len: u64) -> u64 {
    r.mmap(c, len, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap()
}

#[test]
fn known_pages_are_not_asked_for_again() {
    let (mut r, fd) = env_pages(5 * P);
    let buf = buffer(&mut r, 1, 5 * P);
    r.s.memory_mut().bytes_at(buf, 5 * P).fill(0x11);
    assert_eq!(
        lease(&mut r, 1, true, fd, buf, 5 * P, 0),
        Reply::Count(5 * P)
    );
    assert_eq!(pages_asked(&mut r), 1);
    // Reads and writes at odd places inside what is known: no driver.
    r.s.memory_mut().bytes_at(buf + 3, 5000).fill(0x22);
    assert_eq!(
        lease(&mut r, 1, true, fd, buf + 3, 5000, 777),
        Reply::Count(5000)
    );
    let back = buffer(&mut r, 1, 5 * P);
    assert_eq!(
        lease(&mut r, 1, false, fd, back + 1, 5 * P - 1, 1),
        Reply::Count(5 * P - 1)
    );
    let mut want = alloc::vec![0x11u8; 5 * P as usize];
    want[777..5777].fill(0x22);
    assert_eq!(r.bytes(back + 1, 5 * P - 1), want[1..]);
    assert_eq!(pages_asked(&mut r), 1, "answered from the known pages");
    // Past the known size: the driver says where the file ends.
    assert_eq!(
        lease(&mut r, 1, false, fd, back, 100, 5 * P - 10),
        Reply::Count(10)
    );
    assert_eq!(pages_asked(&mut r), 2);
    // The same bytes through ordinary reads agree.
    assert_eq!(r.pread(1, fd, 16, 770).unwrap(), want[770..786]);
    r.ok();
}

#[test]
fn truncation_and_extension_make_the_server_ask_again() {
    let (mut r, fd) = env_pages(4 * P);
    let buf = buffer(&mut r, 1, 4 * P);
    r.s.memory_mut().bytes_at(buf, 4 * P).fill(0x33);
    assert_eq!(
        lease(&mut r, 1, true, fd, buf, 4 * P, 0),
        Reply::Count(4 * P)
    );
    // Shrunk inside its last page (no storage given back): a read of the
    // old range is short, as the driver says.
    r.ftruncate(1, fd, 4 * P - 10).unwrap();
    let asked = pages_asked(&mut r);
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, 4 * P, 0),
        Reply::Count(4 * P - 10)
    );
    assert_eq!(pages_asked(&mut r), asked + 1);
    // Shrunk by pages: the same.
    r.ftruncate(1, fd, P + 5).unwrap();
    let asked = pages_asked(&mut r);
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, 4 * P, 0),
        Reply::Count(P + 5)
    );
    assert_eq!(pages_asked(&mut r), asked + 1);
    // Grown again: the new part reads as zeros.
    r.ftruncate(1, fd, 3 * P).unwrap();
    r.s.memory_mut().bytes_at(buf, 4 * P).fill(0xff);
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, 3 * P, 0),
        Reply::Count(3 * P)
    );
    assert_eq!(r.bytes(buf, P + 5), [0x33; P as usize + 5]);
    assert!(r.bytes(buf + P + 5, 2 * P - 5).iter().all(|&b| b == 0));
    assert_eq!(pages_asked(&mut r), asked + 2);
    // A write past the end grows the file through the driver; the pages
    // it added are known afterwards.
    assert_eq!(
        lease(&mut r, 1, true, fd, buf, P, 3 * P + 7),
        Reply::Count(P)
    );
    assert_eq!(r.fstat(1, fd).unwrap().size, 4 * P + 7);
    let asked = pages_asked(&mut r);
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, P, 3 * P + 7),
        Reply::Count(P)
    );
    assert_eq!(pages_asked(&mut r), asked);
    r.ok();
}

#[test]
fn two_writers_share_the_pages_and_an_unlinked_file_keeps_them() {
    let (mut r, fd1) = env_pages(2 * P);
    let fd2 = r.open(2, "/tmp/g", RDWR).unwrap();
    let (b1, b2) = (buffer(&mut r, 1, P), buffer(&mut r, 2, P));
    for round in 0..4u8 {
        let (c, fd, b) = if round % 2 == 0 {
            (1, fd1, b1)
        } else {
            (2, fd2, b2)
        };
        r.s.memory_mut().bytes_at(b, 100).fill(round + 1);
        assert_eq!(lease(&mut r, c, true, fd, b, 100, 4000), Reply::Count(100));
        let (c, fd, b) = if round % 2 == 0 {
            (2, fd2, b2)
        } else {
            (1, fd1, b1)
        };
        assert_eq!(
            lease(&mut r, c, false, fd, b + 200, 100, 4000),
            Reply::Count(100)
        );
        assert_eq!(r.bytes(b + 200, 100), [round + 1; 100]);
    }
    let asked = pages_asked(&mut r);
    let unlink = Request::Unlink {
        path: protocol::Path::try_from("/tmp/g").unwrap(),
    };
    assert_eq!(r.call(1, unlink), Reply::Done);
    assert_eq!(
        lease(&mut r, 2, false, fd2, b2, 100, 4000),
        Reply::Count(100)
    );
    assert_eq!(r.bytes(b2, 100), [4; 100]);
    assert_eq!(pages_asked(&mut r), asked, "its pages stay where they were");
    r.ok();
}

#[test]
fn storage_the_driver_gives_back_is_forgotten() {
    let (mut r, fd) = env_pages(2 * P);
    let buf = buffer(&mut r, 1, 2 * P);
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, 2 * P, 0),
        Reply::Count(2 * P)
    );
    let asked = pages_asked(&mut r);
    // The driver frees a page of its own (none of the file's).
    let spare = match r.call(TMP, Request::AllocBacking { pages: 1 }) {
        Reply::Mapped { addr } => addr,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        r.call(
            TMP,
            Request::FreeBacking {
                addr: spare,
                pages: 1
            }
        ),
        Reply::Done
    );
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, 2 * P, 0),
        Reply::Count(2 * P)
    );
    assert_eq!(pages_asked(&mut r), asked + 1);
    r.ok();
}
