use super::*;
use crate::flags::open::{CREAT, EXCL, RDONLY, RDWR, TRUNC, WRONLY};
use crate::testing::*;
use alloc::vec::Vec;

pub(super) fn f_bytes() -> Vec<u8> {
    (0..10000).map(pattern).collect()
}

/// Spec §14.0's `/data`: `/data/f` is 10000 bytes of a known pattern,
/// inode 37 on device 1f:02.
pub(super) fn data_fs() -> (CopyFs<MemStore>, TestHost) {
    let store = MemStore::new().with_file("f", 37, &f_bytes());
    let mut fs = CopyFs::new(MountPoint::new("/data", (0x1f, 0x02)).unwrap(), store);
    let mut host = TestHost::new();
    fs.start(&mut host).unwrap();
    (fs, host)
}

#[test]
fn regular_files_are_copy_only() {
    let (mut fs, mut host) = data_fs();
    let r = fs.registration();
    assert_eq!(
        (r.mount.as_str(), r.dev, r.read_only),
        ("/data", (0x1f, 0x02), false)
    );
    let f = opened(fs.serve(lookup("f", RDONLY, 0), &mut host));
    assert_eq!(f.ino, 37);
    assert_eq!(f.kind, ObjectKind::RegularFile);
    assert_eq!(f.caps, None, "a regular file's default: COPY");
    // Its bytes are not arena pages: it moves a lease step itself; and
    // it has an fsync method (a disk-like filesystem's file).
    assert_eq!(
        f.ops.0,
        DriverOps::MMAP
            | DriverOps::READ
            | DriverOps::WRITE
            | DriverOps::TRANSFER
            | DriverOps::SYNC
    );
    assert_eq!(f.size, 10000);
    assert_eq!(f.mode, 0o644);
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (get_unmapped_area(f.object, 4096, 0), Errno::ENOSYS),
            (mmap(f.object, 0, 4096, 0, 0x8), Errno::ENOSYS),
        ],
    );
}

/// Vectors 33 and 34: the driver delivers what the file has; the server
/// zero-fills the rest.
#[test]
fn copies_are_read_through_the_driver() {
    let (mut fs, mut host) = data_fs();
    let f = opened(fs.serve(lookup("f", RDONLY, 0), &mut host)).object;
    let dest = host.alloc_backing(3).unwrap();
    assert_eq!(
        count(fs.serve(read_into(f, 0, 12288, dest), &mut host)),
        10000
    );
    assert_eq!(host.read(dest, 10000), f_bytes());
    assert_eq!(
        count(fs.serve(read_into(f, 5 * 4096, 4096, dest), &mut host)),
        0
    );
    assert_eq!(
        count(fs.serve(read_into(f, 8192, 4096, dest), &mut host)),
        10000 - 8192
    );
    assert_eq!(
        data(fs.serve(read_data(f, 9990, 100), &mut host)),
        &f_bytes()[9990..]
    );
    assert_eq!(data(fs.serve(read_data(f, 0, 4000), &mut host)).len(), 1024);
    assert_eq!(data(fs.serve(read_data(f, u64::MAX, 10), &mut host)), b"");
}

/// Vector 51: a pwrite changes the file, never a copy already made.
#[test]
fn writes_change_the_file_not_the_copies() {
    let (mut fs, mut host) = data_fs();
    let f = opened(fs.serve(lookup("f", RDWR, 0), &mut host)).object;
    let dest = host.alloc_backing(1).unwrap();
    fs.serve(read_into(f, 0, 4096, dest), &mut host);
    assert_eq!(count(fs.serve(write_data(f, 0, b"new!"), &mut host)), 4);
    assert_eq!(host.read(dest, 4), &f_bytes()[..4]);
    assert_eq!(&fs.store().contents("f").unwrap()[..4], b"new!");
    assert_eq!(count(fs.serve(write_data(f, 20000, b"end"), &mut host)), 3);
    assert_eq!(
        opened(fs.serve(DriverRequest::Stat { object: f }, &mut host)).size,
        20003
    );
    assert_eq!(
        error(fs.serve(write_data(f, u64::MAX, b"x"), &mut host)),
        Errno::EFBIG
    );
}

#[test]
fn create_exclusive_truncate_and_the_root() {
    let (mut fs, mut host) = data_fs();
    assert_eq!(
        error(fs.serve(lookup("g", RDWR, 0), &mut host)),
        Errno::ENOENT
    );
    let g = opened(fs.serve(lookup("g", CREAT | RDWR, 0o600), &mut host));
    assert_eq!(g.ino, 38, "after the highest inode given");
    assert_eq!(g.mode, 0o600);
    assert_eq!(
        opened(fs.serve(lookup("g", RDONLY, 0), &mut host)).object,
        g.object
    );
    assert_eq!(
        error(fs.serve(lookup("g", CREAT | EXCL | RDWR, 0), &mut host)),
        Errno::EEXIST
    );
    assert_eq!(
        opened(fs.serve(lookup("f", WRONLY | TRUNC, 0), &mut host)).size,
        0
    );
    let root = assert_root_is_a_directory(&mut fs, &mut host);
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (read_data(root.object, 0, 1), Errno::EISDIR),
            (read_data(999, 0, 1), Errno::EBADF),
        ],
    );
    assert_eq!(
        fs.serve(DriverRequest::Release { object: g.object }, &mut host),
        DriverReply::Done
    );
}

/// A store that fails, to see its errors come through unchanged.
struct Broken;

impl FileStore for Broken {
    fn lookup(&mut self, _: &str, _: u32, _: u32) -> Result<u64, Errno> {
        Ok(5)
    }
    fn size(&mut self, _: u64) -> Result<u64, Errno> {
        Ok(100)
    }
    fn ino(&mut self, _: u64) -> Result<u64, Errno> {
        Ok(5)
    }
    fn read(&mut self, _: u64, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EIO)
    }
    fn write(&mut self, _: u64, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::ENOSPC)
    }
}

#[test]
fn store_errors_come_through() {
    let mut fs = CopyFs::new(MountPoint::new("/b", (0, 1)).unwrap(), Broken);
    let mut host = TestHost::new();
    let o = opened(fs.serve(lookup("x", RDONLY, 0), &mut host)).object;
    assert_eq!(error(fs.serve(read_data(o, 0, 10), &mut host)), Errno::EIO);
    let dest = host.alloc_backing(1).unwrap();
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (read_into(o, 0, 10, dest), Errno::EIO),
            (write_data(o, 0, b"x"), Errno::ENOSPC),
        ],
    );
}
