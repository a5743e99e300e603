//! Test helpers for the multi-process home: start a private `memsrvd`
//! (own socket, own arena address) and kill it when the test ends, even on
//! failure; build `libnommu.a` and C test programs against it (one `cc`
//! command line for all of them), install the tree with
//! `scripts/install.sh`.
#![allow(dead_code)]

use nommu::transport::{ConnectOptions, DaemonConnection};
use nommu::Client;
use protocol::ProcView;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The arena size tests use (small: several daemons run at once).
pub const ARENA_SIZE: u64 = 16 << 20;

/// `nobody`/`nogroup`: an unprivileged user and group.
pub const NOBODY: u32 = 65534;

/// Panics unless the test runs as root (it switches users).
pub fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(euid == 0, "this test switches users: run it as root");
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hosted lives in the workspace")
        .to_path_buf()
}

/// A running `memsrvd`, killed on drop.
pub struct Daemon {
    child: Child,
    pub socket: PathBuf,
    pub arena_base: u64,
    pub pid: u32,
}

/// The standard output of a program that must have succeeded; a failure
/// shows both of its outputs.
pub fn check(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

impl Daemon {
    /// Wait until every page is free and no anonymous memory is held, as
    /// `/proc/meminfo` says (releases happen on connection threads, so give
    /// them a moment).
    pub fn assert_all_free(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.ctl(&["meminfo"]);
            let total = meminfo_field(&text, "MemTotal").unwrap();
            let free = meminfo_field(&text, "MemFree").unwrap();
            let copy = meminfo_field(&text, "MmapCopy").unwrap();
            if total == free && copy == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "memory not released: MemTotal {total} MemFree {free} MmapCopy {copy}\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start a daemon on a fresh socket with a fresh arena address (distinct
    /// within this test process, which may connect to several at once).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Daemon::start`] with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let socket = std::env::temp_dir().join(format!("nommu-{}-{n}.sock", std::process::id()));
        let arena_base = 0x3000_0000_0000 + n * 0x1_0000_0000;
        let mut child = Command::new(env!("CARGO_BIN_EXE_memsrvd"))
            .arg("--socket")
            .arg(&socket)
            .arg("--arena-base")
            .arg(format!("{arena_base:#x}"))
            .arg("--arena-size")
            .arg(ARENA_SIZE.to_string())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn memsrvd");
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the daemon never blocks on a full pipe.
            for _ in lines {}
        });
        let daemon = Self {
            child,
            socket,
            arena_base,
            pid,
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.starts_with("memsrvd: ready on ") => daemon,
            other => panic!("memsrvd did not become ready: {other:?}"),
        }
    }

    /// A Rust client speaking for this test process.
    pub fn client(&self) -> Client<DaemonConnection> {
        DaemonConnection::connect(&self.socket).expect("connect to memsrvd")
    }

    /// A Rust client whose requests all travel over the socket.
    pub fn socket_client(&self) -> Client<DaemonConnection> {
        DaemonConnection::connect_with(
            &self.socket,
            ConnectOptions {
                fast_path: false,
                ticket: None,
                follow_identity: true,
            },
        )
        .expect("connect to memsrvd")
    }

    /// `nommu-ctl --socket <ours> args...`, not started yet.
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nommu-ctl"));
        cmd.arg("--socket").arg(&self.socket).args(args);
        cmd
    }

    /// Run `nommu-ctl --socket <ours> args...`; returns its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.ctl_command(args).output().expect("run nommu-ctl");
        assert!(
            out.status.success(),
            "nommu-ctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Whether the daemon process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The child process (to send it a signal).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// `/proc/...` text through a client.
pub fn proc_text(client: &Client<DaemonConnection>, view: ProcView) -> String {
    let mut buf = vec![0u8; 256 << 10];
    let total = client.read_proc(view, &mut buf).expect("read /proc view");
    buf.truncate(total.min(buf.len()));
    String::from_utf8(buf).expect("utf-8 /proc text")
}

/// The mount points the daemon lists, through `client`.
pub fn mount_points(client: &Client<DaemonConnection>) -> Vec<String> {
    client
        .list_mounts()
        .unwrap()
        .map(|m| m.as_str().to_string())
        .collect()
}

/// A `/proc/meminfo` field in kB (`None` if absent).
pub fn meminfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Build the shim as `crate_type` (`staticlib` or `cdylib`) with
/// `features` into `target/<dir>`, with the outer cargo's environment
/// cleared so the nested build neither inherits its settings nor waits on
/// its lock; returns the library file (`libnommu.a` or `libnommu.so`).
pub fn build_shim(dir: &str, features: &str, crate_type: &str) -> PathBuf {
    let root = workspace();
    let target = root.join("target").join(dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["rustc", "-p", "libc-shim", "--lib", "--release"])
        .args(["--features", features, "--crate-type", crate_type])
        .arg("--target-dir")
        .arg(&target);
    without_outer_cargo(&mut cmd);
    let out = cmd.output().expect("run cargo for libnommu");
    assert!(
        out.status.success(),
        "building libnommu ({crate_type}, {features}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = if crate_type == "cdylib" {
        "libnommu.so"
    } else {
        "libnommu.a"
    };
    let lib = target.join("release").join(file);
    assert!(lib.exists(), "{} missing", lib.display());
    lib
}

/// Clear the outer cargo's settings from `cmd` (a nested cargo build), so
/// it neither inherits them nor waits on the outer build's lock.
pub fn without_outer_cargo(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let outer = key.starts_with("CARGO_") && key != "CARGO_HOME";
        if outer || ["RUSTC_WRAPPER", "MAKEFLAGS", "MFLAGS"].contains(&key.as_str()) {
            cmd.env_remove(&key);
        }
    }
}

/// `scripts/install.sh prefix`, building into `target/nommu-install` (one
/// release build for every test that installs) with the cargo running
/// this test first on PATH and none of its settings.
pub fn install_sh(prefix: &Path) -> Command {
    let root = workspace();
    let mut install = Command::new(root.join("scripts").join("install.sh"));
    install.arg(prefix);
    without_outer_cargo(&mut install);
    install.env(
        "CARGO_TARGET_DIR",
        root.join("target").join("nommu-install"),
    );
    if let Some(cargo) = std::env::var_os("CARGO") {
        let dir = Path::new(&cargo).parent().unwrap().to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir];
        dirs.extend(std::env::split_paths(&path));
        install.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    install
}

/// `libnommu.a` (features `posix` and `malloc`), built once per test
/// process.
pub fn libnommu() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| build_shim("nommu-shim", "posix,malloc", "staticlib"))
}

/// `cc` with the flags every C program of these tests builds with: C11
/// with GNU extensions, optimised, every warning an error.
pub fn cc() -> Command {
    let mut cc = Command::new("cc");
    cc.args(["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"]);
    cc
}

/// The host libraries a program linked with `libnommu.a` needs.
pub const HOST_LIBS: [&str; 3] = ["-lpthread", "-ldl", "-lm"];

/// `hosted/tests/c/<name>.c`.
pub fn c_source(name: &str) -> PathBuf {
    workspace()
        .join("hosted")
        .join("tests")
        .join("c")
        .join(format!("{name}.c"))
}

/// Run `cc` (from [`cc`], with its sources and libraries) to write `exe`;
/// panics with the compiler's messages unless it succeeded.
pub fn compile(mut cc: Command, exe: &Path, name: &str) {
    let out = cc.arg("-o").arg(exe).output().expect("run cc");
    assert!(
        out.status.success(),
        "compiling {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compile a ported app's driver `hosted/tests/c/<driver>.c` into `exe`
/// with the app's headers (`include`) and static library (`lib`): with
/// `nommu`, against `libnommu.a` and the nommu allocator
/// (`-DNOMMU_MALLOC`); else with the host's libc only.
pub fn compile_app_driver(driver: &str, include: &str, lib: &str, nommu: bool, exe: &Path) {
    let mut cc = cc();
    cc.arg("-I").arg(include);
    if nommu {
        cc.arg("-DNOMMU_MALLOC")
            .arg("-I")
            .arg(workspace().join("libc-shim").join("include"));
    }
    cc.arg(c_source(driver)).arg(lib);
    if nommu {
        cc.arg(libnommu());
    }
    cc.args(HOST_LIBS);
    compile(cc, exe, driver);
}

/// A daemon for the SQLite driver's databases on the server: a ramfs at
/// `/apps-mem`, and a copy-only filesystem serving a fresh host directory
/// at that directory's own path (so the host build can use the same path).
pub struct SqliteDaemon {
    /// Dropped first: the daemon, then its directory.
    pub daemon: Daemon,
    /// The copy-only directory's path.
    pub disk_dir: String,
    _disk: Scratch,
}

impl SqliteDaemon {
    /// Start one with an arena of `arena_size` (e.g. `"64M"`).
    pub fn start(arena_size: &str) -> Self {
        let disk = Scratch::new("sqlite-disk");
        let disk_dir = disk.path().display().to_string();
        let copy_mount = format!("{disk_dir}=hostdir:{disk_dir}");
        let daemon = Daemon::start_with(&[
            "--arena-size",
            arena_size,
            "--mount",
            "/apps-mem=ramfs",
            "--mount",
            &copy_mount,
        ]);
        Self {
            daemon,
            disk_dir,
            _disk: disk,
        }
    }
}

/// Compile `hosted/tests/c/<name>.c` against `libnommu.a`, once per test
/// process; returns the executable.
pub fn c_program(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(exe) = built.get(name) {
        return exe.clone();
    }
    let lib = libnommu();
    let root = workspace();
    let parent = root.join("target").join("nommu-shim");
    remove_stale_c_outputs(&parent);
    let dir = parent.join(format!("c-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create C output directory");
    let exe = dir.join(name);
    let mut cc = cc();
    cc.arg("-I")
        .arg(root.join("libc-shim").join("include"))
        .arg(c_source(name))
        .arg(lib)
        .args(HOST_LIBS);
    compile(cc, &exe, name);
    built.insert(name.to_string(), exe.clone());
    exe
}

/// Remove the C outputs of test processes that have ended.
fn remove_stale_c_outputs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("c-tests-")) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A command running C program `name` against `daemon`.
pub fn c_command(daemon: &Daemon, name: &str) -> Command {
    let mut cmd = Command::new(c_program(name));
    cmd.env("NOMMU_SOCKET", &daemon.socket);
    cmd
}

/// The standard output of `cmd`, run to the end: it must exit 0 and print
/// every one of `expect`.
pub fn run_expecting(cmd: &mut Command, what: &str, expect: &[&str]) -> String {
    let out = check(cmd.output().expect("run a C program"), what);
    for text in expect {
        assert!(out.contains(text), "{what}: no {text:?} in\n{out}");
    }
    out
}

/// Run C program `name` with `args` on a daemon of its own (started with
/// `daemon_args`): it must exit 0, print every one of `expect` and leave
/// every page free.
pub fn c_program_alone(daemon_args: &[&str], name: &str, args: &[&str], expect: &[&str]) {
    let d = Daemon::start_with(daemon_args);
    let what = [name].iter().chain(args).copied().collect::<Vec<_>>();
    run_expecting(c_command(&d, name).args(args), &what.join(" "), expect);
    d.assert_all_free();
}

/// A child process killed on drop (a C client a test may leave running).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory under the system's temporary directory, removed on
/// drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nommu-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `self/<name>`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes of a pattern that differs in every page (so a wrong offset shows).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i / 4096) as u8) ^ seed)
        .collect()
}

/// A romfs image made with `genromfs` from `files` (name, contents);
/// returns the image's path inside `scratch`.
pub fn romfs_image(scratch: &Scratch, files: &[(&str, &[u8])]) -> PathBuf {
    let root = scratch.join("romfs-root");
    std::fs::create_dir_all(&root).expect("create romfs root");
    for (name, data) in files {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create romfs directory");
        }
        std::fs::write(&path, data).expect("write romfs file");
    }
    let image = scratch.join("rom.img");
    let out = Command::new("genromfs")
        .arg("-f")
        .arg(&image)
        .arg("-d")
        .arg(&root)
        .args(["-V", "nommu-test"])
        .output()
        .expect("run genromfs (apt-get install genromfs)");
    check(out, "genromfs");
    image
}

/// A child's output lines as they come, read by a thread of their own
/// until the child closes it or the receiver is gone.
fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A `nommu-driver` process serving one mount of `daemon`, killed on drop.
pub struct DriverProcess {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl DriverProcess {
    /// `nommu-driver --socket <daemon's> --mount spec`, not started yet.
    pub fn command(daemon: &Daemon, spec: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nommu-driver"));
        cmd.arg("--socket")
            .arg(&daemon.socket)
            .arg("--mount")
            .arg(spec);
        cmd
    }

    /// Start `nommu-driver --mount spec` and wait until it serves.
    pub fn start(daemon: &Daemon, spec: &str) -> Self {
        Self::spawn(Self::command(daemon, spec))
    }

    /// Start a `nommu-driver` command made by the caller (another user,
    /// say) and wait until it serves.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nommu-driver");
        let lines = read_lines(child.stdout.take().expect("piped stdout"));
        let driver = Self { child, lines };
        match driver.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.starts_with("nommu-driver: serving ") => driver,
            other => panic!("nommu-driver did not start: {other:?}"),
        }
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A C program started with piped stdin and stdout, whose output lines
/// are read as they come; killed on drop.
pub struct Interactive {
    pub child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Interactive {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn C program");
        let stdin = child.stdin.take();
        let lines = read_lines(child.stdout.take().expect("piped stdout"));
        Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Read lines until one starts with `prefix`; returns the rest of it.
    pub fn expect(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_string();
                    }
                }
                Err(_) => panic!(
                    "no line starting {prefix:?}; output so far: {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Send one line to its stdin.
    pub fn say(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to C program");
        stdin.flush().expect("flush");
    }

    /// Close stdin and wait; panics unless it exits 0.
    pub fn finish(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for C program");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        assert!(
            status.success(),
            "exited {status:?}; output: {:?}",
            self.seen
        );
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One object shared by two runs of C program `name`: `name create
/// created` maps it, prints `addr <p>` and `ready` and waits; `name join
/// joined` maps it at the same address; then the creator, told `go`,
/// checks what the joiner stored (the C side: `c/create_join.h`). Both
/// must print `<name>: ok`.
pub fn create_and_join(d: &Daemon, name: &str, created: &str, joined: &str, go: &str) {
    let ok = format!("{name}: ok");
    let mut cmd = c_command(d, name);
    cmd.args(["create", created]);
    let mut creator = Interactive::spawn(cmd);
    let addr = parse_addr(&creator.expect("addr "));
    creator.expect("ready");
    let out = run_expecting(
        c_command(d, name).args(["join", joined]),
        &format!("{name} join"),
        &[&ok],
    );
    let join_addr = out
        .lines()
        .find_map(|l| l.strip_prefix("addr "))
        .map(parse_addr)
        .unwrap();
    assert_eq!(join_addr, addr, "{name}: one object, one address");
    creator.say(go);
    let lines = creator.finish();
    assert!(lines.contains(&ok), "{lines:?}");
}

/// A hexadecimal address as C's `%p` prints it.
pub fn parse_addr(text: &str) -> u64 {
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not an address: {text:?}"))
}
