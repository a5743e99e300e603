//! A server with fake drivers wired in: client calls go in as frames,
//! every effect is carried out (driver requests to the fake drivers, their
//! answers back as frames, replies collected by connection and tag).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use super::fake_driver::{FakeDriver, FakeObject};
use super::sim::*;
use crate::{ClientId, Effect, MemoryServer};
use protocol::linux::{MAP_PRIVATE, MAP_SHARED};
use protocol::{
    decode_reply, encode_request, Bytes, DriverRegistration, Errno, FileStat, MountName,
    OffsetUnit, Path, Reply, Request, MAX_FRAME,
};

pub use protocol::linux::{O_CREAT, O_RDONLY as RDONLY, O_RDWR as RDWR, O_WRONLY as WRONLY};
pub const SH: u32 = MAP_SHARED;
pub const PR: u32 = MAP_PRIVATE;

pub struct Rig {
    pub s: MemoryServer<SimMemory>,
    pub drivers: BTreeMap<ClientId, FakeDriver>,
    /// Replies that arrived, by connection and tag.
    pub replies: BTreeMap<(ClientId, u32), Reply>,
    /// Connections the server dropped.
    pub dropped: Vec<ClientId>,
    queue: VecDeque<Effect>,
    next_tag: u32,
}

impl Rig {
    pub fn with(pages: u64, tweak: impl FnOnce(&mut crate::Config)) -> Self {
        Self {
            s: server_with(pages, tweak),
            drivers: BTreeMap::new(),
            replies: BTreeMap::new(),
            dropped: Vec::new(),
            queue: VecDeque::new(),
            next_tag: 1,
        }
    }

    /// A client process on connection `c`.
    pub fn process(&mut self, c: u64, uid: u32) -> u32 {
        hello(&mut self.s, c, uid, None).unwrap()
    }

    /// A driver on connection `c` mounted at `mount`.
    pub fn driver(&mut self, c: u64, mount: &str, dev: (u8, u8), noexec: bool, ro: bool) {
        let client = ClientId(c);
        // Drivers run as the clients' user (owner of their objects).
        self.s.connect(client, user(DRIVER_UID, DRIVER_UID));
        let reg = DriverRegistration {
            name: heapless::String::try_from("fake").unwrap(),
            mount: MountName::try_from(mount).unwrap(),
            dev,
            noexec,
            read_only: ro,
        };
        let r = self.call(c, Request::RegisterDriver(reg));
        assert!(matches!(r, Reply::Registered { .. }), "{r:?}");
        self.drivers.insert(client, FakeDriver::new(client));
    }

    pub fn d(&mut self, c: u64) -> &mut FakeDriver {
        self.drivers.get_mut(&ClientId(c)).unwrap()
    }

    /// Add an object to driver `c`, built with access to the server.
    pub fn add(
        &mut self,
        c: u64,
        path: &str,
        make: impl FnOnce(&FakeDriver, &mut MemoryServer<SimMemory>) -> FakeObject,
    ) -> u64 {
        let d = self.drivers.get_mut(&ClientId(c)).unwrap();
        let obj = make(d, &mut self.s);
        d.add(path, obj)
    }

    /// Send a request without waiting; returns its tag.
    pub fn send(&mut self, c: u64, req: Request) -> u32 {
        let tag = self.next_tag;
        self.next_tag += 1;
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_request(tag, &req, &mut buf);
        let mut fx = Vec::new();
        self.s.handle_frame(ClientId(c), &buf[..len], &mut fx);
        self.queue.extend(fx);
        self.pump();
        tag
    }

    /// The reply to `tag`, if it came.
    pub fn reply(&mut self, c: u64, tag: u32) -> Option<Reply> {
        self.replies.remove(&(ClientId(c), tag))
    }

    /// Send and return the reply, which must come without held drivers.
    pub fn call(&mut self, c: u64, req: Request) -> Reply {
        let tag = self.send(c, req.clone());
        self.reply(c, tag)
            .unwrap_or_else(|| panic!("no reply to {req:?}"))
    }

    /// Carry out every effect until none is left.
    pub fn pump(&mut self) {
        loop {
            self.queue.extend(self.s.take_effects());
            let Some(effect) = self.queue.pop_front() else {
                break;
            };
            match effect {
                Effect::Send { to, frame } => {
                    let request = matches!(
                        protocol::peek(frame.as_slice()),
                        Some((protocol::MessageKind::DriverRequest, _))
                    );
                    if let (true, Some(d)) = (request, self.drivers.get_mut(&to)) {
                        if let Some(answer) = d.serve_frame(frame.as_slice(), &mut self.s) {
                            let mut fx = Vec::new();
                            self.s.handle_frame(to, &answer, &mut fx);
                            self.queue.extend(fx);
                        }
                    } else {
                        let r = decode_reply(frame.as_slice()).expect("bad reply frame");
                        let old = self.replies.insert((to, r.tag), r.message);
                        assert!(old.is_none(), "two replies to tag {}", r.tag);
                    }
                }
                Effect::Drop { client } => self.dropped.push(client),
            }
        }
    }

    /// Answer the requests driver `c` held, in order.
    pub fn release_held(&mut self, c: u64) {
        let d = self.drivers.get_mut(&ClientId(c)).unwrap();
        d.hold = false;
        let held = core::mem::take(&mut d.held);
        for (tag, req) in held {
            let d = self.drivers.get_mut(&ClientId(c)).unwrap();
            let answer = d.answer(tag, req, &mut self.s);
            let mut fx = Vec::new();
            self.s.handle_frame(ClientId(c), &answer, &mut fx);
            self.queue.extend(fx);
            self.pump();
        }
    }

    /// A driver's connection goes.
    pub fn kill_driver(&mut self, c: u64) {
        self.drivers.remove(&ClientId(c));
        let mut fx = Vec::new();
        self.s.disconnect_with(ClientId(c), &mut fx);
        self.queue.extend(fx);
        self.pump();
    }

    pub fn disconnect(&mut self, c: u64) {
        let mut fx = Vec::new();
        self.s.disconnect_with(ClientId(c), &mut fx);
        self.queue.extend(fx);
        self.pump();
    }

    pub fn tick(&mut self, now: u64) {
        let mut fx = Vec::new();
        self.s.tick(now, &mut fx);
        self.queue.extend(fx);
        self.pump();
    }

    pub fn ok(&self) {
        if let Err(e) = self.s.check_invariants() {
            panic!("invariants: {e}");
        }
    }

    // Client calls.

    /// `open(path, flags, 0644)` as a request.
    pub fn open_req(path: &str, flags: u32) -> Request {
        Request::Open {
            path: Path::try_from(path).unwrap(),
            flags,
            mode: 0o644,
        }
    }

    pub fn open(&mut self, c: u64, path: &str, flags: u32) -> Result<i32, Errno> {
        match self.call(c, Self::open_req(path, flags)) {
            Reply::Fd(fd) => Ok(fd),
            Reply::Error(e) => Err(e),
            other => panic!("open: {other:?}"),
        }
    }

    pub fn close(&mut self, c: u64, fd: i32) -> Result<(), Errno> {
        self.call(c, Request::Close { fd })
            .into_result()
            .map(|_| ())
    }

    pub fn mmap_req(len: u64, prot: u32, flags: u32, fd: i32, pgoff: u64) -> Request {
        mmap_request(0, len, prot, flags, fd, pgoff, OffsetUnit::Pages)
    }

    pub fn mmap(
        &mut self,
        c: u64,
        len: u64,
        prot: u32,
        flags: u32,
        fd: i32,
        pgoff: u64,
    ) -> Result<u64, Errno> {
        match self.call(c, Self::mmap_req(len, prot, flags, fd, pgoff)) {
            Reply::Mapped { addr } => Ok(addr),
            Reply::Error(e) => Err(e),
            other => panic!("mmap: {other:?}"),
        }
    }

    pub fn munmap(&mut self, c: u64, addr: u64, len: u64) -> Result<(), Errno> {
        self.call(c, Request::Munmap { addr, len })
            .into_result()
            .map(|_| ())
    }

    pub fn pread(&mut self, c: u64, fd: i32, len: u32, off: u64) -> Result<Vec<u8>, Errno> {
        self.read_req(c, fd, len, Some(off))
    }

    pub fn read(&mut self, c: u64, fd: i32, len: u32) -> Result<Vec<u8>, Errno> {
        self.read_req(c, fd, len, None)
    }

    fn read_req(
        &mut self,
        c: u64,
        fd: i32,
        len: u32,
        offset: Option<u64>,
    ) -> Result<Vec<u8>, Errno> {
        match self.call(c, Request::Read { fd, len, offset }) {
            Reply::Data(d) => Ok(d.to_vec()),
            Reply::Error(e) => Err(e),
            other => panic!("read: {other:?}"),
        }
    }

    /// `pwrite`/`write`, in `DATA_CHUNK` pieces.
    pub fn pwrite(&mut self, c: u64, fd: i32, data: &[u8], off: Option<u64>) -> Result<u64, Errno> {
        let mut done = 0u64;
        for chunk in data.chunks(protocol::DATA_CHUNK) {
            let data = Bytes::from_slice(chunk).unwrap();
            let offset = off.map(|o| o + done);
            match self.call(c, Request::Write { fd, data, offset }) {
                Reply::Count(n) => done += n,
                Reply::Error(e) => return Err(e),
                other => panic!("write: {other:?}"),
            }
        }
        Ok(done)
    }

    /// A memory-filesystem file opened `O_RDWR | O_CREAT` by `c` and
    /// truncated from 0 to `size` (the way to get one contiguous run,
    /// §7.5); returns the descriptor.
    pub fn memory_file(&mut self, c: u64, path: &str, size: u64) -> i32 {
        let fd = self.open(c, path, RDWR | O_CREAT).unwrap();
        self.ftruncate(c, fd, size).unwrap();
        fd
    }

    pub fn ftruncate(&mut self, c: u64, fd: i32, len: u64) -> Result<(), Errno> {
        self.call(c, Request::Ftruncate { fd, len })
            .into_result()
            .map(|_| ())
    }

    pub fn fstat(&mut self, c: u64, fd: i32) -> Result<FileStat, Errno> {
        match self.call(c, Request::Fstat { fd }) {
            Reply::Stat(st) => Ok(st),
            Reply::Error(e) => Err(e),
            other => panic!("fstat: {other:?}"),
        }
    }

    pub fn lseek(&mut self, c: u64, fd: i32, offset: i64, whence: u32) -> Result<u64, Errno> {
        match self.call(c, Request::Lseek { fd, offset, whence }) {
            Reply::Offset(o) => Ok(o),
            Reply::Error(e) => Err(e),
            other => panic!("lseek: {other:?}"),
        }
    }

    pub fn maps(&mut self, c: u64, view: protocol::ProcView) -> String {
        read_proc(&mut self.s, c, view).unwrap()
    }

    pub fn bytes(&self, addr: u64, len: u64) -> Vec<u8> {
        self.s.memory().slice(addr, len).to_vec()
    }
}
