//! mmap + touch one byte per page + munmap, in ns per cycle, for 4 KiB and
//! 64 KiB: the host's own calls, the threads home (with its default spin
//! budget and, for comparison, blocking at once), the memsrvd daemon (over
//! its shared-memory fast path and over the socket alone), and memsrv's
//! core alone (no transport), with ratios against the host measured in the
//! same run. Each figure is the median of many short runs, with the middle
//! half's spread, so a burst of other load on the machine moves it little.
//! Run with `cargo bench -p hosted --bench mmap`.

#[path = "mmap/daemon.rs"]
mod daemon;

use hosted::threads::{Arena, ArenaMemory, Process, ThreadsHome, Tuning};
use memsrv::{ClientId, Config, Credentials, MemoryServer};
use nommu::host::Connection;
use nommu::Client;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use protocol::{OffsetUnit, Reply, Request, PAGE_SIZE};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs per figure; the median is reported.
const RUNS: usize = 21;
const SIZES: [u64; 2] = [4096, 65536];
const RW: u32 = PROT_READ | PROT_WRITE;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

/// Cycles per run: a run lasts a few milliseconds.
fn iterations(len: u64) -> u32 {
    if len <= PAGE_SIZE {
        2_000
    } else {
        1_000
    }
}

/// ns per cycle over [`RUNS`] runs: the median and the middle half.
#[derive(Clone, Copy)]
struct Figure {
    median: f64,
    low: f64,
    high: f64,
}

/// Run `cycle` `n` times per run, [`RUNS`] runs, after a warm-up.
fn measure(n: u32, mut cycle: impl FnMut()) -> Figure {
    for _ in 0..n {
        cycle();
    }
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                cycle();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    Figure {
        median: runs[RUNS / 2],
        low: runs[RUNS / 4],
        high: runs[3 * RUNS / 4],
    }
}

/// Store one byte in every page of `[ptr, ptr+len)`.
fn touch(ptr: *mut u8, len: u64) {
    for offset in (0..len).step_by(PAGE_SIZE as usize) {
        // SAFETY: the caller passes a live, writable mapping of `len` bytes.
        unsafe { ptr.add(offset as usize).write_volatile(1) };
    }
}

/// The host kernel's own anonymous mmap.
fn host_cycle(len: u64) {
    let len = len as usize;
    // SAFETY: a fresh anonymous private mapping with no hint aliases nothing.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "host mmap failed");
    touch(ptr.cast(), len as u64);
    // SAFETY: unmapping exactly the mapping made above, no longer used.
    assert_eq!(unsafe { libc::munmap(ptr, len) }, 0);
}

/// One cycle through a threads-home process: the pointer memsrv returns is
/// dereferenced directly.
fn threads_cycle(process: &Process, len: u64) {
    let addr = process.client().mmap(0, len, RW, ANON, -1, 0).unwrap();
    touch(process.ptr(addr, len).expect("inside the arena"), len);
    process.munmap(addr, len).unwrap();
}

fn threads_home(tuning: Tuning) -> ThreadsHome {
    let config = Config {
        arena_size: 64 << 20,
        ..Config::default()
    };
    ThreadsHome::start_tuned(config, tuning).expect("start the threads home")
}

/// memsrv's core over a real arena, driven by `handle` with no encoding.
struct Core {
    server: MemoryServer<ArenaMemory>,
    arena: Arc<Arena>,
    client: ClientId,
}

impl Core {
    fn new() -> Self {
        let arena = Arc::new(Arena::new(64 << 20).unwrap());
        let config = Config {
            arena_base: arena.base(),
            arena_size: arena.size(),
            ..Config::default()
        };
        let mut server = MemoryServer::new(config, ArenaMemory(Arc::clone(&arena))).unwrap();
        let client = ClientId(1);
        let credentials = Credentials {
            pid: None,
            uid: 0,
            gid: 0,
        };
        server.connect(client, credentials);
        let hello = server.handle(client, Request::Hello { ticket: None });
        assert!(matches!(hello, Reply::Hello { .. }), "{hello:?}");
        Self {
            server,
            arena,
            client,
        }
    }

    /// mmap + munmap, no touch: the server's own cost.
    fn pair(&mut self, len: u64) {
        let mapped = self.server.handle(
            self.client,
            Request::Mmap {
                addr: 0,
                len,
                prot: RW,
                flags: ANON,
                fd: -1,
                offset: 0,
                unit: OffsetUnit::Bytes,
            },
        );
        let Reply::Mapped { addr } = mapped else {
            panic!("mmap: {mapped:?}")
        };
        let done = self
            .server
            .handle(self.client, Request::Munmap { addr, len });
        assert_eq!(black_box(done), Reply::Done);
    }

    /// The same with the page touches, like the other rows.
    fn cycle(&mut self, len: u64) {
        let mapped = self.server.handle(
            self.client,
            Request::Mmap {
                addr: 0,
                len,
                prot: RW,
                flags: ANON,
                fd: -1,
                offset: 0,
                unit: OffsetUnit::Bytes,
            },
        );
        let Reply::Mapped { addr } = mapped else {
            panic!("mmap: {mapped:?}")
        };
        touch(self.arena.ptr(addr, len).unwrap(), len);
        let done = self
            .server
            .handle(self.client, Request::Munmap { addr, len });
        assert_eq!(black_box(done), Reply::Done);
    }
}

/// One row: label, ns per cycle (median, middle half), ratio to the host.
fn row(label: &str, figure: Figure, host: Figure) {
    let Figure { median, low, high } = figure;
    println!(
        "  {label:<34} {median:>8.0} ns  [{low:>6.0} ..{high:>7.0}]  {:>5.2}x host",
        median / host.median
    );
}

/// One cycle through a memsrvd client: the arena is mapped at the same
/// address in this process, so the returned address is dereferenced.
fn daemon_cycle(client: &Client<Connection>, len: u64) {
    let addr = client.mmap(0, len, RW, ANON, -1, 0).unwrap();
    touch(std::ptr::with_exposed_provenance_mut(addr as usize), len);
    client.munmap(addr, len).unwrap();
}

/// The memsrvd rows. The daemon runs only while its rows are measured, so
/// its threads compete with no other row.
fn daemon_rows(len: u64, n: u32, host: Figure) {
    let Some(daemon) = daemon::Daemon::start() else {
        return;
    };
    if let Some(client) = daemon.connect(true) {
        let figure = measure(n, || daemon_cycle(&client, len));
        row("memsrvd, shared-memory fast path", figure, host);
    }
    if let Some(client) = daemon.connect(false) {
        let figure = measure(n, || daemon_cycle(&client, len));
        row("memsrvd, socket only", figure, host);
    }
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "mmap + touch one byte per page + munmap: median ns per cycle of {RUNS} runs \
         [middle half], {cores} cores"
    );
    let spinning = threads_home(Tuning::default());
    let blocking = threads_home(Tuning {
        client_spin: Duration::ZERO,
        server_spin: Duration::ZERO,
    });
    let spinner = spinning.spawn_process().unwrap();
    let blocker = blocking.spawn_process().unwrap();
    let mut core = Core::new();
    let spin_us = Tuning::default().client_spin.as_micros();
    for len in SIZES {
        let n = iterations(len);
        println!("{} KiB ({n} cycles per run)", len / 1024);
        let host = measure(n, || host_cycle(len));
        row("host mmap/munmap", host, host);
        let label = format!("threads home, spin {spin_us} us");
        row(&label, measure(n, || threads_cycle(&spinner, len)), host);
        let figure = measure(n, || threads_cycle(&blocker, len));
        row("threads home, blocking", figure, host);
        daemon_rows(len, n, host);
        row(
            "memsrv core, no transport",
            measure(n, || core.cycle(len)),
            host,
        );
        let pair = measure(n, || core.pair(len)).median;
        println!(
            "  {:<34} {pair:>8.0} ns  = {:.0} pairs/s (no touch)",
            "memsrv core mmap+munmap",
            1e9 / pair
        );
    }
    drop((spinner, blocker));
    spinning.check_invariants().unwrap();
    blocking.check_invariants().unwrap();
    file_rows::run();
}

/// File mappings through memsrvd: a 64 KiB read-only private mapping of a
/// romfs file (direct: the address where the image lies, no copy), of a
/// file on a copy-only filesystem over a host directory (a copy read
/// through the driver every time), and of the same host file handed over
/// by descriptor (the host-file driver), against the host kernel's own
/// mmap of that file. Each cycle is mmap + read one byte per page +
/// munmap; the file stays open.
mod file_rows {
    use super::{iterations, measure, row, RUNS};
    use nommu::host::{ConnectOptions, Connection};
    use nommu::Client;
    use protocol::linux::{MAP_PRIVATE, PROT_READ};
    use protocol::PAGE_SIZE;
    use std::io::{BufRead, BufReader};
    use std::os::fd::AsRawFd;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    const LEN: u64 = 64 << 10;
    /// Far from the other daemon rows' arena (this section's host-file row
    /// keeps the library's own connection, and its arena, to the end).
    const ARENA_BASE: &str = "0x310000000000";

    /// Read one byte in every page of `[addr, addr+len)`.
    fn touch_read(addr: u64, len: u64) -> u64 {
        let mut sum = 0u64;
        for offset in (0..len).step_by(PAGE_SIZE as usize) {
            let ptr: *const u8 = std::ptr::with_exposed_provenance((addr + offset) as usize);
            // SAFETY: the caller passes a live readable mapping of `len` bytes.
            sum += u64::from(unsafe { ptr.read_volatile() });
        }
        sum
    }

    struct Setup {
        child: Child,
        socket: PathBuf,
        dir: PathBuf,
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.socket);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A daemon with `/rom` (a genromfs image holding `f`) and `/data`
    /// (a host directory holding `f`); `None` with a note if it cannot be
    /// set up.
    fn setup() -> Option<Setup> {
        let dir = std::env::temp_dir().join(format!("nommu-bench-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (root, data) = (dir.join("rom"), dir.join("data"));
        std::fs::create_dir_all(&root).ok()?;
        std::fs::create_dir_all(&data).ok()?;
        let bytes: Vec<u8> = (0..LEN).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(root.join("f"), &bytes).ok()?;
        std::fs::write(data.join("f"), &bytes).ok()?;
        let image = dir.join("rom.img");
        let made = Command::new("genromfs")
            .arg("-f")
            .arg(&image)
            .arg("-d")
            .arg(&root)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            println!("  (file rows skipped: genromfs is not installed)");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        let socket = dir.join("memsrvd.sock");
        let mut child = Command::new(env!("CARGO_BIN_EXE_memsrvd"))
            .arg("--socket")
            .arg(&socket)
            .args(["--arena-base", ARENA_BASE, "--arena-size", "64M"])
            .arg("--mount")
            .arg(format!("/rom=romfs:{}", image.display()))
            .arg("--mount")
            .arg(format!("/data=hostdir:{}", data.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let setup = Setup { child, socket, dir };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.starts_with("memsrvd: ready") => Some(setup),
            other => {
                println!("  (file rows skipped: memsrvd not ready: {other:?})");
                None
            }
        }
    }

    /// mmap + touch + munmap of server file `fd` through `client`.
    fn server_cycle(client: &Client<Connection>, fd: i32) {
        let addr = client.mmap(0, LEN, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
        std::hint::black_box(touch_read(addr, LEN));
        client.munmap(addr, LEN).unwrap();
    }

    /// The host kernel's mmap of host file `fd`.
    fn host_cycle(fd: i32) {
        // SAFETY: a fresh private read-only mapping with no hint aliases
        // nothing; it is unmapped below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN as usize,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                fd,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        std::hint::black_box(touch_read(ptr as usize as u64, LEN));
        // SAFETY: the mapping made above, used no more.
        unsafe { libc::munmap(ptr, LEN as usize) };
    }

    /// The shim's C `mmap` of a host descriptor: handed to the daemon,
    /// mapped through its host-file driver, the server descriptor closed.
    fn host_fd_cycle(fd: i32) {
        let ptr = nommu::host::capi::nommu_mmap(
            std::ptr::null_mut(),
            LEN as usize,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd,
            0,
        );
        assert_ne!(
            ptr, !0usize as *mut libc::c_void,
            "nommu_mmap of a host file"
        );
        std::hint::black_box(touch_read(ptr as usize as u64, LEN));
        assert_eq!(nommu::host::capi::nommu_munmap(ptr, LEN as usize), 0);
    }

    pub fn run() {
        let n = iterations(LEN) / 4;
        println!(
            "file mappings, 64 KiB PROT_READ MAP_PRIVATE: mmap + read one byte per page + \
             munmap, median ns of {RUNS} runs of {n} cycles"
        );
        let Some(setup) = setup() else {
            return;
        };
        let host_file = std::fs::File::open(setup.dir.join("data").join("f")).unwrap();
        let host = measure(n, || host_cycle(host_file.as_raw_fd()));
        row("host mmap of the host file", host, host);
        let options = ConnectOptions {
            fast_path: true,
            ticket: None,
        };
        let Ok(client) = Connection::connect_with(&setup.socket, options) else {
            println!("  (file rows skipped: cannot connect)");
            return;
        };
        let rom = client.open("/rom/f", 0, 0).unwrap();
        let figure = measure(n, || server_cycle(&client, rom));
        row("memsrvd romfs (direct)", figure, host);
        let data = client.open("/data/f", 0, 0).unwrap();
        let figure = measure(n, || server_cycle(&client, data));
        row("memsrvd hostdir (copy)", figure, host);
        // The C ABI's own connection, found through NOMMU_SOCKET.
        std::env::set_var("NOMMU_SOCKET", &setup.socket);
        let figure = measure(n, || host_fd_cycle(host_file.as_raw_fd()));
        row("memsrvd host fd (SCM_RIGHTS, copy)", figure, host);
    }
}
