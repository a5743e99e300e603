//! File attributes on `memsrvd`'s memory filesystem: `chmod`, `chown` and
//! their relatives judged as Linux judges them, each file's mode and owner
//! kept and shown by `stat`, and `/dev/shm`'s sticky bit (a C program run
//! as root, switching to `nobody`); and file names that are bytes, not
//! UTF-8, created, listed in `/proc` and unlinked.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{assert_root, c_command, check, Daemon, NOBODY};

#[test]
fn chmod_chown_and_the_sticky_dev_shm_as_linux() {
    assert_root();
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]);
    let out = check(
        c_command(&d, "file_attributes")
            .arg(NOBODY.to_string())
            .output()
            .unwrap(),
        "file_attributes",
    );
    assert!(out.contains("file_attributes: ok"), "{out}");
    d.assert_all_free();
}

#[test]
fn file_names_are_bytes_created_listed_and_unlinked() {
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]);
    let out = check(c_command(&d, "byte_names").output().unwrap(), "byte_names");
    assert!(out.contains("byte_names: ok"), "{out}");
    d.assert_all_free();
}
