//! A backing device's side of a connection: the loop every driver runs,
//! whether it is a thread of `memsrvd` (over a socket pair) or a process
//! of its own (`nommu-driver`, over the daemon's socket).
//!
//! The driver says `Hello`, registers ([`protocol::Request::RegisterDriver`]),
//! starts the device, then answers the [`protocol::DriverRequest`] frames
//! (kind 3) memsrv sends with [`protocol::DriverReply`] frames (kind 4),
//! through [`drivers::serve_frame`]. Its own calls (`AllocBacking`, ...)
//! travel as ordinary requests; a driver request that arrives while the
//! driver waits for such a reply is queued and served after. Everything
//! travels over the socket (the shared channel page is for clients).
//!
//! The arena is mapped at the same address here as in the daemon, so the
//! device reads and writes its storage in place ([`ArenaWindow`]).

use drivers::{serve_frame, BackingDevice, DriverHost};
use nommu::sys::socket::{Datagram, SeqPacket, MAX_FDS};
use nommu::transport::arena::ArenaLease;
use protocol::{
    decode_reply, encode_request, DriverRegistration, Errno, MessageKind, Reply, Request, MAX_FRAME,
};
use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};

/// The tag of the handshake; later requests count up from 1.
const HELLO_TAG: u32 = 0;

/// Most driver requests queued while the driver waits for its own reply
/// (memsrv sends at most one per object; more means a confused server).
const MAX_QUEUED: usize = 4096;

/// The kind of a frame, from its header (`None` if too short to say).
pub fn frame_kind(frame: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]))
}

/// The tag of a frame, from its header.
pub fn frame_tag(frame: &[u8]) -> Option<u32> {
    let bytes = frame.get(8..12)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The arena as this process sees it: `[base, base+size)` is mapped
/// shared and read-write, at the same address as in the daemon.
#[derive(Debug)]
pub struct ArenaWindow {
    base: u64,
    size: u64,
    /// Keeps the mapping alive in a driver process (the daemon's own
    /// mapping outlives its driver threads).
    _lease: Option<ArenaLease>,
}

impl ArenaWindow {
    /// The daemon's own arena mapping, which lives as long as the daemon.
    pub fn daemon(base: u64, size: u64) -> Self {
        Self {
            base,
            size,
            _lease: None,
        }
    }

    fn check(&self, addr: u64, len: usize) -> Result<usize, Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if addr < self.base || end > self.base + self.size {
            return Err(Errno::EFAULT);
        }
        usize::try_from(addr).map_err(|_| Errno::EFAULT)
    }

    /// Copy `bytes` into the arena at `addr` (`EFAULT` outside it).
    pub fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let at = self.check(addr, bytes.len())?;
        // SAFETY: `[at, at+len)` lies inside the arena (checked above),
        // which is mapped shared read-write here for as long as `self`
        // lives (the lease, or the daemon's own mapping). Other processes
        // may touch the same bytes; plain bytes have no invalid values.
        unsafe { core::ptr::copy(bytes.as_ptr(), at as *mut u8, bytes.len()) };
        Ok(())
    }

    /// Copy arena bytes at `addr` into `buf` (`EFAULT` outside it).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let at = self.check(addr, buf.len())?;
        // SAFETY: as in `write`: the range is inside the live arena.
        unsafe { core::ptr::copy(at as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}

/// A driver's connection to memsrvd.
pub struct DriverLink {
    socket: SeqPacket,
    arena: ArenaWindow,
    next_tag: u32,
    /// Driver requests that arrived while waiting for a reply.
    queue: VecDeque<Vec<u8>>,
    /// The id memsrv gave the driver.
    pub driver: u32,
}

/// Why a driver stopped.
#[derive(Debug)]
pub enum LinkError {
    /// The daemon closed the connection (or went away).
    Closed,
    /// A call was refused.
    Refused(&'static str, Errno),
    /// The daemon spoke nonsense.
    Protocol(&'static str),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => f.write_str("the memory server closed the connection"),
            Self::Refused(what, e) => write!(f, "{what} refused: {e}"),
            Self::Protocol(what) => write!(f, "protocol error: {what}"),
        }
    }
}

impl DriverLink {
    /// Say Hello over `socket` (a fresh connection). With `window` the
    /// arena is already mapped here (a driver thread of the daemon);
    /// without it the arena file of the welcome is mapped now.
    pub fn hello(socket: SeqPacket, window: Option<ArenaWindow>) -> Result<Self, LinkError> {
        let mut frame = [0u8; MAX_FRAME];
        let len = encode_request(HELLO_TAG, &Request::Hello { ticket: None }, &mut frame);
        socket.send(&frame[..len]).map_err(|_| LinkError::Closed)?;
        let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
        let (got, _) = socket
            .recv_with_fds(&mut frame, &mut fds)
            .map_err(|_| LinkError::Closed)?;
        let copied = match got {
            Datagram::Frame { copied, len } if copied == len => copied,
            Datagram::Frame { .. } => return Err(LinkError::Protocol("over-long welcome")),
            Datagram::Closed => return Err(LinkError::Closed),
        };
        let reply = decode_reply(&frame[..copied]).map_err(|_| LinkError::Protocol("welcome"))?;
        let (base, size) = match reply.message {
            Reply::Hello {
                arena_base,
                arena_size,
                ..
            } => (arena_base, arena_size),
            Reply::Error(e) => return Err(LinkError::Refused("hello", e)),
            _ => return Err(LinkError::Protocol("welcome")),
        };
        let arena = match window {
            Some(w) => w,
            None => {
                let [arena_fd, ..] = fds;
                let arena_fd = arena_fd.ok_or(LinkError::Protocol("no arena file"))?;
                let lease = ArenaLease::map(arena_fd.as_fd(), base, size)
                    .map_err(|e| LinkError::Refused("mapping the arena", e))?;
                ArenaWindow {
                    base,
                    size,
                    _lease: Some(lease),
                }
            }
        };
        Ok(Self {
            socket,
            arena,
            next_tag: HELLO_TAG + 1,
            queue: VecDeque::new(),
            driver: 0,
        })
    }

    /// The arena's first address and size.
    pub fn arena(&self) -> (u64, u64) {
        (self.arena.base, self.arena.size)
    }

    /// Register `registration`; from then on memsrv may send requests.
    pub fn register(&mut self, registration: DriverRegistration) -> Result<u32, LinkError> {
        match self.call(&Request::RegisterDriver(registration)) {
            Ok(Reply::Registered { driver }) => {
                self.driver = driver;
                Ok(driver)
            }
            Ok(_) => Err(LinkError::Protocol("registration reply")),
            Err(e) => Err(LinkError::Refused("registration", e)),
        }
    }

    /// Register `device`, start it, and serve it until the daemon closes
    /// the connection. `started` is told once the device runs (or why
    /// not).
    pub fn serve(
        mut self,
        device: &mut dyn BackingDevice,
        started: impl FnOnce(Result<u32, String>),
    ) -> Result<(), LinkError> {
        let driver = match self.register(device.registration()) {
            Ok(driver) => driver,
            Err(e) => {
                started(Err(e.to_string()));
                return Err(e);
            }
        };
        if let Err(e) = device.start(&mut self) {
            started(Err(format!("the device did not start: {e}")));
            return Err(LinkError::Refused("start", e));
        }
        started(Ok(driver));
        let mut buf = [0u8; MAX_FRAME + 1];
        let mut out = [0u8; MAX_FRAME];
        loop {
            let frame = match self.queue.pop_front() {
                Some(frame) => frame,
                None => match self.socket.recv(&mut buf) {
                    Ok(Datagram::Frame { copied, .. }) => buf[..copied].to_vec(),
                    Ok(Datagram::Closed) | Err(_) => return Ok(()),
                },
            };
            if frame_kind(&frame) != Some(MessageKind::DriverRequest as u16) {
                // A late reply to a call that gave up, or noise: nothing
                // waits for it.
                continue;
            }
            match serve_frame(device, &frame, &mut self, &mut out) {
                Some(len) => {
                    if self.socket.send(&out[..len]).is_err() {
                        return Ok(());
                    }
                }
                None => return Err(LinkError::Protocol("an unreadable driver request")),
            }
        }
    }

    /// Send one request and wait for its reply, queuing driver requests
    /// that arrive meanwhile.
    pub fn call(&mut self, request: &Request) -> Result<Reply, Errno> {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        let mut frame = [0u8; MAX_FRAME];
        let len = encode_request(tag, request, &mut frame);
        self.socket
            .send(&frame[..len])
            .map_err(|_| Errno::ENOTCONN)?;
        let mut buf = [0u8; MAX_FRAME + 1];
        loop {
            let copied = match self.socket.recv(&mut buf) {
                Ok(Datagram::Frame { copied, .. }) => copied,
                Ok(Datagram::Closed) | Err(_) => return Err(Errno::ENOTCONN),
            };
            let frame = &buf[..copied];
            match frame_kind(frame) {
                Some(k) if k == MessageKind::DriverRequest as u16 => {
                    if self.queue.len() >= MAX_QUEUED {
                        return Err(Errno::EPROTO);
                    }
                    self.queue.push_back(frame.to_vec());
                }
                Some(k) if k == MessageKind::Reply as u16 => match decode_reply(frame) {
                    Ok(reply) if reply.tag == tag => return reply.message.into_result(),
                    // A stray reply: not ours.
                    _ => {}
                },
                _ => {}
            }
        }
    }
}

impl DriverHost for DriverLink {
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.arena.write(addr, bytes)
    }

    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.arena.read(addr, buf)
    }

    fn alloc_backing(&mut self, pages: u64) -> Result<u64, Errno> {
        match self.call(&Request::AllocBacking { pages })? {
            Reply::Mapped { addr } => Ok(addr),
            _ => Err(Errno::EPROTO),
        }
    }

    fn free_backing(&mut self, addr: u64, pages: u64) -> Result<(), Errno> {
        self.expect_done(&Request::FreeBacking { addr, pages })
    }

    fn begin_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.expect_done(&Request::BeginExclusive { object })
    }

    fn end_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.expect_done(&Request::EndExclusive { object })
    }
}

impl DriverLink {
    fn expect_done(&mut self, request: &Request) -> Result<(), Errno> {
        match self.call(request)? {
            Reply::Done => Ok(()),
            _ => Err(Errno::EPROTO),
        }
    }
}
