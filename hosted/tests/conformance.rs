//! The spec's conformance vectors (the `conformance` crate) in the hosted
//! homes, each with the test environment of spec §14.0 mounted
//! (`conformance::env::build`):
//!
//! * the threads home: each vector on a fresh home, then all in sequence on
//!   one home (so a vector that leaves state behind is caught too); after
//!   every vector memsrv's invariants are checked, and every page must be
//!   free again except the drivers' own storage;
//! * the `memsrvd` daemon: all vectors in sequence through the real daemon,
//!   its socket and shared-page transport, with the drivers as connections
//!   of their own.
//!
//! Every failure is reported, not just the first, under the home's name.

use conformance::env::{
    self, data_f_byte, rom_t_byte, Environment, Mounter, NorFlash, RomImage, Setup, DATA_DEV,
    DATA_F_INO, DATA_F_LEN, O_RDONLY, ROM_T_LEN,
};
use conformance::{
    Harness, Landmark, ProcessConnection, TestDevControl, Vector, DEFERRED, VECTORS,
};
use drivers::{BackingDevice, DriverHost, MountPoint};
use hosted::daemon::driver::{ArenaWindow, SocketDriver};
use hosted::threads::{Arena, Mount, Process, ThreadsHome};
use memsrv::{Config, Credentials};
use nommu::sys::socket::SeqPacket;
use nommu::transport::{ConnectOptions, DaemonConnection};
use nommu::{Client, Transport};
use protocol::{DriverRegistration, DriverReply, DriverRequest, Errno, ProcView, MAX_FRAME};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[path = "common/daemon.rs"]
mod daemon;

/// A threads-home process as the tables see it.
struct Handle(Process);

impl ProcessConnection for Handle {
    fn pid(&self) -> u32 {
        self.0.pid()
    }

    fn transport(&self) -> &dyn Transport {
        self.0.client().transport()
    }

    fn begin(&self, request: &[u8]) -> Result<(), Errno> {
        self.0.client().transport().begin(request)
    }

    fn finish(&self, reply: &mut [u8; protocol::MAX_FRAME]) -> Result<usize, Errno> {
        self.0.client().transport().finish(reply)
    }
}

/// `/rom`'s image, built once per test run with `genromfs`.
fn rom_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("nommu-conformance-rom-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(&root).expect("a scratch directory for the romfs image");
        let t: Vec<u8> = (0..ROM_T_LEN).map(rom_t_byte).collect();
        std::fs::write(root.join("t"), t).expect("writing rom/t");
        let image = dir.join("rom.img");
        let status = std::process::Command::new("genromfs")
            .arg("-f")
            .arg(&image)
            .arg("-d")
            .arg(&root)
            .arg("-V")
            .arg("rom")
            .status()
            .expect("running genromfs (install it: apt-get install genromfs)");
        assert!(status.success(), "genromfs failed: {status}");
        let bytes = std::fs::read(&image).expect("reading the romfs image");
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    })
}

/// The hosted homes' environment: `/rom` copied into the arena, NOR flash
/// simulated, `/dev/mem` over `device_memory` (host memory outside the
/// arena).
fn setup(device_memory: &Arena) -> Setup {
    Setup {
        rom: RomImage::Copied(rom_image()),
        nor: NorFlash::Simulated,
        device_memory: device_memory.base()..device_memory.base() + device_memory.size(),
    }
}

/// The threads home runs each driver on a thread of its own.
struct ThreadsMounter<'h>(&'h ThreadsHome);

impl Mounter for ThreadsMounter<'_> {
    type Mount = Mount;

    fn mount<D, F, R>(
        &mut self,
        point: MountPoint,
        make: F,
        look: fn(&D) -> R,
    ) -> Result<(Mount, R), Errno>
    where
        D: BackingDevice + Send + 'static,
        F: FnOnce(MountPoint) -> Result<D, Errno> + Send + Clone + 'static,
        R: Send + 'static,
    {
        self.0.mount_with(make(point)?, look)
    }
}

/// The threads home as the tables see it. The home is dropped before the
/// environment: its drivers then see their connections close and stop.
struct Threads {
    home: ThreadsHome,
    env: Environment<Mount>,
    /// `/dev/mem`'s window: it must outlive the driver handing it out.
    _device_memory: Arena,
}

impl Harness for Threads {
    fn spawn(&self) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        Ok(Box::new(Handle(self.home.spawn_process()?)))
    }

    fn spawn_as(&self, uid: u32, gid: u32) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        let credentials = Credentials {
            pid: None,
            uid,
            gid,
        };
        Ok(Box::new(Handle(self.home.spawn_process_as(credentials)?)))
    }

    fn attach(&self, ticket: u64) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        Ok(Box::new(Handle(self.home.attach(ticket)?)))
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.home.read(addr, buf)
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.home.write(addr, bytes)
    }

    fn test_device(&self) -> Option<&TestDevControl> {
        Some(&self.env.tst)
    }

    fn landmark(&self, which: Landmark) -> Option<u64> {
        Some(self.env.landmark(which))
    }

    fn word_size(&self) -> u32 {
        Config::default().word_size
    }
}

/// The spec's test environment (§14.0): nr_trim_pages 1, MAP_UNINITIALIZED
/// not permitted, order 10; 16 MiB of arena; `mremap` never moves (the
/// strict profile §14.6 describes; the default is tested separately).
fn start() -> Threads {
    let config = Config {
        arena_size: 16 << 20,
        // §14.6 describes the strict profile (vector 75).
        strict_mremap: true,
        ..Config::default()
    };
    let home = ThreadsHome::start(config).expect("start the threads home");
    let device_memory = Arena::new(16 * 4096).expect("device memory");
    let env = env::build(&mut ThreadsMounter(&home), setup(&device_memory))
        .unwrap_or_else(|e| panic!("the test environment: {e}"));
    Threads {
        home,
        env,
        _device_memory: device_memory,
    }
}

/// Nothing of the vector's is left: no copies, every page free except the
/// drivers' storage, no open file, no object, no call waiting, no SysV
/// segment. Drivers
/// answer `Release` and `close` after the vector's processes are gone, so
/// the server is given a moment to settle.
fn leftovers(home: &ThreadsHome) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match home.stats() {
            Ok(stats) if stats.left_nothing() => return None,
            Ok(stats) if Instant::now() >= deadline => return Some(format!("{stats:?}")),
            Err(e) => return Some(format!("no stats: {e:?}")),
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Run one vector, then check the invariants and that everything it made
/// was released with its processes.
fn run(home: &mut Threads, vector: &Vector) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(failure) = (vector.run)(home) {
        failures.push(format!("{vector:?}: {failure}"));
    }
    if let Err(broken) = home.home.check_invariants() {
        failures.push(format!("{vector:?}: invariant broken: {broken}"));
    }
    if let Some(left) = leftovers(&home.home) {
        failures.push(format!("{vector:?}: left behind: {left}"));
    }
    failures
}

/// Print each failure under the home's name; fail if there is any.
fn report(home: &str, failures: &[String]) {
    for failure in failures {
        eprintln!("{home}: FAILED {failure}");
    }
    assert!(
        failures.is_empty(),
        "{home}: {} of {} vector checks failed (see above)",
        failures.len(),
        VECTORS.len()
    );
}

#[test]
fn threads_home_runs_every_vector_on_a_fresh_home() {
    let mut failures = Vec::new();
    for vector in VECTORS {
        let mut home = start();
        failures.extend(run(&mut home, vector));
    }
    eprintln!(
        "threads home: {} vectors run, {} deferred",
        VECTORS.len(),
        DEFERRED.len()
    );
    report("threads home", &failures);
}

/// All vectors in sequence on one threads home.
#[test]
fn threads_home_runs_all_vectors() {
    let mut home = start();
    let trim = home
        .home
        .spawn_process()
        .unwrap()
        .client()
        .read_sysctl(protocol::Sysctl::NrTrimPages);
    let mut failures = Vec::new();
    for vector in VECTORS {
        failures.extend(run(&mut home, vector));
    }
    let after = home
        .home
        .spawn_process()
        .unwrap()
        .client()
        .read_sysctl(protocol::Sysctl::NrTrimPages);
    if after != trim {
        failures.push(format!(
            "nr_trim_pages not restored: {trim:?} before, {after:?} after"
        ));
    }
    report("threads home", &failures);
}

/// The environment itself: every mount is listed, and `/data/f` and
/// `/rom/t` read back as written.
#[test]
fn the_environment_is_what_the_vectors_assume() {
    let home = start();
    let p = home.home.spawn_process().unwrap();
    let mounts: Vec<String> = p
        .client()
        .list_mounts()
        .unwrap()
        .map(|m| m.as_str().to_owned())
        .collect();
    for path in env::MOUNT_POINTS {
        assert!(mounts.iter().any(|m| m == path), "{path} not in {mounts:?}");
    }
    for (path, len, byte) in [
        (env::DATA_F, DATA_F_LEN, data_f_byte as fn(u64) -> u8),
        (env::DATA_NOEXEC_F, DATA_F_LEN, data_f_byte),
        (env::ROM_T, ROM_T_LEN, rom_t_byte),
    ] {
        let fd = p.client().open(path, O_RDONLY, 0).unwrap();
        let mut buf = vec![0u8; len as usize + 100];
        assert_eq!(
            p.client().read(fd, &mut buf).unwrap(),
            len as usize,
            "{path}"
        );
        assert!(
            (0..len).all(|i| buf[i as usize] == byte(i)),
            "{path} has the wrong bytes"
        );
        let stat = p.client().fstat(fd).unwrap();
        assert_eq!(stat.size, len, "{path}");
    }
    let fd = p.client().open(env::DATA_F, O_RDONLY, 0).unwrap();
    let stat = p.client().fstat(fd).unwrap();
    assert_eq!((stat.dev, stat.ino), (DATA_DEV, DATA_F_INO));
    assert_ne!(
        home.env.landmark(Landmark::RomTData) % 4096,
        0,
        "/rom/t's data is page aligned"
    );
    drop(p);
    assert_eq!(leftovers(&home.home), None);
}

/// memsrv's default (not the strict profile §14.6 describes): a private
/// anonymous mapping grown past its region with `MREMAP_MAYMOVE` moves,
/// keeping its contents; without `MREMAP_MAYMOVE` it cannot grow.
#[test]
fn mremap_moves_a_grown_anonymous_mapping_by_default() {
    use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_MAYMOVE, PROT_READ, PROT_WRITE};
    const P: u64 = 4096;
    let config = Config {
        arena_size: 16 << 20,
        ..Config::default()
    };
    assert!(!config.strict_mremap, "moving is the default");
    let home = ThreadsHome::start(config).expect("start the threads home");
    let p = home.spawn_process().unwrap();
    let rw = PROT_READ | PROT_WRITE;
    let a = p
        .client()
        .mmap(0, 4 * P, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    let bytes: Vec<u8> = (0..4 * P).map(|i| (i % 251) as u8).collect();
    p.write(a, &bytes).unwrap();
    // Something right behind, so growing in place is impossible anyway.
    let _fence = p
        .client()
        .mmap(0, P, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    assert_eq!(p.client().mremap(a, 4 * P, 8 * P, 0, 0), Err(Errno::ENOMEM));
    let b = p
        .client()
        .mremap(a, 4 * P, 8 * P, MREMAP_MAYMOVE, 0)
        .expect("mremap with MREMAP_MAYMOVE");
    assert_ne!(b, a, "the mapping moved");
    let mut moved = vec![0u8; 4 * P as usize];
    p.read(b, &mut moved).unwrap();
    assert!(moved == bytes, "the contents moved with it");
    let mut tail = vec![1u8; 4 * P as usize];
    p.read(b + 4 * P, &mut tail).unwrap();
    assert!(tail.iter().all(|&v| v == 0), "the new pages are zero");
    assert_eq!(p.client().munmap(a, 4 * P), Err(Errno::EINVAL), "A is gone");
    p.client()
        .munmap(b, 8 * P)
        .expect("munmap of the moved mapping");
    drop(p);
    assert_eq!(leftovers(&home), None);
}

// The memsrvd home.

/// How long a split call's frame is given to reach memsrv before
/// [`ProcessConnection::begin`] returns. The daemon serves each connection
/// on a thread of its own, so nothing orders one connection's frames after
/// another's; the waiter's frame is posted at once and memsrv takes it in
/// well within this.
const SPLIT_CALL_DELIVERY: Duration = Duration::from_millis(200);

/// A split call's thread, with the reply it got.
type CallThread = JoinHandle<(Result<usize, Errno>, Box<[u8; MAX_FRAME]>)>;

/// A `memsrvd` process: a connection of its own (the daemon runs with
/// `--process-per-connection`), calls over the shared channel page.
struct DaemonProcess<'h> {
    client: Option<Arc<Client<DaemonConnection>>>,
    /// The split call under way, made on a thread of its own.
    call: Mutex<Option<CallThread>>,
    /// Who watches the process go when it is dropped.
    inspector: &'h Client<DaemonConnection>,
}

impl<'h> DaemonProcess<'h> {
    fn new(client: Client<DaemonConnection>, inspector: &'h Client<DaemonConnection>) -> Self {
        Self {
            client: Some(Arc::new(client)),
            call: Mutex::new(None),
            inspector,
        }
    }

    fn client(&self) -> &Arc<Client<DaemonConnection>> {
        self.client.as_ref().expect("the client lives until drop")
    }
}

/// The daemon releases a process on its connection's thread once the
/// connection closes, after the close returned here; the tables expect a
/// dropped process to be gone (vector 87 counts attachments right after),
/// as it is in the homes whose server takes every frame in order. So a
/// drop waits (up to 2 s) until memsrv no longer knows the pid.
impl Drop for DaemonProcess<'_> {
    fn drop(&mut self) {
        let pid = self.pid();
        drop(self.client.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut buf = [0u8; 64];
        while Instant::now() < deadline {
            let view = ProcView::ProcessMaps { pid };
            if self.inspector.read_proc(view, &mut buf) == Err(Errno::ESRCH) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl ProcessConnection for DaemonProcess<'_> {
    fn pid(&self) -> u32 {
        self.client().transport().welcome().pid
    }

    fn transport(&self) -> &dyn Transport {
        self.client().transport()
    }

    fn begin(&self, request: &[u8]) -> Result<(), Errno> {
        let client = Arc::clone(self.client());
        let request = request.to_vec();
        let thread = std::thread::spawn(move || {
            let mut reply = Box::new([0u8; MAX_FRAME]);
            let got = client.transport().call(&request, &mut reply);
            (got, reply)
        });
        *self.call.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        std::thread::sleep(SPLIT_CALL_DELIVERY);
        Ok(())
    }

    fn finish(&self, reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let thread = self
            .call
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(Errno::EINVAL)?;
        let (got, frame) = thread.join().map_err(|_| Errno::EIO)?;
        let len = got?;
        reply[..len].copy_from_slice(&frame[..len]);
        Ok(len)
    }
}

/// A device served over its own driver connection, which reports once it
/// has started (with what `look` saw) or why it could not.
struct Reporting<D, R> {
    device: D,
    look: fn(&D) -> R,
    started: Option<mpsc::Sender<Result<R, Errno>>>,
}

impl<D: BackingDevice, R> BackingDevice for Reporting<D, R> {
    fn registration(&self) -> DriverRegistration {
        self.device.registration()
    }

    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        let result = self.device.start(host);
        if let Some(started) = self.started.take() {
            let _ = started.send(result.map(|()| (self.look)(&self.device)));
        }
        result
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        self.device.serve(request, host)
    }
}

/// Drivers of the memsrvd home: each on a thread of the test process,
/// registered over a socket connection of its own like `nommu-driver`.
/// A driver stops when the daemon goes away.
struct DaemonMounter<'d> {
    socket: &'d Path,
}

impl Mounter for DaemonMounter<'_> {
    type Mount = JoinHandle<()>;

    fn mount<D, F, R>(
        &mut self,
        point: MountPoint,
        make: F,
        look: fn(&D) -> R,
    ) -> Result<(JoinHandle<()>, R), Errno>
    where
        D: BackingDevice + Send + 'static,
        F: FnOnce(MountPoint) -> Result<D, Errno> + Send + Clone + 'static,
        R: Send + 'static,
    {
        let device = make(point)?;
        let socket = SeqPacket::connect(self.socket.as_os_str().as_bytes())?;
        let (started, outcome) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let link = match SocketDriver::hello(socket, None) {
                Ok(link) => link,
                Err(e) => return eprintln!("memsrvd home: a driver's hello: {e}"),
            };
            let mut device = Reporting {
                device,
                look,
                started: Some(started),
            };
            let _ = link.serve(&mut device, |result| {
                if let Err(e) = result {
                    eprintln!("memsrvd home: a driver did not start: {e}");
                }
            });
        });
        // A driver that failed before starting dropped the sender.
        let seen = outcome.recv().map_err(|_| Errno::EIO)??;
        Ok((thread, seen))
    }
}

/// Connect to `socket` as user `uid`, group `gid` (memsrvd takes a
/// process's credentials from `SO_PEERCRED` at connect time). The test
/// runs as root; a thread of its own changes its effective ids with the
/// raw system calls, which (unlike the libc wrappers) change only the
/// calling thread, and ends right after connecting.
fn connect_as(socket: &Path, uid: u32, gid: u32) -> Result<Client<DaemonConnection>, Errno> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let keep = libc::c_long::from(-1i32);
                // SAFETY: setresgid and setresuid take three ids by value
                // and touch no memory of ours; -1 keeps an id unchanged.
                let (g, u) = unsafe {
                    (
                        libc::syscall(libc::SYS_setresgid, keep, libc::c_long::from(gid), keep),
                        libc::syscall(libc::SYS_setresuid, keep, libc::c_long::from(uid), keep),
                    )
                };
                if g != 0 || u != 0 {
                    return Err(Errno::EPERM);
                }
                // The vectors call from the test's own (root) thread: the
                // connection keeps the ids it connected with rather than
                // tell the server the caller's.
                let options = ConnectOptions {
                    follow_identity: false,
                    ..ConnectOptions::default()
                };
                DaemonConnection::connect_with(socket, options).map_err(|e| e.errno())
            })
            .join()
            .unwrap_or(Err(Errno::EIO))
    })
}

/// The `memsrvd` home as the tables see it: the real daemon, its socket
/// and shared-page transport, with the §14.0 environment's drivers as
/// connections of this test process. The environment is dropped first:
/// its driver threads end when the daemon is killed.
struct Memsrvd {
    env: Environment<JoinHandle<()>>,
    /// A process of this test that reads `/proc` between vectors; its
    /// connection also keeps the arena mapped here for `read`/`write`.
    inspector: Client<DaemonConnection>,
    arena: ArenaWindow,
    _device_memory: Arena,
    daemon: daemon::Daemon,
    socket: PathBuf,
}

impl Harness for Memsrvd {
    fn spawn(&self) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        let client = DaemonConnection::connect(&self.socket).map_err(|e| e.errno())?;
        Ok(Box::new(DaemonProcess::new(client, &self.inspector)))
    }

    fn spawn_as(&self, uid: u32, gid: u32) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        let client = connect_as(&self.socket, uid, gid)?;
        Ok(Box::new(DaemonProcess::new(client, &self.inspector)))
    }

    fn attach(&self, ticket: u64) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        let options = ConnectOptions {
            ticket: Some(ticket),
            ..ConnectOptions::default()
        };
        let client =
            DaemonConnection::connect_with(&self.socket, options).map_err(|e| e.errno())?;
        Ok(Box::new(DaemonProcess::new(client, &self.inspector)))
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.arena.read(addr, buf)
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.arena.write(addr, bytes)
    }

    fn test_device(&self) -> Option<&TestDevControl> {
        Some(&self.env.tst)
    }

    fn landmark(&self, which: Landmark) -> Option<u64> {
        Some(self.env.landmark(which))
    }
}

/// A `memsrvd` with the §14.0 settings (its defaults: nr_trim_pages 1,
/// MAP_UNINITIALIZED not permitted; 16 MiB of arena), the strict `mremap`
/// profile §14.6 describes, and a process per connection; the environment
/// mounted. Its socket is open to every user (vectors 92 and 93 connect
/// as other users).
fn start_memsrvd() -> Memsrvd {
    let daemon = daemon::Daemon::start_with(&["--strict-mremap", "--process-per-connection"]);
    let socket = daemon.socket.clone();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777))
        .expect("opening the daemon's socket to every user");
    let device_memory = Arena::new(16 * 4096).expect("device memory");
    let env = env::build(
        &mut DaemonMounter { socket: &socket },
        setup(&device_memory),
    )
    .unwrap_or_else(|e| panic!("memsrvd home: the test environment: {e}"));
    let inspector = DaemonConnection::connect(&socket).expect("an inspector connection");
    let (base, size) = inspector.transport().arena();
    Memsrvd {
        env,
        inspector,
        arena: ArenaWindow::daemon(base, size),
        _device_memory: device_memory,
        daemon,
        socket,
    }
}

/// Nothing of the vector's is left, as `/proc` shows it: no copies, every
/// page free except the drivers' storage (`Shmem`), no SysV segment.
/// Releases happen on the daemon's connection threads after a process's
/// connection closes, so the daemon is given a moment.
fn memsrvd_leftovers(home: &Memsrvd) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let meminfo = daemon::proc_text(&home.inspector, ProcView::Meminfo);
        let shm = daemon::proc_text(&home.inspector, ProcView::SysvShm);
        let field = |key| daemon::meminfo_field(&meminfo, key).unwrap_or(u64::MAX);
        let clean = field("MmapCopy") == 0
            && field("MemFree") + field("Shmem") == field("MemTotal")
            && shm.lines().count() <= 1;
        if clean {
            return None;
        }
        if Instant::now() >= deadline {
            return Some(format!("{meminfo}{shm}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// All vectors in sequence on one `memsrvd`.
#[test]
fn memsrvd_runs_all_vectors() {
    let mut home = start_memsrvd();
    let trim = home.inspector.read_sysctl(protocol::Sysctl::NrTrimPages);
    let mut failures = Vec::new();
    for vector in VECTORS {
        if let Err(failure) = (vector.run)(&mut home) {
            failures.push(format!("{vector:?}: {failure}"));
        }
        if let Some(left) = memsrvd_leftovers(&home) {
            failures.push(format!("{vector:?}: left behind: {left}"));
        }
    }
    let after = home.inspector.read_sysctl(protocol::Sysctl::NrTrimPages);
    if after != trim {
        failures.push(format!(
            "nr_trim_pages not restored: {trim:?} before, {after:?} after"
        ));
    }
    assert!(home.daemon.alive(), "memsrvd died");
    eprintln!("memsrvd home: {} vectors run", VECTORS.len());
    report("memsrvd home", &failures);
}
