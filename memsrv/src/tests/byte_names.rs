//! File names are bytes, not text: a path that is not UTF-8 reaches its
//! mount's driver as it is, `/proc` shows it escaped as Linux's
//! `seq_file_path` would (newline and non-text bytes as `\ooo`), and a NUL,
//! which no C caller can send, is refused `EINVAL`.

use alloc::string::String;

use super::rig::{Rig, RDWR};
use crate::files::{push_proc_name, Files};
use crate::ClientId;
use protocol::{DriverRegistration, Errno, MountName, Path, Reply, Request};

#[test]
fn a_path_that_is_not_utf8_resolves_under_its_mount() {
    let mut f = Files::default();
    let reg = DriverRegistration {
        name: heapless::String::try_from("t").unwrap(),
        mount: MountName::try_from("/dev/shm").unwrap(),
        dev: (1, 2),
        noexec: false,
        read_only: false,
    };
    let shm = f.register(ClientId(1), (0, 0), reg).unwrap();
    assert_eq!(f.resolve(b"/dev/shm/\x80\xff"), Ok((shm, &b"\x80\xff"[..])));
    assert_eq!(f.resolve(b"/dev/shm//a"), Ok((shm, &b"a"[..])));
    // A mount's name is text: a prefix that is not cannot be one.
    assert_eq!(f.resolve(b"/dev/\xff/a"), Err(Errno::ENOENT));
    assert_eq!(f.display_path(shm, b"\x80x\xff"), "/dev/shm/\\200x\\377");
}

#[test]
fn proc_names_escape_newlines_and_bytes_that_are_not_text() {
    let mut out = String::new();
    push_proc_name(&mut out, "é a\tb\n\\".as_bytes());
    assert_eq!(out, "é a\tb\\012\\");
    out.clear();
    push_proc_name(&mut out, b"\xc3\x28\xff");
    assert_eq!(out, "\\303(\\377");
}

#[test]
fn a_nul_in_a_path_is_refused() {
    let mut rig = Rig::with(64, |_| {});
    rig.process(1, 0);
    rig.driver(10, "/dev/shm", (0, 13), false, false);
    let path = Path::try_from(&b"/dev/shm/a\0b"[..]).unwrap();
    let open = Request::Open {
        path: path.clone(),
        flags: RDWR,
        mode: 0,
    };
    assert_eq!(rig.call(1, open), Reply::Error(Errno::EINVAL));
    assert_eq!(
        rig.call(1, Request::Unlink { path }),
        Reply::Error(Errno::EINVAL)
    );
    rig.ok();
}
