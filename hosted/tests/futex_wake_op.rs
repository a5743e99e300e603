//! `FUTEX_WAKE_OP` from C, linked with `libnommu.a` against a private
//! `memsrvd`: threads waiting on both words, the operation seen in the
//! word, the comparison deciding the second wake, and `val2` taken from
//! the timeout argument (`docs/futex.md`).

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{c_command, check, Daemon};

#[test]
fn wake_op_changes_the_word_and_wakes_both_queues() {
    let d = Daemon::start();
    let out = check(
        c_command(&d, "futex_wake_op").output().unwrap(),
        "futex_wake_op",
    );
    assert!(out.contains("futex_wake_op: ok"), "{out}");
    d.assert_all_free();
}
