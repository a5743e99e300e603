//! Boot the board image on QEMU's riscv64 `virt` machine and read its
//! verdict: build the test image (`scripts/board.sh build` with feature
//! `suite`), make its flash images, boot it with a deadline, and fail on a
//! failing exit status, a missing `board: PASS`, or a time-out.
//!
//! Needs what `scripts/setup-debian.sh --board` installs (Debian's Rust for
//! the riscv build, ld.lld, the riscv C toolchain, QEMU 10, genromfs).
//! Without them the test says so and skips the board, unless
//! `NOMMU_REQUIRE_BOARD=1` (as CI sets) makes that a failure.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Everything on the board (boot, ~120 vectors, the device checks, the C
/// program) finishes in seconds; a hang ends here.
const DEADLINE: Duration = Duration::from_secs(300);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu-target lives in the workspace")
        .to_path_buf()
}

/// Build the test image (feature `suite`) with the outer cargo's
/// environment cleared (the script uses Debian's toolchain).
fn build_test_image() {
    let script = workspace().join("scripts").join("board.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg("build").env("BOARD_FEATURES", "suite");
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if (key.starts_with("CARGO") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTUP")
            || ["MAKEFLAGS", "MFLAGS", "RUSTFLAGS"].contains(&key.as_str())
        {
            cmd.env_remove(&key);
        }
    }
    let out = cmd.output().expect("run scripts/board.sh build");
    assert!(
        out.status.success(),
        "building the board image failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Run {
    console: String,
    status: Option<i32>,
    timed_out: bool,
}

/// Boot the image last built through `scripts/board.sh boot`, which
/// writes the flash and disk images (romfs with `/rom/t` in bank 0 behind
/// the boot stub, the NOR chip in bank 1, the virtio-blk disk) and execs
/// QEMU, so killing the child ends QEMU.
fn boot() -> Run {
    let mut child = Command::new("bash")
        .arg(workspace().join("scripts").join("board.sh"))
        .arg("boot")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/board.sh boot");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break (status.code(), false);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let mut console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    console.push_str(&err);
    Run {
        console,
        status,
        timed_out,
    }
}

/// The tools the board's build and boot use that are not on this machine.
fn missing_tools() -> Vec<&'static str> {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
            .unwrap_or(false)
    };
    let mut missing = Vec::new();
    for (tool, present) in [
        ("qemu-system-riscv64", on_path("qemu-system-riscv64")),
        (
            "riscv64-unknown-elf-gcc",
            on_path("riscv64-unknown-elf-gcc"),
        ),
        ("ld.lld", on_path("ld.lld")),
        ("genromfs", on_path("genromfs")),
        ("/usr/bin/cargo", Path::new("/usr/bin/cargo").is_file()),
        ("/usr/bin/rustc", Path::new("/usr/bin/rustc").is_file()),
    ] {
        if !present {
            missing.push(tool);
        }
    }
    missing
}

/// Whether to boot the board: yes when its tools are here; else skip with
/// a message, or fail when `NOMMU_REQUIRE_BOARD=1`.
fn board_tools_present() -> bool {
    let missing = missing_tools();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "the board is not tested: {} not found (scripts/setup-debian.sh --board installs them)",
        missing.join(", ")
    );
    let required = std::env::var("NOMMU_REQUIRE_BOARD").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{message}; NOMMU_REQUIRE_BOARD=1 requires the board"
    );
    // Straight to stderr: the harness would hide an eprintln! of a test
    // that passes.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {message}; set NOMMU_REQUIRE_BOARD=1 to make this a failure"
    );
    false
}

#[test]
fn the_board_runs_every_suite_and_powers_off_with_success() {
    if !board_tools_present() {
        return;
    }
    build_test_image();
    let run = boot();
    let failures: Vec<&str> = run
        .console
        .lines()
        // The robustness suite's faulter is killed on purpose.
        .filter(|l| !l.contains("task faulter"))
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
        // Bad input: a faulting task ends alone, garbage costs only the
        // sender's connection, bad arguments are errors.
        "robustness: ok a faulting task ends alone",
        "robustness: ok garbage costs only the sender",
        "robustness: ok bad arguments are errors",
        "robustness: ok a clone ticket is made",
    ] {
        assert!(
            run.console.lines().any(|l| l == line),
            "missing {line:?}:\n{}",
            run.console
        );
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
    assert!(
        run.console.lines().any(|l| l.starts_with("lua: PASS")),
        "{}",
        run.console
    );
    // The fault is reported readably: which task, what, where.
    assert!(
        run.console.lines().any(|l| l.contains("task faulter")
            && l.contains("killed: load access fault at pc")
            && l.contains("stval 0x90000000")),
        "{}",
        run.console
    );
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
