//! Rows for real call patterns rather than tight loops, each against the
//! host's own calls in the same run:
//!
//! * spaced calls: 4 KiB mmap + touch + munmap with 200 µs and 2 ms of
//!   computation between cycles, timing only the calls (a sleeping
//!   daemon thread's wake-up shows here, where a tight loop hides it);
//! * bulk data: 4 MiB written then read back in 64 KiB chunks, a server
//!   ramfs file against a host tmpfs file;
//! * more processes than cores: 8 processes at once, each running 4 KiB
//!   mmap + touch + munmap cycles, as aggregate cycles per second.
//!
//! The futex ping-pong between two processes is `ipc_rows`' (mmap.rs).

use super::daemon::Daemon;
use super::{host_cycle, row, touch, Figure, ANON, RW};
use nommu::transport::DaemonConnection;
use nommu::Client;
use protocol::linux::{O_CREAT, O_RDWR, O_TRUNC};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PAGE: u64 = 4096;
/// The environment variable that turns the bench into one of the
/// concurrent processes: `host` or `daemon:<socket>`.
const CHILD: &str = "NOMMU_BENCH_CYCLER";
/// Processes in the concurrent row (the machine has 2 cores).
const PROCESSES: usize = 8;
/// Cycles each concurrent process runs.
const CHILD_CYCLES: u32 = 5_000;
const BULK: usize = 4 << 20;
const CHUNK: usize = 64 << 10;
/// The large requests' size: several bulk windows' worth.
const BIG_CHUNK: usize = 1 << 20;

/// The figure of individually timed samples (ns): median and middle half.
fn figure_of(mut samples: Vec<f64>) -> Figure {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    Figure {
        median: samples[n / 2],
        low: samples[n / 4],
        high: samples[3 * n / 4],
    }
}

/// Compute (no sleep, no system call) for `gap`: the process stays on its
/// CPU the way a program working between calls does.
fn compute(gap: Duration) {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < gap {
        for _ in 0..64 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// `cycles` calls of `cycle`, `gap` of computation before each; only the
/// calls are timed.
fn spaced(gap: Duration, cycles: u32, mut cycle: impl FnMut()) -> Figure {
    let samples = (0..cycles)
        .map(|_| {
            compute(gap);
            let start = Instant::now();
            cycle();
            start.elapsed().as_nanos() as f64
        })
        .collect();
    figure_of(samples)
}

fn daemon_cycle(client: &Client<DaemonConnection>) {
    let addr = client.mmap(0, PAGE, RW, ANON, -1, 0).unwrap();
    touch(std::ptr::with_exposed_provenance_mut(addr as usize), PAGE);
    client.munmap(addr, PAGE).unwrap();
}

fn spaced_rows(daemon: &Daemon) {
    let Some(client) = daemon.connect(true) else {
        return;
    };
    println!("4 KiB mmap + touch + munmap, calls apart (only the calls timed; per call)");
    for (gap, cycles) in [
        (Duration::from_micros(200), 1_000),
        (Duration::from_millis(2), 200),
    ] {
        let us = gap.as_micros();
        let host = spaced(gap, cycles, || host_cycle(PAGE));
        row(&format!("host, {us} us apart"), host, host);
        let figure = spaced(gap, cycles, || daemon_cycle(&client));
        row(&format!("memsrvd, {us} us apart"), figure, host);
    }
}

/// Write `BULK` bytes in `CHUNK` pieces from `data` (`CHUNK` bytes), then
/// read them back into `back` and check one byte per chunk.
fn bulk(
    data: &mut [u8],
    back: &mut [u8],
    mut write_at: impl FnMut(&[u8], u64) -> usize,
    mut read_at: impl FnMut(&mut [u8], u64) -> usize,
) {
    let chunk = data.len();
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    for offset in (0..BULK).step_by(chunk) {
        assert_eq!(write_at(data, offset as u64), chunk);
    }
    for offset in (0..BULK).step_by(chunk) {
        back[chunk - 1] = 0;
        assert_eq!(read_at(back, offset as u64), chunk);
        assert_eq!(back[chunk - 1], data[chunk - 1]);
    }
}

/// Runs of [`bulk`] in the bulk rows.
const BULK_RUNS: usize = 9;

/// The median of [`BULK_RUNS`] timed runs of `run` (after one untimed).
fn timed(mut run: impl FnMut()) -> Figure {
    run();
    let samples = (0..BULK_RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_nanos() as f64
        })
        .collect();
    figure_of(samples)
}

/// [`bulk`] through a fresh host file at `path` (removed after), with
/// buffers of `chunk` bytes; `None` if it cannot be made.
fn host_bulk(path: &std::path::Path, chunk: usize) -> Option<Figure> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .ok()?;
    let (mut data, mut back) = (vec![0u8; chunk], vec![0u8; chunk]);
    let figure = timed(|| {
        bulk(
            &mut data,
            &mut back,
            |d, o| file.write_at(d, o).unwrap(),
            |b, o| file.read_at(b, o).unwrap(),
        )
    });
    let _ = std::fs::remove_file(path);
    Some(figure)
}

/// [`bulk`] through server file `fd` with the buffers given.
fn server_bulk(
    client: &Client<DaemonConnection>,
    fd: i32,
    data: &mut [u8],
    back: &mut [u8],
) -> Figure {
    timed(|| {
        bulk(
            data,
            back,
            |d, o| client.pwrite(fd, d, o).unwrap(),
            |b, o| client.pread(fd, b, o).unwrap(),
        )
    })
}

fn bulk_rows(daemon: &Daemon) {
    println!("4 MiB written then read in 64 KiB chunks (median of {BULK_RUNS} runs, per 4 MiB)");
    let name = format!("nommu-bench-bulk-{}", std::process::id());
    let shm = std::path::Path::new("/dev/shm");
    let host_path = if shm.is_dir() {
        shm.join(&name)
    } else {
        std::env::temp_dir().join(&name)
    };
    let Some(host) = host_bulk(&host_path, CHUNK) else {
        println!(
            "  (bulk rows skipped: no host file at {})",
            host_path.display()
        );
        return;
    };
    row("host tmpfs file", host, host);
    let Some(client) = daemon.connect(true) else {
        return;
    };
    let fd = match client.open("/dev/shm/bulk", O_CREAT | O_RDWR | O_TRUNC, 0o600) {
        Ok(fd) => fd,
        Err(e) => {
            println!("  (memsrvd bulk row skipped: open: {e})");
            return;
        }
    };
    // Buffers in the arena, as a program's heap is under libnommu's
    // malloc: lent to the server by address, one round trip per chunk.
    let two = (2 * CHUNK) as u64;
    let Ok(buffers) = client.mmap(0, two, RW, ANON, -1, 0) else {
        println!("  (memsrvd bulk rows skipped: no arena buffers)");
        return;
    };
    // SAFETY: a fresh private mapping of two chunks, this row's alone
    // until it is unmapped below.
    let (data, back) = unsafe {
        std::slice::from_raw_parts_mut(
            std::ptr::with_exposed_provenance_mut(buffers as usize),
            2 * CHUNK,
        )
    }
    .split_at_mut(CHUNK);
    let figure = server_bulk(&client, fd, data, back);
    row("memsrvd ramfs file (arena buffers)", figure, host);
    let _ = client.munmap(buffers, two);
    // Buffers outside the arena go through the connection's bulk window.
    let (mut data, mut back) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let figure = server_bulk(&client, fd, &mut data, &mut back);
    row("memsrvd ramfs file (bulk window)", figure, host);
    // Requests larger than the window: several window steps per call.
    println!("the same in 1 MiB requests");
    if let Some(host) = host_bulk(&host_path, BIG_CHUNK) {
        row("host tmpfs file", host, host);
        let (mut data, mut back) = (vec![0u8; BIG_CHUNK], vec![0u8; BIG_CHUNK]);
        let figure = server_bulk(&client, fd, &mut data, &mut back);
        row("memsrvd ramfs file (bulk window)", figure, host);
    }
    let _ = client.close(fd);
    let _ = client.unlink("/dev/shm/bulk");
}

/// The concurrent side, in a re-executed copy of the bench: say `ready`,
/// wait for one byte on stdin, run the cycles. `true` if this process was
/// one.
pub fn child_mode() -> bool {
    let Ok(kind) = std::env::var(CHILD) else {
        return false;
    };
    let client = match kind.strip_prefix("daemon:") {
        Some(socket) => match DaemonConnection::connect(socket) {
            Ok(client) => Some(client),
            Err(_) => return true,
        },
        None => None,
    };
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut go = [0u8; 1];
    if std::io::stdin().read_exact(&mut go).is_err() {
        return true;
    }
    for _ in 0..CHILD_CYCLES {
        match &client {
            Some(client) => daemon_cycle(client),
            None => host_cycle(PAGE),
        }
    }
    true
}

/// Aggregate cycles per second of [`PROCESSES`] processes started
/// together (median of three runs); `None` if they cannot be run.
fn concurrent(kind: &str) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let mut rates: Vec<f64> = Vec::new();
    for _ in 0..3 {
        let mut children = Vec::new();
        for _ in 0..PROCESSES {
            let mut child = Command::new(&exe)
                .env(CHILD, kind)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .ok()?;
            let mut line = String::new();
            BufReader::new(child.stdout.take()?)
                .read_line(&mut line)
                .ok()?;
            if line.trim() != "ready" {
                let _ = child.kill();
                return None;
            }
            children.push(child);
        }
        let start = Instant::now();
        for child in &mut children {
            child.stdin.take()?.write_all(b"g").ok()?;
        }
        for mut child in children {
            if !child.wait().ok()?.success() {
                return None;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        rates.push(f64::from(CHILD_CYCLES) * PROCESSES as f64 / elapsed);
    }
    rates.sort_by(f64::total_cmp);
    Some(rates[1])
}

fn concurrent_rows(daemon: &Daemon) {
    println!(
        "{PROCESSES} processes at once, {CHILD_CYCLES} 4 KiB mmap + touch + munmap each \
         (aggregate, median of 3 runs)"
    );
    let Some(host) = concurrent("host") else {
        println!("  (concurrent rows skipped: cannot run the processes)");
        return;
    };
    println!("  {:<34} {host:>8.0} cycles/s", "host");
    let kind = format!("daemon:{}", daemon.socket().display());
    match concurrent(&kind) {
        Some(rate) => println!(
            "  {:<34} {rate:>8.0} cycles/s  {:>5.2}x host throughput",
            "memsrvd",
            rate / host
        ),
        None => println!("  (memsrvd concurrent row skipped: a process failed)"),
    }
}

/// The rows `wanted` names (`spaced`, `bulk`, `concurrent`).
pub fn run(wanted: impl Fn(&str) -> bool) {
    let Some(daemon) = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]) else {
        return;
    };
    if wanted("spaced") {
        spaced_rows(&daemon);
    }
    if wanted("bulk") {
        bulk_rows(&daemon);
    }
    if wanted("concurrent") {
        concurrent_rows(&daemon);
    }
}
