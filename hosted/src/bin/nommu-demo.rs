//! `nommu-demo`: start memsrvd, map memory from several host processes, and
//! show the system as a no-MMU kernel would: `/proc/maps`, each process's
//! `/proc/<pid>/maps`, and `/proc/meminfo` before and after they exit.
//!
//! One binary plays every part (re-executed with `--serve` as the daemon and
//! `--client N` as a client), so `cargo run --bin nommu-demo` is enough.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use clap::{Parser, Subcommand};
use hosted::daemon::{self, options::DaemonArgs};
use nommu::transport::DaemonConnection;
use nommu::{Client, Errno};
use protocol::linux::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
use protocol::ProcView;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const PAGE: u64 = 4096;

/// `nommu-demo`'s arguments. The parts it plays when it re-executes itself
/// are hidden subcommands spelt as flags.
#[derive(Parser, Debug)]
#[command(
    name = "nommu-demo",
    version,
    about = "nommu-demo - start memsrvd, map memory from three processes, print /proc"
)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// The daemon, with memsrvd's options
    #[command(long_flag = "serve", hide = true)]
    Serve(DaemonArgs),
    /// Client N of the daemon on SOCKET
    #[command(long_flag = "client", hide = true)]
    Client { n: u64, socket: String },
}

fn main() -> ExitCode {
    hosted::cli::exit_quietly_on_closed_stdout();
    // `--help`, `--version` and usage errors print and exit (0 or 2) here.
    let result = match Args::parse().role {
        Some(Role::Serve(args)) => args.into_options().and_then(|opts| daemon::run(&opts)),
        Some(Role::Client { n, socket }) => client(n, &socket),
        None => orchestrate(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nommu-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_proc<T: nommu::Transport>(client: &Client<T>, view: ProcView) -> Result<String, Errno> {
    let mut buf = vec![0u8; 64 << 10];
    let total = client.read_proc(view, &mut buf)?;
    buf.truncate(total.min(buf.len()));
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A client process: map a few things, write into them, report, and hold
/// the mappings until the orchestrator closes our stdin.
fn client(n: u64, socket: &str) -> Result<(), String> {
    let c = DaemonConnection::connect(socket).map_err(|e| format!("connect: {e:?}"))?;
    let pid = c.transport().welcome().pid;
    let rw = PROT_READ | PROT_WRITE;
    let anon = MAP_PRIVATE | MAP_ANONYMOUS;
    let err = |what: &str, e: Errno| format!("{what}: {e}");

    // 1 page, then 5 pages (a block of 8, trimmed back to 5), then 16.
    let small = c
        .mmap(0, PAGE, rw, anon, -1, 0)
        .map_err(|e| err("mmap", e))?;
    let five = c
        .mmap(0, 5 * PAGE, rw, anon, -1, 0)
        .map_err(|e| err("mmap", e))?;
    let big = c
        .mmap(0, 16 * PAGE, rw, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        .map_err(|e| err("mmap", e))?;
    // Punch a hole in the middle of the 5-page mapping: it splits in two.
    c.munmap(five + 2 * PAGE, PAGE)
        .map_err(|e| err("munmap", e))?;
    let refused = c.mmap(0x1000_0000, PAGE, rw, anon | MAP_FIXED, -1, 0);

    let message = format!("hello from process {n} (pid {pid})\0");
    // SAFETY: `small` is a fresh one-page read/write mapping in the arena,
    // which this process has mapped at that very address; the message is
    // shorter than a page.
    unsafe { std::ptr::copy_nonoverlapping(message.as_ptr(), small as *mut u8, message.len()) };

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "client {n}: pid {pid}");
    let _ = writeln!(
        out,
        "  mmap 1 page             -> {small:#x}, wrote {:?}",
        message.trim_end_matches('\0')
    );
    let _ = writeln!(
        out,
        "  mmap 5 pages            -> {five:#x}, then munmap of its third page"
    );
    let _ = writeln!(out, "  mmap 16 pages (SHARED)  -> {big:#x}");
    let _ = writeln!(
        out,
        "  mmap with MAP_FIXED     -> {:?} (no fixed addresses without an MMU)",
        refused.err()
    );
    let _ = writeln!(out, "  /proc/self/maps:");
    for line in read_proc(&c, ProcView::SelfMaps)
        .map_err(|e| err("maps", e))?
        .lines()
    {
        let _ = writeln!(out, "    {line}");
    }
    let _ = writeln!(out, "ready {small:#x}");
    drop(out);
    // Hold everything until told to go; exit releases it all.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn connect_when_ready(socket: &str) -> Result<Client<DaemonConnection>, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match DaemonConnection::connect(socket) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(format!("daemon not ready: {e:?}")),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn orchestrate() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let socket = std::env::temp_dir().join(format!("nommu-demo-{}.sock", std::process::id()));
    let socket = socket.to_string_lossy().into_owned();
    println!("== starting memsrvd on {socket} (16 MiB arena)");
    let daemon = Reaped(
        Command::new(&exe)
            .args(["--serve", "--socket", &socket, "--arena-size", "16M"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the daemon: {e}"))?,
    );
    let ctl = connect_when_ready(&socket)?;

    let mut clients = Vec::new();
    let mut first_message_at = None;
    for n in 1..=3u64 {
        let mut child = Reaped(
            Command::new(&exe)
                .args(["--client", &n.to_string(), &socket])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start client {n}: {e}"))?,
        );
        let stdout = child.0.stdout.take().ok_or("no client stdout")?;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(addr) = line.strip_prefix("ready ") {
                first_message_at
                    .get_or_insert(u64::from_str_radix(addr.trim_start_matches("0x"), 16).ok());
                break;
            }
            println!("{line}");
        }
        clients.push(child);
    }

    if let Some(Some(addr)) = first_message_at {
        // One address space: client 1's pointer means the same bytes here.
        // SAFETY: `addr` lies in the arena, which `ctl` mapped at the same
        // address in this process; client 1 still holds the mapping and
        // wrote a NUL-terminated string shorter than a page there.
        let text = unsafe { std::ffi::CStr::from_ptr(addr as *const std::ffi::c_char) };
        println!(
            "== the orchestrator reads client 1's address {addr:#x}: {:?}",
            text.to_string_lossy()
        );
    }
    println!("== /proc/maps (every region in the system)");
    print!(
        "{}",
        read_proc(&ctl, ProcView::GlobalMaps).map_err(|e| e.to_string())?
    );
    println!("== /proc/meminfo while the clients hold their mappings");
    print!(
        "{}",
        read_proc(&ctl, ProcView::Meminfo).map_err(|e| e.to_string())?
    );

    for mut child in clients.drain(..) {
        drop(child.0.stdin.take());
        let _ = child.0.wait();
    }
    println!("== /proc/meminfo after the clients exited (MemFree = MemTotal, MmapCopy 0)");
    let meminfo = read_proc(&ctl, ProcView::Meminfo).map_err(|e| e.to_string())?;
    for line in meminfo
        .lines()
        .filter(|l| l.starts_with("Mem") || l.starts_with("MmapCopy"))
    {
        println!("{line}");
    }
    drop(ctl);
    drop(daemon);
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
