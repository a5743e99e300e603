//! `nommu-driver`: one backing device served by a host process of its own
//! (see `--help`).

use clap::{CommandFactory, FromArgMatches, Parser};
use hosted::daemon::driver::SocketDriver;
use hosted::daemon::mounts::{self, ArenaRange};
use hosted::daemon::options::{self, MountSpec};
use nommu::sys::socket::SeqPacket;
use nommu::transport::DaemonConnection;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// `nommu-driver`'s arguments; `--help` is generated from them.
#[derive(Parser, Debug)]
#[command(
    name = "nommu-driver",
    version,
    about = "nommu-driver - serve one backing device to a running memsrvd",
    long_about = "nommu-driver - serve one backing device to a running memsrvd\n\n\
        Connects to memsrvd as a process of its own (mapping the arena at the \
        daemon's address), registers the device at POINT and answers the memory \
        server's requests about it until the daemon goes away or the process is \
        stopped; then memsrv fails whatever waited for it with EIO and the mount is \
        free again."
)]
struct Args {
    /// The daemon's socket (default: $NOMMU_SOCKET, else /tmp/nommu.sock)
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The device to serve, as for memsrvd --mount; the kinds are listed below
    #[arg(long, value_name = "POINT=KIND[:ARG]", value_parser = MountSpec::parse)]
    mount: MountSpec,
}

/// What `--help` ends with.
const AFTER_HELP: &str = "\
Once registered it prints one line to standard output:
  nommu-driver: serving POINT (driver ID)";

fn main() -> ExitCode {
    let command =
        Args::command().after_help(format!("{}\n\n{AFTER_HELP}", options::mount_kinds_help()));
    // `--help`, `--version` and usage errors print and exit (0 or 2) here.
    let args = Args::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nommu-driver: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    Args {
        socket,
        mount: spec,
    }: Args,
) -> Result<(), String> {
    let path = socket.unwrap_or_else(DaemonConnection::default_path);
    let socket = SeqPacket::connect(path.as_os_str().as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let link = SocketDriver::hello(socket, None).map_err(|e| e.to_string())?;
    let (base, size) = link.arena();
    let mut device = mounts::build(&spec, 0, ArenaRange { base, size })?;
    let point = spec.point.clone();
    let mut failed = None;
    let served = link.serve(device.as_mut(), |started| match started {
        Ok(driver) => {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "nommu-driver: serving {point} (driver {driver})");
            let _ = out.flush();
        }
        Err(e) => failed = Some(e),
    });
    if let Some(e) = failed {
        return Err(format!("{}: {e}", spec.point));
    }
    served.map_err(|e| e.to_string())
}
