//! memsrv's core alone, counted in instructions rather than timed, so a
//! change can be judged without the machine's noise:
//! `scripts/count-instructions.sh` runs this under callgrind and divides.
//!
//! Each case runs a warm-up and then `N` iterations, both through its own
//! `#[inline(never)]` function (`measured_*`). The cases: a 4 KiB
//! anonymous mmap+munmap pair through [`MemoryServer::handle`] (decoded
//! requests, no frames), the same pair as frames through
//! [`MemoryServer::handle_frame`] (decode, act, encode the reply effect),
//! and a trivial request (a sysctl read) through both. The script counts
//! inside `measured_*` for the first kind and inside `handle_frame` alone
//! for the second (the client's encoding and decoding stay out), over the
//! warm-up and the `N` iterations. Run directly (`cargo bench -p memsrv
//! --bench core_instructions`) it prints wall-clock figures.

use memsrv::{Answer, ClientId, Config, Credentials, Effect, MemoryServer, PhysicalMemory};
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use protocol::{encode_request, OffsetUnit, Reply, Request, Sysctl, MAX_FRAME};
use std::hint::black_box;
use std::time::Instant;

const ARENA_BASE: u64 = 0x1000_0000;
const ARENA_SIZE: u64 = 16 << 20;
const LEN: u64 = 4096;

/// The arena as plain bytes, so the zeroing of each new mapping costs
/// what it costs in a real home.
struct Bytes(Vec<u8>);

impl Bytes {
    fn at(&self, addr: u64) -> usize {
        (addr - ARENA_BASE) as usize
    }
}

impl PhysicalMemory for Bytes {
    fn fill(&mut self, addr: u64, len: u64, byte: u8) {
        let at = self.at(addr);
        self.0[at..at + len as usize].fill(byte);
    }

    fn read(&self, addr: u64, buf: &mut [u8]) {
        let at = self.at(addr);
        buf.copy_from_slice(&self.0[at..at + buf.len()]);
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) {
        let at = self.at(addr);
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn copy(&mut self, src: u64, dst: u64, len: u64) {
        let (src, dst) = (self.at(src), self.at(dst));
        self.0.copy_within(src..src + len as usize, dst);
    }

    fn load_u32(&self, addr: u64) -> u32 {
        let at = self.at(addr);
        u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap())
    }

    // One thread owns these bytes: a load then a store is atomic enough.
    fn update_u32(&mut self, addr: u64, f: &dyn Fn(u32) -> u32) -> u32 {
        let old = self.load_u32(addr);
        let at = self.at(addr);
        self.0[at..at + 4].copy_from_slice(&f(old).to_le_bytes());
        old
    }
}

const CLIENT: ClientId = ClientId(1);

fn server() -> MemoryServer<Bytes> {
    let config = Config {
        arena_base: ARENA_BASE,
        arena_size: ARENA_SIZE,
        ..Config::default()
    };
    let memory = Bytes(vec![0; ARENA_SIZE as usize]);
    let mut server = MemoryServer::new(config, memory).unwrap();
    let credentials = Credentials {
        pid: None,
        uid: 0,
        gid: 0,
    };
    server.connect(CLIENT, credentials);
    let hello = server.handle(CLIENT, Request::Hello { ticket: None });
    assert!(matches!(hello, Answer::Now(Reply::Hello { .. })));
    server
}

fn mmap_request() -> Request {
    Request::Mmap {
        addr: 0,
        len: LEN,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
        fd: -1,
        offset: 0,
        unit: OffsetUnit::Bytes,
    }
}

fn sysctl_request() -> Request {
    Request::ReadSysctl {
        name: Sysctl::NrTrimPages,
    }
}

fn pair(server: &mut MemoryServer<Bytes>) {
    let Answer::Now(Reply::Mapped { addr }) = server.handle(CLIENT, black_box(mmap_request()))
    else {
        panic!("mmap failed")
    };
    let done = server.handle(CLIENT, black_box(Request::Munmap { addr, len: LEN }));
    assert!(done == Reply::Done);
}

fn sysctl(server: &mut MemoryServer<Bytes>) {
    let value = server.handle(CLIENT, black_box(sysctl_request()));
    assert!(value == Reply::Value(1));
}

/// Encoded request frames, as a home receives them.
struct Frames {
    mmap: Vec<u8>,
    sysctl: Vec<u8>,
    /// Where each munmap request is encoded (its address varies).
    munmap: [u8; MAX_FRAME],
    effects: Vec<Effect>,
}

impl Frames {
    fn new() -> Self {
        let encode = |request: &Request| {
            let mut buf = [0u8; MAX_FRAME];
            let len = encode_request(7, request, &mut buf);
            buf[..len].to_vec()
        };
        Self {
            mmap: encode(&mmap_request()),
            sysctl: encode(&sysctl_request()),
            munmap: [0; MAX_FRAME],
            effects: Vec::with_capacity(4),
        }
    }

    /// The reply frame of the one effect the last frame produced.
    fn reply(&mut self) -> Reply {
        let [Effect::Send { frame, .. }] = &self.effects[..] else {
            panic!("expected one reply")
        };
        let reply = protocol::decode_reply(frame.as_slice()).unwrap().message;
        self.effects.clear();
        reply
    }
}

fn frame_pair(server: &mut MemoryServer<Bytes>, frames: &mut Frames) {
    server.handle_frame(CLIENT, black_box(&frames.mmap), &mut frames.effects);
    let Reply::Mapped { addr } = frames.reply() else {
        panic!("mmap failed")
    };
    let munmap = Request::Munmap { addr, len: LEN };
    let len = encode_request(8, &munmap, &mut frames.munmap);
    server.handle_frame(
        CLIENT,
        black_box(&frames.munmap[..len]),
        &mut frames.effects,
    );
    assert!(frames.reply() == Reply::Done);
}

fn frame_sysctl(server: &mut MemoryServer<Bytes>, frames: &mut Frames) {
    server.handle_frame(CLIENT, black_box(&frames.sysctl), &mut frames.effects);
    assert!(frames.reply() == Reply::Value(1));
}

#[inline(never)]
fn measured_pairs(server: &mut MemoryServer<Bytes>, n: u32) {
    for _ in 0..n {
        pair(server);
    }
}

#[inline(never)]
fn measured_sysctls(server: &mut MemoryServer<Bytes>, n: u32) {
    for _ in 0..n {
        sysctl(server);
    }
}

#[inline(never)]
fn measured_frame_pairs(server: &mut MemoryServer<Bytes>, frames: &mut Frames, n: u32) {
    for _ in 0..n {
        frame_pair(server, frames);
    }
}

#[inline(never)]
fn measured_frame_sysctls(server: &mut MemoryServer<Bytes>, frames: &mut Frames, n: u32) {
    for _ in 0..n {
        frame_sysctl(server, frames);
    }
}

/// Warm-up iterations before each measured loop: the allocator's lists,
/// the maps' nodes, the effect list reach their steady state.
const WARM_UP: u32 = 100;

/// The cases, by the name `count-instructions.sh` passes.
const CASES: [&str; 4] = ["pairs", "sysctls", "frame_pairs", "frame_sysctls"];

/// `[CASE] [ITERATIONS]`: one case (default: all), `ITERATIONS` each
/// (default 10,000).
fn arguments() -> (Vec<&'static str>, u32) {
    let mut cases = Vec::new();
    let mut n = 10_000;
    for arg in std::env::args().skip(1) {
        if let Ok(count) = arg.parse() {
            n = count;
        } else if let Some(case) = CASES.iter().find(|c| **c == arg) {
            cases.push(*case);
        }
    }
    if cases.is_empty() {
        cases.extend(CASES);
    }
    (cases, n)
}

fn main() {
    let (cases, n) = arguments();
    let mut server = server();
    let mut frames = Frames::new();
    println!("memsrv core, {n} iterations per case (wall clock; see count-instructions.sh)");
    for case in cases {
        let start = Instant::now();
        let label = match case {
            "pairs" => {
                measured_pairs(&mut server, WARM_UP);
                measured_pairs(&mut server, n);
                "mmap+munmap pair (4 KiB anonymous)"
            }
            "sysctls" => {
                measured_sysctls(&mut server, WARM_UP);
                measured_sysctls(&mut server, n);
                "sysctl read"
            }
            "frame_pairs" => {
                measured_frame_pairs(&mut server, &mut frames, WARM_UP);
                measured_frame_pairs(&mut server, &mut frames, n);
                "mmap+munmap pair as frames"
            }
            _ => {
                measured_frame_sysctls(&mut server, &mut frames, WARM_UP);
                measured_frame_sysctls(&mut server, &mut frames, n);
                "sysctl read as a frame"
            }
        };
        let ns = start.elapsed().as_nanos() as f64 / f64::from(n + WARM_UP);
        println!("{label:<40} {ns:>8.1} ns  = {:>6.2} M/s", 1e3 / ns);
    }
    server.check_invariants().unwrap();
    assert_eq!(server.stats().vmas, 0);
}
