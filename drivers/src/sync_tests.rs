//! `Sync` (`fsync`/`fdatasync`) as each driver answers it: copyfs asks its
//! store for files and directories (whose methods say `SYNC`) and passes
//! the store's error on; ramfs's root directory is `noop_fsync`; a driver
//! without an fsync method answers `EINVAL`, and a handle never given out
//! is `EBADF`.

use crate::copyfs::{CopyFs, MemStore};
use crate::flags::open::{CREAT, RDONLY, RDWR};
use crate::mount::MountPoint;
use crate::pipe::Pipe;
use crate::ramfs::Ramfs;
use crate::testing::*;
use crate::BackingDevice;
use protocol::{DriverOps, DriverReply, DriverRequest, Errno};

fn sync(object: u64, data_only: bool) -> DriverRequest {
    DriverRequest::Sync { object, data_only }
}

fn watched_fs() -> (CopyFs<SyncWatch<MemStore>>, TestHost) {
    let store = SyncWatch::new(MemStore::new().with_file("f", 37, b"bytes"));
    started(CopyFs::new(
        MountPoint::new("/data", (0x1f, 2)).unwrap(),
        store,
    ))
}

#[test]
fn copyfs_files_and_directories_sync_through_the_store() {
    let (mut fs, mut host) = watched_fs();
    let f = opened(fs.serve(lookup("f", RDWR, 0), &mut host));
    let root = opened(fs.serve(lookup("", RDONLY, 0), &mut host));
    assert!(f.ops.has(DriverOps::SYNC));
    assert!(root.ops.has(DriverOps::SYNC));
    let stats = fs.store().stats.clone();
    assert_eq!(
        fs.serve(sync(f.object, false), &mut host),
        DriverReply::Done
    );
    assert_eq!(stats.seen(), (1, 0, f.object));
    assert_eq!(fs.serve(sync(f.object, true), &mut host), DriverReply::Done);
    assert_eq!(stats.seen(), (2, 1, f.object));
    assert_eq!(
        fs.serve(sync(root.object, false), &mut host),
        DriverReply::Done
    );
    assert_eq!(stats.seen(), (3, 1, root.object));
    // A handle the store never gave out never reaches its sync.
    assert_errors(&mut fs, &mut host, &[(sync(999, false), Errno::EBADF)]);
    assert_eq!(stats.seen().0, 3);
}

#[test]
fn copyfs_passes_the_stores_sync_error_on() {
    let (mut fs, mut host) = watched_fs();
    let f = opened(fs.serve(lookup("new", CREAT | RDWR, 0o600), &mut host));
    for errno in [Errno::EIO, Errno::ENOSPC] {
        fs.store().stats.fail_with(Some(errno));
        assert_errors(&mut fs, &mut host, &[(sync(f.object, true), errno)]);
    }
    fs.store().stats.fail_with(None);
    assert_eq!(fs.serve(sync(f.object, true), &mut host), DriverReply::Done);
    assert_eq!(fs.store().stats.seen(), (3, 3, f.object));
}

#[test]
fn a_memory_store_has_nothing_to_flush() {
    let store = MemStore::new().with_file("f", 37, b"bytes");
    let (mut fs, mut host) = started(CopyFs::new(
        MountPoint::new("/data", (0x1f, 2)).unwrap(),
        store,
    ));
    let f = opened(fs.serve(lookup("f", RDONLY, 0), &mut host));
    assert_eq!(
        fs.serve(sync(f.object, false), &mut host),
        DriverReply::Done
    );
}

#[test]
fn ramfs_directory_sync_is_a_no_op_and_its_files_are_not_asked() {
    let (mut fs, mut host) = started(Ramfs::new(MountPoint::new("/tmp", (0, 12)).unwrap()));
    let root = opened(fs.serve(lookup("", RDONLY, 0), &mut host));
    assert!(root.ops.has(DriverOps::SYNC));
    assert_eq!(
        fs.serve(sync(root.object, false), &mut host),
        DriverReply::Done
    );
    // Its files' fsync the server answers itself: no SYNC method.
    let a = opened(fs.serve(lookup("a", CREAT | RDWR, 0o600), &mut host));
    assert!(!a.ops.has(DriverOps::SYNC));
    assert_errors(&mut fs, &mut host, &[(sync(999, true), Errno::EBADF)]);
}

#[test]
fn a_driver_without_an_fsync_method_answers_einval() {
    let (mut p, mut host) = started(Pipe::new(MountPoint::new("/dev/fifo", (0, 5)).unwrap()));
    let info = opened(p.serve(lookup("", RDWR, 0), &mut host));
    assert!(!info.ops.has(DriverOps::SYNC));
    assert_errors(
        &mut p,
        &mut host,
        &[(sync(info.object, false), Errno::EINVAL)],
    );
}
