//! Backing-device servers (drivers) in the threads home.
//!
//! A driver runs on a thread of its own as a server: [`DriverConnection`]
//! is its connection to memsrv, the shared [`DriverLink`] over this home's
//! transport ([`DriverQueue`]: memsrv's inbox out, the connection's own
//! queue back). The link keeps the driver requests that arrive while one of
//! the driver's own calls waits and serves them after;
//! [`DriverConnection`] is a [`Transport`], so the ordinary [`Client`]
//! speaks for the driver.
//!
//! [`ThreadsHome::mount`](super::ThreadsHome::mount) runs a
//! [`BackingDevice`] on such a connection: register, `start`, then
//! [`DriverLink::serve`] until the connection closes or the [`Mount`]
//! handle stops it. Tests that need a driver misbehaving in ways a
//! `BackingDevice` cannot (never answering, answering garbage) use a
//! [`DriverConnection`] directly.

use super::arena::Arena;
use super::packet::Packet;
use super::routes::Sink;
use super::server::{Inbox, ToServer};
use crossbeam_channel::{bounded, never, select, unbounded, Receiver, Sender};
use drivers::{BackingDevice, DriverHost};
use memsrv::{ClientId, Credentials};
use nommu::driver_link::{start_driver, ArenaAccess, DriverLink, DriverTransport, LinkHost};
use nommu::{Client, Transport};
use protocol::{Errno, Request, MAX_FRAME};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a driver's frames move in the threads home: into memsrv's inbox,
/// and back on the connection's own queue. Dropping it closes the
/// connection.
pub struct DriverQueue {
    id: ClientId,
    inbox: Inbox,
    frames: Receiver<Packet>,
    /// Disconnects (its sender is dropped) when the driver is told to stop.
    stop: Receiver<()>,
}

impl DriverTransport for DriverQueue {
    type Deadline = Instant;

    fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        let packet = Packet::copy_from(frame)?;
        self.inbox.send(ToServer::Frame {
            from: self.id,
            packet,
        })
    }

    /// `ENOTCONN` once the connection closed or the driver was told to
    /// stop.
    fn receive(
        &self,
        buf: &mut [u8; MAX_FRAME],
        deadline: Option<Instant>,
    ) -> Result<Option<usize>, Errno> {
        let timeout = match deadline {
            Some(at) => crossbeam_channel::at(at),
            None => never(),
        };
        select! {
            recv(self.frames) -> frame => {
                let packet = frame.map_err(|_| Errno::ENOTCONN)?;
                let bytes = packet.as_slice();
                let len = bytes.len();
                buf.get_mut(..len).ok_or(Errno::EMSGSIZE)?.copy_from_slice(bytes);
                Ok(Some(len))
            },
            recv(self.stop) -> _ => Err(Errno::ENOTCONN),
            recv(timeout) -> _ => Ok(None),
        }
    }
}

impl Drop for DriverQueue {
    fn drop(&mut self) {
        // If the server thread is gone there is nothing left to release.
        let _ = self.inbox.send(ToServer::Disconnect { client: self.id });
    }
}

/// A driver's connection to memsrv (the [`DriverLink`] over a
/// [`DriverQueue`]). Dropping it closes the connection: memsrv fails
/// whatever it was waiting for from this driver with `EIO`.
pub struct DriverConnection {
    link: DriverLink<DriverQueue>,
}

impl DriverConnection {
    /// Open a driver connection; `stop` is a receiver whose sender, once
    /// dropped, makes every wait on the connection end (use
    /// [`crossbeam_channel::never`] for none). A `builtin` one (the home's
    /// own mount) holds no client slot.
    pub(crate) fn connect(
        inbox: &Inbox,
        credentials: Credentials,
        stop: Receiver<()>,
        builtin: bool,
    ) -> Result<Self, Errno> {
        let (queue, frames) = unbounded();
        let (welcome, welcomed) = bounded(1);
        inbox.send(ToServer::Connect {
            credentials,
            reply: Sink::Queue(queue),
            welcome,
            builtin,
        })?;
        let id = welcomed.recv().map_err(|_| Errno::ENOTCONN)??;
        Ok(Self {
            link: DriverLink::new(DriverQueue {
                id,
                inbox: inbox.clone(),
                frames,
                stop,
            }),
        })
    }

    /// The server's name for this connection.
    pub fn id(&self) -> ClientId {
        self.link.transport().id
    }

    /// The link: the driver loop runs on it.
    pub fn link(&self) -> &DriverLink<DriverQueue> {
        &self.link
    }

    /// Send one raw frame to memsrv (a driver reply, or anything a test
    /// wants to try).
    pub fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        self.link.transport().send(frame)
    }

    /// The next frame memsrv sent, of any kind, ignoring what
    /// [`DriverConnection::next_request`] kept: `Ok(None)` after
    /// `timeout`, `ENOTCONN` once the connection closed.
    pub fn recv_frame(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, Errno> {
        let mut buf = [0u8; MAX_FRAME];
        let got = self.link.transport().receive(&mut buf, deadline(timeout))?;
        Ok(got.map(|len| buf[..len].to_vec()))
    }

    /// The next driver request (kind 3) frame: one kept during a call
    /// first, else the next to arrive. Stray replies are dropped.
    /// `Ok(None)` after `timeout`; `ENOTCONN` once the connection closed
    /// or the driver was told to stop.
    pub fn next_request(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, Errno> {
        let mut buf = [0u8; MAX_FRAME];
        let got = self.link.next_request(&mut buf, deadline(timeout))?;
        Ok(got.map(|len| buf[..len].to_vec()))
    }
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

impl Transport for DriverConnection {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        self.link.call(request, reply)
    }

    fn exchange(
        &self,
        encode: &mut dyn FnMut(&mut [u8; MAX_FRAME]) -> usize,
        decode: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Errno> {
        self.link.exchange(encode, decode)
    }
}

impl ArenaAccess for Arena {
    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        Arena::write(self, addr, bytes)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        Arena::read(self, addr, buf)
    }

    fn copy(&self, src: u64, dest: u64, len: u64) -> Result<(), Errno> {
        Arena::copy(self, src, dest, len)
    }

    fn fill(&self, addr: u64, value: u8, len: u64) -> Result<(), Errno> {
        Arena::fill(self, addr, len, value)
    }
}

/// What a driver may ask of the threads home while it serves: the arena
/// (bounds-checked) and memsrv's driver-side calls over its own connection.
pub type ArenaHost<'a> = LinkHost<'a, DriverConnection, &'a Arena>;

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
    let mount = device.registration().mount.as_str().to_owned();
    let (stop, stopped) = bounded::<()>(0);
    let connection = DriverConnection::connect(inbox, credentials, stopped, true)?;
    let (ready, started) = bounded::<Result<(u32, R), Errno>>(1);
    let thread = std::thread::Builder::new()
        .name(format!("driver {mount}"))
        .spawn(move || {
            let client = Client::new(connection);
            let mut host: ArenaHost = LinkHost::new(&client, &arena);
            let driver = match start_driver(&client, &mut device, &mut host) {
                Ok(driver) => driver,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok((driver, look(&device))));
            // Ends when the connection closes or the driver is told to
            // stop; an unanswerable request ends the connection too.
            let _ = client.transport().link().serve(&mut device, &mut host);
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

/// `Request` encoded as a raw frame with `tag` (for tests that speak for a
/// driver by hand).
pub fn request_frame(tag: u32, request: &Request) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let len = protocol::encode_request(tag, request, &mut buf);
    buf[..len].to_vec()
}
