//! Drivers outside the daemon: `nommu-driver` serving a device as a host
//! process of its own, and fake drivers speaking raw frames over the
//! socket that die mid-request, never answer, or answer nonsense. The
//! client waiting on such a driver gets a clear errno (`EIO`) and the
//! daemon keeps serving everyone else.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/fake_driver.rs"]
mod fake_driver;

use daemon::{c_command, parse_addr, pattern, romfs_image, Daemon, DriverProcess, Scratch};
use fake_driver::{wrong_lookup_answers_fail_the_open, FakeDriver};
use nommu::sys::poll;
use nommu::sys::socket::{Datagram, SeqPacket, MAX_FDS};
use nommu::transport::DaemonConnection;
use nommu::Client;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
use protocol::{
    decode_driver_request, decode_reply, encode_driver_reply, encode_reply, encode_request,
    DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, Frame, ObjectInfo,
    ObjectKind, Reply, Request, MAX_FRAME,
};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const O_RDONLY: u32 = 0;
const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;

/// Long enough for anything that should happen to happen.
const PATIENCE: Duration = Duration::from_secs(20);

/// A driver speaking raw frames over its own connection to the daemon.
struct Fake {
    socket: SeqPacket,
}

impl Fake {
    /// Connect, say Hello and register a device at `mount`.
    fn register(socket_path: &Path, mount: &str) -> Self {
        let socket = SeqPacket::connect(socket_path.as_os_str().as_bytes()).expect("connect");
        let fake = Self { socket };
        fake.call(0, &Request::Hello { ticket: None });
        let mut registration = DriverRegistration {
            name: heapless::String::new(),
            mount: heapless::String::new(),
            dev: (0, 0),
            noexec: false,
            read_only: false,
        };
        registration.name.push_str("fake").unwrap();
        registration.mount.push_str(mount).unwrap();
        match fake.call(1, &Request::RegisterDriver(registration)) {
            Reply::Registered { .. } => fake,
            other => panic!("registration: {other:?}"),
        }
    }

    /// One request and its reply (descriptors passed with it are closed).
    fn call(&self, tag: u32, request: &Request) -> Reply {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_request(tag, request, &mut buf);
        self.socket.send(&buf[..len]).expect("send");
        let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
        let (got, _) = self.socket.recv_with_fds(&mut buf, &mut fds).expect("recv");
        let Datagram::Frame { copied, .. } = got else {
            panic!("the daemon closed the fake driver");
        };
        let reply = decode_reply(&buf[..copied]).expect("a reply");
        assert_eq!(reply.tag, tag);
        reply.message
    }

    /// The next frame the daemon sends, or `None` once it closed us.
    fn frame(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut fds = [libc::pollfd {
            fd: self.socket.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ready = poll(&mut fds, timeout.as_millis() as i32).expect("poll");
        assert!(ready > 0, "nothing from the daemon in {timeout:?}");
        let mut buf = [0u8; MAX_FRAME];
        match self.socket.recv(&mut buf).expect("recv") {
            Datagram::Frame { copied, .. } => Some(buf[..copied].to_vec()),
            Datagram::Closed => None,
        }
    }

    fn send(&self, bytes: &[u8]) {
        self.socket.send(bytes).expect("send to the daemon");
    }
}

impl FakeDriver for Fake {
    fn next(&self) -> Frame<DriverRequest> {
        let frame = self
            .frame(PATIENCE)
            .expect("the daemon closed the fake driver");
        decode_driver_request(&frame).expect("a driver request")
    }

    fn answer(&self, tag: u32, reply: &DriverReply) {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_driver_reply(tag, reply, &mut buf);
        self.send(&buf[..len]);
    }
}

/// What the fake device looks like.
fn device(object: u64) -> ObjectInfo {
    ObjectInfo {
        object,
        ino: 7,
        kind: ObjectKind::CharDevice,
        mode: 0o666,
        size: 4096,
        caps: None,
        ops: DriverOps(DriverOps::MMAP | DriverOps::READ),
        io_memory: false,
    }
}

type Shared = Arc<Client<DaemonConnection>>;

/// `open(path)` on a thread; its result arrives on the receiver.
fn open_in_background(client: &Shared, path: &str) -> mpsc::Receiver<Result<i32, Errno>> {
    let client = Arc::clone(client);
    let path = path.to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client.open(&path, O_RDONLY, 0));
    });
    rx
}

/// Another client, a C program included, is served as usual.
fn others_are_served(d: &Daemon) {
    let other = d.client();
    let addr = other
        .mmap(
            0,
            8192,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            -1,
            0,
        )
        .expect("a bystander's mmap");
    other.munmap(addr, 8192).unwrap();
    assert!(other.list_mounts().is_ok());
    let out = c_command(d, "basic").arg("4").output().unwrap();
    assert!(
        out.status.success(),
        "basic: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_driver_process_registers_and_serves_mappings() {
    let scratch = Scratch::new("driver-process");
    let t = pattern(20000, 0x21);
    let image = romfs_image(&scratch, &[("t", &t)]);
    let mut d = Daemon::start();
    let romfs = DriverProcess::start(&d, &format!("/drv=romfs:{}", image.display()));
    let ramfs = DriverProcess::start(&d, "/shm2=ramfs");

    let client = d.client();
    let mounts = daemon::mount_points(&client);
    assert!(mounts.contains(&"/drv".to_string()), "{mounts:?}");
    assert!(mounts.contains(&"/shm2".to_string()), "{mounts:?}");

    // romfs in the driver process: a direct mapping of the data where the
    // driver put the image, the same for this process and a C program.
    let fd = client.open("/drv/t", O_RDONLY, 0).unwrap();
    let addr = client.mmap(0, 8192, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
    // SAFETY: a live mapping inside the arena this process maps.
    let bytes = unsafe { std::slice::from_raw_parts(addr as usize as *const u8, 8192) };
    assert_eq!(bytes, &t[..8192]);
    let out = c_command(&d, "mapfile")
        .args(["/drv/t", "8192", "r", "private"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let theirs = out
        .lines()
        .find_map(|l| l.strip_prefix("addr "))
        .map(parse_addr);
    assert_eq!(theirs, Some(addr), "{out}");
    assert!(out.contains("read ok"), "{out}");

    // ramfs in the driver process: shared memory, written through a
    // mapping and seen by pread.
    let shm = client.open("/shm2/seg", O_RDWR | O_CREAT, 0o600).unwrap();
    client.ftruncate(shm, 8192).unwrap();
    let seg = client
        .mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0)
        .unwrap();
    // SAFETY: a live shared read-write mapping inside the arena.
    unsafe { std::ptr::copy_nonoverlapping(b"via the mapping".as_ptr(), seg as *mut u8, 15) };
    let mut buf = [0u8; 15];
    assert_eq!(client.pread(shm, &mut buf, 0), Ok(15));
    assert_eq!(&buf, b"via the mapping");
    client.munmap(seg, 8192).unwrap();
    client.close(shm).unwrap();

    // A second driver for a mounted name is refused.
    let out = DriverProcess::command(&d, "/shm2=ramfs").output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("EBUSY"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The romfs driver goes away: its mapping stays readable (the image
    // pages are freed only with the last region), new opens fail, and the
    // mount can be served again.
    drop(romfs);
    let deadline = Instant::now() + PATIENCE;
    while client.open("/drv/t", O_RDONLY, 0).is_ok() {
        assert!(Instant::now() < deadline, "the mount outlived its driver");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(bytes, &t[..8192]);
    client.munmap(addr, 8192).unwrap();
    let _ = client.close(fd);
    let again = DriverProcess::start(&d, &format!("/drv=romfs:{}", image.display()));
    let fd = client.open("/drv/t", O_RDONLY, 0).unwrap();
    let mut head = [0u8; 16];
    assert_eq!(client.read(fd, &mut head), Ok(16));
    assert_eq!(&head, &t[..16]);
    client.close(fd).unwrap();
    drop((again, ramfs));
    assert!(d.alive());
}

/// Run as a child process by `a_driver_killed_mid_request_fails_the_call`
/// (and a no-op otherwise): a fake driver that registers `/fake`, reports
/// the first request it gets and then waits to be killed.
#[test]
fn fake_driver_child() {
    let Some(socket) = std::env::var_os("NOMMU_FAKE_DRIVER_SOCKET") else {
        return;
    };
    let fake = Fake::register(Path::new(&socket), "/fake");
    println!("fake: registered");
    let request = fake.next();
    println!("fake: got {:?}", request.message);
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_driver_killed_mid_request_fails_the_call_with_eio() {
    // A long timeout: the call must fail because the driver died, not
    // because it was slow.
    let mut d = Daemon::start_with(&["--driver-timeout", "60000"]);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "fake_driver_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NOMMU_FAKE_DRIVER_SOCKET", &d.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the fake driver");
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The test harness prints its own words on the same line first.
    let wait_for = |prefix: &str| loop {
        match lines.recv_timeout(PATIENCE) {
            Ok(line) if line.contains(prefix) => return line,
            Ok(_) => {}
            Err(_) => panic!("the fake driver never said {prefix:?}"),
        }
    };
    wait_for("fake: registered");
    let client: Shared = Arc::new(d.client());
    let socket_client: Shared = Arc::new(d.socket_client());
    let opened = open_in_background(&client, "/fake");
    let line = wait_for("fake: got");
    assert!(line.contains("Lookup"), "{line}");
    // A second caller waits behind the first on the same object.
    let queued = open_in_background(&socket_client, "/fake");
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    let second = queued.recv_timeout(PATIENCE).unwrap();
    assert!(second.is_err(), "open through a dead driver: {second:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    others_are_served(&d);
    // The mount is free again.
    let fake = Fake::register(&d.socket, "/fake");
    let opened = open_in_background(&client, "/fake");
    let lookup = fake.next();
    fake.answer(lookup.tag, &DriverReply::Opened(device(1)));
    assert!(opened.recv_timeout(PATIENCE).unwrap().is_ok());
    assert!(d.alive());
}

#[test]
fn a_driver_that_never_answers_fails_the_call_with_eio_after_the_timeout() {
    let mut d = Daemon::start_with(&["--driver-timeout", "300"]);
    let fake = Fake::register(&d.socket, "/fake");
    let client: Shared = Arc::new(d.client());
    let started = Instant::now();
    let opened = open_in_background(&client, "/fake");
    let lookup = fake.next();
    // While the call waits, everyone else is served.
    others_are_served(&d);
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The same client goes on (its connection was not hurt).
    let addr = client
        .mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    client.munmap(addr, 4096).unwrap();
    // A driver that answers late is not believed: the call is over.
    fake.answer(lookup.tag, &DriverReply::Opened(device(1)));
    others_are_served(&d);
    assert!(d.alive());
}

#[test]
fn malformed_driver_replies_fail_the_call_and_the_daemon_serves_everyone() {
    let mut d = Daemon::start_with(&["--driver-timeout", "300"]);
    let fake = Fake::register(&d.socket, "/fake");
    let client: Shared = Arc::new(d.client());

    wrong_lookup_answers_fail_the_open(&fake, || open_in_background(&client, "/fake"), PATIENCE);
    // A body that does not decode.
    let opened = open_in_background(&client, "/fake");
    let lookup = fake.next();
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_driver_reply(lookup.tag, &DriverReply::Opened(device(1)), &mut buf);
    buf[16] = 0xee;
    fake.send(&buf[..len]);
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    // An answer to a request nobody asked.
    let opened = open_in_background(&client, "/fake");
    let lookup = fake.next();
    fake.answer(lookup.tag ^ 0x5a5a_0000, &DriverReply::Opened(device(1)));
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    // A reply frame of the clients' kind (2) instead of a driver reply:
    // memsrv refuses the frame and the lookup times out.
    let opened = open_in_background(&client, "/fake");
    let lookup = fake.next();
    let len = encode_reply(lookup.tag, &Reply::Done, &mut buf);
    fake.send(&buf[..len]);
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    others_are_served(&d);

    // A driver that answers, for contrast: the same connection works.
    let opened = open_in_background(&client, "/fake");
    loop {
        // Skip the error reply to the kind-2 frame and anything late.
        let frame = fake.frame(PATIENCE).expect("still connected");
        if let Ok(request) = decode_driver_request(&frame) {
            assert!(matches!(request.message, DriverRequest::Lookup { .. }));
            fake.answer(request.tag, &DriverReply::Opened(device(1)));
            break;
        }
    }
    let fd = opened.recv_timeout(PATIENCE).unwrap().unwrap();
    let closed = std::thread::spawn({
        let client = Arc::clone(&client);
        move || client.close(fd)
    });
    // Closing the last descriptor releases the object.
    let release = fake.next();
    assert!(matches!(release.message, DriverRequest::Release { .. }));
    fake.answer(release.tag, &DriverReply::Done);
    closed.join().unwrap().unwrap();

    // Garbage with no readable header: the driver is dropped, its call
    // fails.
    let opened = open_in_background(&client, "/fake");
    let _lookup = fake.next();
    fake.send(b"not a frame at all");
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    let deadline = Instant::now() + PATIENCE;
    while fake.frame(PATIENCE).is_some() {
        assert!(Instant::now() < deadline, "the daemon kept the driver");
    }
    others_are_served(&d);
    assert!(d.alive());
}
