//! `cargo run -p qemu-target` on the host: build the board image for
//! riscv64gc-unknown-none-elf with Debian's Rust (as `scripts/board.sh`
//! does: the bare-metal build needs `-Zbuild-std` and ld.lld) and boot it
//! through that target's runner in `.cargo/config.toml`
//! (`scripts/board-runner.sh`, QEMU's virt board). Arguments go to QEMU;
//! `BOARD_FEATURES` picks what init runs, as for `scripts/board.sh`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu-target lives in the workspace");
    let cargo = Path::new("/usr/bin/cargo");
    if !cargo.is_file() {
        eprintln!(
            "run-board: Debian's Rust (/usr/bin/cargo) builds the board: run scripts/setup-debian.sh --board"
        );
        return ExitCode::FAILURE;
    }
    let features = match std::env::var("BOARD_FEATURES") {
        Ok(more) if !more.is_empty() => format!("board,{more}"),
        _ => "board".to_string(),
    };
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root);
    // The outer (host) toolchain's settings must not reach Debian's cargo.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO") || key.starts_with("RUSTC") || key.starts_with("RUSTUP") {
            cmd.env_remove(&key);
        }
    }
    let target_dir = std::env::var_os("BOARD_TARGET_DIR")
        .unwrap_or_else(|| root.join("target-board").into_os_string());
    cmd.env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_TARGET_RISCV64GC_UNKNOWN_NONE_ELF_LINKER", "ld.lld")
        .args([
            "run",
            "--release",
            "-q",
            "--target",
            "riscv64gc-unknown-none-elf",
        ])
        .args([
            "-Zbuild-std=core,alloc",
            "-Zbuild-std-features=compiler-builtins-mem",
        ])
        .args([
            "-p",
            "qemu-target",
            "--bin",
            "board",
            "--features",
            &features,
            "--",
        ])
        .args(std::env::args_os().skip(1));
    let err = cmd.exec();
    eprintln!("run-board: cannot run {}: {err}", cargo.display());
    ExitCode::FAILURE
}
