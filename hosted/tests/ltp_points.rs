//! What the Linux Test Project's shm and futex cases found, each shown by a
//! C program linked with `libnommu.a` against a private `memsrvd`:
//! `shmctl(SHM_LOCK)`/`SHM_UNLOCK` as Linux answers them, futex `EFAULT`
//! for a word outside the caller's mappings (private or not, `uaddr` or a
//! requeue's `uaddr2`), and a socket every local user may connect to (a
//! process that drops its privileges before its first call still maps
//! memory), or as `--socket-mode`/`--socket-group` say.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{assert_root, c_command, c_program_alone, check, Daemon, NOBODY};
use protocol::linux::SHM_LOCKED;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn shm_lock_and_unlock() {
    assert_root();
    let d = Daemon::start();
    let out = check(c_command(&d, "shm_lock").output().unwrap(), "shm_lock");
    let id: i32 = out
        .trim()
        .strip_prefix("shm_lock: ok ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("shm_lock said {out:?}"));
    let c = d.client();
    assert_eq!(c.shm_stat(id).unwrap().mode, 0o644 | SHM_LOCKED);
    // Another user may read the segment but neither lock nor unlock it.
    let out = c_command(&d, "shm_lock")
        .args([
            "stranger",
            &id.to_string(),
            &NOBODY.to_string(),
            &NOBODY.to_string(),
        ])
        .output()
        .unwrap();
    let out = check(out, "shm_lock stranger");
    assert!(out.contains("shm_lock: stranger ok"), "{out}");
    assert_eq!(c.shm_stat(id).unwrap().mode, 0o644 | SHM_LOCKED);
    c.shm_remove(id).unwrap();
    drop(c);
    d.assert_all_free();
}

#[test]
fn futex_outside_the_mappings_is_efault() {
    c_program_alone(&[], "futex_efault", &[], &["futex_efault: ok"]);
}

fn socket_mode(d: &Daemon) -> (u32, u32) {
    let meta = std::fs::metadata(&d.socket).unwrap();
    (meta.permissions().mode() & 0o7777, meta.gid())
}

fn as_nobody(d: &Daemon) -> std::process::Output {
    c_command(d, "socket_nobody")
        .args([NOBODY.to_string(), NOBODY.to_string()])
        .output()
        .unwrap()
}

#[test]
fn a_process_that_dropped_privileges_connects() {
    assert_root();
    let d = Daemon::start();
    assert_eq!(socket_mode(&d).0, 0o666);
    let out = check(as_nobody(&d), "socket_nobody");
    assert!(out.contains("socket_nobody: ok"), "{out}");
    d.assert_all_free();
}

#[test]
fn socket_mode_and_group_options() {
    assert_root();
    // Owner only: nobody cannot connect.
    let d = Daemon::start_with(&["--socket-mode", "0600"]);
    assert_eq!(socket_mode(&d), (0o600, 0));
    let out = as_nobody(&d);
    assert!(!out.status.success(), "nobody connected to a 0600 socket");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mmap as uid"),
        "{out:?}"
    );
    drop(d);
    // Its group: nobody's group may connect.
    let d = Daemon::start_with(&[
        "--socket-mode",
        "0660",
        "--socket-group",
        &NOBODY.to_string(),
    ]);
    assert_eq!(socket_mode(&d), (0o660, NOBODY));
    let out = check(as_nobody(&d), "socket_nobody");
    assert!(out.contains("socket_nobody: ok"), "{out}");
    d.assert_all_free();
}
