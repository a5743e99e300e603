//! Test helpers for the multi-process home: start a private `memsrvd`
//! (own socket, own arena address) and kill it when the test ends, even on
//! failure; build `libnommu.a` and C test programs against it.
#![allow(dead_code)]

use nommu::host::{ConnectOptions, Connection};
use nommu::Client;
use protocol::ProcView;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

/// The arena size tests use (small: several daemons run at once).
pub const ARENA_SIZE: u64 = 16 << 20;

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

impl Daemon {
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
    pub fn client(&self) -> Client<Connection> {
        Connection::connect(&self.socket).expect("connect to memsrvd")
    }

    /// A Rust client whose requests all travel over the socket.
    pub fn socket_client(&self) -> Client<Connection> {
        Connection::connect_with(
            &self.socket,
            ConnectOptions {
                fast_path: false,
                ticket: None,
            },
        )
        .expect("connect to memsrvd")
    }

    /// Run `nommu-ctl --socket <ours> args...`; returns its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_nommu-ctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run nommu-ctl");
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
pub fn proc_text(client: &Client<Connection>, view: ProcView) -> String {
    let mut buf = vec![0u8; 256 << 10];
    let total = client.read_proc(view, &mut buf).expect("read /proc view");
    buf.truncate(total.min(buf.len()));
    String::from_utf8(buf).expect("utf-8 /proc text")
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

/// Build `libnommu.a` (feature `posix`) once per test process, in its own
/// target directory, with the outer cargo's environment cleared so the
/// nested build neither inherits its settings nor waits on its lock.
pub fn libnommu() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let root = workspace();
        let target = root.join("target").join("nommu-shim");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .args([
                "build",
                "-p",
                "libc-shim",
                "--release",
                "--features",
                "posix",
            ])
            .arg("--target-dir")
            .arg(&target);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            let outer = key.starts_with("CARGO_") && key != "CARGO_HOME";
            if outer || ["RUSTC_WRAPPER", "MAKEFLAGS", "MFLAGS"].contains(&key.as_str()) {
                cmd.env_remove(&key);
            }
        }
        let out = cmd.output().expect("run cargo for libnommu.a");
        assert!(
            out.status.success(),
            "building libnommu.a failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lib = target.join("release").join("libnommu.a");
        assert!(lib.exists(), "{} missing", lib.display());
        lib
    })
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
    let out = Command::new("cc")
        .args(["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root.join("libc-shim").join("include"))
        .arg(
            root.join("hosted")
                .join("tests")
                .join("c")
                .join(format!("{name}.c")),
        )
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "compiling {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// A child process killed on drop (a C client a test may leave running).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
