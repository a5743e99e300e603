//! The board image's link: the linker script, and the C programs in `c/`
//! (compiled with the riscv C toolchain against picolibc's headers,
//! archived, and linked with picolibc's libc and libgcc) — for the board
//! binary only, when building for `target_os = "none"`. A host build runs
//! none of this.
//!
//! `NOMMU_BOARD_C=/abs/path/prog.c` puts a user's C program in the image
//! in place of the test program `c/nommu_test.c` (the glue in `c/` stays);
//! its file name reaches the crate as `BOARD_C_PROGRAM`.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The board's C compiler and the flags every C object of the image is
/// built with: rv64gc/lp64d like the Rust code, addresses anywhere
/// (medany: RAM is at 0x8000_0000), no linker relaxation (ld.lld cannot
/// relax GCC's objects), and picolibc's headers and TLS model from its
/// specs file. No crt0 is linked: picolibc's writes an M-mode register,
/// and the board starts C tasks itself (`c_runtime::spawn`).
const CC: &str = "riscv64-unknown-elf-gcc";
const AR: &str = "riscv64-unknown-elf-ar";
const CFLAGS: &[&str] = &[
    "-march=rv64gc",
    "-mabi=lp64d",
    "-mcmodel=medany",
    "-mno-relax",
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffunction-sections",
    "-fdata-sections",
    "--specs=picolibc.specs",
];
/// picolibc's C library for this ISA and ABI.
const PICOLIBC: &str = "/usr/lib/picolibc/riscv64-unknown-elf/lib/rv64imafdc/lp64d/libc.a";
/// picolibc's libm (Lua's math library).
const LIBM: &str = "/usr/lib/picolibc/riscv64-unknown-elf/lib/rv64imafdc/lp64d/libm.a";

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// The test program, whose `main` the board runs unless `NOMMU_BOARD_C`
/// names another C file.
const TEST_PROGRAM: &str = "nommu_test.c";

/// The C program whose `main` the image runs: `NOMMU_BOARD_C` if set (an
/// absolute path), else `c/nommu_test.c`.
fn c_program(c: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=NOMMU_BOARD_C");
    match std::env::var_os("NOMMU_BOARD_C") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_absolute() && path.is_file(),
                "NOMMU_BOARD_C={} is not an absolute path to a C file",
                path.display()
            );
            path
        }
        _ => c.join(TEST_PROGRAM),
    }
}

/// Compile `c/*.c` (the glue, and the C program: `c/nommu_test.c` or
/// `NOMMU_BOARD_C`) into `libboard_c.a` in `out`; its path.
fn c_programs(dir: &Path, out: &Path) -> PathBuf {
    let c = dir.join("c");
    println!("cargo:rerun-if-changed={}", c.display());
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&c)
        .expect("qemu-target/c")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .filter(|p| p.file_name().is_some_and(|n| n != TEST_PROGRAM))
        .collect();
    sources.sort();
    sources.push(c_program(&c));
    let include = c.join("include");
    for entry in std::fs::read_dir(&include).expect("qemu-target/c/include") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("a directory entry").path().display()
        );
    }
    let mut objects = Vec::new();
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
        // A glue file is ours; the user's program gets an object name of
        // its own (it may share a stem with a glue file) and is not held
        // to -Werror: a warning is theirs to weigh.
        let own = source.starts_with(&c);
        let stem = source.file_stem().expect("a file name").to_string_lossy();
        let object = if own {
            out.join(format!("{stem}.o"))
        } else {
            out.join(format!("program-{stem}.o"))
        };
        run(Command::new(CC)
            .args(CFLAGS.iter().filter(|f| own || **f != "-Werror"))
            .arg("-I")
            .arg(&include)
            .arg("-I")
            .arg(dir.join("..").join("libc-shim").join("include"))
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&object));
        objects.push(object);
    }
    let archive = out.join("libboard_c.a");
    let _ = std::fs::remove_file(&archive);
    run(Command::new(AR).arg("crs").arg(&archive).args(&objects));
    archive
}

/// Lua 5.4 from the `lua-src` crate, compiled for the board. lua-src
/// knows no bare-metal target, so it is told riscv64 Linux (it then
/// builds Lua as POSIX C) while cc-rs compiles for this build's target
/// with the board's compiler and picolibc: cc-rs reads the target-specific
/// `CC_`/`AR_`/`CFLAGS_` variables (the ABI flag comes last, so lp64d
/// wins over cc-rs's own choice). `c/lua-stubs` stands in for the one
/// POSIX header picolibc lacks. Its path.
fn lua(dir: &Path, out: &Path) -> PathBuf {
    let stubs = dir.join("c").join("lua-stubs");
    println!("cargo:rerun-if-changed={}", stubs.display());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let key = target.replace('-', "_");
    let cflags = format!(
        "-march=rv64gc -mabi=lp64d -mcmodel=medany -mno-relax --specs=picolibc.specs \
         -D_setjmp=setjmp -D_longjmp=longjmp -I{}",
        stubs.display()
    );
    std::env::set_var(format!("CC_{key}"), CC);
    std::env::set_var(format!("AR_{key}"), AR);
    std::env::set_var(format!("CFLAGS_{key}"), cflags);
    let artifacts = lua_src::Build::new()
        .target("riscv64gc-unknown-linux-gnu")
        .out_dir(out.join("lua"))
        .build(lua_src::Lua54);
    artifacts.lib_dir().join("liblua5.4.a")
}

fn libgcc() -> PathBuf {
    let out = Command::new(CC)
        .args(["-march=rv64gc", "-mabi=lp64d", "-print-libgcc-file-name"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {CC}: {e}"));
    assert!(out.status.success(), "{CC} -print-libgcc-file-name failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    let program = c_program(&Path::new(&dir).join("c"));
    println!(
        "cargo:rustc-env=BOARD_C_PROGRAM={}",
        program.file_name().expect("a file name").to_string_lossy()
    );
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        let archive = c_programs(Path::new(&dir), &out);
        let lua = lua(Path::new(&dir), &out);
        // ld.lld looks archives up regardless of their order, so the C
        // objects find the shim's C ABI (in the nommu rlib) and picolibc
        // finds the glue's stdout.
        for lib in [
            archive,
            lua,
            PathBuf::from(PICOLIBC),
            PathBuf::from(LIBM),
            libgcc(),
        ] {
            println!("cargo:rustc-link-arg-bins={}", lib.display());
        }
    }
}
