//! `nommu-ctl`: read the memory server's `/proc` views from the shell.

use nommu::host::Connection;
use protocol::ProcView;
use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
nommu-ctl - inspect a running memsrvd

Usage: nommu-ctl [--socket PATH] COMMAND

Commands:
  maps [PID]   /proc/maps (every region), or /proc/PID/maps of one process
  meminfo      /proc/meminfo
  help         print this help

Options:
  --socket PATH  the daemon's socket (default: $NOMMU_SOCKET, else /tmp/nommu.sock)
  -h, --help     print this help

nommu-ctl connects as a process of its own (it maps the arena at the
daemon's address, so that range must be free here).
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nommu-ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut socket: Option<PathBuf> = None;
    let mut rest = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" | "help" => {
                print!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--socket" => socket = Some(args.next().ok_or("--socket needs a path")?.into()),
            s if s.starts_with("--socket=") => socket = Some(s["--socket=".len()..].into()),
            _ => rest.push(arg),
        }
    }
    let view = match rest.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["maps"] => ProcView::GlobalMaps,
        ["maps", pid] => ProcView::ProcessMaps {
            pid: pid.parse().map_err(|_| format!("bad pid {pid:?}"))?,
        },
        ["meminfo"] => ProcView::Meminfo,
        [] => {
            eprint!("{HELP}");
            return Ok(ExitCode::from(2));
        }
        _ => return Err(format!("unknown command {:?} (try --help)", rest.join(" "))),
    };
    let path = socket.unwrap_or_else(Connection::default_path);
    let client = Connection::connect(&path).map_err(|e| format!("{}: {e}", path.display()))?;
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
    print!("{}", String::from_utf8_lossy(&text));
    Ok(ExitCode::SUCCESS)
}
