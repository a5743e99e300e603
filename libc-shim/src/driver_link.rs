//! A backing device's connection to memsrv, the same in every home (feature
//! `driver`, `no_std` with `alloc`).
//!
//! Everything memsrv sends a driver arrives on its one connection, in
//! order: replies (kind 2) to the driver's own calls (`RegisterDriver`, and
//! `AllocBacking` and the like while it starts or serves) and memsrv's
//! driver requests (kind 3). A driver request that arrives while one of
//! those calls waits for its reply (memsrv asked about another object) is
//! kept, and served after the call, in order.
//!
//! A home supplies only how frames move ([`DriverTransport`]) and how its
//! drivers reach the arena ([`ArenaAccess`]). [`DriverLink`] does the rest:
//! it is the [`Transport`] a [`Client`] speaks through for the driver,
//! [`DriverLink::serve`] is the driver loop, and [`LinkHost`] is the
//! [`DriverHost`] a device is handed (the arena, and memsrv's driver-side
//! calls through the client). [`start_driver`] registers and starts a
//! device on a fresh connection.

use crate::client::{Client, Transport};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cell::RefCell;
use drivers::{serve_frame, BackingDevice, DriverHost};
use protocol::{peek, Errno, MessageKind, MAX_FRAME};

/// Most driver requests kept while a call waits: memsrv has at most one
/// request outstanding per object, so more means a confused server, and
/// the call fails `EPROTO` rather than grow without bound.
pub const MAX_KEPT: usize = 4096;

/// How frames move between one driver and memsrv, in one home.
pub trait DriverTransport {
    /// When a wait gives up, in the home's own clock.
    type Deadline: Copy;

    /// Send one whole frame to memsrv.
    fn send(&self, frame: &[u8]) -> Result<(), Errno>;

    /// Wait for the next frame memsrv sent and copy it into `buf`: its
    /// length, or `Ok(None)` once `deadline` passed (`None` waits as long
    /// as it takes). An error means the connection is closed (or the
    /// driver was told to stop).
    fn receive(
        &self,
        buf: &mut [u8; MAX_FRAME],
        deadline: Option<Self::Deadline>,
    ) -> Result<Option<usize>, Errno>;
}

/// A driver's connection to memsrv: one call at a time, and the driver
/// requests kept meanwhile.
pub struct DriverLink<T: DriverTransport> {
    transport: T,
    /// Driver requests that arrived while a call waited for its reply.
    kept: RefCell<VecDeque<Vec<u8>>>,
    /// The frame the driver's own calls are encoded into and their replies
    /// received into, allocated once.
    frame: RefCell<Box<[u8; MAX_FRAME]>>,
}

impl<T: DriverTransport> DriverLink<T> {
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            kept: RefCell::new(VecDeque::new()),
            frame: RefCell::new(Box::new([0u8; MAX_FRAME])),
        }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The next driver request frame, copied into `buf`: a kept one first,
    /// else the next to arrive; other frames (a reply whose call gave up,
    /// noise) are dropped. `Ok(None)` once `deadline` passed.
    pub fn next_request(
        &self,
        buf: &mut [u8; MAX_FRAME],
        deadline: Option<T::Deadline>,
    ) -> Result<Option<usize>, Errno> {
        if let Some(frame) = self.kept.borrow_mut().pop_front() {
            let len = frame.len();
            buf.get_mut(..len)
                .ok_or(Errno::EMSGSIZE)?
                .copy_from_slice(&frame);
            return Ok(Some(len));
        }
        loop {
            let Some(len) = self.transport.receive(buf, deadline)? else {
                return Ok(None);
            };
            let frame = buf.get(..len).ok_or(Errno::EMSGSIZE)?;
            if matches!(peek(frame), Some((MessageKind::DriverRequest, _))) {
                return Ok(Some(len));
            }
        }
    }

    /// The driver loop: answer each driver request in order (kept ones
    /// first) until the connection closes. `EPROTO` if memsrv sent a
    /// driver request that cannot be answered at all (no tag to answer).
    pub fn serve(
        &self,
        device: &mut dyn BackingDevice,
        host: &mut dyn DriverHost,
    ) -> Result<(), Errno> {
        // On the heap: a board task's stack is small.
        let mut frame = Box::new([0u8; MAX_FRAME]);
        let mut out = Box::new([0u8; MAX_FRAME]);
        while let Ok(Some(len)) = self.next_request(&mut frame, None) {
            let request = frame.get(..len).ok_or(Errno::EMSGSIZE)?;
            let answer = serve_frame(device, request, host, &mut out).ok_or(Errno::EPROTO)?;
            if self.transport.send(&out[..answer]).is_err() {
                break;
            }
        }
        Ok(())
    }

    fn keep(&self, frame: &[u8]) -> Result<(), Errno> {
        let mut kept = self.kept.borrow_mut();
        if kept.len() >= MAX_KEPT {
            return Err(Errno::EPROTO);
        }
        kept.push_back(frame.to_vec());
        Ok(())
    }
}

impl<T: DriverTransport> Transport for DriverLink<T> {
    /// The driver's own call: send it, then wait for the reply with its
    /// tag, keeping every driver request that arrives meanwhile.
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let (_, tag) = peek(request).ok_or(Errno::EINVAL)?;
        self.transport.send(request)?;
        self.await_reply(tag, reply)
    }

    /// The same over the link's own frame: the request is encoded into it
    /// and the reply received over it.
    fn exchange(
        &self,
        encode: &mut dyn FnMut(&mut [u8; MAX_FRAME]) -> usize,
        decode: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Errno> {
        // Only a call made while decoding (none is) would find it lent.
        let mut frame = self.frame.try_borrow_mut().map_err(|_| Errno::EBUSY)?;
        let len = encode(&mut frame);
        let request = frame.get(..len).ok_or(Errno::EMSGSIZE)?;
        let (_, tag) = peek(request).ok_or(Errno::EINVAL)?;
        self.transport.send(request)?;
        let got = self.await_reply(tag, &mut frame)?;
        decode(frame.get(..got).ok_or(Errno::EMSGSIZE)?);
        Ok(())
    }
}

impl<T: DriverTransport> DriverLink<T> {
    /// Wait for the reply with `tag`, keeping every driver request that
    /// arrives meanwhile; its length in `reply`.
    fn await_reply(&self, tag: u32, reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        loop {
            let len = self
                .transport
                .receive(reply, None)?
                .ok_or(Errno::ETIMEDOUT)?;
            let frame = reply.get(..len).ok_or(Errno::EMSGSIZE)?;
            match peek(frame) {
                Some((MessageKind::DriverRequest, _)) => self.keep(frame)?,
                Some((MessageKind::Reply, t)) if t == tag => return Ok(len),
                // A late reply to a call that gave up, or noise.
                _ => {}
            }
        }
    }
}

/// Start `device` on a fresh connection: register it
/// ([`Client::register_driver_process`]), then `start` it with `host`.
/// Returns the driver id memsrv gave; from then on memsrv may send it
/// requests, which [`DriverLink::serve`] answers.
pub fn start_driver<C: Transport>(
    client: &Client<C>,
    device: &mut dyn BackingDevice,
    host: &mut dyn DriverHost,
) -> Result<u32, Errno> {
    let driver = client.register_driver_process(device.registration())?;
    device.start(host)?;
    Ok(driver)
}

/// The arena as a home lets its drivers reach it. Each access is checked
/// against the arena's bounds (`EFAULT` outside).
pub trait ArenaAccess {
    /// Copy `bytes` into the arena at `addr`.
    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno>;
    /// Copy arena bytes at `addr` into `buf`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copy `len` arena bytes from `src` to `dest`.
    fn copy(&self, src: u64, dest: u64, len: u64) -> Result<(), Errno>;
    /// Set `len` arena bytes at `addr` to `value`.
    fn fill(&self, addr: u64, value: u8, len: u64) -> Result<(), Errno>;
}

impl<A: ArenaAccess + ?Sized> ArenaAccess for &A {
    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        (**self).write(addr, bytes)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        (**self).read(addr, buf)
    }

    fn copy(&self, src: u64, dest: u64, len: u64) -> Result<(), Errno> {
        (**self).copy(src, dest, len)
    }

    fn fill(&self, addr: u64, value: u8, len: u64) -> Result<(), Errno> {
        (**self).fill(addr, value, len)
    }
}

/// What a driver may ask of its home while it starts and serves: the arena,
/// and memsrv's driver-side calls over the driver's own connection.
/// The client is normally a `Client<DriverLink<_>>`, or a home's wrapper
/// around a [`DriverLink`].
pub struct LinkHost<'a, C: Transport, A: ArenaAccess> {
    client: &'a Client<C>,
    arena: A,
}

impl<'a, C: Transport, A: ArenaAccess> LinkHost<'a, C, A> {
    pub fn new(client: &'a Client<C>, arena: A) -> Self {
        Self { client, arena }
    }
}

impl<C: Transport, A: ArenaAccess> DriverHost for LinkHost<'_, C, A> {
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
        self.arena.fill(addr, value, len)
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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{
        decode_driver_reply, decode_request, encode_driver_request, encode_reply,
        DriverRegistration, DriverReply, DriverRequest, Reply, Request,
    };

    /// Frames memsrv "sends", in order, and the frames the driver sent.
    /// Once the script runs out the connection is closed, unless a wait has
    /// a deadline (then it times out).
    #[derive(Default)]
    struct Script {
        incoming: RefCell<VecDeque<Vec<u8>>>,
        sent: RefCell<Vec<Vec<u8>>>,
    }

    impl Script {
        fn push_request(&self, tag: u32, request: DriverRequest) {
            let mut buf = [0u8; MAX_FRAME];
            let len = encode_driver_request(tag, &request, &mut buf);
            self.incoming.borrow_mut().push_back(buf[..len].to_vec());
        }

        fn push_reply(&self, tag: u32, reply: Reply) {
            let mut buf = [0u8; MAX_FRAME];
            let len = encode_reply(tag, &reply, &mut buf);
            self.incoming.borrow_mut().push_back(buf[..len].to_vec());
        }
    }

    impl DriverTransport for Script {
        type Deadline = ();

        fn send(&self, frame: &[u8]) -> Result<(), Errno> {
            self.sent.borrow_mut().push(frame.to_vec());
            Ok(())
        }

        fn receive(
            &self,
            buf: &mut [u8; MAX_FRAME],
            deadline: Option<()>,
        ) -> Result<Option<usize>, Errno> {
            match self.incoming.borrow_mut().pop_front() {
                Some(frame) => {
                    buf[..frame.len()].copy_from_slice(&frame);
                    Ok(Some(frame.len()))
                }
                None if deadline.is_some() => Ok(None),
                None => Err(Errno::ENOTCONN),
            }
        }
    }

    /// An arena the device below never touches.
    struct NoArena;

    impl ArenaAccess for NoArena {
        fn write(&self, _: u64, _: &[u8]) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
        fn read(&self, _: u64, _: &mut [u8]) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
        fn copy(&self, _: u64, _: u64, _: u64) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
        fn fill(&self, _: u64, _: u8, _: u64) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
    }

    /// Releases objects, recording the order; releasing object 1 first
    /// asks memsrv for a page of storage.
    #[derive(Default)]
    struct Recorder {
        released: Vec<u64>,
        storage: Option<Result<u64, Errno>>,
    }

    impl BackingDevice for Recorder {
        fn registration(&self) -> DriverRegistration {
            DriverRegistration {
                name: "recorder".try_into().unwrap(),
                mount: "/dev/rec".try_into().unwrap(),
                dev: (0, 1),
                noexec: false,
                read_only: false,
            }
        }

        fn start(&mut self, _: &mut dyn DriverHost) -> Result<(), Errno> {
            Ok(())
        }

        fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
            match request {
                DriverRequest::Release { object } => {
                    if object == 1 {
                        self.storage = Some(host.alloc_backing(1));
                    }
                    self.released.push(object);
                    DriverReply::Done
                }
                _ => DriverReply::Error(Errno::ENOSYS),
            }
        }
    }

    #[test]
    fn requests_that_arrive_during_calls_are_kept_and_served_in_order() {
        let script = Script::default();
        // During the registration call: a request, a stale reply, the reply.
        script.push_request(10, DriverRequest::Release { object: 1 });
        script.push_reply(77, Reply::Done);
        script.push_reply(1, Reply::Registered { driver: 5 });
        // During the AllocBacking call made while serving tag 10.
        script.push_request(11, DriverRequest::Release { object: 2 });
        script.push_reply(2, Reply::Mapped { addr: 0x5000 });
        // After.
        script.push_request(12, DriverRequest::Release { object: 3 });
        let client = Client::new(DriverLink::new(script));
        let mut device = Recorder::default();
        assert_eq!(client.register_driver(device.registration()), Ok(5));
        let mut host = LinkHost::new(&client, NoArena);
        assert_eq!(client.transport().serve(&mut device, &mut host), Ok(()));
        assert_eq!(device.released, [1, 2, 3]);
        assert_eq!(device.storage, Some(Ok(0x5000)));

        let sent = client.transport().transport().sent.borrow();
        assert_eq!(sent.len(), 5);
        let call = |i: usize| decode_request(&sent[i]).unwrap();
        assert!(matches!(call(0).message, Request::RegisterDriver(_)));
        assert_eq!(call(1).message, Request::AllocBacking { pages: 1 });
        assert_eq!((call(0).tag, call(1).tag), (1, 2));
        for (i, tag) in [(2, 10), (3, 11), (4, 12)] {
            let answer = decode_driver_reply(&sent[i]).unwrap();
            assert_eq!((answer.tag, answer.message), (tag, DriverReply::Done));
        }
    }

    #[test]
    fn a_wait_with_a_deadline_skips_replies_and_times_out() {
        let script = Script::default();
        script.push_reply(3, Reply::Done);
        let link = DriverLink::new(script);
        let mut buf = [0u8; MAX_FRAME];
        assert_eq!(link.next_request(&mut buf, Some(())), Ok(None));
        assert_eq!(link.next_request(&mut buf, None), Err(Errno::ENOTCONN));
    }

    #[test]
    fn a_flood_of_requests_during_a_call_fails_it() {
        let script = Script::default();
        for tag in 0..=MAX_KEPT as u32 {
            script.push_request(tag, DriverRequest::Release { object: 1 });
        }
        script.push_reply(1, Reply::Done);
        let client = Client::new(DriverLink::new(script));
        assert_eq!(client.end_exclusive(1), Err(Errno::EPROTO));
    }
}
