//! A user's C file on the board: `scripts/board.sh run --c FILE` builds
//! the image with FILE as its C program and boots it; the program's stdout
//! reaches the console, `board: FILE exited N` follows, and QEMU's exit
//! status is N (0: pass). Runs `examples/board-c/hello.c`, and a program
//! that fails on purpose.
//!
//! Needs the board's tools (see `tests/board.rs`); without them the test
//! says so and skips, unless `NOMMU_REQUIRE_BOARD=1` makes that a failure.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The boot itself takes seconds; a hang ends here (the image is built
/// beforehand, outside the deadline).
const DEADLINE: Duration = Duration::from_secs(300);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu-target lives in the workspace")
        .to_path_buf()
}

/// `scripts/board.sh ARGS` with the outer cargo's environment cleared
/// (the script uses Debian's toolchain).
fn board_sh(args: &[&str]) -> Command {
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

struct Run {
    console: String,
    status: Option<i32>,
    timed_out: bool,
}

/// Build the image with `program` (`build --c`), then `run --c` it under
/// the deadline (the build is then up to date).
fn run_program(program: &str) -> Run {
    let out = board_sh(&["build", "--c", program])
        .output()
        .expect("run scripts/board.sh build --c");
    assert!(
        out.status.success(),
        "building the board with {program} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = board_sh(&["run", "--c", program])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/board.sh run --c");
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
            // The script execs QEMU, so this ends QEMU.
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

/// The console's lines without the UART's carriage returns.
fn lines(console: &str) -> Vec<&str> {
    console.lines().map(|l| l.trim_end_matches('\r')).collect()
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

/// Whether to boot the board: yes when its tools are here; else skip with
/// a message, or fail when `NOMMU_REQUIRE_BOARD=1`.
fn board_tools_present() -> bool {
    let missing = missing_tools();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "a user's C program on the board is not tested: {} not found \
         (scripts/setup-debian.sh --board installs them)",
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

/// One test, two builds in turn: both use the board's one target
/// directory, so they must not run at once.
#[test]
fn a_users_c_file_runs_on_the_board_and_its_exit_code_is_the_status() {
    if !board_tools_present() {
        return;
    }
    // hello.c, by a relative path (the script makes it absolute): its
    // lines, then the exit line, and a passing status.
    let run = run_program("examples/board-c/hello.c");
    assert!(
        !run.timed_out,
        "the board hung (no exit within {DEADLINE:?}):\n{}",
        run.console
    );
    let console = lines(&run.console);
    let hello = console
        .iter()
        .position(|l| l.starts_with("hello from hello.c in mapped memory at 0x"));
    let unmapped = console
        .iter()
        .position(|l| *l == "hello.c: unmapped 8192 bytes");
    let exited = console.iter().position(|l| *l == "board: hello.c exited 0");
    assert!(
        matches!((hello, unmapped, exited), (Some(h), Some(u), Some(e)) if h < u && u < e),
        "hello.c's output and exit line, in that order:\n{}",
        run.console
    );
    assert_eq!(run.status, Some(0), "{}", run.console);

    // A program returning 7: its output, `exited 7`, and QEMU's status 7.
    let dir = std::env::temp_dir().join(format!("board-user-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let failing = dir.join("fails.c");
    std::fs::write(
        &failing,
        "#include <stdio.h>\n\
         int main(void) { printf(\"fails.c: returning 7\\n\"); return 7; }\n",
    )
    .expect("write fails.c");
    let run = run_program(failing.to_str().expect("a UTF-8 temporary path"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!run.timed_out, "the board hung:\n{}", run.console);
    let console = lines(&run.console);
    assert!(
        console.contains(&"fails.c: returning 7") && console.contains(&"board: fails.c exited 7"),
        "{}",
        run.console
    );
    assert_eq!(run.status, Some(7), "{}", run.console);
}
