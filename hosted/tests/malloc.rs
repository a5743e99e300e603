//! The `nommu_` malloc family (`libc-shim` feature `malloc`) in a C
//! program against `memsrvd`: a threaded random walk, `realloc` growth
//! through `mremap` (or by copying under `--strict-mremap`), `calloc`
//! zeroing on pages handed out uninitialized, and every page back with the
//! server once the program has freed everything.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{c_command, Daemon, Interactive};

fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

fn run(daemon: &Daemon, mode: &str) -> Vec<String> {
    let mut cmd = c_command(daemon, "malloc_stress");
    cmd.arg(mode);
    let mut program = Interactive::spawn(cmd);
    let walk = program.expect("walk:");
    assert!(field(&walk, "mmap") > 0, "{walk}");
    let grow = program.expect("grow:");
    if mode == "move" {
        assert_eq!(field(&grow, "mremap"), 4, "{grow}");
    }
    program.expect("uninit_reuse:");
    let stats = program.expect("stats:");
    assert_eq!(field(&stats, "mapped"), 0, "{stats}");
    assert!(
        field(&stats, "munmap") > 0 && field(&stats, "mremap") > 0,
        "{stats}"
    );
    program.expect("freed");
    // The program is still connected and holds nothing: every page is
    // free on the server.
    daemon.assert_all_free();
    let lines = program.finish();
    assert!(lines.iter().any(|l| l == "malloc: ok"), "{lines:?}");
    daemon.assert_all_free();
    lines
}

#[test]
fn malloc_over_mmap_with_uninitialized_pages() {
    let daemon = Daemon::start_with(&["--allow-uninitialized"]);
    let lines = run(&daemon, "move");
    // The freed block's bytes came back: MAP_UNINITIALIZED reached the
    // server (calloc zeroed its blocks all the same).
    assert!(
        lines.iter().any(|l| l == "uninit_reuse: 1"),
        "MAP_UNINITIALIZED not passed through: {lines:?}"
    );
}

#[test]
fn malloc_with_zeroed_pages() {
    let daemon = Daemon::start();
    let lines = run(&daemon, "move");
    assert!(lines.iter().any(|l| l == "uninit_reuse: 0"), "{lines:?}");
}

#[test]
fn malloc_under_strict_mremap_copies() {
    let daemon = Daemon::start_with(&["--strict-mremap"]);
    run(&daemon, "strict");
}
