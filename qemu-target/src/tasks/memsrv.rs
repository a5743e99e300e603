//! memsrv as a task: receive a frame, let the state machine handle it,
//! carry out its effects (replies to clients, requests to drivers, drops),
//! and tick it for driver and futex timeouts. The same `MemoryServer` the
//! hosted homes run, over kernel IPC. Before it answers a client it names
//! to the kernel what that client's task may touch in the arena: its
//! process's mappings, and for a driver its backing runs and the page it
//! is lent to fill for a call in flight, taken back the moment memsrv
//! awaits that call no longer (`PhysicalMemory::driver_call_ended`).

use crate::kernel::pmp::RANGE_POOL;
use crate::memory;
use crate::sys::{self, Received};
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use memsrv::{
    ClientId, Config, Courier, Credentials, Effect, FrameBuf, MemoryServer, PhysicalMemory, Stats,
};
use protocol::{DriverRequest, MessageKind, MAX_FRAME};

/// The arena as memsrv sees it: raw RAM. memsrv only names arena
/// addresses, which `memory` checks again. It shares what the kernel was
/// told with the serving loop, to take a lent page back from its driver
/// inside the step that gives its request up.
pub struct BoardMemory {
    told: Rc<RefCell<Told>>,
}

impl PhysicalMemory for BoardMemory {
    fn fill(&mut self, addr: u64, len: u64, byte: u8) {
        memory::fill(addr, byte, len);
    }

    fn read(&self, addr: u64, buf: &mut [u8]) {
        memory::read(addr, buf);
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) {
        memory::write(addr, bytes);
    }

    fn copy(&mut self, src: u64, dst: u64, len: u64) {
        memory::copy(src, dst, len);
    }

    fn load_u32(&self, addr: u64) -> u32 {
        memory::load_u32(addr).unwrap_or(0)
    }

    fn update_u32(&mut self, addr: u64, f: &dyn Fn(u32) -> u32) -> u32 {
        memory::update_u32(addr, f).unwrap_or(0)
    }

    fn driver_call_ended(&mut self, tag: u32) {
        // Before memsrv goes on with the operation (frees the copy, or
        // maps it): preempted or not, a late driver never writes a page
        // that is already another's.
        self.told.borrow_mut().take_back(tag);
    }

    fn may_add_mapping(&self, mm: u64) -> bool {
        // Told is never borrowed while memsrv handles a call.
        self.told.try_borrow().map_or(true, |t| t.has_room(mm))
    }
}

/// Ranges of the kernel's pool that processes' mappings may fill; the
/// rest is left for drivers' backing runs and the pages lent to them,
/// which memsrv cannot refuse a driver the way it refuses a `mmap`.
const PROCESS_RANGES: usize = RANGE_POOL - RANGE_POOL / 8;

/// How often memsrv is ticked while idle.
const TICK_MS: u64 = 5;

/// Connections opened as this uid are the board's inspector: their frames
/// are not protocol frames but requests for [`Inspection`].
pub const INSPECTOR_UID: u32 = u32::MAX;

/// What the inspector learns: the server's counters and whether its
/// invariants hold.
#[derive(Clone, Copy, Debug)]
pub struct Inspection {
    pub stats: Stats,
    pub invariants_hold: bool,
}

/// Serve forever (or until the arena cannot be set up).
pub fn serve(config: Config) -> i64 {
    let told = Rc::new(RefCell::new(Told::default()));
    let memory = BoardMemory {
        told: Rc::clone(&told),
    };
    let mut server = match MemoryServer::new(config, memory) {
        Ok(server) => server,
        Err(e) => {
            crate::println!("memsrv: cannot start: {e:?}");
            return 1;
        }
    };
    let mut effects = Vec::new();
    // Word aligned: the kernel copies requests in a word at a time.
    let mut frame = sys::Frame::new();
    let mut inspectors: Vec<u64> = Vec::new();
    let mut last_tick = 0;
    // The time as the last step ended (read once a turn, for the tick and
    // the next receive's deadline).
    let mut now = sys::now_ms();
    loop {
        // A step that left one frame to send (nearly always a request's
        // answer) sends it with the next receive, in the same trap and
        // from where the step built it; anything else is carried out
        // first.
        let received = match effects.as_slice() {
            [Effect::Send { to, frame: out }] => {
                // The kernel learns the process's ranges before it reads
                // the answer (PMP: an mmap's pages are reachable at once).
                told.borrow_mut().update(&server, *to, out.as_slice());
                sys::reply_receive(to.0, out.as_slice(), &mut frame.0, now + TICK_MS)
            }
            _ => {
                carry_out(&mut server, &mut effects, &told);
                sys::receive(&mut frame.0, now + TICK_MS)
            }
        };
        effects.clear();
        match received {
            Ok(Received::Open { conn, uid, .. }) if uid == INSPECTOR_UID => inspectors.push(conn),
            Ok(Received::Open { conn, uid, gid }) => {
                let credentials = Credentials {
                    pid: None,
                    uid,
                    gid,
                };
                server.connect(ClientId(conn), credentials);
            }
            Ok(Received::Frame { conn, .. })
                if !inspectors.is_empty() && inspectors.contains(&conn) =>
            {
                inspect(&server, conn);
            }
            Ok(Received::Frame { conn, len }) => {
                server.handle_frame(ClientId(conn), &frame.0[..len], &mut effects);
            }
            Ok(Received::Bad { conn, .. }) => {
                let _ = sys::hangup(conn);
                // A refused frame ends the connection as a hang-up does:
                // nothing told for it may outlive it (a later connection
                // may reuse its number).
                told.borrow_mut().forget(conn);
                server.disconnect_with(ClientId(conn), &mut effects);
            }
            Ok(Received::Hangup { conn }) => {
                inspectors.retain(|c| *c != conn);
                told.borrow_mut().forget(conn);
                server.disconnect_with(ClientId(conn), &mut effects);
            }
            Err(_) => {}
        }
        now = sys::now_ms();
        if now >= last_tick + TICK_MS {
            last_tick = now;
            server.tick(now, &mut effects);
        }
    }
}

/// The arena ranges the kernel was last told each connection's task may
/// touch (`None`: its task is not confined, the kernel need not be told),
/// the address spaces of the confined ones' processes, the pages lent to
/// drivers for their calls in flight, and lists to build the next in.
struct Told {
    ranges: BTreeMap<u64, Option<Vec<(u64, u64)>>>,
    /// The ranges in all of `ranges`' lists: what the kernel's pool holds
    /// for open connections.
    held: usize,
    /// The connection last found in `ranges` as not confined (`u64::MAX`:
    /// none), so that answering it again takes no look-up in `ranges`.
    unconfined: u64,
    /// Per confined connection with a process: its address space, which
    /// `CLONE_VM` siblings in other tasks share (their ranges change
    /// together).
    spaces: BTreeMap<u64, u64>,
    /// Per driver connection: the tag of each `Read` in flight and the
    /// range it fills (a private copy's page, not the driver's own).
    lent: BTreeMap<u64, Vec<(u32, (u64, u64))>>,
    scratch: Vec<(u64, u64)>,
    backing: Vec<(u64, u64)>,
}

impl Default for Told {
    fn default() -> Self {
        Self {
            ranges: BTreeMap::new(),
            held: 0,
            unconfined: u64::MAX,
            spaces: BTreeMap::new(),
            lent: BTreeMap::new(),
            scratch: Vec::new(),
            backing: Vec::new(),
        }
    }
}

impl Told {
    /// Connection `conn` hung up: nothing is told for it any more.
    fn forget(&mut self, conn: u64) {
        if let Some(Some(told)) = self.ranges.remove(&conn) {
            self.held -= told.len();
        }
        self.lent.remove(&conn);
        self.spaces.remove(&conn);
        if self.unconfined == conn {
            self.unconfined = u64::MAX;
        }
    }

    /// Before memsrv sends `frame` to `client`, tell the kernel what its
    /// task may touch in the arena if that changed: what its process has
    /// mapped (so a `mmap`'s pages are reachable at once and a
    /// `munmap`'s no longer), and for a driver its backing runs and the
    /// page a `Read` in `frame` lends it.
    #[inline(always)]
    fn update(&mut self, server: &MemoryServer<BoardMemory>, client: ClientId, frame: &[u8]) {
        // The demo's answers all go to init, which is not confined: this
        // check stays in the loop, the rest out of it.
        if client.0 != self.unconfined {
            if !matches!(self.ranges.get(&client.0), Some(None)) {
                self.update_confined(server, client, frame);
                return;
            }
            self.unconfined = client.0;
        }
        if !self.spaces.is_empty() {
            // What an unconfined process (init's) changed may be a
            // confined sibling's too.
            self.tell_siblings(server, client);
        }
    }

    /// Tell the kernel the ranges of the confined connections whose
    /// processes share `client`'s address space (`CLONE_VM` siblings in
    /// other tasks) if they changed, before the answer to `client` that
    /// changed them goes out: no sibling keeps a range unmapped, or misses
    /// one mapped, after that call returns.
    #[inline(never)]
    fn tell_siblings(&mut self, server: &MemoryServer<BoardMemory>, client: ClientId) {
        let Some(space) = server.address_space_of(client) else {
            return;
        };
        let sibling = |(&c, &s): (&u64, &u64)| (s == space && c != client.0).then_some(c);
        if !self.spaces.iter().any(|e| sibling(e).is_some()) {
            return;
        }
        let siblings: Vec<u64> = self.spaces.iter().filter_map(sibling).collect();
        for c in siblings {
            // Its list, once told, equals this one's: no call back.
            self.update_confined(server, ClientId(c), &[]);
        }
    }

    /// [`Told::update`] for a client whose task is confined, or new.
    #[inline(never)]
    fn update_confined(
        &mut self,
        server: &MemoryServer<BoardMemory>,
        client: ClientId,
        frame: &[u8],
    ) {
        let new = !self.ranges.contains_key(&client.0);
        let slot = self
            .ranges
            .entry(client.0)
            .or_insert_with(|| Some(Vec::new()));
        let Some(told) = slot else {
            return;
        };
        if let Some((MessageKind::DriverRequest, tag)) = protocol::peek(frame) {
            if let Ok(sent) = protocol::frame::decode_driver_request(frame) {
                if let DriverRequest::Read { dest, len, .. } = sent.message {
                    let lent = (dest, dest.saturating_add(len));
                    self.lent.entry(client.0).or_default().push((tag, lent));
                }
            }
        }
        server.mapped_ranges(client, &mut self.scratch);
        server.backing_ranges(client, &mut self.backing);
        let lent = self.lent.get(&client.0).into_iter().flatten();
        let extra = self.backing.iter().copied().chain(lent.map(|l| l.1));
        if !self.backing.is_empty() || self.lent.contains_key(&client.0) {
            self.scratch.extend(extra);
            self.scratch.sort_unstable();
        }
        join_whole_pages(&mut self.scratch);
        if *told == self.scratch && !new {
            return;
        }
        let mut confined = true;
        if *told != self.scratch {
            self.held -= told.len();
            match sys::set_regions(client.0, &self.scratch) {
                Ok(true) => told.clone_from(&self.scratch),
                Ok(false) => {
                    *slot = None;
                    confined = false;
                }
                // The client is gone (its hang-up is on its way), or the
                // kernel had no room: it keeps no range for the
                // connection, and the next list is named whatever it
                // holds.
                Err(_) => told.clear(),
            }
            self.held += slot.as_ref().map_or(0, Vec::len);
        }
        // New or changed (an exec gives a process another address space).
        match server.address_space_of(client) {
            Some(space) if confined => self.spaces.insert(client.0, space),
            _ => self.spaces.remove(&client.0),
        };
        self.tell_siblings(server, client);
    }

    /// memsrv awaits the driver request `tag` no longer (answered, failed
    /// on a time-out, or with its driver): the page lent for it, if any,
    /// is its driver's no longer. The kernel learns it before memsrv goes
    /// on with the operation (maps or frees the page): the list last told
    /// less that page, with the pages still lent to the same driver.
    fn take_back(&mut self, tag: u32) {
        let found = self.lent.iter_mut().find_map(|(&conn, lent)| {
            let i = lent.iter().position(|(t, _)| *t == tag)?;
            Some((conn, lent.remove(i).1))
        });
        let Some((conn, page)) = found else {
            return;
        };
        if self.lent.get(&conn).is_some_and(Vec::is_empty) {
            self.lent.remove(&conn);
        }
        let Some(Some(told)) = self.ranges.get_mut(&conn) else {
            return;
        };
        let (cut, cut_end) = whole_pages(page);
        self.scratch.clear();
        for &(start, end) in told.iter() {
            if end <= cut || start >= cut_end {
                self.scratch.push((start, end));
                continue;
            }
            if start < cut {
                self.scratch.push((start, cut));
            }
            if end > cut_end {
                self.scratch.push((cut_end, end));
            }
        }
        // Two reads may fill one page: what another still fills stays.
        let others = self.lent.get(&conn).into_iter().flatten();
        self.scratch.extend(others.map(|l| l.1));
        self.scratch.sort_unstable();
        join_whole_pages(&mut self.scratch);
        if *told == self.scratch {
            return;
        }
        self.held -= told.len();
        match sys::set_regions(conn, &self.scratch) {
            Ok(_) => told.clone_from(&self.scratch),
            // The driver is gone: the kernel keeps no range for it.
            Err(_) => told.clear(),
        }
        self.held += told.len();
    }

    /// Whether the kernel's pool has room for a new mapping of address
    /// space `mm`: one more range in the list of each confined connection
    /// whose process uses it (none for init's own, which is not
    /// confined), within [`PROCESS_RANGES`]. A `mmap` beyond it fails
    /// `ENOMEM` before anything changes, rather than the kernel refusing
    /// the list afterwards and the task being stopped.
    fn has_room(&self, mm: u64) -> bool {
        let users = self.spaces.values().filter(|&&s| s == mm).count();
        users == 0 || self.held + users <= PROCESS_RANGES
    }
}

/// `range` widened to whole pages: a mapping's last page is the process's
/// to its end.
fn whole_pages(range: (u64, u64)) -> (u64, u64) {
    (
        range.0 & !(memory::PAGE - 1),
        range.1.next_multiple_of(memory::PAGE),
    )
}

/// Ascending `ranges` as whole pages, those that touch joined.
fn join_whole_pages(ranges: &mut Vec<(u64, u64)>) {
    for r in ranges.iter_mut() {
        *r = whole_pages(*r);
    }
    ranges.dedup_by(|next, prev| {
        let touches = next.0 <= prev.1;
        if touches {
            prev.1 = prev.1.max(next.1);
        }
        touches
    });
}

/// Deliver effects, including those that delivering causes (a dropped
/// client's release may answer others).
fn carry_out(
    server: &mut MemoryServer<BoardMemory>,
    effects: &mut Vec<Effect>,
    told: &RefCell<Told>,
) {
    memsrv::carry_out(&mut Board { server, told }, effects);
}

/// The board's side of memsrv's effects: frames go out over kernel IPC.
struct Board<'a> {
    server: &'a mut MemoryServer<BoardMemory>,
    told: &'a RefCell<Told>,
}

impl Courier for Board<'_> {
    fn send(&mut self, to: ClientId, frame: &FrameBuf, _more: &mut Vec<Effect>) {
        self.told
            .borrow_mut()
            .update(self.server, to, frame.as_slice());
        if sys::reply(to.0, frame.as_slice()).is_err() {
            // The peer is gone; its hang-up is on its way.
        }
    }

    fn close(&mut self, client: ClientId, more: &mut Vec<Effect>) {
        let _ = sys::hangup(client.0);
        self.server.disconnect_with(client, more);
    }
}

fn inspect(server: &MemoryServer<BoardMemory>, conn: u64) {
    let inspection = Inspection {
        stats: server.stats(),
        invariants_hold: server.check_invariants().is_ok(),
    };
    let _ = sys::reply(conn, &encode(&inspection));
}

fn encode(i: &Inspection) -> [u8; 8 * INSPECTION_WORDS] {
    let s = &i.stats;
    let words: [u64; INSPECTION_WORDS] = [
        s.total_pages,
        s.free_pages,
        s.mmap_copy_pages,
        s.backing_pages,
        s.objects as u64,
        s.open_files as u64,
        s.pending_ops as u64,
        s.shm_segments as u64,
        s.shm_pages,
        s.processes as u64,
        u64::from(i.invariants_hold),
    ];
    let mut out = [0u8; 8 * INSPECTION_WORDS];
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    out
}

const INSPECTION_WORDS: usize = 11;

/// Ask memsrv for its counters over an inspector connection `conn` (the
/// counters the inspector does not carry read 0).
pub fn inspect_over(conn: u64) -> Result<Inspection, protocol::Errno> {
    let mut reply = [0u8; MAX_FRAME];
    let n = sys::call(conn, b"inspect", &mut reply)?;
    if n != 8 * INSPECTION_WORDS {
        return Err(protocol::Errno::EPROTO);
    }
    let mut w = [0u64; INSPECTION_WORDS];
    for (i, chunk) in reply[..n].chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        w[i] = u64::from_le_bytes(b);
    }
    let stats = Stats {
        total_pages: w[0],
        free_pages: w[1],
        mmap_copy_pages: w[2],
        backing_pages: w[3],
        objects: w[4] as usize,
        open_files: w[5] as usize,
        pending_ops: w[6] as usize,
        shm_segments: w[7] as usize,
        shm_pages: w[8],
        processes: w[9] as usize,
        ..Stats::default()
    };
    Ok(Inspection {
        stats,
        invariants_hold: w[10] != 0,
    })
}

/// Wait (up to 2 s: drivers answer releases after a process is gone) until
/// memsrv's counters satisfy `done` with its invariants holding; `None`,
/// or what the counters were when that did not happen.
pub fn settle(inspector: u64, done: impl Fn(&Stats) -> bool) -> Option<alloc::string::String> {
    let deadline = sys::now_ms() + 2000;
    loop {
        match inspect_over(inspector) {
            Ok(i) if !i.invariants_hold => {
                return Some(alloc::format!("invariants broken: {:?}", i.stats))
            }
            Ok(i) if done(&i.stats) => return None,
            Ok(i) if sys::now_ms() >= deadline => return Some(alloc::format!("{:?}", i.stats)),
            Err(e) => return Some(alloc::format!("no counters: {e:?}")),
            Ok(_) => sys::sleep_until(sys::now_ms() + 1),
        }
    }
}
