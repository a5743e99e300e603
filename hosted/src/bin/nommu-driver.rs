//! `nommu-driver`: one backing device served by a host process of its own
//! (see `--help`).

use hosted::daemon::driver::SocketDriver;
use hosted::daemon::mounts::{self, ArenaRange};
use hosted::daemon::options::MountSpec;
use nommu::host::socket::SeqPacket;
use nommu::host::Connection;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
nommu-driver - serve one backing device to a running memsrvd

Usage: nommu-driver [--socket PATH] --mount POINT=KIND[:ARG]

Connects to memsrvd as a process of its own (mapping the arena at the
daemon's address), registers the device at POINT and answers the memory
server's requests about it until the daemon goes away or the process is
stopped; then memsrv fails whatever waited for it with EIO and the mount is
free again. KIND[:ARG] is as for memsrvd --mount:
  romfs:IMAGE, ramfs, tmpfs, hostdir:DIR, fbdev:WxH, mtd:IMAGE[,rom|ram|nor],
  ramdisk:SIZE[,direct], devzero, devmem, pipe, socket

Options:
  --socket PATH            the daemon's socket (default: $NOMMU_SOCKET, else
                           /tmp/nommu.sock)
  --mount POINT=KIND[:ARG] the device to serve
  -h, --help               print this help

Once registered it prints one line to standard output:
  nommu-driver: serving POINT (driver ID)
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nommu-driver: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut socket: Option<PathBuf> = None;
    let mut mount: Option<MountSpec> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--socket" => socket = Some(value("a path")?.into()),
            "--mount" => {
                if mount.is_some() {
                    return Err("one --mount per driver process".into());
                }
                mount = Some(MountSpec::parse(&value("POINT=KIND[:ARG]")?)?);
            }
            other => {
                eprintln!("nommu-driver: unknown argument {other:?}\n\n{HELP}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let Some(spec) = mount else {
        eprint!("nommu-driver: --mount is needed\n\n{HELP}");
        return Ok(ExitCode::from(2));
    };
    let path = socket.unwrap_or_else(Connection::default_path);
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
    served.map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
