//! `ReadLease`, `WriteLease` and the bulk window at the memsrv level, with
//! the fake driver (whose bytes are not arena pages, so the server moves
//! them in framed steps): bytes land exactly, a lease outside the caller's
//! memory is `EFAULT`, the window is charged like a copy and goes back
//! whole when its connection closes; a driver without `Pages` is asked
//! once.

use super::*;
use protocol::BULK_WINDOW;

fn window(r: &mut Rig, c: u64) -> u64 {
    match r.call(c, Request::BulkWindow) {
        Reply::Mapped { addr } => addr,
        other => panic!("BulkWindow: {other:?}"),
    }
}

fn lease(r: &mut Rig, c: u64, write: bool, fd: i32, buf: u64, len: u64, at: u64) -> Reply {
    r.call(c, protocol::lease_request(write, fd, buf, len, Some(at)))
}

#[test]
fn leases_move_whole_requests_and_the_window_goes_back_at_hang_up() {
    let mut r = env();
    let before = r.maps(2, ProcView::Meminfo);
    let fd = r.open(1, "/data/f", RDWR).unwrap();
    let win = window(&mut r, 1);
    assert_eq!(window(&mut r, 1), win, "one window per connection");
    r.ok();
    assert!(r.bytes(win, BULK_WINDOW).iter().all(|&b| b == 0));
    // A read of several frames, short at the end of the file.
    assert_eq!(
        lease(&mut r, 1, false, fd, win, 5000, 10),
        Reply::Count(5000)
    );
    assert_eq!(r.bytes(win, 5000), pattern(5010)[10..]);
    assert_eq!(
        lease(&mut r, 1, false, fd, win + 7, 9000, 3000),
        Reply::Count(7000)
    );
    assert_eq!(r.bytes(win + 7, 7000), pattern(10000)[3000..]);
    // A write from an ordinary mapping of the caller's.
    let buf = r
        .mmap(1, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    r.s.memory_mut().bytes_at(buf + 1, 3001).fill(0x5a);
    assert_eq!(
        lease(&mut r, 1, true, fd, buf + 1, 3001, 9000),
        Reply::Count(3001)
    );
    assert_eq!(r.pread(1, fd, 10, 9998).unwrap(), [0x5a; 10]);
    r.ok();
    // Not the caller's: another process's window, past the end of a
    // mapping, a read-only mapping as a destination, outside the arena.
    let theirs = window(&mut r, 2);
    let ro = r.mmap(1, P, R, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    for (buf, len, write) in [
        (theirs, 100, false),
        (theirs, 100, true),
        (win + BULK_WINDOW - 10, 20, false),
        (buf + P, 2 * P, true),
        (ro, 100, false),
        (0x10, 100, true),
        (u64::MAX - 10, 100, false),
    ] {
        let got = lease(&mut r, 1, write, fd, buf, len, 0);
        assert_eq!(got, Reply::Error(Errno::EFAULT), "{buf:#x} {len} {write}");
    }
    assert_eq!(lease(&mut r, 1, true, fd, ro, 100, 0), Reply::Count(100));
    // Descriptors are still judged first.
    assert_eq!(
        lease(&mut r, 2, false, fd, theirs, 100, 0),
        Reply::Error(Errno::EBADF)
    );
    r.ok();
    r.disconnect(2);
    r.disconnect(1);
    r.ok();
    r.process(2, 0);
    assert_eq!(r.maps(2, ProcView::Meminfo), before);
}

#[test]
fn a_driver_that_answered_pages_enosys_is_not_asked_again() {
    let mut r = env();
    let fd = r.open(1, "/data/f", RDWR).unwrap();
    let win = window(&mut r, 1);
    for at in [0, 100, 4096] {
        assert_eq!(
            lease(&mut r, 1, false, fd, win, 2000, at),
            Reply::Count(2000)
        );
        assert_eq!(
            r.bytes(win, 2000),
            pattern(at as usize + 2000)[at as usize..]
        );
    }
    assert_eq!(lease(&mut r, 1, true, fd, win, 10, 0), Reply::Count(10));
    let asked = r
        .d(DATA)
        .log
        .iter()
        .filter(|q| matches!(q, DriverRequest::Pages { .. }))
        .count();
    assert_eq!(asked, 1, "Pages asked once, then framed steps");
    r.ok();
}
