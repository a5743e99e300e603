//! A user's C file on the board: `scripts/board.sh run --c FILE` builds
//! the image with FILE as its C program and boots it; the program's stdout
//! reaches the console, `board: FILE exited N` follows, and QEMU's exit
//! status is N (0: pass). Runs `examples/board-c/hello.c`, and a program
//! that fails on purpose.
//!
//! Needs the board's tools (see `tests/board.rs`); without them the test
//! says so and skips, unless `NOMMU_REQUIRE_BOARD=1` makes that a failure.

mod common;

use common::{board_sh, board_tools_present, build_board, run_with_deadline, Run};
use std::time::Duration;

/// The boot itself takes seconds; a hang ends here (the image is built
/// beforehand, outside the deadline).
const DEADLINE: Duration = Duration::from_secs(300);

/// Build the image with `program` (`build --c`), then `run --c` it under
/// the deadline (the build is then up to date).
fn run_program(program: &str) -> Run {
    build_board(
        board_sh(&["build", "--c", program]),
        &format!("with {program}"),
    );
    run_with_deadline(board_sh(&["run", "--c", program]), DEADLINE)
}

/// The console's lines without the UART's carriage returns.
fn lines(console: &str) -> Vec<&str> {
    console.lines().map(|l| l.trim_end_matches('\r')).collect()
}

/// One test, two builds in turn: both use the board's one target
/// directory, so they must not run at once.
#[test]
fn a_users_c_file_runs_on_the_board_and_its_exit_code_is_the_status() {
    if !board_tools_present("a user's C program on the board") {
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

    // A program ending with exit(7) (picolibc's exit, atexit handlers run):
    // its output, `exited 7`, and QEMU's status 7.
    let dir = std::env::temp_dir().join(format!("board-user-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let failing = dir.join("fails.c");
    std::fs::write(
        &failing,
        "#include <stdio.h>\n#include <stdlib.h>\n\
         static void bye(void) { printf(\"fails.c: atexit ran\\n\"); }\n\
         int main(void) { atexit(bye); printf(\"fails.c: returning 7\\n\"); exit(7); }\n",
    )
    .expect("write fails.c");
    let run = run_program(failing.to_str().expect("a UTF-8 temporary path"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!run.timed_out, "the board hung:\n{}", run.console);
    let console = lines(&run.console);
    assert!(
        console.contains(&"fails.c: returning 7")
            && console.contains(&"fails.c: atexit ran")
            && console.contains(&"board: fails.c exited 7"),
        "{}",
        run.console
    );
    assert_eq!(run.status, Some(7), "{}", run.console);
}
