//! `fsync`/`fdatasync` of server files reach the backing device: a Rust
//! client's sync of a host-directory file goes through memsrv to copyfs
//! and its store (counted by a `SyncWatch` around the host directory,
//! which also fails a sync with the host's errno on request), a memory
//! filesystem's file is synced without its driver, a bad descriptor is
//! `EBADF`; and a C program's `fsync` through the shim and `memsrvd`
//! answers as Linux does for a host-directory file, a ramfs file, the
//! directories and a device without an fsync method
//! (`hosted/tests/c/fsync.c`).

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{c_command, check, Daemon, Scratch};
use drivers::copyfs::CopyFs;
use drivers::ramfs::Ramfs;
use drivers::testing::SyncWatch;
use drivers::MountPoint;
use hosted::hostdir::HostDir;
use hosted::threads::ThreadsHome;
use memsrv::Config;
use protocol::linux::{O_CREAT, O_RDONLY, O_RDWR};
use protocol::Errno;

#[test]
fn a_clients_fsync_reaches_the_host_directory_store() {
    let scratch = Scratch::new("fsync-threads");
    let home = ThreadsHome::start(Config {
        arena_size: 8 << 20,
        ..Config::default()
    })
    .expect("start");
    let store = SyncWatch::new(HostDir::new(scratch.path()).unwrap());
    let seen = std::sync::Arc::clone(&store.stats);
    let data = MountPoint::new("/data", (8, 1)).unwrap();
    let _data = home.mount(Box::new(CopyFs::new(data, store))).unwrap();
    let tmp = MountPoint::new("/tmp", (0, 0x10)).unwrap();
    let _tmp = home.mount(Box::new(Ramfs::new(tmp))).unwrap();
    let p = home.spawn_process().unwrap();
    let c = p.client();

    let fd = c.open("/data/f", O_CREAT | O_RDWR, 0o600).unwrap();
    assert_eq!(c.pwrite(fd, b"durable", 0), Ok(7));
    assert_eq!(c.fsync(fd, false), Ok(()));
    assert_eq!(c.fsync(fd, true), Ok(()));
    assert_eq!(std::fs::read(scratch.path().join("f")).unwrap(), b"durable");
    let file = seen.seen().2;
    assert_eq!(seen.seen(), (2, 1, file), "an fsync, then an fdatasync");
    let dir = c.open("/data", O_RDONLY, 0).unwrap();
    assert_eq!(c.fsync(dir, false), Ok(()));
    let (syncs, data_only, object) = seen.seen();
    assert_eq!((syncs, data_only), (3, 1));
    assert_ne!(object, file, "the directory is its own object");
    // The host's errors come back to the caller.
    for errno in [Errno::EIO, Errno::ENOSPC] {
        seen.fail_with(Some(errno));
        assert_eq!(c.fsync(fd, false), Err(errno));
    }
    seen.fail_with(None);

    // A memory filesystem's file: synced without its driver, so the
    // store sees nothing either.
    let before = seen.seen().0;
    let mem = c.open("/tmp/m", O_CREAT | O_RDWR, 0o600).unwrap();
    assert_eq!(c.fsync(mem, false), Ok(()));
    assert_eq!(c.fsync(mem, true), Ok(()));
    assert_eq!(seen.seen().0, before);

    // Descriptors not open.
    c.close(fd).unwrap();
    assert_eq!(c.fsync(fd, false), Err(Errno::EBADF));
    assert_eq!(c.fsync(1234, true), Err(Errno::EBADF));
    assert_eq!(seen.seen().0, before);
    c.close(dir).unwrap();
    c.close(mem).unwrap();
    home.check_invariants().unwrap();
}

#[test]
fn fsync_through_the_shim_answers_as_linux() {
    let disk = Scratch::new("fsync-disk");
    let data = format!("/data=hostdir:{}", disk.path().display());
    let d = Daemon::start_with(&[
        "--mount",
        &data,
        "--mount",
        "/tmp-fsync=ramfs",
        "--mount",
        "/dev/zero=devzero",
    ]);
    let out = check(
        c_command(&d, "fsync")
            .args(["/data", "/tmp-fsync", "/dev/zero"])
            .output()
            .expect("run fsync"),
        "fsync",
    );
    assert_eq!(out, "all ok\n");
    assert_eq!(std::fs::read(disk.path().join("f")).unwrap(), b"durable\n");
    d.assert_all_free();
}
