//! Ported apps: Lua 5.4 and SQLite, C programs nobody here wrote, linked
//! with `libnommu.a` the way uClinux ports are, every heap allocation a
//! request to `memsrvd` (the nommu allocator, `nommu_malloc.h`). Each app
//! also runs built with the host's own allocator and libc; the outputs
//! must be the same, and the daemon must have every page back at the end.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{check, compile_app_driver, workspace, Daemon, Scratch, SqliteDaemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// Rows the SQLite driver inserts here (the benchmark uses 20000; the
/// tests run a debug daemon on two cores).
const ROWS: &str = "4000";

/// Where `build.rs` put a static library or include directory.
struct App {
    driver: &'static str,
    include: &'static str,
    lib: &'static str,
}

const LUA: App = App {
    driver: "lua_driver",
    include: env!("NOMMU_LUA_INCLUDE"),
    lib: env!("NOMMU_LUA_LIB"),
};

const SQLITE: App = App {
    driver: "sqlite_driver",
    include: env!("NOMMU_SQLITE_INCLUDE"),
    lib: env!("NOMMU_SQLITE_LIB"),
};

/// An app's driver, compiled once per test process: with `nommu`, against
/// `libnommu.a` and the nommu allocator (`-DNOMMU_MALLOC`); else with the
/// host's libc only.
fn build(app: &App, nommu: bool) -> PathBuf {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    let _one_at_a_time = LOCK
        .get_or_init(|| Mutex::new(()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let root = workspace();
    let dir = root
        .join("target")
        .join("nommu-shim")
        .join(format!("apps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the apps' output directory");
    let exe = dir.join(format!(
        "{}-{}",
        app.driver,
        if nommu { "nommu" } else { "host" }
    ));
    if !exe.exists() {
        compile_app_driver(app.driver, app.include, app.lib, nommu, &exe);
    }
    exe
}

/// The allocator's counts from the driver's stderr line
/// `nommu_malloc: mmap N munmap N mremap N mapped N`.
fn stats(out: &Output) -> [u64; 4] {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("nommu_malloc: "))
        .unwrap_or_else(|| panic!("no allocator statistics in stderr:\n{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut counts = [0u64; 4];
    for (i, key) in ["mmap", "munmap", "mremap", "mapped"].iter().enumerate() {
        let at = words.iter().position(|w| w == key).expect(key);
        counts[i] = words[at + 1].parse().expect("a count");
    }
    counts
}

/// The lines every run must print alike (`# ` lines describe the
/// environment).
fn results(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| !l.starts_with("# ")).collect()
}

fn script() -> PathBuf {
    workspace().join("hosted/tests/lua/alloc_heavy.lua")
}

#[test]
fn lua_on_the_nommu_allocator_matches_the_host_build() {
    let d = Daemon::start_with(&["--arena-size", "64M"]);
    let nommu = Command::new(build(&LUA, true))
        .arg(script())
        .env("NOMMU_SOCKET", &d.socket)
        .output()
        .expect("run lua_driver (nommu)");
    let counts = stats(&nommu);
    let nommu_out = check(nommu, "lua_driver (nommu)");
    let host_out = check(
        Command::new(build(&LUA, false))
            .arg(script())
            .output()
            .expect("run lua_driver (host)"),
        "lua_driver (host)",
    );
    assert!(nommu_out.contains("total "), "{nommu_out}");
    assert_eq!(nommu_out.lines().count(), 7, "{nommu_out}");
    assert_eq!(
        nommu_out, host_out,
        "Lua's output differs between allocators"
    );
    // The board runs the same script on its own Lua build and compares
    // with this file: both homes are held to the host's output.
    let expected =
        std::fs::read_to_string(workspace().join("hosted/tests/lua/alloc_heavy.expected"))
            .expect("hosted/tests/lua/alloc_heavy.expected");
    assert_eq!(host_out, expected, "the host's Lua and the expected output");
    assert!(
        counts[0] > 0,
        "the allocator asked the server for nothing: {counts:?}"
    );
    d.assert_all_free();
}

/// Remove the database files the SQLite driver leaves on the server's
/// ramfs, so that every page can come back.
fn remove_ramfs_files(d: &Daemon, dir: &str) {
    let client = d.client();
    let dbs = [
        "mem.db",
        "wal-shared.db",
        "wal-excl.db",
        "journal-DELETE.db",
        "journal-TRUNCATE.db",
        "journal-PERSIST.db",
    ];
    for db in dbs {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = client.unlink(&format!("{dir}/{db}{suffix}"));
        }
    }
}

fn note<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{stdout}"))
}

#[test]
fn sqlite_on_ramfs_and_copy_only_files_matches_the_host_build() {
    // The host build's directories are plain host ones.
    let server = SqliteDaemon::start("64M");
    let d = &server.daemon;
    let nommu = Command::new(build(&SQLITE, true))
        .args(["/apps-mem", &server.disk_dir, ROWS])
        .env("NOMMU_SOCKET", &d.socket)
        .output()
        .expect("run sqlite_driver (nommu)");
    let counts = stats(&nommu);
    let nommu_out = check(nommu, "sqlite_driver (nommu)");

    let host_mem = Scratch::new("sqlite-host-mem");
    let host_disk = Scratch::new("sqlite-host-disk");
    let host_out = check(
        Command::new(build(&SQLITE, false))
            .arg(host_mem.path())
            .arg(host_disk.path())
            .arg(ROWS)
            .output()
            .expect("run sqlite_driver (host)"),
        "sqlite_driver (host)",
    );
    assert_eq!(
        results(&nommu_out),
        results(&host_out),
        "SQLite's results differ between the nommu and host builds\nnommu:\n{nommu_out}\nhost:\n{host_out}"
    );
    let rows: u32 = ROWS.parse().unwrap();
    let expected = rows - rows / 7;
    assert_eq!(
        nommu_out
            .matches(&format!("reopen: {expected} rows"))
            .count(),
        2,
        "{nommu_out}"
    );
    assert_eq!(nommu_out.matches("integrity: ok").count(), 2, "{nommu_out}");

    // SQLite's default VFS throughout ("unix": fcntl() record locks,
    // which the shim answers for server files; fsync, which the server
    // passes to the host directory's driver; stat() of paths, which the
    // server answers). What stays: no-MMU shares only memory that exists
    // once.
    let nommu_says = |prefix: &str| note(&nommu_out, prefix).to_string();
    // ramfs: the -shm file is extended the way SQLite does it (truncate to
    // 3 bytes, then one byte written at the end of each 4 KiB page), so its
    // pages are scattered and cannot be mapped shared in place: ENODEV
    // (SQLITE_IOERR_SHMMAP = 5386), as Linux's ramfs on no-MMU answers.
    let line = nommu_says("# mem wal (normal locking): a write");
    assert!(
        line.contains("fails") && line.contains("code 5386") && line.contains("errno 19"),
        "{line}"
    );
    assert!(
        nommu_out.contains("(19) mmap(/apps-mem/wal-shared.db-shm)"),
        "{nommu_out}"
    );
    // The copy-only filesystem: switching to WAL deletes the rollback
    // journal, which it cannot (unlink EPERM: SQLITE_IOERR_DELETE = 2570);
    // the journal left behind is hot and rolling it back truncates the
    // database, which copy-only files refuse (EINVAL,
    // SQLITE_IOERR_TRUNCATE = 1546): WAL stops before the -shm file.
    for how in ["normal", "exclusive"] {
        let line = nommu_says(&format!("# disk wal ({how} locking): a write"));
        assert!(
            line.contains("fails") && line.contains("code 1546") && line.contains("errno 22"),
            "{line}"
        );
    }
    // Exclusive locking keeps the wal-index in the heap: WAL works on ramfs.
    assert!(nommu_says("# mem wal (exclusive locking): a write").ends_with("a write works"));
    // The shared mapping itself, made by hand as SQLite's unixShmMap makes
    // it: ENODEV on both (copy-only files have no memory to share; ramfs
    // pages written one at a time are not contiguous).
    for fs in ["mem", "disk"] {
        let line = nommu_says(&format!("# {fs} -shm probe: MAP_SHARED"));
        assert!(line.ends_with("fails, errno 19 No such device"), "{line}");
    }
    // Rollback journals: every mode works on ramfs; on the copy-only
    // filesystem DELETE fails at unlink (EPERM, 2570), TRUNCATE at
    // ftruncate (EINVAL, 1546), PERSIST works.
    for journal in ["DELETE", "TRUNCATE", "PERSIST"] {
        let line = nommu_says(&format!("# mem journal {journal} "));
        assert!(line.ends_with("commits work"), "{line}");
    }
    let line = nommu_says("# disk journal DELETE ");
    assert!(line.contains("code 2570, errno 1 "), "{line}");
    let line = nommu_says("# disk journal TRUNCATE ");
    assert!(line.contains("code 1546, errno 22 "), "{line}");
    assert!(nommu_says("# disk journal PERSIST ").ends_with("commits work"));
    // The host build: everything works.
    for line in host_out.lines().filter(|l| l.starts_with("# ")) {
        assert!(
            !line.contains("fails") && !line.starts_with("# log"),
            "the host build: {line}\n{host_out}"
        );
    }

    assert!(
        counts[0] > 0,
        "the allocator asked the server for nothing: {counts:?}"
    );
    remove_ramfs_files(d, "/apps-mem");
    d.assert_all_free();
    assert!(Path::new(&server.disk_dir).join("disk.db").exists());
}
