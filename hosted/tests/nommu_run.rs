//! `nommu-run`: unmodified programs (Debian's python3, a C program built
//! without libnommu) run with `libnommu.so` preloaded and a private
//! memsrvd get the no-MMU answers, and the report at exit lists what they
//! left mapped and counts the calls served and refused.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// `libnommu.so` with `features`, built into `target/<dir>`.
fn build_so(dir: &str, features: &str) -> PathBuf {
    daemon::build_shim(dir, features, "cdylib")
}

/// `libnommu.so` as `scripts/install.sh` builds it (feature `posix`).
fn libnommu_so() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| build_so("nommu-run-lib", "posix"))
}

/// `libnommu-malloc.so` (feature `preload-malloc`), for `--malloc`.
fn libnommu_malloc_so() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let built = build_so("nommu-run-malloc", "preload-malloc");
        let lib = built.with_file_name("libnommu-malloc.so");
        std::fs::copy(&built, &lib).expect("copy libnommu-malloc.so");
        lib
    })
}

/// Compile `hosted/tests/c/<name>.c` with plain `cc` (no libnommu).
fn plain_program(scratch: &Scratch, name: &str) -> PathBuf {
    let exe = scratch.join(name);
    let mut cc = daemon::cc();
    cc.arg(daemon::c_source(name));
    daemon::compile(cc, &exe, name);
    exe
}

/// `nommu-run` with the test-built library and a small private arena.
fn nommu_run() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nommu-run"));
    cmd.arg("--library")
        .arg(libnommu_so())
        .args(["--arena-size", "16M"]);
    cmd
}

fn run(mut cmd: Command) -> (String, String) {
    let out: Output = cmd.output().expect("run nommu-run");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "nommu-run failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// The address a `<what><hex>` line of `stdout` gives.
fn address(stdout: &str, what: &str) -> u64 {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(what))
        .unwrap_or_else(|| panic!("no {what}in {stdout}"));
    u64::from_str_radix(line, 16).unwrap()
}

/// `nommu_run` (an installed one: no `NOMMU_LIBRARY`, the library found
/// beside it) runs python printing `word`, and python's arenas reach the
/// server.
fn python_prints_under(nommu_run: &Path, word: &str) {
    let mut cmd = Command::new(nommu_run);
    cmd.env_remove("NOMMU_LIBRARY").args([
        "--arena-size",
        "16M",
        "--",
        PYTHON,
        "-c",
        &format!("print('{word}')"),
    ]);
    let (stdout, stderr) = run(cmd);
    assert_eq!(stdout, format!("{word}\n"), "{stderr}");
    assert!(summary_counts(&stderr, "mmap").0 > 0, "{stderr}");
}

/// The served and refused counts of `call` in the summary line.
fn summary_counts(stderr: &str, call: &str) -> (u64, u64) {
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("nommu-run:"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let body = summary.trim_start_matches("nommu-run:");
    let body = body.split(';').next().unwrap_or_default();
    for part in body.split(',') {
        let words: Vec<&str> = part.split_whitespace().collect();
        if let [name, served, "served", refused, "refused"] = words[..] {
            if name == call {
                return (served.parse().unwrap(), refused.parse().unwrap());
            }
        }
    }
    panic!("no count for {call} in {summary:?}");
}

const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = "import json, sys\n\
data = [{'n': i, 'sq': i * i, 's': str(i) * 10} for i in range(20000)]\n\
text = json.dumps(data)\n\
print(len(text), sum(d['sq'] for d in json.loads(text)))\n\
print(sorted(set('no mmu here'))[:5], sys.version_info[0])";

#[test]
fn python_prints_what_it_prints_alone_and_its_arenas_reach_memsrv() {
    let alone = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .output()
        .expect("run python3 (Debian's python3 is a test dependency)");
    assert!(alone.status.success(), "python3 alone failed: {alone:?}");
    let alone = String::from_utf8_lossy(&alone.stdout).into_owned();

    let mut cmd = nommu_run();
    cmd.args(["--", PYTHON, "-c", SCRIPT]);
    let (stdout, stderr) = run(cmd);
    assert_eq!(stdout, alone, "stderr:\n{stderr}");
    let (served, _) = summary_counts(&stderr, "mmap");
    assert!(
        served > 0,
        "python's arenas did not reach memsrv:\n{stderr}"
    );
    assert!(
        stderr.lines().last().unwrap().ends_with("exit status 0"),
        "{stderr}"
    );
}

#[test]
fn a_plain_c_program_gets_the_no_mmu_answers_and_its_mappings_are_listed() {
    let scratch = Scratch::new("c");
    let exe = plain_program(&scratch, "unmodified");
    let mut cmd = nommu_run();
    cmd.arg("--").arg(&exe).arg(&scratch.0);
    let (stdout, stderr) = run(cmd);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "map_fixed EINVAL",
            "map_shared_file ENODEV",
            "map_private_file OK",
            "shmat same",
            "fork ENOSYS",
            "vfork_exec OK",
        ],
        "stderr:\n{stderr}"
    );
    // The mapping it left is listed in /proc/maps format.
    let left = lines[6].strip_prefix("left ").expect("left line");
    let listed = stderr
        .lines()
        .find(|l| l.starts_with(left))
        .unwrap_or_else(|| panic!("{left} not listed at exit:\n{stderr}"));
    assert!(
        listed[left.len()..].starts_with(" rw-p 00000000"),
        "{listed}"
    );
    // So is the segment still attached once.
    assert!(stderr.contains("/SYSV00000000"), "{stderr}");
    assert_eq!(summary_counts(&stderr, "fork"), (0, 1));
    assert_eq!(summary_counts(&stderr, "shmat"), (2, 0));
    let (served, refused) = summary_counts(&stderr, "mmap");
    assert_eq!((served, refused), (2, 2), "{stderr}");
    // No trace without --trace.
    assert!(!stderr.contains("= ENODEV"), "{stderr}");
}

#[test]
fn trace_gives_the_no_mmu_reason_for_a_refusal() {
    let scratch = Scratch::new("trace");
    let exe = plain_program(&scratch, "unmodified");
    let file = scratch.0.join("unmodified.dat");
    let mut cmd = nommu_run();
    cmd.arg("--trace").arg("--").arg(&exe).arg(&scratch.0);
    let (_, stderr) = run(cmd);
    let line = stderr
        .lines()
        .find(|l| l.contains("MAP_SHARED") && l.contains("= ENODEV"))
        .unwrap_or_else(|| panic!("no trace of the ENODEV refusal:\n{stderr}"));
    assert!(
        line.contains(&format!("→ {}", file.display())),
        "the file is not named: {line}"
    );
    assert!(
        line.ends_with("= ENODEV: a regular file cannot be shared without an MMU"),
        "{line}"
    );
    assert!(
        stderr.contains("fork() = ENOSYS: fork needs an MMU"),
        "{stderr}"
    );
}

#[test]
fn the_library_is_found_in_lib_beside_an_installed_nommu_run() {
    let scratch = Scratch::new("prefix");
    let bin = scratch.0.join("bin");
    let lib = scratch.0.join("lib");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    for (from, to) in [
        (
            PathBuf::from(env!("CARGO_BIN_EXE_nommu-run")),
            bin.join("nommu-run"),
        ),
        (
            PathBuf::from(env!("CARGO_BIN_EXE_memsrvd")),
            bin.join("memsrvd"),
        ),
        (libnommu_so().to_path_buf(), lib.join("libnommu.so")),
    ] {
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    python_prints_under(&bin.join("nommu-run"), "found");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &[
            "--socket",
            "/nonexistent",
            "--arena-size",
            "1M",
            "--",
            "true",
        ][..],
        &["--arena-size", "3", "--", "true"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nommu-run"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

#[test]
fn with_malloc_the_c_library_allocator_takes_its_blocks_from_the_arena() {
    let scratch = Scratch::new("malloc");
    let exe = plain_program(&scratch, "heap");
    let arena = 0x2000_0000_0000u64..0x2000_0000_0000 + (16 << 20);

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nommu-run"));
    cmd.arg("--malloc")
        .arg("--library")
        .arg(libnommu_malloc_so())
        .args(["--arena-size", "16M", "--"])
        .arg(&exe);
    let (stdout, stderr) = run(cmd);
    assert!(stdout.ends_with("heap ok\n"), "{stdout}\n{stderr}");
    for what in ["small ", "large "] {
        let at = address(&stdout, what);
        assert!(
            arena.contains(&at),
            "{what}block at {at:#x}, not in the arena"
        );
    }

    // Without --malloc the C library's own heap serves them.
    let mut cmd = nommu_run();
    cmd.arg("--").arg(&exe);
    let (stdout, stderr) = run(cmd);
    assert!(stdout.ends_with("heap ok\n"), "{stdout}\n{stderr}");
    let at = address(&stdout, "small ");
    assert!(!arena.contains(&at), "small block at {at:#x} in the arena");
}

#[test]
fn with_malloc_python_still_prints_what_it_prints_alone() {
    let script = "print(sum(len(str(i) * 50) for i in range(30000)), [1, 2] * 3)";
    let alone = Command::new(PYTHON).args(["-c", script]).output().unwrap();
    assert!(alone.status.success(), "{alone:?}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nommu-run"));
    cmd.arg("--malloc")
        .arg("--library")
        .arg(libnommu_malloc_so())
        .args(["--", PYTHON, "-c", script]);
    let (stdout, stderr) = run(cmd);
    assert_eq!(stdout.as_bytes(), &alone.stdout[..], "{stderr}");
}

#[test]
fn scripts_install_sh_installs_nommu_run_with_the_libraries_it_preloads() {
    let scratch = Scratch::new("install");
    let prefix = scratch.join("prefix");
    let mut install = daemon::install_sh(&prefix);
    daemon::check(install.output().expect("run install.sh"), "install.sh");
    for file in ["bin/nommu-run", "lib/libnommu.so", "lib/libnommu-malloc.so"] {
        assert!(prefix.join(file).is_file(), "{file} not installed");
    }

    let nommu_run = prefix.join("bin/nommu-run");
    python_prints_under(&nommu_run, "installed");

    let exe = plain_program(&scratch, "heap");
    let mut cmd = Command::new(&nommu_run);
    cmd.env_remove("NOMMU_LIBRARY")
        .args(["--malloc", "--arena-size", "16M", "--"])
        .arg(&exe);
    let (stdout, stderr) = run(cmd);
    assert!(stdout.ends_with("heap ok\n"), "{stdout}\n{stderr}");
    let small = address(&stdout, "small ");
    assert!(
        (0x2000_0000_0000..0x2000_0100_0000).contains(&small),
        "malloc did not reach the arena: {small:#x}"
    );
}
