//! Ported apps' run time on the nommu allocator (every heap chunk a
//! `memsrvd` mapping) against the same apps on the host's malloc, with the
//! allocator's mmap/munmap/mremap request counts.
//!
//! `cargo bench -p hosted --bench ported_apps` (Lua's alloc_heavy.lua;
//! SQLite with 20000 rows, its databases once in host directories - the
//! allocator's cost alone - and once on the server's ramfs and copy-only
//! files, where every page read and write is a request too).

#[path = "../tests/common/daemon.rs"]
mod daemon;

use daemon::{compile_app_driver, workspace, Daemon, Scratch, SqliteDaemon};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn build(driver: &str, include: &str, lib: &str, nommu: bool) -> PathBuf {
    let root = workspace();
    let dir = root.join("target").join("nommu-shim").join("apps-bench");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    let exe = dir.join(format!("{driver}-{}", if nommu { "nommu" } else { "host" }));
    compile_app_driver(driver, include, lib, nommu, &exe);
    exe
}

fn run(mut cmd: Command) -> (Duration, Output) {
    let start = Instant::now();
    let out = cmd.output().expect("run a driver");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, out)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn counts(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("nommu_malloc: "))
        .unwrap_or("?")
        .to_string()
}

fn report(name: &str, host: Vec<Duration>, nommu: Vec<Duration>, last: &Output) {
    let (h, n) = (median(host), median(nommu));
    println!(
        "{name:<22} host {:>9.1} ms   nommu {:>9.1} ms   ratio {:>5.2}x   requests: {}",
        h.as_secs_f64() * 1e3,
        n.as_secs_f64() * 1e3,
        n.as_secs_f64() / h.as_secs_f64(),
        counts(last)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let lua = (env!("NOMMU_LUA_INCLUDE"), env!("NOMMU_LUA_LIB"));
    let sqlite = (env!("NOMMU_SQLITE_INCLUDE"), env!("NOMMU_SQLITE_LIB"));
    let script = workspace().join("hosted/tests/lua/alloc_heavy.lua");
    println!("ported apps, median of {RUNS} runs (host malloc vs nommu allocator on memsrvd)");

    let d = Daemon::start_with(&["--arena-size", "256M"]);
    let (host_exe, nommu_exe) = (
        build("lua_driver", lua.0, lua.1, false),
        build("lua_driver", lua.0, lua.1, true),
    );
    let (mut host, mut nommu, mut last) = (Vec::new(), Vec::new(), None);
    for _ in 0..RUNS {
        let mut cmd = Command::new(&host_exe);
        cmd.arg(&script);
        host.push(run(cmd).0);
        let mut cmd = Command::new(&nommu_exe);
        cmd.arg(&script).env("NOMMU_SOCKET", &d.socket);
        let (t, out) = run(cmd);
        nommu.push(t);
        last = Some(out);
    }
    report("lua", host, nommu, &last.expect("a run"));
    drop(d);

    let (host_exe, nommu_exe) = (
        build("sqlite_driver", sqlite.0, sqlite.1, false),
        build("sqlite_driver", sqlite.0, sqlite.1, true),
    );
    let (mut host, mut nommu, mut last) = (Vec::new(), Vec::new(), None);
    let (mut alloc_only, mut alloc_last) = (Vec::new(), None);
    for _ in 0..RUNS {
        let (a, b) = (Scratch::new("bench-mem"), Scratch::new("bench-disk"));
        let mut cmd = Command::new(&host_exe);
        cmd.arg(a.path()).arg(b.path()).arg("20000");
        host.push(run(cmd).0);
        // A fresh daemon each run: the databases start empty.
        let server = SqliteDaemon::start("256M");
        let d = &server.daemon;
        // The allocator alone: the databases in host directories.
        let (a, b) = (Scratch::new("bench-mem"), Scratch::new("bench-disk"));
        let mut cmd = Command::new(&nommu_exe);
        cmd.arg(a.path())
            .arg(b.path())
            .arg("20000")
            .env("NOMMU_SOCKET", &d.socket);
        let (t, out) = run(cmd);
        alloc_only.push(t);
        alloc_last = Some(out);
        // The allocator and the server's files (ramfs, copy-only).
        let mut cmd = Command::new(&nommu_exe);
        cmd.args(["/apps-mem", &server.disk_dir, "20000"])
            .env("NOMMU_SOCKET", &d.socket);
        let (t, out) = run(cmd);
        nommu.push(t);
        last = Some(out);
    }
    report(
        "sqlite, host files",
        host.clone(),
        alloc_only,
        &alloc_last.expect("a run"),
    );
    report("sqlite, server files", host, nommu, &last.expect("a run"));
}
