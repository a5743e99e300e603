//! The shim's side of what the Linux Test Project found, each shown by a
//! C program linked with `libnommu.a` against a private `memsrvd`: a bad
//! pointer handed to the library gives `EFAULT`, never a crash.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{c_command, check, Daemon};

#[test]
fn bad_pointers_are_efault() {
    let d = Daemon::start_with(&["--mount", "/srv=ramfs"]);
    let out = check(
        c_command(&d, "bad_pointers").output().unwrap(),
        "bad_pointers",
    );
    assert!(out.contains("bad_pointers: ok"), "{out}");
    d.assert_all_free();
}
