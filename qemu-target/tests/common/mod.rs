//! What the board's tests share: `scripts/board.sh` with the outer cargo's
//! environment cleared (the script uses Debian's toolchain), a build with
//! it that must succeed, a run of it under a deadline with the console collected, and the check that the
//! board's tools are on this machine.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu-target lives in the workspace")
        .to_path_buf()
}

/// `scripts/board.sh ARGS` from the workspace, with the outer cargo's
/// environment and the board's own variables cleared.
pub fn board_sh(args: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(workspace().join("scripts").join("board.sh"))
        .args(args)
        .current_dir(workspace())
        .env_remove("BOARD_FEATURES")
        .env_remove("NOMMU_BOARD_C");
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
    cmd
}

/// Run a `board.sh build` command made by [`board_sh`]; panics with
/// both its outputs, naming `what` was built, unless it succeeded.
pub fn build_board(mut cmd: Command, what: &str) {
    let out = cmd.output().expect("run scripts/board.sh build");
    assert!(
        out.status.success(),
        "building the board {what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a boot showed.
pub struct Run {
    /// Standard output, then standard error.
    pub console: String,
    /// QEMU's exit status (`None`: killed at the deadline).
    pub status: Option<i32>,
    pub timed_out: bool,
}

/// Run `cmd` (a `board.sh` that execs QEMU, so killing it ends QEMU) until
/// it exits or `deadline` passes.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/board.sh");
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
        if started.elapsed() > deadline {
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
    [
        ("qemu-system-riscv64", on_path("qemu-system-riscv64")),
        (
            "riscv64-unknown-elf-gcc",
            on_path("riscv64-unknown-elf-gcc"),
        ),
        ("ld.lld", on_path("ld.lld")),
        ("genromfs", on_path("genromfs")),
        ("/usr/bin/cargo", Path::new("/usr/bin/cargo").is_file()),
        ("/usr/bin/rustc", Path::new("/usr/bin/rustc").is_file()),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(tool, _)| tool)
    .collect()
}

/// Whether to boot the board for `what`: yes when its tools are here; else
/// skip with a message, or fail when `NOMMU_REQUIRE_BOARD=1`.
pub fn board_tools_present(what: &str) -> bool {
    let missing = missing_tools();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{what} is not tested: {} not found (scripts/setup-debian.sh --board installs them)",
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
