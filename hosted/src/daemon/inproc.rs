//! Built-in drivers (`--mount`, and the host-file driver), served in
//! place.
//!
//! Each has a connection of its own — a [`ClientId`] memsrv knows, which
//! says `Hello` and registers like any driver — and a [`DriverHost`] over
//! the daemon's own arena mapping and that connection. What differs from a
//! driver process is only how its frames travel: a driver request memsrv
//! addresses to it is served by whichever daemon thread is carrying out
//! memsrv's effects at the time ([`super::server::Server::carry_out`]),
//! under the device's lock, and the reply goes straight back into memsrv.
//! No thread is woken for it. (A first version gave each built-in driver
//! a thread and a socket pair: every driver call then cost a handful of
//! thread wake-ups, about 30 µs each on the machines this was measured on,
//! and a direct romfs mapping took ~270 µs instead of ~15 µs.)
//!
//! Locks: a device's lock is never taken while memsrv's is held (memsrv is
//! only called from inside a device's `serve` for the driver's own calls,
//! `AllocBacking` and the like), and effects those calls cause are carried
//! out only after the device's lock is released, so a request to the same
//! device never waits for itself.

use super::driver::ArenaWindow;
use super::mounts::Device;
use super::server::Server;
use drivers::{serve_frame, DriverHost};
use memsrv::{ClientId, Credentials, Effect};
use protocol::{decode_reply, encode_request, peek, Errno, MessageKind, Reply, Request, MAX_FRAME};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Connection ids of built-in drivers: generation 0, which the registry
/// of socket connections never hands out.
fn inproc_id(n: u64) -> ClientId {
    ClientId(n & 0xffff_ffff)
}

struct Driver {
    device: Device,
    next_tag: u32,
}

/// The built-in drivers, by connection id.
#[derive(Default)]
pub struct InProc {
    drivers: RwLock<HashMap<ClientId, Arc<Mutex<Driver>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InProc {
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, id: ClientId) -> Option<Arc<Mutex<Driver>>> {
        self.drivers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Whether `id` is a built-in driver's connection.
    pub fn is_inproc(&self, id: ClientId) -> bool {
        id.0 >> 32 == 0 && self.get(id).is_some()
    }
}

/// The driver's side of its connection while it serves: memsrv is called
/// directly; effects of those calls wait in `deferred` until the device's
/// lock is released.
struct Host<'a> {
    server: &'a Server,
    id: ClientId,
    window: &'a ArenaWindow,
    next_tag: &'a mut u32,
    deferred: &'a mut Vec<Effect>,
}

impl Host<'_> {
    fn call(&mut self, request: &Request) -> Result<Reply, Errno> {
        let tag = *self.next_tag;
        *self.next_tag = self.next_tag.wrapping_add(1).max(1);
        let mut frame = [0u8; MAX_FRAME];
        let len = encode_request(tag, request, &mut frame);
        let mut effects = Vec::new();
        self.server
            .handle_frame(self.id, &frame[..len], &mut effects);
        let mut answer = None;
        for effect in effects {
            match effect {
                Effect::Send { to, frame }
                    if to == self.id
                        && answer.is_none()
                        && peek(frame.as_slice()) == Some((MessageKind::Reply, tag)) =>
                {
                    match decode_reply(frame.as_slice()) {
                        Ok(reply) => answer = Some(reply.message),
                        _ => self.deferred.push(Effect::Send { to, frame }),
                    }
                }
                other => self.deferred.push(other),
            }
        }
        // memsrv answers a driver's own calls at once; one it did not is
        // refused here (its late answer is dropped).
        answer.ok_or(Errno::EIO)?.into_result()
    }

    fn expect_done(&mut self, request: &Request) -> Result<(), Errno> {
        match self.call(request)? {
            Reply::Done => Ok(()),
            _ => Err(Errno::EPROTO),
        }
    }
}

impl DriverHost for Host<'_> {
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.window.write(addr, bytes)
    }

    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.window.read(addr, buf)
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

/// Give `device` a connection, say Hello, register it and start it; then
/// memsrv's requests to it are served in place. Errors are for the
/// operator.
pub fn start(server: &Server, mut device: Device, number: u64) -> Result<ClientId, String> {
    let id = inproc_id(number);
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // A process of its own for memsrv, numbered by memsrv.
    server.connect(
        id,
        Credentials {
            pid: None,
            uid,
            gid,
        },
    );
    let window = server.arena_window();
    let mut next_tag = 1u32;
    let mut deferred = Vec::new();
    let mut host = Host {
        server,
        id,
        window: &window,
        next_tag: &mut next_tag,
        deferred: &mut deferred,
    };
    match host.call(&Request::Hello { ticket: None }) {
        Ok(Reply::Hello { .. }) => {}
        other => return Err(format!("hello: {other:?}")),
    }
    match host.call(&Request::RegisterDriver(device.registration())) {
        Ok(Reply::Registered { .. }) => {}
        Ok(other) => return Err(format!("registration: {other:?}")),
        Err(e) => return Err(format!("registration refused: {e}")),
    }
    if let Err(e) = device.start(&mut host) {
        return Err(format!("the device did not start: {e}"));
    }
    server
        .inproc
        .drivers
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, Arc::new(Mutex::new(Driver { device, next_tag })));
    for effect in deferred {
        server.route(effect);
    }
    Ok(id)
}

/// Serve one frame memsrv addressed to built-in driver `id`: a driver
/// request is answered and the answer handed to memsrv, whose effects (and
/// those of the driver's own calls) land in `effects`. Anything else sent
/// to a built-in driver (a late reply) is dropped.
pub fn serve(server: &Server, id: ClientId, frame: &[u8], effects: &mut Vec<Effect>) {
    if !matches!(peek(frame), Some((MessageKind::DriverRequest, _))) {
        return;
    }
    let Some(driver) = server.inproc.get(id) else {
        return;
    };
    let window = server.arena_window();
    let mut out = [0u8; MAX_FRAME];
    let mut deferred = Vec::new();
    let len = {
        let mut driver = lock(&driver);
        let Driver { device, next_tag } = &mut *driver;
        let mut host = Host {
            server,
            id,
            window: &window,
            next_tag,
            deferred: &mut deferred,
        };
        serve_frame(device.as_mut(), frame, &mut host, &mut out)
    };
    effects.append(&mut deferred);
    if let Some(len) = len {
        server.handle_frame(id, &out[..len], effects);
    }
}
