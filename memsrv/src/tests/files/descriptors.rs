//! Descriptors and the mount table: open, close, the lowest free
//! descriptor, mount resolution and permissions.

use super::*;

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
    r.s.connect(ClientId(200), user(0, 0));
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
    crate::tests::sim::hello(&mut r.s, 5, 1000, Some(ticket)).unwrap();
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
