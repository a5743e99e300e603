//! `fsync`/`fdatasync` of server files reach the backing device: a Rust
//! client's sync of a host-directory file goes through memsrv to copyfs
//! and its store (counted by a store that wraps the host directory, which
//! also fails a sync with the host's errno on request), a memory
//! filesystem's file is synced without its driver, a bad descriptor is
//! `EBADF`; and a C program's `fsync` through the shim and `memsrvd`
//! answers as Linux does for a host-directory file, a ramfs file, the
//! directories and a device without an fsync method
//! (`hosted/tests/c/fsync.c`).

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{c_command, check, Daemon, Scratch};
use drivers::copyfs::{CopyFs, FileStore};
use drivers::ramfs::Ramfs;
use drivers::MountPoint;
use hosted::hostdir::HostDir;
use hosted::threads::ThreadsHome;
use memsrv::Config;
use protocol::linux::{O_CREAT, O_RDONLY, O_RDWR};
use protocol::Errno;
use std::sync::{Arc, Mutex};

/// What the test sees of the store: every sync asked `(id, data_only)`,
/// and the error the next syncs fail with.
#[derive(Default)]
struct Seen {
    syncs: Vec<(u64, bool)>,
    fail: Option<Errno>,
}

/// A host directory whose syncs the test sees.
struct Watched {
    dir: HostDir,
    seen: Arc<Mutex<Seen>>,
}

impl FileStore for Watched {
    fn lookup(&mut self, path: &str, flags: u32, mode: u32) -> Result<u64, Errno> {
        self.dir.lookup(path, flags, mode)
    }
    fn size(&mut self, id: u64) -> Result<u64, Errno> {
        self.dir.size(id)
    }
    fn ino(&mut self, id: u64) -> Result<u64, Errno> {
        self.dir.ino(id)
    }
    fn read(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.dir.read(id, offset, buf)
    }
    fn write(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.dir.write(id, offset, data)
    }
    fn mode(&mut self, id: u64) -> Result<u32, Errno> {
        self.dir.mode(id)
    }
    fn is_dir(&mut self, id: u64) -> Result<bool, Errno> {
        self.dir.is_dir(id)
    }
    fn sync(&mut self, id: u64, data_only: bool) -> Result<(), Errno> {
        let mut seen = self.seen.lock().unwrap();
        seen.syncs.push((id, data_only));
        match seen.fail {
            Some(e) => Err(e),
            None => self.dir.sync(id, data_only),
        }
    }
    fn release(&mut self, id: u64) {
        self.dir.release(id)
    }
}

#[test]
fn a_clients_fsync_reaches_the_host_directory_store() {
    let scratch = Scratch::new("fsync-threads");
    let home = ThreadsHome::start(Config {
        arena_size: 8 << 20,
        ..Config::default()
    })
    .expect("start");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let store = Watched {
        dir: HostDir::new(scratch.path()).unwrap(),
        seen: Arc::clone(&seen),
    };
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
    let dir = c.open("/data", O_RDONLY, 0).unwrap();
    assert_eq!(c.fsync(dir, false), Ok(()));
    {
        let seen = seen.lock().unwrap();
        let file = seen.syncs[0].0;
        assert_eq!(seen.syncs.len(), 3, "{:?}", seen.syncs);
        assert_eq!(seen.syncs[..2], [(file, false), (file, true)]);
        let (dir_object, data_only) = seen.syncs[2];
        assert!(!data_only, "the directory's fsync is a whole one");
        assert_ne!(dir_object, file, "the directory is its own object");
    }
    // The host's errors come back to the caller.
    for errno in [Errno::EIO, Errno::ENOSPC] {
        seen.lock().unwrap().fail = Some(errno);
        assert_eq!(c.fsync(fd, false), Err(errno));
    }
    seen.lock().unwrap().fail = None;

    // A memory filesystem's file: synced without its driver, so the
    // store sees nothing either.
    let before = seen.lock().unwrap().syncs.len();
    let mem = c.open("/tmp/m", O_CREAT | O_RDWR, 0o600).unwrap();
    assert_eq!(c.fsync(mem, false), Ok(()));
    assert_eq!(c.fsync(mem, true), Ok(()));
    assert_eq!(seen.lock().unwrap().syncs.len(), before);

    // Descriptors not open.
    c.close(fd).unwrap();
    assert_eq!(c.fsync(fd, false), Err(Errno::EBADF));
    assert_eq!(c.fsync(1234, true), Err(Errno::EBADF));
    assert_eq!(seen.lock().unwrap().syncs.len(), before);
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
    assert!(out.ends_with("all ok\n"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(
        out.contains("ok fsync of a device without the method: EINVAL"),
        "{out}"
    );
    assert_eq!(std::fs::read(disk.path().join("f")).unwrap(), b"durable\n");
    d.assert_all_free();
}
