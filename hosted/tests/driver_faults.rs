//! Drivers that die or misbehave, in the threads home: a client waiting for
//! such a driver gets a clear errno (`EIO`), other clients keep being
//! served meanwhile, and memsrv's invariants hold throughout and after.
//!
//! Most drivers here are faked by hand on a bare [`DriverConnection`], so
//! they can do what no `BackingDevice` would: never answer, answer late,
//! answer garbage, the wrong variant or a tag nobody asked for.

#[path = "common/fake_driver.rs"]
mod fake_driver;

use drivers::ramfs::Ramfs;
use drivers::MountPoint;
use fake_driver::{wrong_lookup_answers_fail_the_open, FakeDriver};
use hosted::threads::{request_frame, DriverConnection, Process, ThreadsHome, ROOT};
use memsrv::Config;
use nommu::Client;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
use protocol::{
    decode_driver_request, encode_driver_reply, DriverOps, DriverRegistration, DriverReply,
    DriverRequest, Errno, Frame, ObjectInfo, ObjectKind, Request, MAX_FRAME,
};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const P: u64 = 4096;
const RW: u32 = PROT_READ | PROT_WRITE;
const O_RDONLY: u32 = 0;
const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;
/// Long enough that a working driver is never timed out, short enough
/// for a test.
const TIMEOUT_MS: u64 = 300;
/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

fn home() -> ThreadsHome {
    ThreadsHome::start(Config {
        arena_size: 4 << 20,
        driver_timeout_ms: TIMEOUT_MS,
        ..Config::default()
    })
    .unwrap()
}

/// A driver spoken for by the test, registered at `mount`.
struct Fake {
    client: Client<DriverConnection>,
}

impl Fake {
    fn register(home: &ThreadsHome, mount: &str) -> Self {
        let client = Client::new(home.connect_driver(ROOT).unwrap());
        let registration = DriverRegistration {
            name: "fake".try_into().unwrap(),
            mount: mount.try_into().unwrap(),
            dev: (0, 0x42),
            noexec: false,
            read_only: false,
        };
        client.register_driver(registration).unwrap();
        Self { client }
    }

    fn connection(&self) -> &DriverConnection {
        self.client.transport()
    }
}

impl FakeDriver for Fake {
    fn next(&self) -> Frame<DriverRequest> {
        let frame = self
            .connection()
            .next_request(Some(PATIENCE))
            .expect("the connection is open")
            .expect("a driver request in time");
        decode_driver_request(&frame).expect("a well-formed driver request")
    }

    fn answer(&self, tag: u32, reply: &DriverReply) {
        let mut out = [0u8; MAX_FRAME];
        let len = encode_driver_reply(tag, reply, &mut out);
        self.connection().send(&out[..len]).unwrap();
    }
}

/// A character device with default capabilities and every method.
fn device(object: u64) -> ObjectInfo {
    ObjectInfo {
        object,
        ino: 9,
        kind: ObjectKind::CharDevice,
        mode: 0o666,
        size: 16 * P,
        caps: None,
        ops: DriverOps(
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA,
        ),
        io_memory: false,
    }
}

/// Run `call` on a thread of its own (it waits for a driver); the result
/// comes back on the receiver.
fn in_background<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(call());
    });
    rx
}

/// Another process is served while a driver keeps one waiting.
fn others_are_served(home: &ThreadsHome) {
    let other = home.spawn_process().unwrap();
    let x = other.mmap_anon(2 * P, RW).unwrap();
    other.write(x, b"still served").unwrap();
    other.munmap(x, 2 * P).unwrap();
    assert!(other.client().list_mounts().is_ok());
}

fn open_in_background(p: &Arc<Process>, path: &'static str) -> mpsc::Receiver<Result<i32, Errno>> {
    let p = Arc::clone(p);
    in_background(move || p.client().open(path, O_RDONLY, 0))
}

/// A home with a fake driver at `/dev/fake`, and a process to call it
/// from threads of the test's own.
fn home_with_fake() -> (ThreadsHome, Fake, Arc<Process>) {
    let home = home();
    let fake = Fake::register(&home, "/dev/fake");
    let p = Arc::new(home.spawn_process().unwrap());
    (home, fake, p)
}

/// A process opens `/dev/fake` and the fake driver, asked for its lookup,
/// `misanswers` it: the open fails with `EIO`. Returns the home, the
/// driver and the process, for what the test checks next.
fn a_misanswered_lookup_fails_the_open(
    misanswer: impl FnOnce(&Fake, Frame<DriverRequest>),
) -> (ThreadsHome, Fake, Arc<Process>) {
    let (home, fake, p) = home_with_fake();
    let opened = open_in_background(&p, "/dev/fake");
    let lookup = fake.next();
    misanswer(&fake, lookup);
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    (home, fake, p)
}

/// The end of every misbehaving driver's story: others are served, the
/// invariants hold and no call is left waiting.
fn others_are_served_and_all_settles(home: &ThreadsHome) {
    others_are_served(home);
    settled(home);
}

/// The invariants hold and no call is left waiting.
fn settled(home: &ThreadsHome) {
    home.check_invariants().unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = home.stats().unwrap();
        if stats.pending_ops == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "calls still waiting: {stats:?}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_driver_that_dies_mid_call_fails_the_call_with_eio() {
    let (home, fake, p) = home_with_fake();
    let opened = open_in_background(&p, "/dev/fake");
    let lookup = fake.next();
    assert!(matches!(lookup.message, DriverRequest::Lookup { .. }));
    others_are_served(&home);
    assert!(
        opened.try_recv().is_err(),
        "the open did not wait for the driver"
    );
    drop(fake);
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    // The mount went with the driver.
    assert!(p.client().open("/dev/fake", O_RDONLY, 0).is_err());
    others_are_served(&home);
    settled(&home);
    assert_eq!(home.stats().unwrap().drivers, 0);
}

#[test]
fn a_driver_that_never_answers_is_timed_out() {
    let (home, fake, p) = home_with_fake();
    let started = Instant::now();
    let opened = open_in_background(&p, "/dev/fake");
    let lookup = fake.next();
    others_are_served(&home);
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    assert!(started.elapsed() >= Duration::from_millis(TIMEOUT_MS));
    // The late answer is recognised and ignored; the driver stays.
    fake.answer(lookup.tag, &DriverReply::Opened(device(1)));
    let again = open_in_background(&p, "/dev/fake");
    let lookup = fake.next();
    fake.answer(lookup.tag, &DriverReply::Opened(device(1)));
    let fd = again.recv_timeout(PATIENCE).unwrap().unwrap();
    p.client().close(fd).unwrap();
    settled(&home);
    drop(fake);
    settled(&home);
}

#[test]
fn garbage_from_a_driver_closes_it_and_fails_its_calls() {
    let (home, fake, _p) = a_misanswered_lookup_fails_the_open(|fake, _| {
        fake.connection().send(b"not a frame at all").unwrap();
    });
    assert_eq!(
        fake.connection().recv_frame(Some(PATIENCE)),
        Err(Errno::ENOTCONN),
        "memsrv keeps talking to a driver that sent garbage"
    );
    others_are_served_and_all_settles(&home);
}

#[test]
fn a_reply_with_a_bad_body_fails_that_call() {
    let (home, _fake, _p) = a_misanswered_lookup_fails_the_open(|fake, lookup| {
        let mut out = [0u8; MAX_FRAME];
        let len = encode_driver_reply(lookup.tag, &DriverReply::Opened(device(1)), &mut out);
        out[len - 1] = 0xff;
        out[16] = 0xee;
        fake.connection().send(&out[..len]).unwrap();
    });
    others_are_served_and_all_settles(&home);
}

#[test]
fn the_wrong_reply_variant_fails_the_call() {
    let (home, fake, p) = home_with_fake();
    wrong_lookup_answers_fail_the_open(&fake, || open_in_background(&p, "/dev/fake"), PATIENCE);
    others_are_served_and_all_settles(&home);
}

#[test]
fn an_answer_to_nothing_fails_what_the_driver_was_asked() {
    let (home, _fake, _p) = a_misanswered_lookup_fails_the_open(|fake, lookup| {
        fake.answer(lookup.tag ^ 0x5a5a_0000, &DriverReply::Opened(device(1)));
    });
    others_are_served_and_all_settles(&home);
}

#[test]
fn a_device_answering_mmap_with_an_address_outside_its_storage_is_refused() {
    let (home, fake, p) = home_with_fake();
    let opened = open_in_background(&p, "/dev/fake");
    let lookup = fake.next();
    fake.answer(lookup.tag, &DriverReply::Opened(device(1)));
    let fd = opened.recv_timeout(PATIENCE).unwrap().unwrap();
    let q = Arc::clone(&p);
    let mapped = in_background(move || q.client().mmap(0, P, PROT_READ, MAP_SHARED, fd, 0));
    let gua = fake.next();
    assert!(matches!(gua.message, DriverRequest::GetUnmappedArea { .. }));
    // A page of the arena the driver does not own.
    let stolen = home.arena().base() + P;
    fake.answer(gua.tag, &DriverReply::Address(stolen));
    let result = mapped.recv_timeout(PATIENCE).unwrap();
    assert!(result.is_err(), "mapped another's page: {result:?}");
    others_are_served_and_all_settles(&home);
}

#[test]
fn a_driver_asking_for_storage_while_a_request_is_queued() {
    // The fake asks for storage (its own call) while memsrv has sent it a
    // lookup: the lookup is kept and handed out afterwards.
    let (home, fake, p) = home_with_fake();
    let opened = open_in_background(&p, "/dev/fake");
    // Wait until the lookup is on its way, without taking it.
    let deadline = Instant::now() + PATIENCE;
    while home.stats().unwrap().pending_ops == 0 {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(1));
    }
    let storage = fake.client.alloc_backing(2).unwrap();
    assert_eq!(home.stats().unwrap().backing_pages, 2);
    let lookup = fake.next();
    assert!(matches!(lookup.message, DriverRequest::Lookup { .. }));
    fake.answer(lookup.tag, &DriverReply::Opened(device(1)));
    let fd = opened.recv_timeout(PATIENCE).unwrap().unwrap();
    p.client().close(fd).unwrap();
    fake.client.free_backing(storage, 2).unwrap();
    // A process connection is no driver: storage calls are refused.
    assert_eq!(p.client().alloc_backing(1), Err(Errno::EPERM));
    // A raw request frame on the driver connection is answered too.
    fake.connection()
        .send(&request_frame(77, &Request::AllocBacking { pages: 0 }))
        .unwrap();
    settled(&home);
}

#[test]
fn a_real_driver_killed_under_a_shared_mapping() {
    let home = home();
    let before = home.stats().unwrap();
    let tmp = Ramfs::new(MountPoint::new("/tmp", (0, 0x10)).unwrap());
    let mount = home.mount(Box::new(tmp)).unwrap();
    let p = home.spawn_process().unwrap();
    let fd = p.client().open("/tmp/s", O_CREAT | O_RDWR, 0o600).unwrap();
    p.client().ftruncate(fd, 2 * P).unwrap();
    let x = p.client().mmap(0, 2 * P, RW, MAP_SHARED, fd, 0).unwrap();
    p.write(x, b"shared bytes").unwrap();
    assert_eq!(home.stats().unwrap().backing_pages, 2);
    mount.stop();
    // The pages stay while the mapping shows them.
    let mut seen = [0u8; 12];
    p.read(x, &mut seen).unwrap();
    assert_eq!(&seen, b"shared bytes");
    home.check_invariants().unwrap();
    assert_eq!(p.client().read(fd, &mut seen), Err(Errno::EIO));
    assert!(p.client().open("/tmp/s", O_RDONLY, 0).is_err());
    let anon = p
        .client()
        .mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    p.munmap(anon, P).unwrap();
    p.munmap(x, 2 * P).unwrap();
    p.client().close(fd).unwrap();
    settled(&home);
    let after = home.stats().unwrap();
    assert_eq!(
        after.backing_pages, 0,
        "the dead driver's storage was not freed"
    );
    assert_eq!(after.free_pages, before.free_pages);
    drop(p);
    settled(&home);
}

#[test]
fn many_clients_while_one_driver_stalls() {
    let (home, fake, p) = home_with_fake();
    let opened = open_in_background(&p, "/dev/fake");
    fake.next();
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let q = home.spawn_process().unwrap();
                for _ in 0..200 {
                    let x = q.mmap_anon(P, RW).unwrap();
                    q.munmap(x, P).unwrap();
                }
            });
        }
    });
    assert_eq!(opened.recv_timeout(PATIENCE).unwrap(), Err(Errno::EIO));
    settled(&home);
}
