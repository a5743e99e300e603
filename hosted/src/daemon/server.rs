//! The state every connection thread shares: the memsrv state machine
//! behind a mutex (it never blocks, so the lock is held for microseconds),
//! the arena, the connection registry, and the map generation clients
//! read to know their futex checks still hold
//! (`nommu::transport::futex`).

use super::arena::ArenaFile;
use super::driver::ArenaWindow;
use super::hostfile::HostFiles;
use super::inproc::{self, InProc};
use super::registry::Registry;
use super::reserve::DaemonReserve;
use memsrv::{Answer, ClientId, Courier, Credentials, Effect, FrameBuf, MemoryServer};
use nommu::transport::futex::MapGeneration;
use protocol::{Errno, Reply, Request};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// The daemon's shared state.
pub struct Server {
    memsrv: Mutex<MemoryServer<ArenaFile>>,
    pub registry: Registry,
    /// Host descriptors clients handed over, for the host-file driver.
    pub host_files: Arc<HostFiles>,
    /// The built-in drivers, served in place.
    pub inproc: InProc,
    arena_file: OwnedFd,
    arena_base: u64,
    arena_size: u64,
    /// Advanced after every call that may change a mapping; `None` if its
    /// memory file could not be made (clients then leave every futex call
    /// to the daemon).
    generation: Option<(MapGeneration, OwnedFd)>,
}

impl Server {
    /// `arena_file` is a second descriptor of the arena memory file, so
    /// welcoming a client does not take the memsrv lock.
    pub fn new(memsrv: MemoryServer<ArenaFile>, arena_file: OwnedFd, max_clients: usize) -> Self {
        let (arena_base, arena_size) = (memsrv.memory().base(), memsrv.memory().size());
        Self {
            memsrv: Mutex::new(memsrv),
            registry: Registry::new(max_clients),
            host_files: Arc::new(HostFiles::new()),
            inproc: InProc::new(),
            arena_file,
            arena_base,
            arena_size,
            generation: MapGeneration::create().ok(),
        }
    }

    /// The map generation's memory file, passed to each client in its
    /// welcome.
    pub fn generation_file(&self) -> Option<BorrowedFd<'_>> {
        self.generation.as_ref().map(|(_, file)| file.as_fd())
    }

    /// A call that may have changed a mapping was handled: futex checks
    /// clients made before are stale. Done before its reply is sent, so a
    /// client that heard of the change sees the new generation.
    pub fn advance_generation(&self) {
        if let Some((generation, _)) = &self.generation {
            generation.advance();
        }
    }

    /// memsrv's answer to a call the daemon makes for `client` (a futex
    /// check); `EPROTO` for an answer that is not a value.
    pub fn ask(&self, client: ClientId, request: Request) -> Result<i64, Errno> {
        let mut memsrv = self.memsrv();
        // The word may lie in a mapping some process made locally: apply
        // every posted entry first, as for any frame.
        let mut refused = Vec::new();
        memsrv.drain_reserves(&mut refused);
        let answer = memsrv.handle(client, request);
        drop(memsrv);
        self.cut_refused(refused);
        match answer {
            Answer::Now(Reply::Value(v)) => Ok(v),
            Answer::Now(Reply::Error(e)) => Err(e),
            _ => Err(Errno::EPROTO),
        }
    }

    /// Cut each connection whose posted reserve entry memsrv refused.
    fn cut_refused(&self, refused: Vec<ClientId>) {
        for bad in refused {
            eprintln!(
                "memsrvd: connection {} posted an invalid reserve entry; cut",
                bad.0
            );
            self.cut(bad);
        }
    }

    fn memsrv(&self) -> MutexGuard<'_, MemoryServer<ArenaFile>> {
        self.memsrv.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The arena memory file, passed to each client in its welcome.
    pub fn arena_file(&self) -> BorrowedFd<'_> {
        self.arena_file.as_fd()
    }

    pub fn arena(&self) -> (u64, u64) {
        (self.arena_base, self.arena_size)
    }

    /// The daemon's own view of the arena, for built-in drivers.
    pub fn arena_window(&self) -> ArenaWindow {
        ArenaWindow::daemon(self.arena_base, self.arena_size)
    }

    /// A connection of the daemon itself (a built-in driver): it holds no
    /// user's slot (`--max-clients-per-user`).
    pub fn connect(&self, client: ClientId, credentials: Credentials) {
        self.memsrv().connect_builtin(client, credentials);
    }

    /// Whether a peer of `uid` may connect now (`EAGAIN`: its
    /// `--max-clients-per-user` slots are taken).
    pub fn may_connect(&self, uid: u32) -> Result<(), protocol::Errno> {
        self.memsrv().may_connect(uid)
    }

    /// The peer program's name, for `/proc/<pid>/status`.
    pub fn name_connection(&self, client: ClientId, name: &str) {
        self.memsrv().name_connection(client, name);
    }

    /// [`Self::connect`] for a peer in supplementary `groups`.
    pub fn connect_in_groups(&self, client: ClientId, credentials: Credentials, groups: &[u32]) {
        self.memsrv().connect_in_groups(client, credentials, groups);
    }

    /// The peer's effective ids changed, as the host kernel vouched
    /// (`SCM_CREDENTIALS`): calls from now on are checked against them.
    pub fn set_identity(
        &self,
        client: ClientId,
        uid: u32,
        gid: u32,
    ) -> Result<(), protocol::Errno> {
        self.memsrv().set_identity(client, uid, gid)
    }

    /// The connection is gone: memsrv releases everything it held. What
    /// that causes for others (`EIO` to clients that waited for a driver
    /// that was this connection, `CloseVma` and `Release` to drivers) is
    /// carried out at once.
    pub fn disconnect(&self, client: ClientId) {
        let mut effects = Vec::new();
        self.memsrv().disconnect_with(client, &mut effects);
        self.advance_generation();
        self.carry_out(&mut effects, None);
    }

    /// Give memsrv the time (milliseconds since the daemon started) and
    /// carry out what it says: driver requests that went unanswered too
    /// long fail their operation with `EIO`.
    pub fn tick(&self, now_ms: u64, effects: &mut Vec<Effect>) {
        self.memsrv().tick(now_ms, effects);
        // A driver call that timed out may end an operation on mappings.
        self.advance_generation();
        self.carry_out(effects, None);
    }

    /// `client`'s connection shares a page reserve, in its channel memory
    /// file; `false` if it cannot be mapped (the connection then makes
    /// every call a request).
    pub fn attach_reserve(&self, client: ClientId, channel_file: BorrowedFd<'_>) -> bool {
        match DaemonReserve::open(channel_file) {
            Ok(area) => {
                self.memsrv().attach_reserve(client, Box::new(area));
                true
            }
            Err(_) => false,
        }
    }

    /// Hand one frame from `client` to memsrv (a request, or a driver's
    /// reply); its effects land in `effects` for the caller to carry out
    /// after the lock is dropped.
    pub fn handle_frame(&self, client: ClientId, frame: &[u8], effects: &mut Vec<Effect>) {
        self.handle_posted_first(client, frame, effects, false);
    }

    /// [`Self::handle_frame`] for a request whose client waits for the
    /// reply on its channel page: its reserve may be refilled meanwhile.
    pub fn handle_channel_frame(&self, client: ClientId, frame: &[u8], effects: &mut Vec<Effect>) {
        self.handle_posted_first(client, frame, effects, true);
    }

    /// Every connection's posted entries are applied before memsrv sees
    /// the frame (so nothing it answers can miss a mapping a process made
    /// locally) and after it (so a reply that let others run finds them
    /// applied too). A connection whose entry is refused is cut, and its
    /// own frame is not served.
    fn handle_posted_first(
        &self,
        client: ClientId,
        frame: &[u8],
        effects: &mut Vec<Effect>,
        waiting: bool,
    ) {
        let mut refused = Vec::new();
        {
            let mut memsrv = self.memsrv();
            memsrv.drain_reserves(&mut refused);
            if !refused.contains(&client) {
                if waiting {
                    memsrv.refill_reserve(client);
                }
                memsrv.handle_frame(client, frame, effects);
                memsrv.drain_reserves(&mut refused);
            }
        }
        self.cut_refused(refused);
    }

    /// Carry out memsrv's effects, emptying `effects`: those addressed to
    /// the caller's own connection go to `own`; a driver request to a
    /// built-in driver is served here and now, and what memsrv makes of
    /// the answer is carried out in turn; everything else is handed to the
    /// addressee's connection thread (its outbox, or a cut).
    pub fn carry_out(&self, effects: &mut Vec<Effect>, own: Option<(ClientId, &mut dyn Courier)>) {
        memsrv::carry_out(&mut Routing { server: self, own }, effects);
    }

    /// Carry out one effect for a connection other than the caller's own:
    /// a frame is posted to the addressee's outbox (its thread sends it),
    /// a drop cuts the connection. A connection that is gone is skipped.
    pub fn route(&self, effect: Effect) {
        match effect {
            Effect::Send { to, frame } => self.post(to, frame),
            Effect::Drop { client } => self.cut(client),
        }
    }

    fn post(&self, to: ClientId, frame: FrameBuf) {
        if let Some(peer) = self.registry.get(to) {
            peer.post(frame);
        }
    }

    fn cut(&self, client: ClientId) {
        if let Some(peer) = self.registry.get(client) {
            peer.cut();
        }
    }
}

/// The daemon's side of memsrv's effects, for one caller.
struct Routing<'a, 'o> {
    server: &'a Server,
    own: Option<(ClientId, &'o mut dyn Courier)>,
}

impl Routing<'_, '_> {
    fn own(&mut self, to: ClientId) -> Option<&mut dyn Courier> {
        match &mut self.own {
            Some((me, own)) if *me == to => Some(&mut **own),
            _ => None,
        }
    }
}

impl Courier for Routing<'_, '_> {
    fn send(&mut self, to: ClientId, frame: &FrameBuf, more: &mut Vec<Effect>) {
        if let Some(own) = self.own(to) {
            own.send(to, frame, more);
        } else if self.server.inproc.is_inproc(to) {
            inproc::serve(self.server, to, frame.as_slice(), more);
        } else {
            self.server.post(to, frame.clone());
        }
    }

    fn close(&mut self, client: ClientId, more: &mut Vec<Effect>) {
        if let Some(own) = self.own(client) {
            own.close(client, more);
        } else if self.server.inproc.is_inproc(client) {
            // A built-in driver is part of the daemon: never cut.
        } else {
            self.server.cut(client);
        }
    }
}
