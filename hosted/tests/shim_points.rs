//! The shim's side of what the Linux Test Project found, each shown by a
//! C program linked with `libnommu.a` against a private `memsrvd`: a bad
//! pointer handed to the library gives `EFAULT`, never a crash; a child
//! made by `fork()` connects as a new process, never speaking for its
//! parent; a `FUTEX_WAIT` that is a program's first call (the library
//! connects inside it) is woken like any other.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{assert_root, c_command, c_program_alone, check, Daemon, NOBODY};

#[test]
fn bad_pointers_are_efault() {
    c_program_alone(
        &["--mount", "/srv=ramfs"],
        "bad_pointers",
        &[],
        &["bad_pointers: ok"],
    );
}

#[test]
fn a_forked_child_speaks_for_itself() {
    assert_root();
    let d = Daemon::start_with(&["--mount", "/srv=ramfs"]);
    let out = c_command(&d, "fork_child")
        .args([NOBODY.to_string(), NOBODY.to_string()])
        .output()
        .unwrap();
    let out = check(out, "fork_child");
    assert!(out.contains("fork_child: ok"), "{out}");
    d.assert_all_free();
}

#[test]
fn a_first_call_futex_wait_is_woken_like_any_other() {
    let d = Daemon::start();
    // Each run a new process, so the wait is its first call. While the
    // handshake slept in recvmsg, about one run in eight saw the thread
    // asleep early and its wake was lost; 40 runs all pass by chance
    // with odds of about 1 in 200.
    for run in 0..40 {
        let out = c_command(&d, "futex_first").output().unwrap();
        let out = check(out, &format!("futex_first run {run}"));
        assert!(out.contains("futex_first: ok"), "{out}");
    }
    d.assert_all_free();
}
