//! The spec's conformance tables (§14, crate `conformance`) on the bare
//! state machine: no threads, no transport, one [`MemoryServer`] over a
//! simulated arena. A call goes in as a frame; the effects it causes are
//! carried out in order until its reply comes back, and driver requests
//! among them are served in line by the §14.0 environment's real drivers
//! (`conformance::env::build`), whose own calls (backing storage,
//! exclusive mode) re-enter the same loop.
//!
//! Every vector runs in sequence on one server; after each, the invariants
//! must hold and everything the vector made must be released.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::sim::{user, SimMemory, BASE, P};
use crate::{ClientId, Config, Effect, MemoryServer, Stats};
use conformance::env::{self, Mounter, NorFlash, RomImage, Setup, ROM_T_LEN};
use conformance::{Harness, Landmark, ProcessConnection, TestDevControl, VECTORS};
use drivers::testing::RomfsImage;
use drivers::{serve_frame, BackingDevice, DriverHost, MountPoint};
use nommu::{Client, Transport};
use protocol::{decode_reply, Errno, MAX_FRAME};

/// The arena: 16 MiB, as in the other homes.
const ARENA_PAGES: u64 = 4096;

/// `/dev/mem`'s window: addresses outside the arena (device memory).
const DEVICE_MEMORY: u64 = 0x4000_0000;

/// The server and what its effects have produced so far.
struct Machine {
    s: MemoryServer<SimMemory>,
    /// Frames the server sent and nobody took yet, oldest first.
    queue: VecDeque<(ClientId, Vec<u8>)>,
    /// Drivers by connection. A driver serving a request is taken out
    /// (`busy`) and requests to it wait in `held` until it is back.
    drivers: BTreeMap<ClientId, Box<dyn BackingDevice>>,
    busy: BTreeSet<ClientId>,
    held: BTreeMap<ClientId, VecDeque<Vec<u8>>>,
    /// Reply frames for each connection, oldest first.
    inbox: BTreeMap<ClientId, VecDeque<Vec<u8>>>,
    /// Connections the server dropped.
    dropped: BTreeSet<ClientId>,
    next_client: u64,
}

impl Machine {
    fn new() -> Self {
        let config = Config {
            arena_base: BASE,
            arena_size: ARENA_PAGES * P,
            // §14.6 describes the strict profile (vector 75).
            strict_mremap: true,
            ..Config::default()
        };
        let memory = SimMemory::new(BASE, ARENA_PAGES * P);
        Self {
            s: MemoryServer::new(config, memory).expect("a server over the simulated arena"),
            queue: VecDeque::new(),
            drivers: BTreeMap::new(),
            busy: BTreeSet::new(),
            held: BTreeMap::new(),
            inbox: BTreeMap::new(),
            dropped: BTreeSet::new(),
            next_client: 1,
        }
    }

    fn connect(&mut self, uid: u32, gid: u32) -> ClientId {
        let client = ClientId(self.next_client);
        self.next_client += 1;
        self.s.connect(client, user(uid, gid));
        client
    }

    fn send(&mut self, client: ClientId, frame: &[u8]) {
        let mut effects = Vec::new();
        self.s.handle_frame(client, frame, &mut effects);
        self.take(effects);
    }

    fn disconnect(&mut self, client: ClientId) {
        let mut effects = Vec::new();
        self.s.disconnect_with(client, &mut effects);
        self.take(effects);
    }

    /// Queue the frames; note the connections the server dropped.
    fn take(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { to, frame } => self.queue.push_back((to, frame.as_slice().to_vec())),
                Effect::Drop { client } => {
                    self.dropped.insert(client);
                }
            }
        }
    }

    fn arena_range(&self, addr: u64, len: usize) -> Result<(), Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if addr < BASE || end > BASE + ARENA_PAGES * P {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }
}

/// Carry out effects until `client` has a reply waiting (then take it), or
/// until none is left (`None`). Driver requests are served on the way.
fn pump(machine: &RefCell<Machine>, client: Option<ClientId>) -> Option<Vec<u8>> {
    loop {
        let mut m = machine.borrow_mut();
        if let Some(c) = client {
            if let Some(frame) = m.inbox.get_mut(&c).and_then(VecDeque::pop_front) {
                return Some(frame);
            }
        }
        let (to, frame) = m.queue.pop_front()?;
        let is_reply = decode_reply(&frame).is_ok();
        if is_reply || !(m.drivers.contains_key(&to) || m.busy.contains(&to)) {
            m.inbox.entry(to).or_default().push_back(frame);
            continue;
        }
        if m.busy.contains(&to) {
            m.held.entry(to).or_default().push_back(frame);
            continue;
        }
        let Some(mut device) = m.drivers.remove(&to) else {
            continue;
        };
        m.busy.insert(to);
        drop(m);
        let mut host = InlineHost {
            machine,
            client: to,
        };
        let mut out = [0u8; MAX_FRAME];
        let answer = serve_frame(device.as_mut(), &frame, &mut host, &mut out);
        let mut m = machine.borrow_mut();
        m.busy.remove(&to);
        m.drivers.insert(to, device);
        if let Some(held) = m.held.remove(&to) {
            for frame in held.into_iter().rev() {
                m.queue.push_front((to, frame));
            }
        }
        match answer {
            Some(len) => m.send(to, &out[..len]),
            // An unreadable request: the home drops the driver.
            None => m.disconnect(to),
        }
    }
}

/// One connection's calls: in at the server, effects carried out until the
/// reply is back.
struct Line<'m> {
    machine: &'m RefCell<Machine>,
    client: ClientId,
}

impl Transport for Line<'_> {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        self.begin(request)?;
        self.finish(reply)
    }
}

impl Line<'_> {
    fn begin(&self, request: &[u8]) -> Result<(), Errno> {
        let mut m = self.machine.borrow_mut();
        if m.dropped.contains(&self.client) {
            return Err(Errno::ENOTCONN);
        }
        m.send(self.client, request);
        Ok(())
    }

    /// The next reply; `ETIMEDOUT` if everything was carried out and none
    /// came (nothing is left that could answer).
    fn finish(&self, reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let frame = pump(self.machine, Some(self.client)).ok_or(Errno::ETIMEDOUT)?;
        let to = reply.get_mut(..frame.len()).ok_or(Errno::EMSGSIZE)?;
        to.copy_from_slice(&frame);
        Ok(frame.len())
    }
}

/// A driver's host: the arena directly, the server through the driver's
/// connection.
struct InlineHost<'m> {
    machine: &'m RefCell<Machine>,
    client: ClientId,
}

impl InlineHost<'_> {
    fn server(&self) -> Client<Line<'_>> {
        Client::new(Line {
            machine: self.machine,
            client: self.client,
        })
    }
}

impl DriverHost for InlineHost<'_> {
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let mut m = self.machine.borrow_mut();
        m.arena_range(addr, bytes.len())?;
        crate::PhysicalMemory::write(m.s.memory_mut(), addr, bytes);
        Ok(())
    }

    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let m = self.machine.borrow();
        m.arena_range(addr, buf.len())?;
        crate::PhysicalMemory::read(m.s.memory(), addr, buf);
        Ok(())
    }

    fn alloc_backing(&mut self, pages: u64) -> Result<u64, Errno> {
        self.server().alloc_backing(pages)
    }

    fn free_backing(&mut self, addr: u64, pages: u64) -> Result<(), Errno> {
        self.server().free_backing(addr, pages)
    }

    fn begin_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.server().begin_exclusive(object)
    }

    fn end_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.server().end_exclusive(object)
    }
}

/// The drivers of the environment: a connection each, registered, started
/// in line.
struct InlineMounter<'m> {
    machine: &'m RefCell<Machine>,
}

impl Mounter for InlineMounter<'_> {
    type Mount = ClientId;

    fn mount<D, F, R>(
        &mut self,
        point: MountPoint,
        make: F,
        look: fn(&D) -> R,
    ) -> Result<(ClientId, R), Errno>
    where
        D: BackingDevice + Send + 'static,
        F: FnOnce(MountPoint) -> Result<D, Errno> + Send + Clone + 'static,
        R: Send + 'static,
    {
        let mut device = make(point)?;
        let client = self.machine.borrow_mut().connect(0, 0);
        let mut host = InlineHost {
            machine: self.machine,
            client,
        };
        host.server()
            .register_driver_process(device.registration())?;
        device.start(&mut host)?;
        let seen = look(&device);
        self.machine
            .borrow_mut()
            .drivers
            .insert(client, Box::new(device));
        Ok((client, seen))
    }
}

/// A process of the bare machine; dropping it closes its connection.
struct BareProcess<'m> {
    line: Line<'m>,
    pid: u32,
}

impl ProcessConnection for BareProcess<'_> {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn transport(&self) -> &dyn Transport {
        &self.line
    }

    fn begin(&self, request: &[u8]) -> Result<(), Errno> {
        self.line.begin(request)?;
        // Carry out what the frame caused (a wait answers nothing yet).
        let _ = pump(self.line.machine, None);
        Ok(())
    }

    fn finish(&self, reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        self.line.finish(reply)
    }
}

impl Drop for BareProcess<'_> {
    fn drop(&mut self) {
        self.line.machine.borrow_mut().disconnect(self.line.client);
        let _ = pump(self.line.machine, None);
    }
}

/// The bare machine as the tables see it.
struct Bare<'m> {
    machine: &'m RefCell<Machine>,
    env: env::Environment<ClientId>,
}

impl Bare<'_> {
    fn process(&self, uid: u32, gid: u32, ticket: Option<u64>) -> Result<BareProcess<'_>, Errno> {
        let client = self.machine.borrow_mut().connect(uid, gid);
        let line = Line {
            machine: self.machine,
            client,
        };
        let pid = Client::new(line).hello(ticket)?.pid;
        let line = Line {
            machine: self.machine,
            client,
        };
        Ok(BareProcess { line, pid })
    }
}

impl Harness for Bare<'_> {
    fn spawn(&self) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        Ok(Box::new(self.process(0, 0, None)?))
    }

    fn spawn_as(&self, uid: u32, gid: u32) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        Ok(Box::new(self.process(uid, gid, None)?))
    }

    fn attach(&self, ticket: u64) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        Ok(Box::new(self.process(0, 0, Some(ticket))?))
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let m = self.machine.borrow();
        m.arena_range(addr, buf.len())?;
        crate::PhysicalMemory::read(m.s.memory(), addr, buf);
        Ok(())
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let mut m = self.machine.borrow_mut();
        m.arena_range(addr, bytes.len())?;
        crate::PhysicalMemory::write(m.s.memory_mut(), addr, bytes);
        Ok(())
    }

    fn test_device(&self) -> Option<&TestDevControl> {
        Some(&self.env.tst)
    }

    fn landmark(&self, which: Landmark) -> Option<u64> {
        Some(self.env.landmark(which))
    }
}

/// `/rom`'s image: `t` ([`ROM_T_LEN`] bytes of `rom_t_byte`), written by
/// the drivers' image writer (there is no `genromfs` in a unit test).
fn rom_image() -> &'static [u8] {
    let t: Vec<u8> = (0..ROM_T_LEN).map(env::rom_t_byte).collect();
    Box::leak(
        RomfsImage::new("rom")
            .file("t", &t)
            .build()
            .into_boxed_slice(),
    )
}

/// Nothing of the vector's is left: no copies, every page free except the
/// drivers' storage, no open file, object, waiting call or segment.
fn leftovers(s: &Stats) -> Option<String> {
    (!s.left_nothing()).then(|| format!("{s:?}"))
}

#[test]
fn bare_state_machine_runs_all_vectors() {
    let machine = RefCell::new(Machine::new());
    let setup = Setup {
        rom: RomImage::Copied(rom_image()),
        nor: NorFlash::Simulated,
        device_memory: DEVICE_MEMORY..DEVICE_MEMORY + 16 * P,
    };
    let env = env::build(&mut InlineMounter { machine: &machine }, setup)
        .unwrap_or_else(|e| panic!("the test environment: {e}"));
    let mut bare = Bare {
        machine: &machine,
        env,
    };
    let mut failures = Vec::new();
    for vector in VECTORS {
        if let Err(failure) = (vector.run)(&mut bare) {
            failures.push(format!("{vector:?}: {failure}"));
        }
        let m = machine.borrow();
        if let Err(broken) = m.s.check_invariants() {
            failures.push(format!("{vector:?}: invariant broken: {broken}"));
        }
        if let Some(left) = leftovers(&m.s.stats()) {
            failures.push(format!("{vector:?}: left behind: {left}"));
        }
    }
    assert!(
        failures.is_empty(),
        "bare state machine: {} of {} vector checks failed:\n{}",
        failures.len(),
        VECTORS.len(),
        failures.join("\n")
    );
}
