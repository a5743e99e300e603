//! Boot the board image on QEMU's riscv64 `virt` machine and read its
//! verdict: build the test image (`scripts/board.sh build` with feature
//! `suite`), make its flash images, boot it with a deadline, and fail on a
//! failing exit status, a missing `board: PASS`, or a time-out.
//!
//! Needs what `scripts/setup-debian.sh --board` installs (Debian's Rust for
//! the riscv build, ld.lld, the riscv C toolchain, QEMU 10, genromfs).
//! Without them the test says so and skips the board, unless
//! `NOMMU_REQUIRE_BOARD=1` (as CI sets) makes that a failure.

mod common;

use common::{board_sh, board_tools_present, build_board, run_with_deadline, workspace, Run};
use std::time::Duration;

/// Everything on the board (boot, ~120 vectors, the device checks, the C
/// program) finishes in seconds; a hang ends here.
const DEADLINE: Duration = Duration::from_secs(300);

/// Build the test image (feature `suite`) with the outer cargo's
/// environment cleared (the script uses Debian's toolchain).
fn build_test_image() {
    let mut build = board_sh(&["build"]);
    build.env("BOARD_FEATURES", "suite");
    build_board(build, "image");
}

/// Boot the image last built through `scripts/board.sh boot`, which
/// writes the flash and disk images (romfs with `/rom/t` in bank 0 behind
/// the boot stub, the NOR chip in bank 1, the virtio-blk disk) and execs
/// QEMU, so killing the child ends QEMU.
fn boot() -> Run {
    run_with_deadline(board_sh(&["boot"]), DEADLINE)
}

/// Panics, showing the console, unless one of its lines is `seen`;
/// `what` names the line.
fn expect_line(run: &Run, what: &str, seen: impl Fn(&str) -> bool) {
    assert!(
        run.console.lines().any(seen),
        "missing {what:?}:\n{}",
        run.console
    );
}

/// The kernel's report of `task` stopped at a stray `access` ("load" or
/// "store") at an address starting `at`.
fn expect_stray(run: &Run, task: &str, access: &str, at: &str) {
    let what = format!("{task}'s stray {access}");
    expect_line(run, &what, |l| {
        l.contains(&format!("task {task}"))
            && l.contains(&format!("stray {access} at {at}"))
            && l.ends_with("not its memory")
    });
}

#[test]
fn the_board_runs_every_suite_and_powers_off_with_success() {
    if !board_tools_present("the board") {
        return;
    }
    build_test_image();
    let run = boot();
    let failures: Vec<&str> = run
        .console
        .lines()
        // The robustness suite's faulter and the isolation checks'
        // snooper, unmapper and writers are killed on purpose.
        .filter(|l| {
            [
                "task faulter",
                "task snooper",
                "task unmapper",
                "task heap-writer",
                "task stack-writer",
                "task kernel-writer",
                "task driver-writer",
                "task statics-intruder",
                "task driver-snooper",
                "task region-writer",
                "task memsrv-writer",
                "task drv-heap-writer",
                "task drv-stack-writer",
                "task stray-mount",
                "task device-snooper",
                "task slot-reader",
                "task flash-commander",
                "task slow ",
                "task gap-reader",
                "task vm-sibling",
                "task flag-writer",
            ]
            .iter()
            .all(|t| !l.contains(t))
        })
        .filter(|l| l.contains("FAIL") || l.contains("killed") || l.contains("panic"))
        .collect();
    assert!(
        !run.timed_out,
        "the board hung (no exit within {DEADLINE:?}):\n{}",
        run.console
    );
    assert!(
        failures.is_empty() && run.status == Some(0) && run.console.contains("board: PASS"),
        "the board failed (exit status {:?}):\n{}\nfailures:\n{}",
        run.status,
        run.console,
        failures.join("\n")
    );
    // Every conformance vector reported, none skipped, under the board's name.
    assert!(
        run.console.contains("conformance: home board"),
        "{}",
        run.console
    );
    let passed = run
        .console
        .lines()
        .filter(|l| l.starts_with("conformance: ok "))
        .count();
    assert_eq!(passed, conformance::VECTORS.len(), "{}", run.console);
    // The C program (picolibc + the shim's C ABI) ran as two tasks, each
    // finished its checks without a failure, and memsrv was clean after.
    for line in [
        "c: ok mmap /rom/t PROT_READ MAP_PRIVATE is direct (in flash)",
        "c: ok futex: FUTEX_WAIT in one task, woken by FUTEX_WAKE from another",
        "c: main done, 0 failures",
        "c: waker done, 0 failures",
        "c-program: PASS",
        // Real devices: the CFI chip erased and programmed through
        // /dev/mtd1, the virtio-blk disk served copy only.
        "hardware: ok nor-flash",
        "hardware: ok virtio-blk",
        "hardware: ok a page lent to a driver is taken back when memsrv gives up",
        "hardware: ok a driver's disk request into another task's memory is refused",
        // Bad input: a faulting task ends alone, garbage costs only the
        // sender's connection, bad arguments are errors.
        "robustness: ok a faulting task ends alone",
        "robustness: ok garbage costs only the sender",
        "robustness: ok bad arguments are errors",
        "robustness: ok a clone ticket is made",
        // Isolation: a task stops at another's mapping, stack and heap
        // and the kernel's statics and another's copy of the runtime's,
        // a driver at a page not its own or a user task's region, and a
        // task gets EFAULT for another's buffer.
        "robustness: ok a task reading another task's mapping is stopped",
        "robustness: ok a task with forty mappings reaches each and no gap between them",
        "robustness: ok a task beyond the range pool gets ENOMEM and goes on",
        "robustness: ok a CLONE_VM sibling sees a range change at once",
        "robustness: ok a task writing another task's stack or heap is stopped",
        "robustness: ok a user or driver task writing a kernel static is stopped",
        "robustness: ok a task writing another task's statics is stopped",
        "robustness: ok a driver touching arena pages not its own is stopped",
        "robustness: ok a driver writing a user task's region is stopped",
        "robustness: ok a driver touching another driver's device is stopped",
        "robustness: ok a driver cannot take or give back another driver's device",
        "robustness: ok a task naming another task's memory in a system call gets EFAULT",
    ] {
        expect_line(&run, line, |l| l == line);
    }
    // Lua, a ported app on the shim's malloc, printed what the host's own
    // Lua prints for the same script (the hosted test checks the host
    // build against the same file).
    let expected =
        std::fs::read_to_string(workspace().join("hosted/tests/lua/alloc_heavy.expected"))
            .expect("hosted/tests/lua/alloc_heavy.expected");
    let lua: Vec<&str> = run
        .console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| *l != "lua: output begins")
        .skip(1)
        .take_while(|l| *l != "lua: output ends")
        .collect();
    assert_eq!(
        lua,
        expected.lines().collect::<Vec<_>>(),
        "Lua's output on the board:\n{}",
        run.console
    );
    expect_line(&run, "lua: PASS", |l| l.starts_with("lua: PASS"));
    // The fault is reported readably: which task, what, where.
    expect_line(&run, "the faulter's report", |l| {
        l.contains("task faulter")
            && l.contains("killed: load access fault at pc")
            && l.contains("stval 0x90000000")
    });
    // A task reading the gap between two of its forty mappings is stopped.
    expect_stray(&run, "gap-reader", "load", "0x");
    // A driver reading another driver's device registers is stopped.
    expect_stray(&run, "device-snooper", "load", "0x1000");
    // The disk's holder reading its slot's registers is stopped: the
    // kernel keeps them.
    expect_stray(&run, "slot-reader", "load", "0x1000");
    // A task that reads another task's mapping is reported and stopped
    // by the PMP.
    expect_stray(&run, "snooper", "load", "0x");
    // A task's stack, its heap and the kernel's statics are out of other
    // tasks' reach (drivers' too), and memsrv's heap and a driver's
    // region out of every driver's: each stray store is reported.
    for writer in [
        "heap-writer",
        "stack-writer",
        "kernel-writer",
        "driver-writer",
        "memsrv-writer",
        "drv-heap-writer",
        "drv-stack-writer",
        "stray-mount",
        "flash-commander",
        "slow",
        "flag-writer",
    ] {
        expect_stray(&run, writer, "store", "0x");
    }
    // Clone tickets are seeded per boot: the same clone, made after the
    // same suites, gets another ticket on a second boot.
    let ticket = |console: &str| {
        console
            .lines()
            .find_map(|l| {
                l.trim_end_matches('\r')
                    .strip_prefix("robustness: clone ticket ")
            })
            .map(str::to_owned)
            .expect("the robustness suite prints a clone ticket")
    };
    let again = boot();
    assert_ne!(ticket(&run.console), ticket(&again.console));
}
