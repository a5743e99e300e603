//! What the memsrv fuzz targets share: a simulated arena that stops the
//! run on any access outside it, and a harness that feeds the server
//! frames from several connections, collects what it sends (replies to
//! clients, requests to drivers) and checks the server's invariants after
//! every step.

use std::collections::VecDeque;

use zerocopy::IntoBytes;

use memsrv::{ClientId, Config, Credentials, Effect, MemoryServer, PhysicalMemory};
use protocol::{
    decode_driver_request, decode_reply, encode_driver_reply, encode_request, DriverReply,
    DriverRequest, FrameHeader, MessageKind, Reply, Request, HEADER_LEN, MAX_BODY, MAX_FRAME,
    PAGE_SIZE,
};

/// Where the arena starts.
pub const BASE: u64 = 0x0040_0000;
/// Pages of arena: small, so exhaustion and fragmentation are reached.
pub const PAGES: u64 = 64;
/// Connections the harness speaks for.
pub const CLIENTS: u64 = 6;

/// The arena as bytes. memsrv promises every range it hands the memory is
/// inside the arena; an access outside it panics, so a broken promise is
/// a crash the fuzzer reports.
pub struct Arena {
    bytes: Vec<u8>,
}

impl Arena {
    fn range(&self, addr: u64, len: u64) -> core::ops::Range<usize> {
        let start = addr
            .checked_sub(BASE)
            .unwrap_or_else(|| panic!("memsrv touched {addr:#x}, below the arena"));
        let end = start
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len() as u64)
            .unwrap_or_else(|| panic!("memsrv touched [{addr:#x}, +{len:#x}) past the arena"));
        start as usize..end as usize
    }
}

impl PhysicalMemory for Arena {
    fn fill(&mut self, addr: u64, len: u64, byte: u8) {
        let r = self.range(addr, len);
        self.bytes[r].fill(byte);
    }

    fn read(&self, addr: u64, buf: &mut [u8]) {
        buf.copy_from_slice(&self.bytes[self.range(addr, buf.len() as u64)]);
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) {
        let r = self.range(addr, bytes.len() as u64);
        self.bytes[r].copy_from_slice(bytes);
    }

    fn copy(&mut self, src: u64, dst: u64, len: u64) {
        let from = self.range(src, len);
        let to = self.range(dst, len);
        self.bytes.copy_within(from, to.start);
    }

    fn load_u32(&self, addr: u64) -> u32 {
        assert!(addr % 4 == 0, "futex word {addr:#x} is not aligned");
        memsrv::unshared_words::load_u32(self, addr)
    }

    fn update_u32(&mut self, addr: u64, f: &dyn Fn(u32) -> u32) -> u32 {
        memsrv::unshared_words::update_u32(self, addr, f)
    }
}

thread_local! {
    /// The arena buffer of the last harness, kept for the next.
    static SPARE: core::cell::Cell<Vec<u8>> = const { core::cell::Cell::new(Vec::new()) };
}

impl Drop for Harness {
    fn drop(&mut self) {
        let bytes = core::mem::take(&mut self.server.memory_mut().bytes);
        SPARE.with(|s| s.set(bytes));
    }
}

/// A driver request the server sent and nobody answered yet.
#[derive(Clone, Debug)]
pub struct Outstanding {
    pub driver: ClientId,
    pub tag: u32,
    pub request: DriverRequest,
}

/// The server and what the harness learnt from its replies, to aim the
/// next requests at live addresses, descriptors and ids.
pub struct Harness {
    pub server: MemoryServer<Arena>,
    pub now_ms: u64,
    pub outstanding: VecDeque<Outstanding>,
    /// Addresses from `Mapped` replies (mappings, backing storage).
    pub addrs: Vec<u64>,
    /// Values from `Value`, `Fd`, `Cloned`, `Hello`: descriptors, segment
    /// ids, tickets, pids.
    pub values: Vec<i64>,
    next_tag: u32,
}

/// Keep the most recent `n` entries of a list the harness picks from.
fn remember<T>(list: &mut Vec<T>, item: T) {
    if list.len() >= 32 {
        list.remove(0);
    }
    list.push(item);
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        let config = Config {
            arena_base: BASE,
            arena_size: PAGES * PAGE_SIZE,
            max_order: 4,
            driver_timeout_ms: 100,
            max_pending_ops: 4,
            max_open_files: 8,
            max_map_count: 32,
            max_pending_children: 4,
            ..Config::default()
        };
        // The last run's buffer, refilled: a fresh one would be mapped and
        // faulted in page by page on every run, the bulk of a short run.
        let mut bytes = SPARE.with(|s| s.take());
        bytes.clear();
        bytes.resize((PAGES * PAGE_SIZE) as usize, 0xEE);
        let arena = Arena { bytes };
        let server = MemoryServer::new(config, arena).expect("the fuzz configuration is valid");
        Self {
            server,
            now_ms: 0,
            outstanding: VecDeque::new(),
            addrs: Vec::new(),
            values: Vec::new(),
            next_tag: 1,
        }
    }

    /// Connect `client` as `uid` (a host pid, when given, lets several
    /// connections speak for one process).
    pub fn connect(&mut self, client: u64, uid: u32, host_pid: Option<u32>) {
        self.server.connect(
            ClientId(client),
            Credentials {
                pid: host_pid,
                uid,
                gid: uid,
            },
        );
        self.after(Vec::new());
    }

    pub fn disconnect(&mut self, client: u64) {
        let mut fx = Vec::new();
        self.server.disconnect_with(ClientId(client), &mut fx);
        self.after(fx);
    }

    /// Send `request` from `client` as a frame.
    pub fn call(&mut self, client: u64, request: &Request) {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_request(tag, request, &mut buf);
        self.frame(client, &buf[..len]);
    }

    /// A frame of `kind` whose body is `body` (cut to [`MAX_BODY`]).
    pub fn body_frame(kind: MessageKind, tag: u32, body: &[u8]) -> Vec<u8> {
        let body = &body[..body.len().min(MAX_BODY)];
        let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
        frame.extend_from_slice(FrameHeader::new(kind, tag, body.len()).as_bytes());
        frame.extend_from_slice(body);
        frame
    }

    /// Any bytes from `client`, as the transport delivers them.
    pub fn frame(&mut self, client: u64, bytes: &[u8]) {
        let mut fx = Vec::new();
        self.server.handle_frame(ClientId(client), bytes, &mut fx);
        self.after(fx);
    }

    /// Take the `pick`-th outstanding driver request (if any).
    pub fn take_outstanding(&mut self, pick: usize) -> Option<Outstanding> {
        if self.outstanding.is_empty() {
            return None;
        }
        let at = pick % self.outstanding.len();
        self.outstanding.remove(at)
    }

    /// Answer an outstanding driver request with `reply`.
    pub fn answer(&mut self, to: &Outstanding, reply: &DriverReply) {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_driver_reply(to.tag, reply, &mut buf);
        self.frame(to.driver.0, &buf[..len]);
    }

    /// Answer an outstanding driver request with any body bytes.
    pub fn answer_body(&mut self, to: &Outstanding, body: &[u8]) {
        let frame = Self::body_frame(MessageKind::DriverReply, to.tag, body);
        self.frame(to.driver.0, &frame);
    }

    /// The clock moves on by `ms`.
    pub fn tick(&mut self, ms: u64) {
        self.now_ms = self.now_ms.saturating_add(ms);
        let mut fx = Vec::new();
        self.server.tick(self.now_ms, &mut fx);
        self.after(fx);
    }

    /// Look at what the server sent, then check its invariants.
    fn after(&mut self, mut fx: Vec<Effect>) {
        fx.extend(self.server.take_effects());
        for effect in fx {
            let Effect::Send { to, frame } = effect else {
                continue;
            };
            let bytes = frame.as_slice();
            if bytes.get(6..8) == Some(&[3, 0][..]) {
                let f = decode_driver_request(bytes).expect("the server sent a bad driver frame");
                self.outstanding.push_back(Outstanding {
                    driver: to,
                    tag: f.tag,
                    request: f.message,
                });
                if self.outstanding.len() > 64 {
                    self.outstanding.pop_front();
                }
                continue;
            }
            let reply = decode_reply(bytes).expect("the server sent a bad reply frame");
            match reply.message {
                Reply::Mapped { addr } => remember(&mut self.addrs, addr),
                Reply::Value(v) => remember(&mut self.values, v),
                Reply::Fd(fd) => remember(&mut self.values, i64::from(fd)),
                Reply::Cloned { pid, ticket } => {
                    remember(&mut self.values, i64::from(pid));
                    remember(&mut self.values, ticket as i64);
                }
                Reply::Hello { pid, .. } => remember(&mut self.values, i64::from(pid)),
                _ => {}
            }
        }
        if let Err(broken) = self.server.check_invariants() {
            panic!("invariant broken: {broken}");
        }
    }

    /// The `pick`-th remembered address, or a page of the arena.
    pub fn addr(&self, pick: u8) -> u64 {
        if self.addrs.is_empty() || pick & 0x80 != 0 {
            return BASE + u64::from(pick & 0x3f) * PAGE_SIZE;
        }
        self.addrs[usize::from(pick) % self.addrs.len()]
    }

    /// The `pick`-th remembered value, or a small number.
    pub fn value(&self, pick: u8) -> i64 {
        if self.values.is_empty() || pick & 0x80 != 0 {
            return i64::from(pick & 0x7f) - 1;
        }
        self.values[usize::from(pick) % self.values.len()]
    }
}
