//! Backing-device servers (drivers) in the threads home.
//!
//! A driver runs on a thread of its own as a server: [`DriverConnection`]
//! is its connection to memsrv. Everything memsrv sends it arrives on one
//! queue, in order: replies to the driver's own requests (kind 2) and
//! memsrv's driver requests (kind 3). Only one of the driver's own calls is
//! outstanding at a time ([`DriverConnection`] is a [`Transport`], so the
//! ordinary [`Client`] speaks for it); a driver request that arrives while
//! the driver waits for such a reply (memsrv asked about another object
//! while the driver was in `start` or `serve` calling `AllocBacking`) is
//! kept and handed out afterwards by [`DriverConnection::next_request`].
//!
//! [`ThreadsHome::mount`](super::ThreadsHome::mount) runs a
//! [`BackingDevice`] on such a connection: register, `start`, then serve
//! frames with [`drivers::serve_frame`] until the connection closes or the
//! [`Mount`] handle stops it. Tests that need a driver misbehaving in ways
//! a `BackingDevice` cannot (never answering, answering garbage) use a
//! [`DriverConnection`] directly.

use super::arena::Arena;
use super::packet::Packet;
use super::routes::Sink;
use super::server::{Inbox, ToServer};
use crossbeam_channel::{bounded, never, select, unbounded, Receiver, Sender};
use drivers::{serve_frame, BackingDevice, DriverHost};
use memsrv::{ClientId, Credentials};
use nommu::{Client, Transport};
use protocol::{Errno, MessageKind, Request, MAX_FRAME};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The kind field of a frame's header, if it has one.
fn kind_of(frame: &[u8]) -> Option<u16> {
    frame.get(6..8).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// The tag field of a frame's header, if it has one.
fn tag_of(frame: &[u8]) -> Option<u32> {
    frame
        .get(8..12)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A driver's connection to memsrv. Dropping it closes the connection:
/// memsrv fails whatever it was waiting for from this driver with `EIO`.
pub struct DriverConnection {
    id: ClientId,
    inbox: Inbox,
    frames: Receiver<Packet>,
    /// Disconnects (its sender is dropped) when the driver is told to stop.
    stop: Receiver<()>,
    /// Driver requests that arrived while a call waited for its reply.
    queued: Mutex<VecDeque<Packet>>,
    /// One call at a time.
    calls: Mutex<()>,
}

/// What one wait on the connection produced.
enum Received {
    Frame(Packet),
    TimedOut,
    /// The connection closed, or the driver was told to stop.
    Gone,
}

impl DriverConnection {
    /// Open a driver connection; `stop` is a receiver whose sender, once
    /// dropped, makes every wait on the connection end (use
    /// [`crossbeam_channel::never`] for none).
    pub(crate) fn connect(
        inbox: &Inbox,
        credentials: Credentials,
        stop: Receiver<()>,
    ) -> Result<Self, Errno> {
        let (queue, frames) = unbounded();
        let (welcome, welcomed) = bounded(1);
        inbox.send(ToServer::Connect {
            credentials,
            reply: Sink::Queue(queue),
            welcome,
        })?;
        let id = welcomed.recv().map_err(|_| Errno::ENOTCONN)?;
        Ok(Self {
            id,
            inbox: inbox.clone(),
            frames,
            stop,
            queued: Mutex::new(VecDeque::new()),
            calls: Mutex::new(()),
        })
    }

    /// The server's name for this connection.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Send one raw frame to memsrv (a driver reply, or anything a test
    /// wants to try).
    pub fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        let packet = Packet::copy_from(frame)?;
        self.inbox.send(ToServer::Frame {
            from: self.id,
            packet,
        })
    }

    fn receive(&self, deadline: Option<Instant>) -> Received {
        let timeout = match deadline {
            Some(at) => crossbeam_channel::at(at),
            None => never(),
        };
        select! {
            recv(self.frames) -> frame => match frame {
                Ok(packet) => Received::Frame(packet),
                Err(_) => Received::Gone,
            },
            recv(self.stop) -> _ => Received::Gone,
            recv(timeout) -> _ => Received::TimedOut,
        }
    }

    /// The next frame memsrv sent, of any kind, ignoring what
    /// [`DriverConnection::next_request`] queued: `Ok(None)` after
    /// `timeout`, `ENOTCONN` once the connection closed.
    pub fn recv_frame(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, Errno> {
        let deadline = timeout.map(|t| Instant::now() + t);
        match self.receive(deadline) {
            Received::Frame(packet) => Ok(Some(packet.as_slice().to_vec())),
            Received::TimedOut => Ok(None),
            Received::Gone => Err(Errno::ENOTCONN),
        }
    }

    /// The next driver request (kind 3) frame: one queued during a call
    /// first, else the next to arrive. Stray replies are dropped.
    /// `Ok(None)` after `timeout`; `ENOTCONN` once the connection closed
    /// or the driver was told to stop.
    pub fn next_request(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, Errno> {
        if let Some(packet) = self.lock_queued().pop_front() {
            return Ok(Some(packet.as_slice().to_vec()));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.receive(deadline) {
                Received::Frame(packet) => {
                    if kind_of(packet.as_slice()) == Some(MessageKind::DriverRequest as u16) {
                        return Ok(Some(packet.as_slice().to_vec()));
                    }
                    // A reply nobody waits for (its call gave up).
                }
                Received::TimedOut => return Ok(None),
                Received::Gone => return Err(Errno::ENOTCONN),
            }
        }
    }

    fn lock_queued(&self) -> std::sync::MutexGuard<'_, VecDeque<Packet>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Transport for DriverConnection {
    /// The driver's own request: send it, then wait for the reply with its
    /// tag, keeping every driver request that arrives meanwhile.
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let _call = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let tag = tag_of(request);
        self.send(request)?;
        loop {
            let packet = match self.receive(None) {
                Received::Frame(packet) => packet,
                _ => return Err(Errno::ENOTCONN),
            };
            let frame = packet.as_slice();
            match kind_of(frame) {
                Some(k) if k == MessageKind::DriverRequest as u16 => {
                    self.lock_queued().push_back(packet);
                }
                Some(k) if k == MessageKind::Reply as u16 && tag_of(frame) == tag => {
                    reply[..frame.len()].copy_from_slice(frame);
                    return Ok(frame.len());
                }
                // A stale reply, or something that is no frame at all.
                _ => {}
            }
        }
    }
}

impl Drop for DriverConnection {
    fn drop(&mut self) {
        // If the server thread is gone there is nothing left to release.
        let _ = self.inbox.send(ToServer::Disconnect { client: self.id });
    }
}

/// What a driver may ask of the threads home while it serves: the arena
/// (bounds-checked) and memsrv's driver-side calls over its own connection.
pub struct ArenaHost<'a> {
    client: &'a Client<DriverConnection>,
    arena: &'a Arena,
}

impl<'a> ArenaHost<'a> {
    pub fn new(client: &'a Client<DriverConnection>, arena: &'a Arena) -> Self {
        Self { client, arena }
    }
}

impl DriverHost for ArenaHost<'_> {
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.arena.write(addr, bytes)
    }

    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.arena.read(addr, buf)
    }

    fn copy_arena(&mut self, src: u64, dest: u64, len: u64) -> Result<(), Errno> {
        self.arena.copy(src, dest, len)
    }

    fn fill_arena(&mut self, addr: u64, value: u8, len: u64) -> Result<(), Errno> {
        self.arena.fill(addr, len, value)
    }

    fn alloc_backing(&mut self, pages: u64) -> Result<u64, Errno> {
        self.client.alloc_backing(pages)
    }

    fn free_backing(&mut self, addr: u64, pages: u64) -> Result<(), Errno> {
        self.client.free_backing(addr, pages)
    }

    fn begin_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.client.begin_exclusive(object)
    }

    fn end_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.client.end_exclusive(object)
    }
}

/// A running driver. Dropping the handle (or [`Mount::stop`]) stops the
/// driver thread and closes its connection, as a driver that dies does:
/// memsrv fails what it waited for from it with `EIO`.
pub struct Mount {
    driver: u32,
    mount: String,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Mount {
    /// The driver id memsrv gave at registration.
    pub fn driver(&self) -> u32 {
        self.driver
    }

    /// Where it is mounted.
    pub fn mount_point(&self) -> &str {
        &self.mount
    }

    /// Stop the driver and wait for its thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A driver that panicked has stopped too.
            let _ = thread.join();
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.halt();
    }
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("driver", &self.driver)
            .field("mount", &self.mount)
            .finish()
    }
}

/// A boxed device as a [`BackingDevice`] of its own.
pub(crate) struct Boxed(pub Box<dyn BackingDevice + Send>);

impl BackingDevice for Boxed {
    fn registration(&self) -> protocol::DriverRegistration {
        self.0.registration()
    }

    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        self.0.start(host)
    }

    fn serve(
        &mut self,
        request: protocol::DriverRequest,
        host: &mut dyn DriverHost,
    ) -> protocol::DriverReply {
        self.0.serve(request, host)
    }
}

/// Start `device` on a thread of its own: connect, register, `start`, run
/// `look` on the started device, then serve. Returns once `look` ran
/// (requests that arrive meanwhile are queued and served after), with what
/// it returned.
pub(crate) fn spawn<D, R, F>(
    inbox: &Inbox,
    credentials: Credentials,
    arena: Arc<Arena>,
    mut device: D,
    look: F,
) -> Result<(Mount, R), Errno>
where
    D: BackingDevice + Send + 'static,
    R: Send + 'static,
    F: FnOnce(&D) -> R + Send + 'static,
{
    let registration = device.registration();
    let mount = registration.mount.as_str().to_owned();
    let (stop, stopped) = bounded::<()>(0);
    let connection = DriverConnection::connect(inbox, credentials, stopped)?;
    let (ready, started) = bounded::<Result<(u32, R), Errno>>(1);
    let thread = std::thread::Builder::new()
        .name(format!("driver {mount}"))
        .spawn(move || {
            let client = Client::new(connection);
            let mut host = ArenaHost::new(&client, &arena);
            let driver = match client.register_driver_process(registration) {
                Ok(driver) => driver,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            if let Err(e) = device.start(&mut host) {
                let _ = ready.send(Err(e));
                return;
            }
            let _ = ready.send(Ok((driver, look(&device))));
            serve(&mut device, &client, &mut host);
        })
        .map_err(|_| Errno::EAGAIN)?;
    let mut handle = Mount {
        driver: 0,
        mount,
        stop: Some(stop),
        thread: Some(thread),
    };
    match started.recv() {
        Ok(Ok((driver, seen))) => {
            handle.driver = driver;
            Ok((handle, seen))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Errno::EIO),
    }
}

/// The driver loop: each driver request frame is served and answered, in
/// order, until the connection closes. A frame `serve_frame` cannot
/// address an answer to ends the connection.
fn serve(device: &mut dyn BackingDevice, client: &Client<DriverConnection>, host: &mut ArenaHost) {
    let connection = client.transport();
    let mut out = Box::new([0u8; MAX_FRAME]);
    while let Ok(Some(frame)) = connection.next_request(None) {
        let Some(len) = serve_frame(device, &frame, host, &mut out) else {
            return;
        };
        if connection.send(&out[..len]).is_err() {
            return;
        }
    }
}

/// `Request` encoded as a raw frame with `tag` (for tests that speak for a
/// driver by hand).
pub fn request_frame(tag: u32, request: &Request) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let len = protocol::encode_request(tag, request, &mut buf);
    buf[..len].to_vec()
}
