//! The bench's private `memsrvd`s: one started on its own socket and
//! arena for a group of rows, killed on drop, and its clients over the
//! shared-memory fast path or over the socket alone.

use nommu::transport::{ConnectOptions, DaemonConnection};
use nommu::Client;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `memsrvd` started for this run, killed on drop.
pub struct Daemon {
    child: Child,
    pub socket: PathBuf,
}

impl Daemon {
    /// Start the workspace's `memsrvd` with a 64 MiB arena; `None` (with a
    /// note printed) if it does not come up.
    #[allow(dead_code)] // each bench uses one of the two
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// The same with more command-line arguments (mounts, say).
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        let socket = std::env::temp_dir().join(format!("nommu-bench-{}.sock", std::process::id()));
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        Self::start_at(socket, "0x300000000000", &extra)
            .map_err(|e| println!("  memsrvd: {e}"))
            .ok()
    }

    /// Start the workspace's `memsrvd` on `socket` with a 64 MiB arena at
    /// `arena_base` (rows that run while another daemon's arena is still
    /// mapped here need their own) and `extra` arguments; why not, if it
    /// does not come up.
    pub fn start_at(socket: PathBuf, arena_base: &str, extra: &[String]) -> Result<Self, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_memsrvd"))
            .arg("--socket")
            .arg(&socket)
            .args(["--arena-base", arena_base, "--arena-size", "64M"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the daemon never blocks on a full pipe.
            for _ in lines {}
        });
        let daemon = Self { child, socket };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.starts_with("memsrvd: ready") => Ok(daemon),
            other => Err(format!("not ready: {other:?}")),
        }
    }

    /// Where the daemon listens (for other processes to connect).
    #[allow(dead_code)]
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// A client of this process, over the fast path or the socket alone.
    pub fn connect(&self, fast_path: bool) -> Option<Client<DaemonConnection>> {
        let options = ConnectOptions {
            fast_path,
            ticket: None,
            follow_identity: true,
        };
        DaemonConnection::connect_with(&self.socket, options)
            .map_err(|e| println!("  memsrvd: cannot connect: {e}"))
            .ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}
