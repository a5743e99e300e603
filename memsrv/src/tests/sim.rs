//! A simulated physical memory and a small harness around the server.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::{ClientId, Config, Credentials, MemoryServer, PhysicalMemory};
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use protocol::{Errno, OffsetUnit, ProcView, Reply, Request, PAGE_SIZE};

/// The arena as a byte vector indexed by `addr − base`.
pub struct SimMemory {
    pub base: u64,
    pub bytes: Vec<u8>,
    /// The driver requests the server said it awaits no longer, in order.
    pub ended_calls: Vec<u32>,
    /// Answer [`PhysicalMemory::may_add_mapping`] `false` for every
    /// address space.
    pub refuse_mappings: bool,
}

impl SimMemory {
    /// Filled with 0xEE so a missing zero-fill shows.
    pub fn new(base: u64, size: u64) -> Self {
        Self {
            base,
            bytes: vec![0xEE; size as usize],
            ended_calls: Vec::new(),
            refuse_mappings: false,
        }
    }

    pub fn slice(&self, addr: u64, len: u64) -> &[u8] {
        let from = (addr - self.base) as usize;
        &self.bytes[from..from + len as usize]
    }

    pub fn bytes_at(&mut self, addr: u64, len: u64) -> &mut [u8] {
        let from = (addr - self.base) as usize;
        &mut self.bytes[from..from + len as usize]
    }
}

impl PhysicalMemory for SimMemory {
    fn fill(&mut self, addr: u64, len: u64, byte: u8) {
        self.bytes_at(addr, len).fill(byte);
    }

    fn read(&self, addr: u64, buf: &mut [u8]) {
        buf.copy_from_slice(self.slice(addr, buf.len() as u64));
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) {
        self.bytes_at(addr, bytes.len() as u64)
            .copy_from_slice(bytes);
    }

    fn copy(&mut self, src: u64, dst: u64, len: u64) {
        let from = (src - self.base) as usize;
        let to = (dst - self.base) as usize;
        self.bytes.copy_within(from..from + len as usize, to);
    }

    fn load_u32(&self, addr: u64) -> u32 {
        crate::unshared_words::load_u32(self, addr)
    }

    fn update_u32(&mut self, addr: u64, f: &dyn Fn(u32) -> u32) -> u32 {
        crate::unshared_words::update_u32(self, addr, f)
    }

    fn driver_call_ended(&mut self, tag: u32) {
        self.ended_calls.push(tag);
    }

    fn may_add_mapping(&self, _mm: u64) -> bool {
        !self.refuse_mappings
    }
}

pub const BASE: u64 = 0x00a0_0000;
pub const P: u64 = PAGE_SIZE;
pub const RW: u32 = PROT_READ | PROT_WRITE;
pub const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

/// The user the tests' drivers run as (the owner of their objects),
/// allowed to serve mounts.
pub const DRIVER_UID: u32 = 1000;

/// A server over a simulated arena of `pages` pages at [`BASE`]; root and
/// [`DRIVER_UID`] may serve mounts.
pub fn server_with(pages: u64, tweak: impl FnOnce(&mut Config)) -> MemoryServer<SimMemory> {
    let mut config = Config {
        arena_base: BASE,
        arena_size: pages * P,
        drivers: crate::DriverOwner::User(DRIVER_UID),
        ..Config::default()
    };
    tweak(&mut config);
    let memory = SimMemory::new(config.arena_base, config.arena_size);
    MemoryServer::new(config, memory).unwrap()
}

pub fn server(pages: u64) -> MemoryServer<SimMemory> {
    server_with(pages, |_| {})
}

/// A server of `pages` pages whose connection 1 is a root process (how
/// most single-server tests begin).
pub fn root_process(pages: u64) -> MemoryServer<SimMemory> {
    root_process_with(pages, |_| {})
}

/// [`root_process`] with the configuration changed by `tweak`.
pub fn root_process_with(pages: u64, tweak: impl FnOnce(&mut Config)) -> MemoryServer<SimMemory> {
    let mut s = server_with(pages, tweak);
    hello(&mut s, 1, 0, None).unwrap();
    s
}

/// The credentials of a connection as user `uid`, group `gid`, with no
/// host pid to vouch for.
pub fn user(uid: u32, gid: u32) -> Credentials {
    Credentials {
        pid: None,
        uid,
        gid,
    }
}

/// Connect `client` with these credentials and say Hello.
pub fn hello(
    s: &mut MemoryServer<SimMemory>,
    client: u64,
    uid: u32,
    ticket: Option<u64>,
) -> Result<u32, Errno> {
    s.connect(ClientId(client), user(uid, uid));
    match s.handle_now(ClientId(client), Request::Hello { ticket }) {
        Reply::Hello { pid, .. } => Ok(pid),
        Reply::Error(e) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

pub fn mmap(
    s: &mut MemoryServer<SimMemory>,
    c: u64,
    len: u64,
    prot: u32,
    flags: u32,
) -> Result<u64, Errno> {
    mmap_call(
        s,
        c,
        mmap_request(0, len, prot, flags, -1, 0, OffsetUnit::Bytes),
    )
}

pub use protocol::mmap_request;

/// `mmap(0, len, RW, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)` as a request.
pub fn anon_request(len: u64) -> Request {
    mmap_request(0, len, RW, ANON, -1, 0, OffsetUnit::Bytes)
}

/// Send an `Mmap` request for connection `c`: the address, or the errno.
pub fn mmap_call(s: &mut MemoryServer<SimMemory>, c: u64, request: Request) -> Result<u64, Errno> {
    match s.handle_now(ClientId(c), request) {
        Reply::Mapped { addr } => Ok(addr),
        Reply::Error(e) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

pub fn munmap(s: &mut MemoryServer<SimMemory>, c: u64, addr: u64, len: u64) -> Result<(), Errno> {
    s.handle_now(ClientId(c), Request::Munmap { addr, len })
        .into_result()
        .map(|_| ())
}

/// The whole text of a `/proc` view, read chunk by chunk.
pub fn read_proc(s: &mut MemoryServer<SimMemory>, c: u64, view: ProcView) -> Result<String, Errno> {
    let mut out = Vec::new();
    loop {
        let r = s.handle_now(
            ClientId(c),
            Request::ReadProc {
                view,
                offset: out.len() as u32,
            },
        );
        match r.into_result()? {
            Reply::ProcText { total, data } => {
                if data.is_empty() {
                    assert_eq!(out.len(), total as usize);
                    break;
                }
                out.extend_from_slice(&data);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    Ok(String::from_utf8(out).unwrap())
}

/// `MmapCopy` in kB as `/proc/meminfo` shows it.
pub fn mmap_copy_kb(s: &MemoryServer<SimMemory>) -> u64 {
    s.stats().mmap_copy_pages * 4
}
