//! `nommu-ctl`: read the memory server's `/proc` views from the shell.

use clap::{Parser, Subcommand};
use nommu::transport::DaemonConnection;
use protocol::ProcView;
use std::path::PathBuf;
use std::process::ExitCode;

/// `nommu-ctl`'s arguments; `--help` is generated from them.
#[derive(Parser, Debug)]
#[command(
    name = "nommu-ctl",
    version,
    about = "nommu-ctl - inspect a running memsrvd",
    after_help = "nommu-ctl connects as a process of its own (it maps the arena at the \
        daemon's address, so that range must be free here).",
    arg_required_else_help = true
)]
struct Args {
    /// The daemon's socket (default: $NOMMU_SOCKET, else /tmp/nommu.sock)
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    view: View,
}

/// The views `nommu-ctl` prints.
#[derive(Subcommand, Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// /proc/maps (every region), or /proc/PID/maps of one process
    Maps { pid: Option<u32> },
    /// /proc/meminfo
    Meminfo,
    /// /proc/buddyinfo (free blocks of the arena per order)
    Buddyinfo,
    /// SysV shared memory segments, as `ipcs -m` lists them (key shmid owner
    /// perms bytes nattch status; status dest once IPC_RMID waits for the
    /// last detach)
    Ipcs,
    /// /proc/sysvipc/shm as the server writes it
    Sysvipc,
}

fn main() -> ExitCode {
    hosted::cli::exit_quietly_on_closed_stdout();
    // `--help`, `--version` and usage errors print and exit (0 or 2) here.
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nommu-ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    Args {
        socket,
        view: asked,
    }: Args,
) -> Result<(), String> {
    let view = match asked {
        View::Maps { pid: None } => ProcView::GlobalMaps,
        View::Maps { pid: Some(pid) } => ProcView::ProcessMaps { pid },
        View::Meminfo => ProcView::Meminfo,
        View::Buddyinfo => ProcView::Buddyinfo,
        View::Ipcs | View::Sysvipc => ProcView::SysvShm,
    };
    let path = socket.unwrap_or_else(DaemonConnection::default_path);
    let client =
        DaemonConnection::connect(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = vec![0u8; 64 << 10];
    loop {
        let total = client
            .read_proc(view, &mut text)
            .map_err(|e| format!("reading the view failed: {e}"))?;
        if total <= text.len() {
            text.truncate(total);
            break;
        }
        text.resize(total, 0);
    }
    let text = String::from_utf8_lossy(&text);
    if asked == View::Ipcs {
        print!("{}", ipcs(&text));
    } else {
        print!("{text}");
    }
    Ok(())
}

/// `SHM_DEST`: removal waits for the last detach.
const SHM_DEST: u32 = 0o1000;
/// `SHM_LOCKED`.
const SHM_LOCKED: u32 = 0o2000;

/// `/proc/sysvipc/shm` text laid out as `ipcs -m` does. Columns are found
/// by the header's names; a row that cannot be read is skipped.
fn ipcs(proc_text: &str) -> String {
    let mut lines = proc_text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let mut out = String::from("\n------ Shared Memory Segments --------\n");
    out.push_str(&format!(
        "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10} {:<12}\n",
        "key", "shmid", "owner", "perms", "bytes", "nattch", "status"
    ));
    let (Some(key), Some(id), Some(perms), Some(size), Some(nattch), Some(uid)) = (
        col("key"),
        col("shmid"),
        col("perms"),
        col("size"),
        col("nattch"),
        col("uid"),
    ) else {
        return out;
    };
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let get = |i: usize| fields.get(i).copied();
        let (Some(k), Some(i), Some(p), Some(s), Some(n), Some(u)) = (
            get(key).and_then(|v| v.parse::<i64>().ok()),
            get(id),
            get(perms).and_then(|v| u32::from_str_radix(v, 8).ok()),
            get(size),
            get(nattch),
            get(uid),
        ) else {
            continue;
        };
        let mut status = Vec::new();
        if p & SHM_DEST != 0 {
            status.push("dest");
        }
        if p & SHM_LOCKED != 0 {
            status.push("locked");
        }
        out.push_str(&format!(
            "0x{:08x} {:<10} {:<10} {:<10o} {:<10} {:<10} {:<12}\n",
            k as u32,
            i,
            user_name(u),
            p & 0o777,
            s,
            n,
            status.join(" ")
        ));
    }
    out.push('\n');
    out
}

/// The login name of uid `uid` from /etc/passwd, else the number.
fn user_name(uid: &str) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}
