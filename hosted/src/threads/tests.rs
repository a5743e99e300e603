//! The threads home's own behaviour: connection life cycle, bad frames,
//! concurrent callers, shutdown.

use super::*;
use nommu::Transport;
use protocol::linux::{PROT_READ, PROT_WRITE};
use protocol::{encode_request, Request, MAX_FRAME};

const RW: u32 = PROT_READ | PROT_WRITE;

fn home() -> ThreadsHome {
    ThreadsHome::with_arena_size(4 << 20).unwrap()
}

#[test]
fn addresses_are_real_pointers_and_drop_releases_everything() {
    let home = home();
    let a = home.spawn_process().unwrap();
    let b = home.spawn_process().unwrap();
    assert_ne!(a.pid(), b.pid());
    let x = a.mmap_anon(3 * 4096, RW).unwrap();
    assert_eq!(a.welcome().arena_base, home.arena().base());
    let ptr = a.ptr(x, 3 * 4096).unwrap();
    assert_eq!(ptr as u64, x);
    a.write(x + 4096, b"shared bytes").unwrap();
    let mut seen = [0u8; 12];
    b.read(x + 4096, &mut seen).unwrap();
    assert_eq!(&seen, b"shared bytes");
    assert_eq!(home.stats().unwrap().mmap_copy_pages, 3);
    drop(a);
    let stats = home.stats().unwrap();
    assert_eq!((stats.mmap_copy_pages, stats.processes), (0, 1));
    assert_eq!(b.write(home.arena().base() - 1, b"x"), Err(Errno::EFAULT));
    home.check_invariants().unwrap();
}

#[test]
fn a_frame_without_a_header_closes_only_that_connection() {
    let home = home();
    let bad = home.spawn_process().unwrap();
    let good = home.spawn_process().unwrap();
    bad.mmap_anon(4096, RW).unwrap();
    let mut reply = [0u8; MAX_FRAME];
    let transport = bad.client().transport();
    assert_eq!(transport.call(b"junk", &mut reply), Err(Errno::ENOTCONN));
    assert_eq!(bad.mmap_anon(4096, RW), Err(Errno::ENOTCONN));
    assert!(good.mmap_anon(4096, RW).is_ok());
    let stats = home.stats().unwrap();
    assert_eq!((stats.processes, stats.mmap_copy_pages), (1, 1));
    home.check_invariants().unwrap();
}

#[test]
fn a_frame_with_a_header_but_a_bad_body_gets_an_error_reply() {
    let home = home();
    let p = home.spawn_process().unwrap();
    let mut frame = [0u8; MAX_FRAME];
    let len = encode_request(7, &Request::Fork, &mut frame);
    frame[len - 1] = 0xff;
    let mut reply = [0u8; MAX_FRAME];
    let got = p
        .client()
        .transport()
        .call(&frame[..len], &mut reply)
        .unwrap();
    let answer = protocol::decode_reply(&reply[..got]).unwrap();
    assert_eq!(answer.tag, 7);
    assert!(matches!(answer.message, protocol::Reply::Error(_)));
    assert!(p.mmap_anon(4096, RW).is_ok());
    let oversized = vec![0u8; MAX_FRAME + 1];
    assert_eq!(
        p.client().transport().call(&oversized, &mut reply),
        Err(Errno::EMSGSIZE)
    );
}

#[test]
fn clone_children_attach_by_ticket_once() {
    let home = home();
    let parent = home.spawn_process().unwrap();
    let (pid, ticket) = parent.clone_process(protocol::linux::SIGCHLD).unwrap();
    let child = home.attach(ticket).unwrap();
    assert_eq!(child.pid(), pid);
    assert!(home.attach(ticket).is_err());
    assert!(home.attach(ticket ^ 1).is_err());
    child.exit().unwrap();
    assert_eq!(home.stats().unwrap().processes, 1);
}

#[test]
fn two_starts_give_different_tickets_for_the_same_clone() {
    // The same configuration, the same first clone of the same first
    // process: only the per-start secret tells the tickets apart.
    let ticket = || {
        let home = home();
        let parent = home.spawn_process().unwrap();
        parent.clone_process(protocol::linux::SIGCHLD).unwrap().1
    };
    let (a, b) = (ticket(), ticket());
    assert_ne!(a, b);
}

#[test]
fn concurrent_callers_of_one_process_are_serialised() {
    let home = home();
    let p = home.spawn_process().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..200 {
                    let x = p.mmap_anon(4096, RW).unwrap();
                    p.munmap(x, 4096).unwrap();
                }
            });
        }
    });
    assert_eq!(home.stats().unwrap().mmap_copy_pages, 0);
    home.check_invariants().unwrap();
}

#[test]
fn after_shutdown_calls_fail_with_enotconn() {
    let home = home();
    let p = home.spawn_process().unwrap();
    let x = p.mmap_anon(4096, RW).unwrap();
    home.shutdown().unwrap();
    assert_eq!(p.mmap_anon(4096, RW), Err(Errno::ENOTCONN));
    // The arena outlives the server while a handle holds it.
    p.write(x, b"still memory").unwrap();
}

#[test]
fn a_blocking_home_works_too() {
    let tuning = Tuning {
        client_spin: Duration::ZERO,
        server_spin: Duration::ZERO,
    };
    let config = Config {
        arena_size: 1 << 20,
        ..Config::default()
    };
    let home = ThreadsHome::start_tuned(config, tuning).unwrap();
    let p = home.spawn_process().unwrap();
    for _ in 0..100 {
        let x = p.mmap_anon(8192, RW).unwrap();
        p.munmap(x, 8192).unwrap();
    }
    assert_eq!(ThreadsHome::with_arena_size(100).err(), Some(Errno::EINVAL));
}

#[test]
fn a_driver_connection_carries_its_own_calls_and_sorts_frames_by_kind() {
    let home = home();
    let connection = home.connect_driver(ROOT).unwrap();
    let id = connection.id();
    let client = nommu::Client::new(connection);
    client.hello(None).unwrap();
    let x = client
        .mmap(
            0,
            4096,
            RW,
            protocol::linux::MAP_PRIVATE | protocol::linux::MAP_ANONYMOUS,
            -1,
            0,
        )
        .unwrap();
    client.munmap(x, 4096).unwrap();
    // A reply nobody waits for is not a driver request.
    let connection = client.transport();
    connection
        .send(&request_frame(
            99,
            &Request::ReadSysctl {
                name: protocol::Sysctl::NrTrimPages,
            },
        ))
        .unwrap();
    let waited = connection.next_request(Some(Duration::from_millis(50)));
    assert_eq!(waited, Ok(None));
    assert_eq!(client.read_sysctl(protocol::Sysctl::NrTrimPages), Ok(1));
    // Garbage without a header closes the connection.
    connection.send(b"junk").unwrap();
    assert_eq!(
        connection.recv_frame(Some(Duration::from_secs(5))),
        Err(Errno::ENOTCONN)
    );
    assert_ne!(id, home.connect_driver(ROOT).unwrap().id());
    home.check_invariants().unwrap();
}

/// A device of one object whose bytes are all 7, with storage it got at
/// start.
struct Sevens {
    storage: Option<u64>,
}

impl drivers::BackingDevice for Sevens {
    fn registration(&self) -> protocol::DriverRegistration {
        protocol::DriverRegistration {
            name: "sevens".try_into().unwrap(),
            mount: "/dev/sevens".try_into().unwrap(),
            dev: (0, 7),
            noexec: false,
            read_only: false,
        }
    }

    fn start(&mut self, host: &mut dyn drivers::DriverHost) -> Result<(), Errno> {
        let at = host.alloc_backing(1)?;
        host.fill_arena(at, 7, 4096)?;
        self.storage = Some(at);
        Ok(())
    }

    fn serve(
        &mut self,
        request: protocol::DriverRequest,
        host: &mut dyn drivers::DriverHost,
    ) -> protocol::DriverReply {
        use protocol::{DriverReply, DriverRequest};
        match request {
            DriverRequest::Lookup { .. } | DriverRequest::Stat { .. } => {
                DriverReply::Opened(protocol::ObjectInfo {
                    object: 1,
                    ino: 1,
                    kind: protocol::ObjectKind::CharDevice,
                    mode: 0o666,
                    size: 4096,
                    caps: Some(0),
                    ops: protocol::DriverOps(protocol::DriverOps::READ),
                    io_memory: false,
                })
            }
            DriverRequest::ReadData { offset, len, .. } => {
                let mut data = protocol::Bytes::new();
                let n = (len as u64).min(4096u64.saturating_sub(offset)) as usize;
                let mut buf = vec![0u8; n];
                let from = self.storage.unwrap_or(0) + offset;
                if host.read_arena(from, &mut buf).is_err() {
                    return DriverReply::Error(Errno::EIO);
                }
                let _ = data.extend_from_slice(&buf);
                DriverReply::Data(data)
            }
            DriverRequest::Release { .. } => DriverReply::Done,
            _ => DriverReply::Error(Errno::EINVAL),
        }
    }
}

#[test]
fn a_mounted_driver_serves_until_its_mount_is_dropped() {
    let home = home();
    let (mount, storage) = home
        .mount_with(Sevens { storage: None }, |d| d.storage)
        .unwrap();
    let storage = storage.unwrap();
    assert!(home.arena().ptr(storage, 4096).is_some());
    assert_eq!(mount.mount_point(), "/dev/sevens");
    assert_eq!(home.stats().unwrap().backing_pages, 1);
    let p = home.spawn_process().unwrap();
    let fd = p.client().open("/dev/sevens", 0, 0).unwrap();
    let mut buf = [0u8; 3000];
    assert_eq!(p.client().pread(fd, &mut buf, 2000), Ok(2096));
    assert!(buf[..2096].iter().all(|&b| b == 7));
    p.client().close(fd).unwrap();
    drop(mount);
    assert!(p.client().open("/dev/sevens", 0, 0).is_err());
    let stats = home.stats().unwrap();
    assert_eq!((stats.drivers, stats.backing_pages), (0, 0));
    assert_eq!(stats.free_pages, stats.total_pages);
    // A boxed device mounts the same way; a second driver for a mounted
    // name is refused.
    let first = home.mount(Box::new(Sevens { storage: None })).unwrap();
    let second = home.mount(Box::new(Sevens { storage: None }));
    assert_eq!(second.err(), Some(Errno::EBUSY));
    first.stop();
}
