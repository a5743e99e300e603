//! A connection to `memsrvd`: the handshake, and the [`Transport`] that
//! carries frames over the shared channel page (fast path) or the socket.

use super::arena::ArenaLease;
use super::channel_page::{ChannelPage, Spin, CLIENT_SPIN, COPY_BYTES_PER_US, RING_SPIN};
use super::futex::{HostFutexes, MapGeneration};
use super::reserve::{LocalReserve, ReserveMapping};
use crate::client::{Client, Transport, Welcome};
use crate::spin::WakeEstimate;
use crate::sys::eventfd_ring;
use crate::sys::socket::{Datagram, SeqPacket, MAX_FDS};
use core::fmt;
use protocol::{
    decode_reply, encode_request, frame_checks_identity, Errno, Reply, Request, MAX_FRAME,
};
use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where `memsrvd` listens unless told otherwise (also the daemon's
/// default): `$NOMMU_SOCKET`, else this path.
pub const DEFAULT_SOCKET: &str = "/tmp/nommu.sock";

/// How long a parked client sleeps before it checks the daemon is alive.
const PARK_SLICE: Duration = Duration::from_millis(50);

/// How long the handshake waits for the welcome awake (see
/// [`DaemonConnection::open`]) before it sleeps in `recvmsg`.
const WELCOME_AWAKE: Duration = Duration::from_secs(2);

/// The tag of the handshake frame; [`Client`] numbers its own from 1.
const HELLO_TAG: u32 = 0;
/// The tag of [`Request::Identity`] frames (answered before anything else
/// is sent, so they need no number of their own).
const IDENTITY_TAG: u32 = 0;

/// This process's effective uid and gid, packed as the connection keeps
/// them.
fn effective_ids() -> u64 {
    let (uid, gid) = crate::sys::effective_ids();
    (u64::from(uid) << 32) | u64::from(gid)
}

/// Why [`DaemonConnection::connect`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The socket could not be reached (no daemon, no permission, ...).
    Socket(Errno),
    /// The daemon refused the handshake with this errno.
    Refused(Errno),
    /// The arena's address range is already mapped in this process, so the
    /// arena cannot appear at the same address as in every other process.
    ArenaTaken { base: u64, size: u64 },
    /// The arena or channel could not be mapped for another reason.
    Map(Errno),
    /// The daemon's answer was not a valid welcome.
    Protocol,
}

impl ConnectError {
    /// The errno a C caller sees.
    pub fn errno(self) -> Errno {
        match self {
            Self::Socket(e) | Self::Refused(e) | Self::Map(e) => e,
            Self::ArenaTaken { .. } => Errno::EEXIST,
            Self::Protocol => Errno::EPROTO,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(e) => write!(f, "cannot reach memsrvd: {e}"),
            Self::Refused(Errno::EAGAIN) => write!(
                f,
                "memsrvd refused the connection: this user holds every connection \
                 it may (memsrvd --max-clients-per-user): {}",
                Errno::EAGAIN
            ),
            Self::Refused(e) => write!(f, "memsrvd refused the handshake: {e}"),
            Self::ArenaTaken { base, size } => write!(
                f,
                "the arena [{base:#x}, {:#x}) is already mapped in this process; \
                 it must appear at the same address in every process",
                base + size
            ),
            Self::Map(e) => write!(f, "cannot map the arena or channel: {e}"),
            Self::Protocol => f.write_str("memsrvd sent an invalid welcome"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// How to connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Use the shared channel page for requests (else every request goes
    /// over the socket).
    pub fast_path: bool,
    /// The clone ticket to present in the handshake, if this connection is
    /// a clone child.
    pub ticket: Option<u64>,
    /// Tell the server when this process's effective ids change
    /// ([`Request::Identity`]). Off only for a connection that stands for
    /// other ids than the calling thread's: a test that connected from a
    /// thread with ids of its own and calls from another.
    pub follow_identity: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            fast_path: true,
            ticket: None,
            follow_identity: true,
        }
    }
}

/// The fast path: the channel page and the daemon thread's doorbell.
#[derive(Debug)]
struct FastPath {
    channel: ChannelPage,
    doorbell: OwnedFd,
    /// How long the daemon takes to answer once rung.
    rung: WakeEstimate,
    /// The page reserve in the channel file (local `mmap`/`munmap`).
    reserve: LocalReserve,
}

/// One connection to `memsrvd`, speaking for this process. Callers on
/// several threads are serialised by a lock; a call allocates nothing and
/// zeroes nothing.
#[derive(Debug)]
pub struct DaemonConnection {
    socket: SeqPacket,
    fast: Option<FastPath>,
    arena: ArenaLease,
    welcome: Welcome,
    /// The effective ids the daemon last heard (`SO_PEERCRED` at connect,
    /// then [`Request::Identity`]), packed by [`effective_ids`]; written
    /// under `socket_frame`'s lock.
    identity: AtomicU64,
    /// [`ConnectOptions::follow_identity`].
    follow_identity: bool,
    /// The frame a socket call is encoded into and its reply received
    /// into, allocated once; its lock serialises every call (channel page
    /// calls too).
    socket_frame: Mutex<Box<[u8; MAX_FRAME]>>,
    /// Futexes on arena words in the host kernel (a daemon that sends no
    /// map generation keeps them all).
    futexes: Option<HostFutexes>,
    /// The connection's bulk window: not asked for yet (`None`), refused
    /// (`Some(None)`), or its address. Its lock keeps it one caller's for
    /// the length of a transfer.
    bulk_window: Mutex<Option<Option<u64>>>,
}

impl DaemonConnection {
    /// Connect to the daemon at `path`, shake hands and map the arena.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client<DaemonConnection>, ConnectError> {
        Self::connect_with(path, ConnectOptions::default())
    }

    /// [`DaemonConnection::connect`] with options.
    pub fn connect_with(
        path: impl AsRef<Path>,
        options: ConnectOptions,
    ) -> Result<Client<DaemonConnection>, ConnectError> {
        Self::open(path.as_ref().as_os_str().as_bytes(), options).map(Client::new)
    }

    /// The socket path from `$NOMMU_SOCKET`, else [`DEFAULT_SOCKET`].
    pub fn default_path() -> std::path::PathBuf {
        std::env::var_os("NOMMU_SOCKET")
            .map(Into::into)
            .unwrap_or_else(|| DEFAULT_SOCKET.into())
    }

    pub(crate) fn open(path: &[u8], options: ConnectOptions) -> Result<Self, ConnectError> {
        // Read before connecting: the kernel records the ids at connect,
        // so a change racing with it is at worst told once more.
        let identity = effective_ids();
        let socket = SeqPacket::connect(path).map_err(ConnectError::Socket)?;
        let mut frame = [0u8; MAX_FRAME];
        let len = encode_request(
            HELLO_TAG,
            &Request::Hello {
                ticket: options.ticket,
            },
            &mut frame,
        );
        socket.send(&frame[..len]).map_err(ConnectError::Socket)?;
        // The connection may be made inside a caller's first call, and
        // that call may be a FUTEX_WAIT: a thread asleep in recvmsg here
        // looks waiting (to /proc, to a waker that waits for it to sleep)
        // before its wait is queued. So the welcome is awaited awake, and
        // only a daemon slower than WELCOME_AWAKE is slept on.
        socket.wait_readable_awake(WELCOME_AWAKE);
        let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
        let (got, _) = socket
            .recv_with_fds(&mut frame, &mut fds)
            .map_err(ConnectError::Socket)?;
        let copied = match got {
            Datagram::Frame { copied, len } if copied == len => copied,
            Datagram::Frame { .. } => return Err(ConnectError::Protocol),
            Datagram::Closed => return Err(ConnectError::Socket(Errno::ENOTCONN)),
        };
        let reply = decode_reply(&frame[..copied]).map_err(|_| ConnectError::Protocol)?;
        if reply.tag != HELLO_TAG {
            return Err(ConnectError::Protocol);
        }
        let welcome = match reply.message {
            Reply::Hello {
                pid,
                arena_base,
                arena_size,
            } => Welcome {
                pid,
                arena_base,
                arena_size,
            },
            Reply::Error(e) => return Err(ConnectError::Refused(e)),
            _ => return Err(ConnectError::Protocol),
        };
        let [arena_fd, channel_fd, doorbell, generation] = fds;
        let arena_fd = arena_fd.ok_or(ConnectError::Protocol)?;
        let arena = ArenaLease::map(arena_fd.as_fd(), welcome.arena_base, welcome.arena_size)
            .map_err(|e| match e {
                Errno::EEXIST => ConnectError::ArenaTaken {
                    base: welcome.arena_base,
                    size: welcome.arena_size,
                },
                other => ConnectError::Map(other),
            })?;
        let fast = match (options.fast_path, channel_fd, doorbell) {
            (true, Some(channel), Some(doorbell)) => Some(FastPath {
                reserve: LocalReserve::new(
                    ReserveMapping::open(channel.as_fd()).map_err(ConnectError::Map)?,
                    welcome.arena_base,
                    welcome.arena_size,
                ),
                channel: ChannelPage::open(channel.as_fd()).map_err(ConnectError::Map)?,
                doorbell,
                rung: WakeEstimate::new(),
            }),
            _ => None,
        };
        let futexes = match generation {
            Some(fd) => Some(HostFutexes::new(
                MapGeneration::open(fd.as_fd()).map_err(ConnectError::Map)?,
            )),
            None => None,
        };
        Ok(Self {
            socket,
            fast,
            arena,
            welcome,
            identity: AtomicU64::new(identity),
            follow_identity: options.follow_identity,
            socket_frame: Mutex::new(Box::new([0u8; MAX_FRAME])),
            futexes,
            bulk_window: Mutex::new(None),
        })
    }

    /// Let go of this connection in a child made by `fork()`: close the
    /// child's copies of the socket and the doorbell, so the daemon sees
    /// the parent's connection end when the *parent* closes it, and leave
    /// the arena mapped (it is `MAP_SHARED`; the child's own connection
    /// shares the mapping). Nothing is sent: the connection speaks for
    /// the parent. The connection must never be used or dropped again
    /// (the caller leaks it); a stray use meets closed descriptors.
    pub(crate) fn close_in_forked_child(&self) {
        crate::sys::host::close(self.socket.as_fd().as_raw_fd());
        if let Some(fast) = &self.fast {
            crate::sys::host::close(fast.doorbell.as_raw_fd());
        }
    }

    /// What the handshake told: our pid and the arena.
    pub fn welcome(&self) -> Welcome {
        self.welcome
    }

    /// The arena's first address and size (mapped here at that address).
    pub fn arena(&self) -> (u64, u64) {
        (self.arena.base(), self.arena.size())
    }

    /// Whether requests travel through the shared channel page.
    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// Send one frame over the socket and wait there for the answer,
    /// whatever the fast path setting (the fallback path; tests use it).
    pub fn call_on_socket(
        &self,
        request: &[u8],
        reply: &mut [u8; MAX_FRAME],
    ) -> Result<usize, Errno> {
        let _guard = self.socket_frame.lock().unwrap_or_else(|e| e.into_inner());
        if frame_checks_identity(request) {
            self.sync_identity()?;
        }
        self.socket_round_trip(request, reply)
    }

    /// Send one frame over the socket with descriptor `fd` attached
    /// (`SCM_RIGHTS`) and wait there for the answer. The daemon accepts a
    /// descriptor only on `Open { path: "/.host-fd" }` (a host file to
    /// map). A descriptor that is not open fails `EBADF` here.
    pub fn call_with_fd(
        &self,
        request: &[u8],
        fd: BorrowedFd<'_>,
        reply: &mut [u8; MAX_FRAME],
    ) -> Result<usize, Errno> {
        let _guard = self.socket_frame.lock().unwrap_or_else(|e| e.into_inner());
        if frame_checks_identity(request) {
            self.sync_identity()?;
        }
        self.socket.send_with_fds(request, &[fd]).map_err(|e| {
            if e == Errno::EBADF {
                e
            } else {
                Errno::ENOTCONN
            }
        })?;
        match self.socket.recv(reply)? {
            Datagram::Frame { copied, len } if copied == len => Ok(copied),
            Datagram::Frame { .. } => Err(Errno::EMSGSIZE),
            Datagram::Closed => Err(Errno::ENOTCONN),
        }
    }

    /// Before a call the server judges by identity: if this process's
    /// effective ids changed since the daemon last heard them (`seteuid`,
    /// `setegid`), tell it with [`Request::Identity`], the ids claimed as
    /// `SCM_CREDENTIALS` so the host kernel vouches for them. Two
    /// `get*id` calls otherwise; called with `lock` held. An error fails
    /// the call rather than let it run under the old ids.
    fn sync_identity(&self) -> Result<(), Errno> {
        let now = effective_ids();
        if !self.follow_identity || now == self.identity.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut frame = [0u8; MAX_FRAME];
        let len = encode_request(IDENTITY_TAG, &Request::Identity, &mut frame);
        let (uid, gid) = ((now >> 32) as u32, now as u32);
        self.socket
            .send_credentials(&frame[..len], uid, gid)
            .map_err(|e| {
                if e == Errno::EPERM {
                    e
                } else {
                    Errno::ENOTCONN
                }
            })?;
        let mut reply = [0u8; MAX_FRAME];
        let copied = match self.socket.recv(&mut reply)? {
            Datagram::Frame { copied, len } if copied == len => copied,
            Datagram::Frame { .. } => return Err(Errno::EMSGSIZE),
            Datagram::Closed => return Err(Errno::ENOTCONN),
        };
        match decode_reply(&reply[..copied]).map(|r| (r.tag, r.message)) {
            Ok((IDENTITY_TAG, Reply::Done)) => {
                self.identity.store(now, Ordering::Relaxed);
                Ok(())
            }
            Ok((_, Reply::Error(e))) => Err(e),
            _ => Err(Errno::EPROTO),
        }
    }

    fn socket_round_trip(
        &self,
        request: &[u8],
        reply: &mut [u8; MAX_FRAME],
    ) -> Result<usize, Errno> {
        self.socket.send(request).map_err(|_| Errno::ENOTCONN)?;
        match self.socket.recv(reply)? {
            Datagram::Frame { copied, len } if copied == len => Ok(copied),
            Datagram::Frame { .. } => Err(Errno::EMSGSIZE),
            Datagram::Closed => Err(Errno::ENOTCONN),
        }
    }

    fn channel_round_trip(
        &self,
        fast: &FastPath,
        request: &[u8],
        reply: &mut [u8; MAX_FRAME],
    ) -> Result<usize, Errno> {
        if request.len() > MAX_FRAME {
            return Err(Errno::EMSGSIZE);
        }
        let (seq, wake) = fast.channel.post_request(request);
        self.await_channel_reply(fast, seq, wake)?;
        fast.channel.take_reply(reply)
    }

    /// Ring the daemon if it sleeps, then wait for the reply to `seq`:
    /// spin (after a ring, for about as long as the daemon takes to wake
    /// and answer), then park.
    fn await_channel_reply(&self, fast: &FastPath, seq: u32, wake: bool) -> Result<(), Errno> {
        let rung = wake.then(|| {
            eventfd_ring(fast.doorbell.as_fd());
            Instant::now()
        });
        let copy = EXPECTED_COPY
            .try_with(|bytes| bytes.replace(0))
            .unwrap_or(0);
        let budget = match rung {
            Some(_) => fast.rung.budget(CLIENT_SPIN, RING_SPIN),
            None => CLIENT_SPIN,
        };
        let budget = match copy / COPY_BYTES_PER_US {
            0 => budget,
            us => (budget + Duration::from_micros(us)).min(RING_SPIN.max(budget)),
        };
        if fast.channel.spin_for_reply_within(seq, budget) != Spin::Ready {
            while !fast.channel.park_for_reply(seq, PARK_SLICE) {
                if self.socket.hung_up() {
                    return Err(Errno::ENOTCONN);
                }
            }
        }
        // A copy's time is not a wake-up's: only plain calls teach the
        // estimate.
        if let Some(rung) = rung.filter(|_| copy == 0) {
            fast.rung.learn(rung.elapsed());
        }
        Ok(())
    }
}

std::thread_local! {
    /// Bytes the server copies for this thread's next call
    /// ([`Transport::expect_copy`]); read and cleared by that call.
    static EXPECTED_COPY: Cell<u64> = const { Cell::new(0) };
}

impl DaemonConnection {
    /// The page reserve, with the connection's lock held: the server
    /// moves the window only while a request of this connection is in
    /// flight, which the lock rules out.
    fn with_reserve<R>(&self, f: impl FnOnce(&LocalReserve) -> R) -> Option<R> {
        let fast = self.fast.as_ref()?;
        let _guard = self.socket_frame.lock().unwrap_or_else(|e| e.into_inner());
        Some(f(&fast.reserve))
    }
}

impl Transport for DaemonConnection {
    fn lease_arena(&self) -> Option<(u64, u64)> {
        Some(self.arena())
    }

    fn with_bulk_window(
        &self,
        grant: &mut dyn FnMut() -> Result<u64, Errno>,
        transfer: &mut dyn FnMut(u64) -> Result<usize, Errno>,
    ) -> Option<Result<usize, Errno>> {
        let mut window = self.bulk_window.lock().unwrap_or_else(|e| e.into_inner());
        let addr = (*window.get_or_insert_with(|| grant().ok()))?;
        Some(transfer(addr))
    }

    fn expect_copy(&self, bytes: u64) {
        // A thread being torn down has no thread-locals: it just parks
        // sooner.
        let _ = EXPECTED_COPY.try_with(|expected| expected.set(bytes));
    }

    fn local_mmap(&self, len: u64, prot: u32, flags: u32, fd: i32, offset: u64) -> Option<u64> {
        self.with_reserve(|r| r.mmap(len, prot, flags, fd, offset))?
    }

    fn local_munmap(&self, addr: u64, len: u64) -> bool {
        let unmapped = self.with_reserve(|r| r.munmap(addr, len)).unwrap_or(false);
        if unmapped {
            // The daemon's map generation did not move: a futex word
            // checked inside the mapping must be checked again (EFAULT).
            if let Some(futexes) = &self.futexes {
                futexes.forget(addr, len);
            }
        }
        unmapped
    }

    fn forget_local(&self, addr: u64, len: u64) {
        self.with_reserve(|r| r.forget(addr, len));
    }

    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let _guard = self.socket_frame.lock().unwrap_or_else(|e| e.into_inner());
        if frame_checks_identity(request) {
            self.sync_identity()?;
        }
        match &self.fast {
            Some(fast) => self.channel_round_trip(fast, request, reply),
            None => self.socket_round_trip(request, reply),
        }
    }

    /// A wait or wake on an arena word (and a private requeue or
    /// `FUTEX_WAKE_OP`) sleeps and wakes in the host kernel (see
    /// [`super::futex`]); the daemon only checks the words. A wait is
    /// one sleep, not cut into slices: a waiter between two slices is in
    /// no queue, so a wake then would be lost or counted wrong, and the
    /// word can still be woken by any process if the daemon is gone.
    fn host_futex(
        &self,
        request: &Request,
        check: &mut dyn FnMut(&Request) -> Result<(), Errno>,
    ) -> Option<Result<i64, Errno>> {
        self.futexes.as_ref()?.carry_request(request, check)
    }

    /// The request is encoded into the connection's one frame buffer and
    /// copied by its length into the channel page's request slot (or sent
    /// from it over the socket); the reply is decoded where it lies, in
    /// the reply slot or the same buffer.
    fn exchange(
        &self,
        encode: &mut dyn FnMut(&mut [u8; MAX_FRAME]) -> usize,
        decode: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Errno> {
        let mut frame = self.socket_frame.lock().unwrap_or_else(|e| e.into_inner());
        let frame: &mut [u8; MAX_FRAME] = &mut frame;
        // Encoded here first (a copy of its length into the slot after) so
        // that a call the server judges by identity is preceded by the
        // caller's current ids.
        let len = encode(frame).min(MAX_FRAME);
        if frame_checks_identity(&frame[..len]) {
            self.sync_identity()?;
        }
        match &self.fast {
            Some(fast) => {
                let (seq, wake) = fast.channel.post_request(&frame[..len]);
                self.await_channel_reply(fast, seq, wake)?;
                fast.channel.read_reply(decode)
            }
            None => {
                self.socket
                    .send(&frame[..len])
                    .map_err(|_| Errno::ENOTCONN)?;
                match self.socket.recv(frame)? {
                    Datagram::Frame { copied, len } if copied == len => {
                        decode(&frame[..copied]);
                        Ok(())
                    }
                    Datagram::Frame { .. } => Err(Errno::EMSGSIZE),
                    Datagram::Closed => Err(Errno::ENOTCONN),
                }
            }
        }
    }
}
