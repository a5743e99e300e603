//! A backing device's side of a connection to memsrvd: a process of its
//! own (`nommu-driver`) over the daemon's socket.
//!
//! The driver says `Hello` (the welcome carries the arena file, mapped
//! here at the daemon's address), registers
//! ([`protocol::Request::RegisterDriver`]), starts the device, then runs
//! the shared driver loop ([`DriverLink::serve`]) until the daemon closes
//! the connection. Everything travels over the socket ([`DriverSocket`];
//! the shared channel page is for clients).
//!
//! The device reads and writes its storage in place through the mapping
//! ([`ArenaWindow`]).

use drivers::BackingDevice;
use nommu::driver_link::{ArenaAccess, DriverLink, DriverTransport, LinkHost};
use nommu::sys::socket::{Datagram, SeqPacket, MAX_FDS};
use nommu::transport::arena::ArenaLease;
use nommu::Client;
use protocol::{Errno, MAX_FRAME};
use std::cell::RefCell;
use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};

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

impl ArenaAccess for ArenaWindow {
    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        ArenaWindow::write(self, addr, bytes)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        ArenaWindow::read(self, addr, buf)
    }

    fn copy(&self, src: u64, dest: u64, len: u64) -> Result<(), Errno> {
        let len = usize::try_from(len).map_err(|_| Errno::EFAULT)?;
        let from = self.check(src, len)?;
        let to = self.check(dest, len)?;
        // SAFETY: both ranges lie inside the live arena (checked above);
        // `copy` allows them to overlap.
        unsafe { core::ptr::copy(from as *const u8, to as *mut u8, len) };
        Ok(())
    }

    fn fill(&self, addr: u64, value: u8, len: u64) -> Result<(), Errno> {
        let len = usize::try_from(len).map_err(|_| Errno::EFAULT)?;
        let at = self.check(addr, len)?;
        // SAFETY: the range lies inside the live arena (checked above).
        unsafe { core::ptr::write_bytes(at as *mut u8, value, len) };
        Ok(())
    }
}

/// How a driver process's frames move: over its socket to memsrvd. The
/// welcome's descriptor (the arena file) is kept for the taking.
pub struct DriverSocket {
    socket: SeqPacket,
    /// The first descriptor of the last frame that carried any.
    fd: RefCell<Option<OwnedFd>>,
}

impl DriverSocket {
    pub fn new(socket: SeqPacket) -> Self {
        Self {
            socket,
            fd: RefCell::new(None),
        }
    }

    /// The descriptor that came with a frame (the welcome's arena file).
    fn take_fd(&self) -> Option<OwnedFd> {
        self.fd.borrow_mut().take()
    }
}

impl DriverTransport for DriverSocket {
    /// Waits on the socket end only when the daemon goes.
    type Deadline = Infallible;

    fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        self.socket.send(frame).map_err(|_| Errno::ENOTCONN)
    }

    fn receive(
        &self,
        buf: &mut [u8; MAX_FRAME],
        _: Option<Infallible>,
    ) -> Result<Option<usize>, Errno> {
        loop {
            let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
            match self.socket.recv_with_fds(buf, &mut fds) {
                Ok((Datagram::Frame { copied, len }, got)) => {
                    if got > 0 {
                        let [first, ..] = fds;
                        *self.fd.borrow_mut() = first;
                    }
                    if copied == len {
                        return Ok(Some(copied));
                    }
                    // Longer than any frame: nothing memsrv sends; dropped.
                }
                Ok((Datagram::Closed, _)) | Err(_) => return Err(Errno::ENOTCONN),
            }
        }
    }
}

/// A driver process's connection to memsrvd: the shared link over its
/// socket, and the arena as mapped here.
pub struct SocketDriver {
    client: Client<DriverLink<DriverSocket>>,
    arena: ArenaWindow,
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

impl SocketDriver {
    /// Say Hello over `socket` (a fresh connection). With `window` the
    /// arena is already mapped here; without it the arena file of the
    /// welcome is mapped now.
    pub fn hello(socket: SeqPacket, window: Option<ArenaWindow>) -> Result<Self, LinkError> {
        let client = Client::new(DriverLink::new(DriverSocket::new(socket)));
        let welcome = client.hello(None).map_err(|e| match e {
            Errno::ENOTCONN => LinkError::Closed,
            e => LinkError::Refused("hello", e),
        })?;
        let arena = match window {
            Some(w) => w,
            None => {
                let socket = client.transport().transport();
                let arena_fd = socket
                    .take_fd()
                    .ok_or(LinkError::Protocol("no arena file"))?;
                let (base, size) = (welcome.arena_base, welcome.arena_size);
                let lease = ArenaLease::map(arena_fd.as_fd(), base, size)
                    .map_err(|e| LinkError::Refused("mapping the arena", e))?;
                ArenaWindow {
                    base,
                    size,
                    _lease: Some(lease),
                }
            }
        };
        Ok(Self { client, arena })
    }

    /// The arena's first address and size.
    pub fn arena(&self) -> (u64, u64) {
        (self.arena.base, self.arena.size)
    }

    /// Register `device`, start it, and serve it until the daemon closes
    /// the connection. `started` is told once the device runs (or why
    /// not).
    pub fn serve(
        self,
        device: &mut dyn BackingDevice,
        started: impl FnOnce(Result<u32, String>),
    ) -> Result<(), LinkError> {
        let client = &self.client;
        let driver = match client.register_driver(device.registration()) {
            Ok(driver) => driver,
            Err(e) => {
                let e = LinkError::Refused("registration", e);
                started(Err(e.to_string()));
                return Err(e);
            }
        };
        let mut host = LinkHost::new(client, &self.arena);
        if let Err(e) = device.start(&mut host) {
            started(Err(format!("the device did not start: {e}")));
            return Err(LinkError::Refused("start", e));
        }
        started(Ok(driver));
        client
            .transport()
            .serve(device, &mut host)
            .map_err(|_| LinkError::Protocol("an unreadable driver request"))
    }
}
