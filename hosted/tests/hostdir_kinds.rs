//! A host directory's store knows each open file's kind from its lookup
//! (`hosted::hostdir::HostDir::is_dir`, asked on every lease step), so
//! the answer must stay the open file's own: a directory, a regular file,
//! and no answer for an id the store never gave.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::Scratch;
use drivers::copyfs::FileStore;
use drivers::flags::open;
use hosted::hostdir::{HostDir, ROOT};
use protocol::Errno;

#[test]
fn an_open_file_keeps_the_kind_it_was_opened_as() {
    let scratch = Scratch::new("hostdir-kinds");
    let dir = scratch.path();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("f"), b"data").unwrap();
    let mut store = HostDir::new(dir).unwrap();
    let sub = store.lookup("sub", open::RDONLY, 0).unwrap();
    let file = store.lookup("f", open::RDWR, 0).unwrap();
    assert_eq!(store.is_dir(ROOT), Ok(true));
    assert_eq!(store.is_dir(sub), Ok(true));
    assert_eq!(store.is_dir(file), Ok(false));
    // The name now names a directory; the open file is still the file
    // (its descriptor reads and writes it), as on the host.
    std::fs::remove_file(dir.join("f")).unwrap();
    std::fs::create_dir(dir.join("f")).unwrap();
    assert_eq!(store.is_dir(file), Ok(false));
    assert_eq!(store.write(file, 0, b"more"), Ok(4));
    let again = store.lookup("f", open::RDONLY, 0).unwrap();
    assert_ne!(again, file);
    assert_eq!(store.is_dir(again), Ok(true));
}

#[test]
fn a_released_or_unknown_id_has_no_kind() {
    let scratch = Scratch::new("hostdir-released");
    let dir = scratch.path();
    std::fs::write(dir.join("f"), b"x").unwrap();
    let mut store = HostDir::new(dir).unwrap();
    let file = store.lookup("f", open::RDONLY, 0).unwrap();
    store.release(file);
    assert_eq!(store.is_dir(file), Err(Errno::EBADF));
    assert_eq!(store.is_dir(12345), Err(Errno::EBADF));
}
