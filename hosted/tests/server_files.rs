//! The calls SQLite's `unix` VFS makes besides reading and writing, on
//! server files: `fcntl` record locks and flags, `stat`/`lstat`/`access`/
//! `unlink` of paths under a mount, `fsync`/`fdatasync` — and the same
//! calls on host files, which go to the host kernel unchanged
//! (`hosted/tests/c/fcntl_stat.c`).

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{c_command, check, Daemon, Scratch};

#[test]
fn fcntl_locks_stat_access_unlink_and_fsync_on_server_and_host_files() {
    let d = Daemon::start_with(&["--mount", "/srvfiles=ramfs"]);
    let host = Scratch::new("fcntl-stat-host");
    let out = check(
        c_command(&d, "fcntl_stat")
            .arg("/srvfiles")
            .arg(host.path())
            .output()
            .expect("run fcntl_stat"),
        "fcntl_stat",
    );
    assert!(out.ends_with("all ok\n"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // Within one process POSIX locks never conflict; the server file's
    // lock never reaches the /dev/null stand-in.
    assert!(
        out.contains("ok F_GETLK through another open file: own locks do not conflict (F_UNLCK)"),
        "{out}"
    );
    // On the host the kernel arbitrates open-file-description locks.
    assert!(
        out.contains("ok host F_OFD_SETLK conflicts: EAGAIN"),
        "{out}"
    );
    // The mount point itself is the filesystem's root directory.
    assert!(out.contains("stat-root /srvfiles: directory"), "{out}");
    d.assert_all_free();
}
