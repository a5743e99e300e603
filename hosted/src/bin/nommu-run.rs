//! `nommu-run`: run an unmodified, dynamically linked program under no-MMU
//! rules. The program gets `libnommu.so` preloaded, so its `mmap`,
//! `munmap`, `mremap`, shared memory, futex and server-path file calls go
//! to memsrv and `fork` is refused; a private `memsrvd` serves it unless
//! `--socket` names a running one. At exit it prints the mappings the
//! program still held (`/proc/<pid>/maps`, as the library reported them
//! from the server before its connection closed) and one summary line of
//! the calls served and refused (see `libc-shim`'s `capi::host::preload`).

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use hosted::daemon::options::DaemonArgs;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The call kinds in the library's report, in its order (a kind a newer
/// library reports beyond these is added after them).
const CALLS: [&str; 12] = [
    "mmap",
    "munmap",
    "mremap",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "shm_open",
    "shm_unlink",
    "futex",
    "open",
    "fork",
];

/// `nommu-run`'s arguments; `--help` is generated from them.
#[derive(Parser, Debug)]
#[command(
    name = "nommu-run",
    version,
    about = "nommu-run - run an unmodified program under no-MMU rules, served by memsrv",
    long_about = None,
    after_help = "The program's mmap, munmap, mremap, SysV and POSIX shared memory, futex, \
        file calls on server paths and fork go to memsrv (fork fails ENOSYS; vfork + exec \
        work). Calls glibc makes internally (malloc's own mmap, the loader's, thread \
        stacks), raw syscall(2) and static binaries are not intercepted. At exit the \
        mappings the program still held are listed in /proc/maps format, then one line \
        'nommu-run: CALL N served M refused, ...'.\n\
        libnommu.so is looked for with --library, $NOMMU_LIBRARY, in ../lib beside \
        nommu-run, beside nommu-run, then in the cargo target directory.",
    args_override_self = true,
    mut_arg("socket", |a| a
        .help("Use the running memsrvd at PATH instead of starting a private one")
        .help_heading(None::<&str>))
)]
struct Args {
    /// The libnommu.so to preload (default: $NOMMU_LIBRARY, else found
    /// beside nommu-run)
    #[arg(long, value_name = "PATH")]
    library: Option<PathBuf>,
    /// Print each request as it is answered, with the no-MMU reason for a
    /// refusal
    #[arg(long)]
    trace: bool,
    /// Route the program's malloc family to the mmap-only allocator
    /// (preloads libnommu-malloc.so instead of libnommu.so)
    #[arg(long)]
    malloc: bool,
    /// The private memsrvd's settings; with --socket, the running daemon
    /// at PATH is used instead and takes no other of these
    #[command(flatten, next_help_heading = "Private memsrvd")]
    daemon: DaemonArgs,
    /// The program and its arguments (after --)
    #[arg(
        value_name = "PROGRAM",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    program: Vec<OsString>,
}

fn main() -> ExitCode {
    // `--help`, `--version` and usage errors print and exit (0 or 2) here.
    let args = Args::parse();
    let daemon_argv = daemon_argv(&args.daemon);
    if args.daemon.socket.is_some() && !daemon_argv.is_empty() {
        Args::command()
            .error(
                ErrorKind::ArgumentConflict,
                "--socket uses a running memsrvd: its settings cannot be given here",
            )
            .exit();
    }
    match run(&args, &daemon_argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nommu-run: {e}");
            ExitCode::from(127)
        }
    }
}

/// The memsrvd arguments `args` asks for (without `--socket`).
fn daemon_argv(args: &DaemonArgs) -> Vec<String> {
    let mut argv = Vec::new();
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            argv.push(format!("--{name}"));
            argv.push(value);
        }
    };
    add("socket-mode", args.socket_mode.map(|m| format!("{m:o}")));
    add("socket-group", args.socket_group.map(|g| g.to_string()));
    add("arena-size", args.arena_size.map(|s| s.to_string()));
    add("arena-base", args.arena_base.map(|b| format!("{b:#x}")));
    add("nr-trim-pages", args.nr_trim_pages.map(|n| n.to_string()));
    add("max-clients", args.max_clients.map(|n| n.to_string()));
    add(
        "driver-timeout",
        args.driver_timeout_ms.map(|n| n.to_string()),
    );
    for mount in &args.mounts {
        let arg = mount
            .arg
            .as_ref()
            .map(|a| format!(":{a}"))
            .unwrap_or_default();
        add(
            "mount",
            Some(format!("{}={}{arg}", mount.point, mount.kind)),
        );
    }
    for (set, name) in [
        (args.allow_uninitialized, "--allow-uninitialized"),
        (args.strict_mremap, "--strict-mremap"),
        (args.process_per_connection, "--process-per-connection"),
    ] {
        if set {
            argv.push(name.to_string());
        }
    }
    argv
}

/// The directory nommu-run's own executable is in.
fn own_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}

/// Where the library to preload is: `--library`, `$NOMMU_LIBRARY`, then
/// `../lib` and `.` beside nommu-run, then the cargo target directory
/// (nommu-run in `target/debug` or `target/release`).
fn find_library(args: &Args) -> Result<PathBuf, String> {
    if let Some(path) = &args.library {
        return Ok(path.clone());
    }
    if let Some(path) = std::env::var_os("NOMMU_LIBRARY").filter(|p| !p.is_empty()) {
        return Ok(path.into());
    }
    let name = if args.malloc {
        "libnommu-malloc.so"
    } else {
        "libnommu.so"
    };
    let dir = own_dir().ok_or("cannot tell where nommu-run is")?;
    let mut places = vec![dir.join("../lib"), dir.clone()];
    if let Some(target) = dir.parent() {
        places.extend(["release", "debug"].map(|p| target.join(p)));
    }
    places
        .iter()
        .map(|p| p.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{name} not found (looked in {}); build it with scripts/install.sh or give --library",
                places
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// A private directory for the socket and the reports, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, String> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("nommu-run-{}-{stamp}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::create_dir(dir.join("reports")).map_err(|e| format!("reports: {e}"))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private memsrvd, stopped (SIGTERM, then waited for) on drop.
struct PrivateDaemon(Child);

impl PrivateDaemon {
    fn start(socket: &Path, extra: &[String]) -> Result<Self, String> {
        let beside = own_dir().map(|d| d.join("memsrvd")).filter(|p| p.is_file());
        let program = beside.unwrap_or_else(|| "memsrvd".into());
        let mut child = Command::new(&program)
            .arg("--socket")
            .arg(socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C meant for the program does
            // not stop the daemon before the program's report is in.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("memsrvd without stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep draining so the daemon never blocks on a full pipe.
            for _ in lines {}
        });
        let daemon = Self(child);
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(line)) if line.starts_with("memsrvd: ready on ") => Ok(daemon),
            other => Err(format!("memsrvd did not become ready: {other:?}")),
        }
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: a signal to our own child, which has not been waited
            // for yet (so the pid is still ours).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.0.wait();
    }
}

/// One process's report, as the preloaded library wrote it.
struct Report {
    host_pid: u32,
    counts: Vec<(String, u64, u64)>,
    maps: String,
}

fn read_reports(dir: &Path) -> Vec<Report> {
    let mut reports = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return reports;
    };
    for entry in entries.flatten() {
        let Some(host_pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let (head, maps) = text.split_once("maps\n").unwrap_or((&text, ""));
        let counts = head
            .lines()
            .filter_map(|line| {
                let mut words = line.strip_prefix("call ")?.split(' ');
                let name = words.next()?.to_string();
                let served = words.next()?.parse().ok()?;
                let refused = words.next()?.parse().ok()?;
                Some((name, served, refused))
            })
            .collect();
        reports.push(Report {
            host_pid,
            counts,
            maps: maps.to_string(),
        });
    }
    reports.sort_by_key(|r| r.host_pid);
    reports
}

fn run(args: &Args, daemon_argv: &[String]) -> Result<ExitCode, String> {
    let library = find_library(args)?;
    let library = std::fs::canonicalize(&library)
        .map_err(|e| format!("library {}: {e}", library.display()))?;
    let scratch = Scratch::new()?;
    let reports = scratch.0.join("reports");
    let (socket, _daemon) = match &args.daemon.socket {
        Some(socket) => (socket.clone(), None),
        None => {
            let socket = scratch.0.join("memsrv.sock");
            let daemon = PrivateDaemon::start(&socket, daemon_argv)?;
            (socket, Some(daemon))
        }
    };
    let mut preload = OsString::from(&library);
    if let Some(more) = std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
        preload.push(":");
        preload.push(more);
    }
    let (program, program_args) = args.program.split_first().ok_or("no program")?;
    let mut command = Command::new(program);
    command
        .args(program_args)
        .env("LD_PRELOAD", preload)
        .env("NOMMU_SOCKET", &socket)
        .env("NOMMU_RUN_REPORT", &reports)
        .env("NOMMU_REFUSE_FORK", "1");
    if args.trace {
        command.env("NOMMU_TRACE", "1");
    } else {
        command.env_remove("NOMMU_TRACE");
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", Path::new(program).display()))?;
    // A Ctrl-C reaches the program (same process group); nommu-run waits
    // for it to end and reports, as a shell's `time` does.
    // SAFETY: setting the disposition of two signals to "ignore" touches
    // no memory of ours.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let status = child.wait().map_err(|e| format!("waiting: {e}"))?;
    let main_pid = child.id();

    let reports = read_reports(&reports);
    let mut totals: Vec<(String, u64, u64)> = CALLS.iter().map(|c| (c.to_string(), 0, 0)).collect();
    for report in &reports {
        for (name, served, refused) in &report.counts {
            match totals.iter_mut().find(|t| t.0 == *name) {
                Some(total) => {
                    total.1 += served;
                    total.2 += refused;
                }
                None => totals.push((name.clone(), *served, *refused)),
            }
        }
        let who = if report.host_pid == main_pid {
            Path::new(program).display().to_string()
        } else {
            format!("process {} (started by the program)", report.host_pid)
        };
        if report.maps.is_empty() {
            eprintln!("== {who}: no mappings left at exit");
        } else {
            eprintln!("== {who}: mappings left at exit (/proc/<pid>/maps of memsrv)");
            eprint!("{}", report.maps);
        }
    }
    if !reports.iter().any(|r| r.host_pid == main_pid) {
        eprintln!(
            "== {}: no report (it ended without exit(3): killed, _exit, or exec of a static binary)",
            Path::new(program).display()
        );
    }
    let summary = totals
        .iter()
        .map(|(name, served, refused)| format!("{name} {served} served {refused} refused"))
        .collect::<Vec<_>>()
        .join(", ");
    let ended = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".into(),
    };
    eprintln!("nommu-run: {summary}; {ended}");
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(128u8.saturating_add(signal as u8)),
        _ => ExitCode::FAILURE,
    })
}
