//! No peer input can take the server down: a driver that answers every
//! request with random replies (random variants, sizes, addresses, errnos
//! including `ENOSYS`, 0 and the server's own marker, wrong and stale
//! tags, garbled frames), asks for and frees random storage, changes
//! modes at random and dies and comes back, while clients send random
//! file calls and mappings. After every step the invariants hold, and no
//! client ever sees `ENOSYS`.

use alloc::vec::Vec;

use super::sim::*;
use crate::process::splitmix64;
use crate::{ClientId, Effect};
use protocol::{
    decode_driver_request, decode_reply, encode_driver_reply, encode_request, Bytes, DriverOps,
    DriverRegistration, DriverReply, DriverRequest, Errno, MountName, ObjectInfo, ObjectKind,
    OffsetUnit, Path, Reply, Request, MAX_FRAME,
};

struct Chaos {
    s: crate::MemoryServer<SimMemory>,
    rng: u64,
    driver: u64,
    /// Driver requests waiting for an answer.
    inbox: Vec<(u32, DriverRequest)>,
    /// Storage the driver holds: (addr, pages).
    runs: Vec<(u64, u64)>,
    tag: u32,
    fx: Vec<Effect>,
    /// Opens, mappings and EIOs clients saw.
    seen: (u32, u32, u32),
}

impl Chaos {
    fn next(&mut self) -> u64 {
        self.rng = splitmix64(self.rng);
        self.rng
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn register(&mut self) {
        self.driver += 1;
        let d = ClientId(self.driver);
        self.s.connect(d, user(0, 0));
        let reg = DriverRegistration {
            name: heapless::String::try_from("chaos").unwrap(),
            mount: MountName::try_from("/x").unwrap(),
            dev: (9, 9),
            noexec: self.below(4) == 0,
            read_only: self.below(4) == 0,
        };
        let r = self.s.handle_now(d, Request::RegisterDriver(reg));
        assert!(matches!(r, Reply::Registered { .. }), "{r:?}");
        self.inbox.clear();
        self.runs.clear();
    }

    /// Carry out effects: driver requests land in the inbox, client replies
    /// are checked.
    fn absorb(&mut self) {
        let mut fx = core::mem::take(&mut self.fx);
        fx.extend(self.s.take_effects());
        for e in fx.drain(..) {
            if let Effect::Send { to, frame } = e {
                let bytes = frame.as_slice();
                if to == ClientId(self.driver)
                    && matches!(
                        protocol::peek(bytes),
                        Some((protocol::MessageKind::DriverRequest, _))
                    )
                {
                    let f = decode_driver_request(bytes).expect("a bad driver request");
                    self.inbox.push((f.tag, f.message));
                } else if let Ok(r) = decode_reply(bytes) {
                    match &r.message {
                        Reply::Fd(_) => self.seen.0 += 1,
                        Reply::Mapped { .. } => self.seen.1 += 1,
                        Reply::Error(Errno::EIO) => self.seen.2 += 1,
                        _ => {}
                    }
                    assert_ne!(
                        r.message,
                        Reply::Error(Errno::ENOSYS),
                        "ENOSYS reached {to:?}"
                    );
                    assert_ne!(r.message, Reply::Error(Errno(0)));
                    assert_ne!(
                        r.message,
                        Reply::Error(Errno(115)),
                        "EINPROGRESS reached {to:?}"
                    );
                }
            }
        }
        self.fx = fx;
    }

    fn client_request(&mut self) -> Request {
        let fd = 3 + self.below(4) as i32;
        let path = ["/x", "/x/a", "/x/b/c", "/y", "/x/"][self.below(5) as usize];
        match self.below(12) {
            0..=2 => Request::Open {
                path: Path::try_from(path).unwrap(),
                flags: [0, 1, 2, 0o102, 0o1002, 0o302, 3][self.below(7) as usize],
                mode: self.below(0o1000) as u32,
            },
            3..=5 => Request::Mmap {
                addr: 0,
                len: [1, P, 2 * P, 3 * P + 7, u64::MAX, 0][self.below(6) as usize],
                prot: self.below(8) as u32,
                flags: [1, 2, 3, 0x12, 0x21][self.below(5) as usize],
                fd,
                offset: self.below(4),
                unit: OffsetUnit::Pages,
            },
            6 => Request::Munmap {
                addr: [BASE, 0x5000_0000, self.next()][self.below(3) as usize] + self.below(4) * P,
                len: self.below(4) * P + self.below(2),
            },
            7 => Request::Read {
                fd,
                len: self.below(3000) as u32,
                offset: [None, Some(0), Some(u64::MAX)][self.below(3) as usize],
            },
            8 => Request::Write {
                fd,
                data: Bytes::from_slice(&[7; 40]).unwrap(),
                offset: [None, Some(5), Some(u64::MAX - 3)][self.below(3) as usize],
            },
            9 => Request::Ftruncate {
                fd,
                len: [0, 1, P, 5 << 30, u64::MAX][self.below(5) as usize],
            },
            10 => Request::Lseek {
                fd,
                offset: [0, -1, i64::MAX, i64::MIN][self.below(4) as usize],
                whence: self.below(4) as u32,
            },
            _ => [Request::Fstat { fd }, Request::Close { fd }][self.below(2) as usize].clone(),
        }
    }

    /// The variant the request expects, with random contents.
    fn plausible_reply(&mut self, req: &DriverRequest) -> DriverReply {
        let r = self.random_reply_of(match req {
            DriverRequest::Lookup { .. } | DriverRequest::Stat { .. } => 2,
            DriverRequest::GetUnmappedArea { .. } => 4,
            DriverRequest::Read { .. } | DriverRequest::WriteData { .. } => 5,
            DriverRequest::ReadData { .. } => 6,
            _ => 1,
        });
        if let (DriverRequest::Read { len, .. }, 0) = (req, self.below(2)) {
            return DriverReply::Count(self.below(len.saturating_add(1)));
        }
        r
    }

    fn random_reply(&mut self) -> DriverReply {
        let kind = self.below(8);
        self.random_reply_of(kind)
    }

    fn random_reply_of(&mut self, kind: u64) -> DriverReply {
        let arena_end = BASE + 256 * P;
        match kind {
            0 => DriverReply::Error(
                [
                    Errno::ENOSYS,
                    Errno::EIO,
                    Errno(0),
                    Errno(115),
                    Errno(60000),
                    Errno::EINVAL,
                ][self.below(6) as usize],
            ),
            1 => DriverReply::Done,
            2 | 3 => DriverReply::Opened(ObjectInfo {
                object: self.below(3),
                ino: self.next(),
                kind: ObjectKind::ALL[self.below(7) as usize],
                mode: self.next() as u32,
                size: [0, 100, 3 * P, u64::MAX, i64::MAX as u64][self.below(5) as usize],
                caps: [None, Some(0xff), Some(0x79), Some(0x39), Some(0x01)]
                    [self.below(5) as usize],
                ops: DriverOps(self.next() as u8 | DriverOps::MMAP),
                io_memory: self.below(2) == 0,
            }),
            4 => {
                let run = self.runs.first().map(|r| r.0).unwrap_or(BASE);
                DriverReply::Address(
                    [
                        run,
                        run + 0x230,
                        BASE,
                        arena_end - 1,
                        0x5000_0000,
                        u64::MAX - 10,
                        self.next(),
                    ][self.below(7) as usize],
                )
            }
            5 => DriverReply::Count([0, 1, 4096, 8192, u64::MAX][self.below(5) as usize]),
            6 => {
                let n = self.below(1025) as usize;
                DriverReply::Data(Bytes::from_slice(&alloc::vec![1; n]).unwrap())
            }
            _ => DriverReply::Data(Bytes::new()),
        }
    }

    fn step(&mut self) {
        let d = ClientId(self.driver);
        match self.below(20) {
            0..=7 => {
                let c = 1 + self.below(2);
                let req = self.client_request();
                self.tag += 1;
                let mut buf = [0u8; MAX_FRAME];
                let len = encode_request(self.tag, &req, &mut buf);
                let mut fx = core::mem::take(&mut self.fx);
                self.s.handle_frame(ClientId(c), &buf[..len], &mut fx);
                self.fx = fx;
            }
            8..=13 if !self.inbox.is_empty() => {
                let i = self.below(self.inbox.len() as u64) as usize;
                let (tag, req) = match self.below(10) {
                    0 => (self.next() as u32, DriverRequest::Release { object: 0 }),
                    _ => self.inbox.swap_remove(i),
                };
                let reply = if self.below(10) < 6 {
                    self.plausible_reply(&req)
                } else {
                    self.random_reply()
                };
                let mut buf = [0u8; MAX_FRAME];
                let len = encode_driver_reply(tag, &reply, &mut buf);
                let mut frame = buf[..len].to_vec();
                if self.below(10) == 0 {
                    let at = 16 + self.below((len - 16) as u64) as usize;
                    frame[at] = self.next() as u8;
                }
                if self.below(20) == 0 {
                    frame.truncate(self.below(len as u64) as usize);
                }
                let mut fx = core::mem::take(&mut self.fx);
                self.s.handle_frame(d, &frame, &mut fx);
                self.fx = fx;
            }
            14 => {
                let pages = 1 + self.below(4);
                match self.s.handle_now(d, Request::AllocBacking { pages }) {
                    Reply::Mapped { addr } => self.runs.push((addr, pages)),
                    other => assert!(matches!(other, Reply::Error(_))),
                }
            }
            15 => {
                let (addr, pages) = match self.runs.first() {
                    Some(&r) => r,
                    None => (BASE, 1),
                };
                if self.s.handle_now(d, Request::FreeBacking { addr, pages }) == Reply::Done {
                    self.runs.remove(0);
                }
            }
            16 => {
                let object = self.below(3);
                let req = if self.below(2) == 0 {
                    Request::BeginExclusive { object }
                } else {
                    Request::EndExclusive { object }
                };
                let _ = self.s.handle_now(d, req);
            }
            17 => {
                let now = self.next() % 100_000;
                let mut fx = core::mem::take(&mut self.fx);
                self.s.tick(now, &mut fx);
                self.fx = fx;
            }
            18 if self.below(5) == 0 => {
                let mut fx = core::mem::take(&mut self.fx);
                self.s.disconnect_with(d, &mut fx);
                self.fx = fx;
                self.register();
            }
            _ => {
                let c = 1 + self.below(2);
                let _ = read_proc(&mut self.s, c, protocol::ProcView::GlobalMaps);
            }
        }
        self.absorb();
        if let Err(e) = self.s.check_invariants() {
            panic!("{e}");
        }
    }
}

#[test]
fn random_driver_answers_never_break_the_server() {
    for seed in 0..6 {
        let mut c = Chaos {
            s: server_with(256, |c| {
                c.max_order = 5;
                c.driver_timeout_ms = 500;
            }),
            rng: seed,
            driver: 100,
            inbox: Vec::new(),
            runs: Vec::new(),
            tag: 0,
            fx: Vec::new(),
            seen: (0, 0, 0),
        };
        hello(&mut c.s, 1, 0, None).unwrap();
        hello(&mut c.s, 2, 1000, None).unwrap();
        c.register();
        for _ in 0..3000 {
            c.step();
        }
        extern crate std;
        std::println!("seed {seed}: opens, mappings, EIOs {:?}", c.seen);
        assert!(
            c.seen.0 > 20 && c.seen.1 > 20 && c.seen.2 > 20,
            "{:?}",
            c.seen
        );
        // Everything goes: every page comes back.
        for client in [1, 2, c.driver] {
            let mut fx = Vec::new();
            c.s.disconnect_with(ClientId(client), &mut fx);
        }
        c.s.check_invariants().unwrap();
        let st = c.s.stats();
        assert_eq!(
            (st.free_pages, st.objects, st.pending_ops, st.open_files),
            (256, 0, 0, 0),
            "seed {seed}"
        );
    }
}
