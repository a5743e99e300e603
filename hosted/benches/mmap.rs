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
#[path = "mmap/patterns.rs"]
mod patterns;

use hosted::threads::{Arena, ArenaMemory, Process, ThreadsHome, Tuning};
use memsrv::{Answer, ClientId, Config, Credentials, MemoryServer};
use nommu::transport::DaemonConnection;
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
        assert!(
            matches!(hello, Answer::Now(Reply::Hello { .. })),
            "{hello:?}"
        );
        Self {
            server,
            arena,
            client,
        }
    }

    /// mmap + munmap, no touch: the server's own cost.
    fn pair(&mut self, len: u64) {
        self.map_unmap(len, false);
    }

    /// The same with the page touches, like the other rows.
    fn cycle(&mut self, len: u64) {
        self.map_unmap(len, true);
    }

    fn map_unmap(&mut self, len: u64, touch_pages: bool) {
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
        let Answer::Now(Reply::Mapped { addr }) = mapped else {
            panic!("mmap: {mapped:?}")
        };
        if touch_pages {
            touch(self.arena.ptr(addr, len).unwrap(), len);
        }
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
fn daemon_cycle(client: &Client<DaemonConnection>, len: u64) {
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
    if ipc_rows::pong_mode() || patterns::child_mode() {
        return;
    }
    // `NOMMU_BENCH_ONLY=files,patterns` runs only those sections (all by default).
    let only = std::env::var("NOMMU_BENCH_ONLY").ok();
    let wanted = |section: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|s| s == section))
    };
    if !wanted("mmap") {
        if wanted("files") {
            file_rows::run();
        }
        if wanted("ipc") {
            ipc_rows::run();
        }
        patterns::run(wanted);
        return;
    }
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
    ipc_rows::run();
    patterns::run(|_| true);
}

/// File mappings through memsrvd: a 64 KiB read-only private mapping of a
/// romfs file (direct: the address where the image lies, no copy), of a
/// file on a copy-only filesystem over a host directory (a copy read
/// through the driver every time), and of the same host file handed over
/// by descriptor (the host-file driver), against the host kernel's own
/// mmap of that file. Each cycle is mmap + read one byte per page +
/// munmap; the file stays open.
mod file_rows {
    use super::daemon::Daemon;
    use super::{iterations, measure, row, RUNS};
    use nommu::transport::DaemonConnection;
    use nommu::Client;
    use protocol::linux::{MAP_PRIVATE, PROT_READ};
    use protocol::PAGE_SIZE;
    use std::os::fd::AsRawFd;
    use std::path::PathBuf;
    use std::process::Command;

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

    /// The daemon, then its files' directory: fields drop in this order.
    struct Setup {
        daemon: Daemon,
        dir: Scratch,
    }

    /// A directory removed on drop.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
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
        let dir = Scratch(dir);
        let mounts = [
            "--mount".to_string(),
            format!("/rom=romfs:{}", image.display()),
            "--mount".to_string(),
            format!("/data=hostdir:{}", data.display()),
        ];
        match Daemon::start_at(dir.0.join("memsrvd.sock"), ARENA_BASE, &mounts) {
            Ok(daemon) => Some(Setup { daemon, dir }),
            Err(e) => {
                println!("  (file rows skipped: memsrvd {e})");
                None
            }
        }
    }

    /// mmap + touch + munmap of server file `fd` through `client`.
    fn server_cycle(client: &Client<DaemonConnection>, fd: i32) {
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

    /// The shim's C `mmap` of a host descriptor: handed to the daemon on
    /// the first cycle, then the server descriptor kept from it (the file
    /// unchanged) mapped through the daemon's host-file driver.
    fn host_fd_cycle(fd: i32) {
        let ptr = nommu::capi::host::mmap::nommu_mmap(
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
        assert_eq!(nommu::capi::host::mmap::nommu_munmap(ptr, LEN as usize), 0);
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
        let host_file = std::fs::File::open(setup.dir.0.join("data").join("f")).unwrap();
        let host = measure(n, || host_cycle(host_file.as_raw_fd()));
        row("host mmap of the host file", host, host);
        let Some(client) = setup.daemon.connect(true) else {
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
        std::env::set_var("NOMMU_SOCKET", &setup.daemon.socket);
        let figure = measure(n, || host_fd_cycle(host_file.as_raw_fd()));
        row("memsrvd host fd (copy)", figure, host);
    }
}

/// Shared memory and futexes through memsrvd against the host's own
/// calls: a SysV shmget + shmat + shmdt + IPC_RMID cycle, a POSIX
/// shm_open + ftruncate + mmap + munmap + close + shm_unlink cycle (the
/// server's ramfs at /dev/shm; the host's tmpfs /dev/shm), and a futex
/// ping-pong round trip between two processes over a shared word (memsrvd:
/// this process and a re-executed copy of it attached to one SysV segment;
/// host: this process and a forked child attached to one host SysV
/// segment).
mod ipc_rows {
    use super::daemon::Daemon;
    use super::{measure, row, RUNS};
    use nommu::transport::DaemonConnection;
    use nommu::Client;
    use protocol::linux::{
        FUTEX_WAIT, FUTEX_WAKE, IPC_CREAT, IPC_PRIVATE, MAP_SHARED, O_CREAT, O_RDWR, PROT_READ,
        PROT_WRITE,
    };
    use protocol::Errno;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};

    const ARENA_BASE: &str = "0x320000000000";
    /// The environment variable that turns the bench into the pong side.
    const PONG: &str = "NOMMU_BENCH_PONG";
    /// The word's value that ends the pong side.
    const STOP: u32 = u32::MAX;
    const ROUNDS: u32 = 2_000;

    fn setup() -> Option<Daemon> {
        let socket =
            std::env::temp_dir().join(format!("nommu-bench-ipc-{}.sock", std::process::id()));
        let mounts = ["--mount".to_string(), "/dev/shm=ramfs".to_string()];
        Daemon::start_at(socket, ARENA_BASE, &mounts)
            .map_err(|e| println!("  (ipc rows skipped: memsrvd {e})"))
            .ok()
    }

    fn word(addr: u64) -> &'static AtomicU32 {
        let ptr: *const AtomicU32 = std::ptr::with_exposed_provenance(addr as usize);
        // SAFETY: `addr` is a live, 4-byte aligned shared mapping (a SysV
        // segment in the arena, or a host shared mapping) kept for the
        // rest of the process; other processes change it only atomically.
        unsafe { &*ptr }
    }

    // ---- memsrvd ----

    fn sysv_cycle(c: &Client<DaemonConnection>) {
        let id = c.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600).unwrap();
        let at = c.shmat(id, 0, 0).unwrap();
        c.shmdt(at).unwrap();
        c.shm_remove(id).unwrap();
    }

    fn posix_cycle(c: &Client<DaemonConnection>) {
        let fd = c.open("/dev/shm/bench", O_CREAT | O_RDWR, 0o600).unwrap();
        c.ftruncate(fd, 4096).unwrap();
        let at = c
            .mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            .unwrap();
        c.munmap(at, 4096).unwrap();
        c.close(fd).unwrap();
        c.unlink("/dev/shm/bench").unwrap();
    }

    fn server_wait(c: &Client<DaemonConnection>, addr: u64, while_value: u32) {
        while word(addr).load(Ordering::Acquire) == while_value {
            match c.futex(addr, FUTEX_WAIT, while_value, None, 0, 0, 0) {
                Ok(_) | Err(Errno::EAGAIN) => {}
                Err(e) => panic!("futex wait: {e}"),
            }
        }
    }

    fn server_set_and_wake(c: &Client<DaemonConnection>, addr: u64, value: u32) {
        word(addr).store(value, Ordering::Release);
        c.futex(addr, FUTEX_WAKE, 1, None, 0, 0, 0).unwrap();
    }

    /// The pong side, in a re-executed copy of the bench: answer every odd
    /// value v with v + 1 until [`STOP`]. `true` if this process was one.
    pub fn pong_mode() -> bool {
        let Ok(spec) = std::env::var(PONG) else {
            return false;
        };
        let mut parts = spec.splitn(3, ':');
        let (Some(kind), Some(a), Some(b)) = (parts.next(), parts.next(), parts.next()) else {
            return true;
        };
        if kind == "server" {
            let Ok(c) = DaemonConnection::connect(b) else {
                return true;
            };
            let Ok(id) = a.parse::<i32>() else {
                return true;
            };
            let Ok(addr) = c.shmat(id, 0, 0) else {
                return true;
            };
            let mut last = 0;
            loop {
                server_wait(&c, addr, last);
                let v = word(addr).load(Ordering::Acquire);
                if v == STOP {
                    break;
                }
                last = v + 1;
                server_set_and_wake(&c, addr, last);
            }
            let _ = c.shmdt(addr);
        }
        true
    }

    fn server_ping_pong(setup: &Daemon, c: &Client<DaemonConnection>) -> Option<super::Figure> {
        let id = c.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600).ok()?;
        let addr = c.shmat(id, 0, 0).ok()?;
        let _ = c.shm_remove(id);
        let exe = std::env::current_exe().ok()?;
        let mut pong = Command::new(exe)
            .env(PONG, format!("server:{id}:{}", setup.socket.display()))
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let mut value = 0u32;
        let figure = measure(ROUNDS, || {
            value += 1;
            server_set_and_wake(c, addr, value);
            server_wait(c, addr, value);
            value += 1;
        });
        server_set_and_wake(c, addr, STOP);
        let _ = pong.wait();
        let _ = c.shmdt(addr);
        Some(figure)
    }

    // ---- host ----

    fn host_sysv_cycle() {
        // SAFETY: plain SysV calls on a private segment this cycle creates,
        // attaches, detaches and removes; nothing else refers to it.
        unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600);
            assert!(id >= 0);
            let at = libc::shmat(id, std::ptr::null(), 0);
            assert_ne!(at as isize, -1);
            libc::shmdt(at);
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }

    fn host_posix_cycle() {
        let name = c"/nommu-bench-host";
        // SAFETY: a fresh shm object mapped, unmapped, closed and unlinked
        // within the cycle; the mapping aliases nothing.
        unsafe {
            let fd = libc::shm_open(name.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600);
            assert!(fd >= 0);
            libc::ftruncate(fd, 4096);
            let p = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            libc::munmap(p, 4096);
            libc::close(fd);
            libc::shm_unlink(name.as_ptr());
        }
    }

    fn host_futex(w: &AtomicU32, op: i32, val: u32) {
        // SAFETY: the word is a live shared mapping; no timeout is passed.
        unsafe { libc::syscall(libc::SYS_futex, w.as_ptr(), op, val, 0usize, 0usize, 0u32) };
    }

    fn host_wait(w: &AtomicU32, while_value: u32) {
        while w.load(Ordering::Acquire) == while_value {
            host_futex(w, libc::FUTEX_WAIT, while_value);
        }
    }

    fn host_set_and_wake(w: &AtomicU32, value: u32) {
        w.store(value, Ordering::Release);
        host_futex(w, libc::FUTEX_WAKE, 1);
    }

    fn host_ping_pong() -> Option<super::Figure> {
        // SAFETY: a fresh private host SysV segment, attached here (the
        // forked child inherits the attachment) and marked for removal at
        // once, so it goes when both detach.
        let page = unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600);
            if id < 0 {
                return None;
            }
            let at = libc::shmat(id, std::ptr::null(), 0);
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            at
        };
        if page as isize == -1 {
            return None;
        }
        let w = word(page as usize as u64);
        // SAFETY: the child only runs atomics and raw futex syscalls on the
        // shared page, then _exit: nothing that needs the parent's other
        // threads or locks.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut last = 0;
            loop {
                host_wait(w, last);
                let v = w.load(Ordering::Acquire);
                if v == STOP {
                    // SAFETY: ends the child at once, running nothing else.
                    unsafe { libc::_exit(0) };
                }
                last = v + 1;
                host_set_and_wake(w, last);
            }
        }
        if pid < 0 {
            return None;
        }
        let mut value = 0u32;
        let figure = measure(ROUNDS, || {
            value += 1;
            host_set_and_wake(w, value);
            host_wait(w, value);
            value += 1;
        });
        host_set_and_wake(w, STOP);
        // SAFETY: reaping our own child; then detaching the segment used
        // no more.
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
            libc::shmdt(page);
        }
        Some(figure)
    }

    pub fn run() {
        let n = 1_000;
        println!(
            "shared memory and futexes: median ns of {RUNS} runs of {n} cycles \
             ({ROUNDS} round trips for ping-pong)"
        );
        let Some(setup) = setup() else {
            return;
        };
        let Some(c) = setup.connect(true) else {
            println!("  (ipc rows skipped: cannot connect)");
            return;
        };
        let host = measure(n, host_sysv_cycle);
        row("host SysV shmget+at+dt+IPC_RMID", host, host);
        if c.shmget(IPC_PRIVATE, 1, 0)
            .is_err_and(|e| e == Errno::ENOSYS)
        {
            println!("  (memsrvd rows skipped: the server has no SysV shm yet)");
        } else {
            row(
                "memsrvd SysV shmget+at+dt+IPC_RMID",
                measure(n, || sysv_cycle(&c)),
                host,
            );
        }
        let host = measure(n, host_posix_cycle);
        row("host shm_open+..+shm_unlink", host, host);
        if c.unlink("/dev/shm/none").is_err_and(|e| e == Errno::ENOSYS) {
            println!("  (memsrvd shm_open row skipped: the server has no unlink yet)");
        } else {
            let figure = measure(n, || posix_cycle(&c));
            row("memsrvd shm_open+..+shm_unlink", figure, host);
        }
        if let Some(host) = host_ping_pong() {
            row("host futex ping-pong (2 procs)", host, host);
            match server_ping_pong(&setup, &c) {
                Some(figure) => row("memsrvd futex ping-pong (2 procs)", figure, host),
                None => println!("  (memsrvd ping-pong skipped: no SysV shm or futex yet)"),
            }
        }
    }
}
