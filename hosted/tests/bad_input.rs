//! Malformed input over raw `SOCK_SEQPACKET` connections: wrong magic or
//! version, truncated frames, trailing bytes, over-long datagrams, random
//! bytes. Each gets an error reply echoing its tag (or, where no tag can be
//! read, the connection is dropped); the daemon never falls over and a
//! well-behaved client connected alongside keeps being served.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{meminfo_field, proc_text, Daemon};
use drivers::testing::Rng;
use nommu::sys::socket::{Datagram, SeqPacket, MAX_FDS};
use nommu::transport::channel_page::{ChannelPage, Spin};
use protocol::{
    decode_reply, encode_request, Errno, MessageKind, ProcView, Reply, Request, HEADER_LEN, MAGIC,
    MAX_FRAME, VERSION,
};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A raw connection that speaks bytes, not requests.
struct Raw(SeqPacket);

impl Raw {
    fn connect(d: &Daemon) -> Self {
        Raw(SeqPacket::connect(d.socket.as_os_str().as_bytes()).expect("connect"))
    }

    fn send(&self, bytes: &[u8]) {
        self.0.send(bytes).expect("send");
    }

    /// The next reply, or `None` when the daemon dropped the connection.
    fn answer(&self) -> Option<(u32, Reply)> {
        let mut buf = vec![0u8; 64 << 10];
        match self.0.recv(&mut buf).expect("recv") {
            Datagram::Closed => None,
            Datagram::Frame { copied, .. } => {
                let frame = decode_reply(&buf[..copied]).expect("the daemon's reply decodes");
                Some((frame.tag, frame.message))
            }
        }
    }

    fn expect_error(&self, tag: u32, errno: Errno) {
        assert_eq!(self.answer(), Some((tag, Reply::Error(errno))));
    }

    fn expect_dropped(&self) {
        assert_eq!(self.answer(), None);
    }
}

fn request(tag: u32, req: &Request) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_request(tag, req, &mut buf);
    buf[..len].to_vec()
}

fn mmap_request() -> Request {
    protocol::mmap_request(0, 4096, 3, 0x22, -1, 0, protocol::OffsetUnit::Bytes)
}

/// A frame header as the wire format spells it (little-endian fields).
fn header(kind: u16, version: u16, tag: u32, body_len: u32) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend(version.to_le_bytes());
    h.extend(kind.to_le_bytes());
    h.extend(tag.to_le_bytes());
    h.extend(body_len.to_le_bytes());
    assert_eq!(h.len(), HEADER_LEN);
    h
}

/// A client mapping and unmapping in a loop on a thread until stopped;
/// counts its successful rounds and panics (failing the test) on error.
struct Bystander {
    stop: &'static AtomicBool,
    rounds: &'static AtomicU64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bystander {
    fn start(d: &Daemon) -> Self {
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let rounds: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        let client = d.client();
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let addr = client
                    .mmap(0, 8192, 3, 0x22, -1, 0)
                    .expect("bystander mmap");
                client.munmap(addr, 8192).expect("bystander munmap");
                rounds.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        Self {
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    /// Wait until it has done a few more rounds (it is being served).
    fn still_served(&self) {
        let before = self.rounds.load(Ordering::Relaxed);
        for _ in 0..2000 {
            if self.rounds.load(Ordering::Relaxed) >= before + 3 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the well-behaved client is no longer served");
    }

    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("bystander failed");
    }
}

fn assert_daemon_whole(d: &mut Daemon) {
    assert!(d.alive(), "memsrvd died");
    let text = d.ctl(&["meminfo"]);
    assert!(meminfo_field(&text, "MemTotal").is_some());
}

#[test]
fn each_kind_of_malformed_frame_gets_its_answer() {
    let mut d = Daemon::start();
    let bystander = Bystander::start(&d);
    let raw = Raw::connect(&d);

    // Before the handshake a request is refused: no process yet.
    raw.send(&request(7, &mmap_request()));
    raw.expect_error(7, Errno::ESRCH);

    // Wrong version: the tag is readable.
    let mut frame = header(MessageKind::Request as u16, VERSION + 1, 11, 0);
    raw.send(&frame);
    raw.expect_error(11, Errno::EPROTONOSUPPORT);

    // A reply where a request belongs.
    frame = request(12, &Request::Exit);
    frame[6] = MessageKind::Reply as u8;
    raw.send(&frame);
    raw.expect_error(12, Errno::EPROTO);

    // Truncated: the header promises more body than arrives.
    let full = request(13, &mmap_request());
    raw.send(&full[..full.len() - 3]);
    raw.expect_error(13, Errno::EBADMSG);

    // Trailing garbage after a whole frame.
    let mut long = request(14, &mmap_request());
    long.extend_from_slice(b"garbage");
    raw.send(&long);
    raw.expect_error(14, Errno::EBADMSG);

    // A body that is no request (unknown variant).
    let mut unknown = header(MessageKind::Request as u16, VERSION, 15, 1);
    unknown.push(0xee);
    raw.send(&unknown);
    raw.expect_error(15, Errno::EBADMSG);

    // Over-long: the header admits it, and so does the datagram.
    let mut huge = header(MessageKind::Request as u16, VERSION, 16, 60_000);
    huge.resize(HEADER_LEN + 60_000, 0x42);
    raw.send(&huge);
    raw.expect_error(16, Errno::EMSGSIZE);

    // Over-long datagram under a header that claims a small body.
    let mut sneaky = request(17, &mmap_request());
    sneaky.resize(40_000, 0);
    raw.send(&sneaky);
    raw.expect_error(17, Errno::EBADMSG);

    // The connection still works for well-formed requests.
    raw.send(&request(18, &Request::Hello { ticket: None }));
    match raw.answer() {
        Some((18, Reply::Hello { .. })) => {}
        other => panic!("expected a welcome, got {other:?}"),
    }
    raw.send(&request(19, &mmap_request()));
    match raw.answer() {
        Some((19, Reply::Mapped { .. })) => {}
        other => panic!("expected a mapping, got {other:?}"),
    }
    bystander.still_served();

    // Wrong magic: no tag can be trusted, so the connection is dropped.
    frame = request(20, &Request::Exit);
    frame[..4].copy_from_slice(b"XMMU");
    raw.send(&frame);
    raw.expect_dropped();

    // Shorter than a header: dropped too.
    let raw2 = Raw::connect(&d);
    raw2.send(b"NMMU\x01");
    raw2.expect_dropped();
    // An empty datagram reads as a hang-up.
    let raw3 = Raw::connect(&d);
    raw3.send(b"");
    raw3.expect_dropped();

    bystander.still_served();
    assert_daemon_whole(&mut d);
    bystander.finish();
    // The dropped raw client's mapping went with it (its connection
    // thread releases it on its own time: wait for it, within reason).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = d.ctl(&["meminfo"]);
        let (free, total) = (
            meminfo_field(&text, "MemFree"),
            meminfo_field(&text, "MemTotal"),
        );
        if free == total {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "MemFree {free:?} never reached MemTotal {total:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `len` bytes from `rng` (a fixed seed, so failures reproduce).
fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn random_bytes_never_take_the_daemon_down() {
    let mut d = Daemon::start();
    let bystander = Bystander::start(&d);
    let mut rng = Rng::from_state(0x5eed_1234_abcd_0001);
    let mut raw = Raw::connect(&d);
    let (mut replies, mut drops) = (0, 0);
    for round in 0..600u32 {
        let tag = round;
        let frame = match rng.below(4) {
            // Pure noise (almost never a valid magic: dropped).
            0 => {
                let len = rng.below(200) as usize + 1;
                random_bytes(&mut rng, len)
            }
            // A valid header over a random body of random length.
            1 | 2 => {
                let len = rng.below(80) as usize;
                let mut f = header(MessageKind::Request as u16, VERSION, tag, len as u32);
                f.extend(random_bytes(&mut rng, len));
                f
            }
            // A valid header whose length field lies.
            _ => {
                let len = rng.below(64) as usize;
                let claimed = rng.next_u64() as u32;
                let mut f = header(MessageKind::Request as u16, VERSION, tag, claimed);
                f.extend(random_bytes(&mut rng, len));
                f
            }
        };
        let magic_ok = frame.len() >= HEADER_LEN && frame[..4] == *b"NMMU";
        raw.send(&frame);
        match raw.answer() {
            Some((got, _)) => {
                assert!(
                    magic_ok,
                    "round {round}: a reply to a frame without a header"
                );
                assert_eq!(got, tag, "round {round}: the reply must echo the tag");
                replies += 1;
            }
            None => {
                assert!(
                    !magic_ok,
                    "round {round}: dropped although the header was readable"
                );
                drops += 1;
                raw = Raw::connect(&d);
            }
        }
        if round % 100 == 0 {
            bystander.still_served();
        }
    }
    assert!(
        replies > 100 && drops > 50,
        "replies {replies} drops {drops}"
    );
    drop(raw);
    bystander.still_served();
    assert_daemon_whole(&mut d);
    bystander.finish();
    let text = d.ctl(&["meminfo"]);
    let (total, free) = (
        meminfo_field(&text, "MemTotal"),
        meminfo_field(&text, "MemFree"),
    );
    // Random frames may have made processes and mappings; all are gone
    // with their connections (give the daemon a moment to notice).
    for _ in 0..200 {
        let text = d.ctl(&["meminfo"]);
        if meminfo_field(&text, "MemFree") == total {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("memory held after every raw client left: MemFree {free:?} of {total:?}");
}

#[test]
fn descriptors_sent_to_the_daemon_are_not_kept() {
    let mut d = Daemon::start();
    let fd_count = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let raw = Raw::connect(&d);
    // One exchange first, so the daemon has accepted and set up the
    // connection before we count its descriptors.
    raw.send(&request(1000, &Request::Exit));
    raw.expect_error(1000, Errno::ESRCH);
    let before = fd_count(d.pid);
    let file = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsFd;
    for tag in 0..50 {
        raw.0
            .send_with_fds(&request(tag, &Request::Exit), &[file.as_fd(), file.as_fd()])
            .unwrap();
        raw.expect_error(tag, Errno::ESRCH);
    }
    let after = fd_count(d.pid);
    assert!(
        after <= before,
        "the daemon kept passed descriptors: {before} -> {after}"
    );
    assert_daemon_whole(&mut d);
}

#[test]
fn many_connections_come_and_go() {
    let mut d = Daemon::start();
    let client = d.client();
    for round in 0..200u32 {
        let raw = Raw::connect(&d);
        raw.send(&request(round, &Request::Hello { ticket: None }));
        if round % 2 == 0 {
            // Speak, then leave mid-conversation without reading.
            raw.send(&request(round + 1, &mmap_request()));
        }
    }
    // The client that stayed is served while the others come and go.
    let addr = client.mmap(0, 4096, 3, 0x22, -1, 0).unwrap();
    assert!(proc_text(&client, ProcView::SelfMaps).contains(&format!("{addr:08x}")));
    client.munmap(addr, 4096).unwrap();
    drop(client);
    assert_daemon_whole(&mut d);
    for _ in 0..200 {
        let text = d.ctl(&["meminfo"]);
        if meminfo_field(&text, "MemFree") == meminfo_field(&text, "MemTotal") {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("memory held after every connection left");
}

/// A hand-made channel client: the socket, the channel page and the
/// daemon thread's doorbell.
struct RawChannel {
    raw: Raw,
    channel: ChannelPage,
    doorbell: OwnedFd,
}

/// Shake hands by hand and map the channel page the welcome hands over.
fn raw_channel(d: &Daemon) -> RawChannel {
    let raw = Raw::connect(d);
    raw.send(&request(0, &Request::Hello { ticket: None }));
    let mut buf = [0u8; MAX_FRAME];
    let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
    let (got, count) = raw.0.recv_with_fds(&mut buf, &mut fds).unwrap();
    assert!(matches!(got, Datagram::Frame { .. }));
    assert_eq!(count, 4, "arena, channel, doorbell and map generation");
    let channel = ChannelPage::open(fds[1].as_ref().unwrap().as_fd()).unwrap();
    let doorbell = fds[2].take().unwrap();
    RawChannel {
        raw,
        channel,
        doorbell,
    }
}

/// Post `frame` on the channel and wait (bounded) for the answer there.
fn channel_call(rc: &RawChannel, frame: &[u8]) -> Option<(u32, Reply)> {
    let (raw, channel) = (&rc.raw, &rc.channel);
    let (seq, wake) = channel.post_request(frame);
    if wake {
        nommu::sys::eventfd_ring(rc.doorbell.as_fd());
    }
    for _ in 0..400 {
        if channel.spin_for_reply(seq) == Spin::Ready
            || channel.park_for_reply(seq, Duration::from_millis(5))
        {
            let mut out = [0u8; MAX_FRAME];
            let len = channel.take_reply(&mut out).unwrap();
            let f = decode_reply(&out[..len]).expect("the daemon's reply decodes");
            return Some((f.tag, f.message));
        }
        if raw.0.hung_up() {
            return None;
        }
    }
    panic!("no answer on the channel");
}

#[test]
fn garbage_on_the_channel_page_gets_answers_there() {
    let mut d = Daemon::start();
    let bystander = Bystander::start(&d);
    let rc = raw_channel(&d);
    // A good request first.
    match channel_call(&rc, &request(1, &mmap_request())) {
        Some((1, Reply::Mapped { .. })) => {}
        other => panic!("expected a mapping, got {other:?}"),
    }
    let mut rng = Rng::from_state(0xc4a7_7e1d_0000_0002);
    for tag in 2..300u32 {
        let len = rng.below(60) as usize;
        let mut frame = header(MessageKind::Request as u16, VERSION, tag, len as u32);
        frame.extend(random_bytes(&mut rng, len));
        match channel_call(&rc, &frame) {
            Some((got, _)) => assert_eq!(got, tag),
            None => panic!("dropped although the header was readable"),
        }
    }
    // Bad magic on the channel: the connection is dropped.
    let mut bad = request(400, &Request::Exit);
    bad[0] = b'X';
    assert_eq!(channel_call(&rc, &bad), None);
    bystander.still_served();
    assert_daemon_whole(&mut d);
    bystander.finish();
}

/// `Open { path }` as raw bytes.
fn open_request(tag: u32, path: &str) -> Vec<u8> {
    request(
        tag,
        &Request::Open {
            path: protocol::Path::try_from(path).unwrap(),
            flags: 0,
            mode: 0,
        },
    )
}

#[test]
fn host_descriptors_are_checked_and_not_kept() {
    use std::os::fd::AsFd;
    let mut d = Daemon::start();
    let bystander = Bystander::start(&d);
    let raw = Raw::connect(&d);
    raw.send(&request(1, &Request::Hello { ticket: None }));
    let mut buf = vec![0u8; 64 << 10];
    let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
    let (got, _) = raw.0.recv_with_fds(&mut buf, &mut fds).unwrap();
    assert!(matches!(got, Datagram::Frame { .. }));
    drop(fds);
    let fd_count = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fd_count(d.pid);

    let file = std::fs::File::open("/proc/self/exe").unwrap();
    // Two descriptors on a host-file open: refused.
    raw.0
        .send_with_fds(&open_request(2, "/.host-fd"), &[file.as_fd(), file.as_fd()])
        .unwrap();
    raw.expect_error(2, Errno::EINVAL);
    // None: there is nothing to open.
    raw.send(&open_request(3, "/.host-fd"));
    raw.expect_error(3, Errno::EBADF);
    // A guessed token opens nothing.
    raw.send(&open_request(
        4,
        "/.host-fd/0123456789abcdef0123456789abcdef",
    ));
    raw.expect_error(4, Errno::ENOENT);
    // An O_PATH descriptor cannot be read.
    let path_only = {
        // SAFETY: a NUL-terminated literal; the result is checked.
        let fd = unsafe { libc::open(c"/proc/self/exe".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: a fresh descriptor owned once.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    };
    raw.0
        .send_with_fds(&open_request(5, "/.host-fd"), &[path_only.as_fd()])
        .unwrap();
    raw.expect_error(5, Errno::EBADF);
    // A descriptor on another path is closed and the open served as usual.
    raw.0
        .send_with_fds(&open_request(6, "/nowhere/x"), &[file.as_fd()])
        .unwrap();
    raw.expect_error(6, Errno::ENOENT);

    // Host files opened and closed again leave no descriptor behind.
    for round in 0..50u32 {
        let tag = 100 + 2 * round;
        raw.0
            .send_with_fds(&open_request(tag, "/.host-fd"), &[file.as_fd()])
            .unwrap();
        let Some((t, Reply::Fd(fd))) = raw.answer() else {
            panic!("host-file open refused");
        };
        assert_eq!(t, tag);
        raw.send(&request(tag + 1, &Request::Close { fd }));
        assert_eq!(raw.answer(), Some((tag + 1, Reply::Done)));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let after = fd_count(d.pid);
        if after <= before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon kept host descriptors: {before} -> {after}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    bystander.still_served();
    bystander.finish();
    assert_daemon_whole(&mut d);
}
