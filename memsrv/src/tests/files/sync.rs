//! `fsync`/`fdatasync` of server files (`ops/sync.rs`): a driver that
//! declares `SYNC` is asked in the object's turn, after the writes queued
//! before, and its error is the caller's; a memory filesystem's file is
//! synced at once without asking; an object without an fsync method is
//! `EINVAL`; a descriptor not open is `EBADF`.

use super::*;

/// `/data/g`, whose driver declares `SYNC`; its handle.
fn add_synced(r: &mut Rig) -> u64 {
    r.add(DATA, "g", |_, _| {
        FakeObject::heap(
            ObjectKind::RegularFile,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::SYNC,
            pattern(100),
        )
    })
}

fn fsync_req(fd: i32, data_only: bool) -> Request {
    Request::Fsync { fd, data_only }
}

/// The `Sync` requests driver `c` was sent: `(object, data_only)`.
fn syncs(r: &mut Rig, c: u64) -> Vec<(u64, bool)> {
    r.d(c)
        .log
        .iter()
        .filter_map(|q| match q {
            DriverRequest::Sync { object, data_only } => Some((*object, *data_only)),
            _ => None,
        })
        .collect()
}

#[test]
fn fsync_and_fdatasync_reach_a_driver_that_declares_sync() {
    let mut r = env();
    let g = add_synced(&mut r);
    let fd = r.open(1, "/data/g", RDWR).unwrap();
    assert_eq!(r.call(1, fsync_req(fd, false)), Reply::Done);
    assert_eq!(r.call(1, fsync_req(fd, true)), Reply::Done);
    // A read-only descriptor syncs too, as in Linux.
    let ro = r.open(2, "/data/g", RDONLY).unwrap();
    assert_eq!(r.call(2, fsync_req(ro, false)), Reply::Done);
    assert_eq!(syncs(&mut r, DATA), [(g, false), (g, true), (g, false)]);
    r.ok();
}

#[test]
fn the_drivers_error_comes_back() {
    let mut r = env();
    add_synced(&mut r);
    let fd = r.open(1, "/data/g", RDWR).unwrap();
    for errno in [Errno::EIO, Errno::ENOSPC] {
        r.d(DATA).obj("g").sync_error = Some(errno);
        assert_eq!(r.call(1, fsync_req(fd, true)), Reply::Error(errno));
    }
    // `ENOSYS` is no errno for a client.
    r.d(DATA).obj("g").sync_error = Some(Errno::ENOSYS);
    assert_eq!(r.call(1, fsync_req(fd, false)), Reply::Error(Errno::EIO));
    assert_eq!(r.s.stats().pending_ops, 0);
    r.ok();
}

#[test]
fn a_sync_waits_for_the_write_before_it() {
    let mut r = env();
    let g = add_synced(&mut r);
    let fd = r.open(1, "/data/g", RDWR).unwrap();
    let fd2 = r.open(2, "/data/g", RDWR).unwrap();
    r.d(DATA).hold = true;
    let data = protocol::Bytes::from_slice(b"new").unwrap();
    let write = r.send(
        1,
        Request::Write {
            fd,
            data,
            offset: Some(0),
        },
    );
    let sync = r.send(2, fsync_req(fd2, false));
    assert_eq!(r.d(DATA).held.len(), 1, "the sync waits for its turn");
    assert_eq!((r.reply(1, write), r.reply(2, sync)), (None, None));
    r.release_held(DATA);
    assert_eq!(r.reply(1, write), Some(Reply::Count(3)));
    assert_eq!(r.reply(2, sync), Some(Reply::Done));
    let last = r
        .d(DATA)
        .log
        .iter()
        .rev()
        .take(2)
        .cloned()
        .collect::<Vec<_>>();
    assert!(matches!(last[1], DriverRequest::WriteData { .. }));
    assert_eq!(
        last[0],
        DriverRequest::Sync {
            object: g,
            data_only: false
        }
    );
    r.ok();
}

#[test]
fn a_driver_that_dies_during_a_sync_fails_it_with_eio() {
    let mut r = env();
    add_synced(&mut r);
    let fd = r.open(1, "/data/g", RDWR).unwrap();
    r.d(DATA).hold = true;
    let tag = r.send(1, fsync_req(fd, false));
    assert_eq!(r.reply(1, tag), None);
    r.kill_driver(DATA);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    r.ok();
}

#[test]
fn a_memory_file_syncs_at_once_without_the_driver() {
    let mut r = env();
    let fd = r.memory_file(1, "/tmp/m", P);
    let sent = r.d(TMP).log.len();
    assert_eq!(r.call(1, fsync_req(fd, false)), Reply::Done);
    assert_eq!(r.call(1, fsync_req(fd, true)), Reply::Done);
    assert_eq!(r.d(TMP).log.len(), sent, "no driver request");
    r.ok();
}

#[test]
fn objects_without_an_fsync_method_are_einval() {
    let mut r = env();
    // A regular file whose driver declares no SYNC (a romfs file), a ROM
    // window, a character device.
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let rom = r.open(1, "/rom/t", RDONLY).unwrap();
    let tst = r.open(1, "/dev/tst", RDWR).unwrap();
    for fd in [f, rom, tst] {
        assert_eq!(r.call(1, fsync_req(fd, false)), Reply::Error(Errno::EINVAL));
        assert_eq!(r.call(1, fsync_req(fd, true)), Reply::Error(Errno::EINVAL));
    }
    assert!(syncs(&mut r, DATA).is_empty());
    assert!(syncs(&mut r, ROM).is_empty());
    assert!(syncs(&mut r, TST).is_empty());
    r.ok();
}

#[test]
fn a_descriptor_not_open_is_ebadf() {
    let mut r = env();
    add_synced(&mut r);
    assert_eq!(r.call(1, fsync_req(99, false)), Reply::Error(Errno::EBADF));
    assert_eq!(r.call(1, fsync_req(-1, true)), Reply::Error(Errno::EBADF));
    // Another process's descriptor is not the caller's.
    let fd = r.open(1, "/data/g", RDWR).unwrap();
    assert_eq!(r.call(2, fsync_req(fd, false)), Reply::Error(Errno::EBADF));
    r.close(1, fd).unwrap();
    assert_eq!(r.call(1, fsync_req(fd, false)), Reply::Error(Errno::EBADF));
    assert!(syncs(&mut r, DATA).is_empty());
    r.ok();
}
