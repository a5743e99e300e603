//! Task isolation with RISC-V PMP, as plain code: what each task may touch
//! and the 16 PMP entries that say so while it runs. The kernel runs in
//! M-mode, which PMP does not bind; tasks run in U-mode, which it does.
//!
//! * A **user** task may read and execute the flash and the image's text,
//!   read and write its own copy of the runtime's statics (below), its
//!   own region (one naturally aligned power-of-two block of the region
//!   pool at the task heap's end: its stack and its Rust heap), and in the arena only the ranges memsrv
//!   says its processes have mapped ([`Sys::Regions`](super::Sys::Regions),
//!   memsrv's view of their VMAs).
//! * A **driver** may touch its copy of the statics, its own region of
//!   the region pool (as a user task: its stack, its heap and the device
//!   built there; not the task heap, where init and memsrv allocate, nor
//!   another driver's region), read the flash, the one device it claimed
//!   ([`Protection::claim`]: the UART's page or the NOR chip's bank to
//!   send it commands; a virtio slot grants no entry, the kernel drives
//!   its disk, `kernel/block_io.rs`), and in the arena only the
//!   ranges memsrv names for its connection: its backing runs
//!   (`AllocBacking`) and the page it is filling for a call.
//! * A **server** (memsrv) may touch the whole task heap and arena, the
//!   devices' MMIO window and write the flash: what it serves.
//! * A **privileged** task (init) may touch everything (but write the
//!   text): a server's entries and one more for the rest.
//!
//! **The runtime's statics** (the image's `.data`/`.bss`: picolibc's
//! streams, the shim's state, hash seeds) sit at one address, and every
//! task has its own copy of them, kept after the header of the heap its
//! `gp` names (a user task's in its region; init, memsrv and the drivers
//! share the task heap's). Only the task whose copy is in place may touch them; any
//! other takes an access fault there, and the kernel saves the copy in
//! place to its owner's header and puts the faulting task's copy in
//! ([`Protection::claim_statics`]), as a lazy FPU switch does. A user
//! task's copy starts as its spawner's.
//!
//! No role's entries cover the kernel's own state (task table, connections,
//! frames, the kernel stack): it lies below the image, where only M-mode
//! reaches. The system calls check every buffer a task names against the
//! same rules ([`Protection::may_touch`]), so the kernel copies nothing a
//! task could not touch itself.
//!
//! Entries 0–4 are fixed per role (0–5 for a driver); the rest hold a user
//! task's or a driver's arena ranges, eleven (ten) entries at a time. A
//! task takes an access fault on a range that is not loaded, and the kernel loads all of it in place of
//! the oldest ([`Protection::refill`]), as a TLB is refilled: a range that
//! is one naturally aligned power-of-two block takes one entry (NAPOT),
//! any other a pair (TOR). An access outside every range is stray and
//! ends the task.

use super::ipc::ConnId;
use super::task_table::{TaskId, MAX_TASKS};
use super::{Kernel, Machine, MAX_CONNECTIONS};
use core::ops::Range;
use protocol::Errno;

#[path = "pmp_switch.rs"]
mod switch;

/// PMP entries QEMU's virt board gives a hart.
pub const PMP_ENTRIES: usize = 16;
/// Arena ranges the kernel keeps for all connections together (a pool,
/// as many as 128 connections of 32 each took before: one process may
/// have thousands of separate mappings, most few): each
/// range exactly as memsrv names it, so no gap between two is reachable.
/// A list that does not fit (after the ranges of closed connections are
/// dropped) is refused and leaves its connection none; memsrv fails the
/// mapping calls that would get there `ENOMEM` (`tasks/memsrv.rs`).
pub const RANGE_POOL: usize = 4096;
/// Entries kept for the role's fixed layout.
const FIXED: usize = 5;
/// Arena entries a user task has (a driver one fewer: its flash entry
/// takes it, its device entry 0).
pub const RESIDENT: usize = PMP_ENTRIES - FIXED;

/// `pmpcfg` bits of one entry.
pub mod cfg {
    pub const R: u8 = 1;
    pub const W: u8 = 2;
    pub const X: u8 = 4;
    /// Top of range: from the previous entry's address to this one's.
    pub const TOR: u8 = 1 << 3;
    /// Naturally aligned power of two.
    pub const NAPOT: u8 = 3 << 3;
}

/// One PMP entry as written: its `pmpcfg` byte and its `pmpaddr` (the
/// address shifted right by 2). All zero: off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub cfg: u8,
    pub addr: u64,
}

impl Entry {
    /// A TOR base: off, only its address counts.
    fn base(at: u64) -> Entry {
        Entry {
            cfg: 0,
            addr: at >> 2,
        }
    }

    fn top(at: u64, perms: u8) -> Entry {
        Entry {
            cfg: cfg::TOR | perms,
            addr: at >> 2,
        }
    }

    /// `[base, base + size)`, `size` a power of two ≥ 8 and `base` aligned
    /// to it.
    fn napot(base: u64, size: u64, perms: u8) -> Entry {
        Entry {
            cfg: cfg::NAPOT | perms,
            addr: (base | (size / 2 - 1)) >> 2,
        }
    }

    /// Every address.
    fn everything() -> Entry {
        Entry {
            cfg: cfg::NAPOT | cfg::R | cfg::W | cfg::X,
            addr: u64::MAX >> 10,
        }
    }
}

/// All entries as the registers hold them: the addresses, and the
/// configuration bytes packed eight to a `pmpcfg` word (`pmpcfg0`,
/// `pmpcfg2` on RV64), so a switch compares words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entries {
    pub addr: [u64; PMP_ENTRIES],
    pub cfg: [u64; PMP_ENTRIES / 8],
}

impl Entries {
    const OFF: Entries = Entries {
        addr: [0; PMP_ENTRIES],
        cfg: [0; PMP_ENTRIES / 8],
    };

    pub fn get(&self, i: usize) -> Entry {
        Entry {
            cfg: (self.cfg[i / 8] >> (8 * (i % 8))) as u8,
            addr: self.addr[i],
        }
    }

    fn set(&mut self, i: usize, e: Entry) {
        let shift = 8 * (i % 8);
        self.addr[i] = e.addr;
        self.cfg[i / 8] = (self.cfg[i / 8] & !(0xff << shift)) | u64::from(e.cfg) << shift;
    }
}

/// What a task may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Its own: the fixed part and the arena ranges its processes mapped.
    User,
    /// A backing device: its region, the device it claimed, the flash to
    /// read, and in the arena what memsrv names for it.
    Driver,
    /// memsrv: the task heap, the arena, and the flash to read and
    /// execute (no device: it serves memory).
    Server,
    /// Everything (init).
    Privileged,
}

/// The board's memory map as PMP sees it (set once at boot; the host
/// tests make one up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Flash: naturally aligned, a power of two.
    pub flash: Range<u64>,
    /// The image's text and read-only data (the kernel's state lies below
    /// it).
    pub text: Range<u64>,
    /// From the end of the text: the data and bss (the runtime's
    /// statics, a copy per task).
    pub data_end: u64,
    /// Where a heap keeps its tasks' copy of the statics: this far from
    /// its header's start (`heap::STATICS_COPY_AT`).
    pub statics_copy: u64,
    /// From here (at or after `data_end`) the task heap (init's and
    /// memsrv's allocations) up to `regions_start`, then the user tasks'
    /// and drivers' regions up to `heap_end`.
    pub heap_start: u64,
    pub regions_start: u64,
    pub heap_end: u64,
    /// The arena: from `heap_end`.
    pub arena_end: u64,
    /// The devices' MMIO window (memsrv's): naturally aligned, a power
    /// of two.
    pub devices: Range<u64>,
    /// Each device a driver may claim ([`device`]): its registers (or a
    /// flash bank) as `(base, size)`, a naturally aligned power of two.
    pub device_windows: [(u64, u64); DEVICES],
}

/// The devices a task may claim ([`Protection::claim`]), one holder at a
/// time: the kernel's record replaces taken flags in memory the drivers
/// share.
pub mod device {
    /// The 16550 UART's page.
    pub const UART: u64 = 0;
    /// The virtio-mmio slots (QEMU virt: 8, a page each).
    pub const VIRTIO_SLOTS: u64 = 8;
    /// The page of virtio-mmio slot `slot` (`< VIRTIO_SLOTS`).
    pub const fn virtio(slot: u64) -> u64 {
        1 + slot
    }
    /// The virtio-mmio slot `device` is, if it is one.
    pub const fn virtio_slot(device: u64) -> Option<u64> {
        if device >= 1 && device <= VIRTIO_SLOTS {
            Some(device - 1)
        } else {
            None
        }
    }
    /// The NOR chip (flash bank 1), to send its commands.
    pub const NOR_FLASH: u64 = 9;
    /// Flash bank 0, which holds the romfs image read in place: a claim
    /// grants no entry (every task may read the flash), it only makes one
    /// holder.
    pub const BOOT_FLASH: u64 = 10;
}

/// How many devices [`device`] names.
pub const DEVICES: usize = 11;

/// Why an access fault happened, as the report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Fetch,
    Load,
    Store,
}

impl Access {
    /// The access an `mcause` names, if it is an access fault.
    pub fn from_cause(cause: u64) -> Option<Access> {
        match cause {
            1 => Some(Access::Fetch),
            5 => Some(Access::Load),
            7 => Some(Access::Store),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Access::Fetch => "fetch",
            Access::Load => "load",
            Access::Store => "store",
        }
    }
}

/// The arena ranges memsrv named for one connection's process: `len`
/// ranges from `start` in the pool, ascending and apart.
#[derive(Clone, Copy)]
struct ConnRegions {
    /// The connection they were named for (its generation included, so a
    /// reused slot does not inherit them).
    conn: ConnId,
    client: TaskId,
    start: usize,
    len: usize,
}

impl ConnRegions {
    const NONE: ConnRegions = ConnRegions {
        conn: u64::MAX,
        client: 0,
        start: 0,
        len: 0,
    };
}

#[derive(Clone, Copy)]
struct TaskPmp {
    role: Role,
    /// The header of the heap it allocates from (its `gp`), which keeps
    /// its copy of the runtime's statics.
    heap: u64,
    /// A user task's or a driver's region `(base, size)`: its stack and
    /// heap.
    region: Option<(u64, u64)>,
    /// The arena ranges loaded for it, entry by entry, oldest replaced
    /// first.
    resident: [Slot; RESIDENT],
    next_victim: usize,
    /// Entries loaded on access faults since it started.
    refills: u64,
    /// Times its heap's copy of the statics was put in place for it.
    statics_loads: u64,
    /// The device a driver claimed: the window its entry 0 grants.
    device: Option<usize>,
}

impl Role {
    /// Whether memsrv names the arena ranges it may touch (confined to
    /// them).
    pub fn confined(self) -> bool {
        matches!(self, Role::User | Role::Driver)
    }

    /// The first of its arena entries: a driver's flash entry takes the
    /// one after its fixed part (its device took entry 0).
    fn first_arena_entry(self) -> usize {
        if self == Role::Driver {
            FIXED + 1
        } else {
            FIXED
        }
    }
}

impl TaskPmp {
    const NEW: TaskPmp = TaskPmp {
        role: Role::User,
        heap: 0,
        region: None,
        resident: [Slot::Empty; RESIDENT],
        next_victim: 0,
        refills: 0,
        statics_loads: 0,
        device: None,
    };

    /// Empty slot `i`, and the other half of the TOR pair it is part of.
    fn evict(&mut self, i: usize) {
        match self.resident[i] {
            Slot::TorBase(_) => self.resident[i + 1] = Slot::Empty,
            Slot::TorTop(..) => self.resident[i - 1] = Slot::Empty,
            Slot::Empty | Slot::Napot(..) => {}
        }
        self.resident[i] = Slot::Empty;
    }

    /// Load `range` into the oldest slots: one for a NAPOT block, two in
    /// a row for a TOR pair (whose top takes its base from the entry
    /// before it).
    fn load(&mut self, (start, end): (u64, u64), napot: bool) {
        let slots = PMP_ENTRIES - self.role.first_arena_entry();
        let mut i = self.next_victim;
        let need = if napot { 1 } else { 2 };
        if i + need > slots {
            i = 0;
        }
        for j in i..i + need {
            self.evict(j);
        }
        if napot {
            self.resident[i] = Slot::Napot(start, end - start);
        } else {
            self.resident[i] = Slot::TorBase(start);
            self.resident[i + 1] = Slot::TorTop(start, end);
        }
        self.next_victim = (i + need) % slots;
        self.refills += 1;
    }

    /// Whether a loaded entry holds `addr`.
    fn holds(&self, addr: u64) -> bool {
        self.resident.iter().any(|s| match *s {
            Slot::Napot(base, size) => base <= addr && addr - base < size,
            Slot::TorTop(start, end) => start <= addr && addr < end,
            Slot::Empty | Slot::TorBase(_) => false,
        })
    }
}

/// What one of a user task's arena entries holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Empty,
    /// A naturally aligned block `(base, size)`: one NAPOT entry.
    Napot(u64, u64),
    /// The base of the TOR range in the next slot (an entry that is off,
    /// only its address counts).
    TorBase(u64),
    /// A range `[start, end)` from the base in the slot before.
    TorTop(u64, u64),
}

/// The largest naturally aligned power-of-two block (8 bytes or more)
/// inside `[start, end)` that holds `addr`: what one NAPOT entry can grant.
fn napot_block(addr: u64, (start, end): (u64, u64)) -> Option<(u64, u64)> {
    if addr < start || addr >= end {
        return None;
    }
    let mut size = 1u64 << (63 - (end - start).leading_zeros());
    while size >= 8 {
        let base = addr & !(size - 1);
        if base >= start && base + size <= end {
            return Some((base, size));
        }
        size /= 2;
    }
    None
}

/// Every task's protection and the connections' arena ranges.
pub struct Protection {
    layout: Option<Layout>,
    tasks: [TaskPmp; MAX_TASKS],
    conns: [ConnRegions; MAX_CONNECTIONS],
    /// Every connection's ranges, each list in one piece; free from
    /// `pool_top` (and in the holes lists left, until a compaction).
    pool: [(u64, u64); RANGE_POOL],
    pool_top: usize,
    /// Each task's entries, computed when its protection changes (rarely)
    /// so a switch only writes ([`Protection::switch_to`]).
    entries: [Entries; MAX_TASKS],
    /// What the hart holds, and the switches remembered.
    hart: switch::Hart,
    /// The heap whose tasks' copy of the runtime's statics is in place
    /// (`None`: nobody's, after its task ended).
    statics_holder: Option<u64>,
    /// Where each task's system-call buffers usually are, `[start, end)`:
    /// init's and memsrv's in the task heap and arena, a user task's or a
    /// driver's in its region (anywhere while protection is off). A buffer inside passes [`Protection::may_touch`] at once.
    usual: [(u64, u64); MAX_TASKS],
    /// Which task holds each device ([`device`]).
    claims: [Option<TaskId>; DEVICES],
}

/// The copies a change of whose statics are in place takes: the ones in
/// place to `save` (their heap header's copy; none if their task ended),
/// then `load` (the claiming task's heap header's copy) in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticsSwap {
    pub save: Option<u64>,
    pub load: u64,
}

/// The hart's PMP registers (the board's; a record in the tests).
pub trait PmpRegisters {
    /// Write `pmpaddr<index>`.
    fn set_addr(&mut self, index: usize, addr: u64);
    /// Write the `pmpcfg` register holding entries `first..first + 8`.
    fn set_cfg(&mut self, first: usize, word: u64);
}

impl Default for Protection {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Protection::refill`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refill {
    /// The address is the task's: its range is loaded, retry the access.
    Loaded,
    /// Not the task's memory: a stray access.
    Stray,
}

impl Protection {
    pub const fn new() -> Self {
        Self {
            layout: None,
            tasks: [TaskPmp::NEW; MAX_TASKS],
            conns: [ConnRegions::NONE; MAX_CONNECTIONS],
            pool: [(0, 0); RANGE_POOL],
            pool_top: 0,
            entries: [Entries::OFF; MAX_TASKS],
            hart: switch::Hart::new(),
            statics_holder: None,
            usual: [(0, u64::MAX); MAX_TASKS],
            claims: [None; DEVICES],
        }
    }

    /// Turn protection on with the board's memory map (until then, and in
    /// the host tests that never call it, tasks are unconfined).
    /// The statics in place then are the image's own: init's (it
    /// allocates from the task heap's header).
    pub fn enable(&mut self, layout: Layout) {
        self.statics_holder = Some(layout.heap_start);
        self.layout = Some(layout);
        for task in 0..MAX_TASKS {
            self.changed(task);
        }
    }

    pub fn role(&self, task: TaskId) -> Role {
        self.tasks[task].role
    }

    /// A task starts in slot `task` with `role`, nothing loaded.
    pub fn start(&mut self, task: TaskId, role: Role) {
        self.tasks[task] = TaskPmp {
            role,
            ..TaskPmp::NEW
        };
        self.changed(task);
    }

    /// Task `task` allocates from the heap whose header is at `heap` (its
    /// `gp`), where its copy of the runtime's statics is kept.
    pub fn set_heap(&mut self, task: TaskId, heap: u64) {
        self.tasks[task].heap = heap;
        self.changed(task);
    }

    /// Task `task` ended: a user task's or a driver's copy of the statics
    /// goes with its region, so the copy in place is nobody's (the next
    /// task to touch the statics loads its own without saving it).
    pub fn exit(&mut self, task: TaskId) {
        for holder in self.claims.iter_mut().filter(|h| **h == Some(task)) {
            *holder = None;
        }
        if self.tasks[task].device.take().is_some() {
            self.changed(task);
        }
        let t = &self.tasks[task];
        if t.region.is_some() && self.statics_holder == Some(t.heap) {
            self.statics_holder = None;
            self.changed(task);
        }
    }

    /// The runtime's statics, `[start, end)`: the range every task has
    /// its own copy of (empty while protection is off).
    pub fn statics(&self) -> Range<u64> {
        self.layout
            .as_ref()
            .map_or(0..0, |l| l.text.end..l.data_end)
    }

    /// Where task `task`'s view of the statics is now: in place, or its
    /// heap header's copy.
    pub fn statics_of(&self, task: TaskId) -> u64 {
        let heap = self.tasks[task].heap;
        match &self.layout {
            Some(l) if self.statics_holder != Some(heap) => heap + l.statics_copy,
            _ => self.statics().start,
        }
    }

    /// Put task `task`'s copy of the statics in place: the copies the
    /// kernel must make, `None` if it is in place already (so the fault
    /// that asked was not about whose copy it is).
    pub fn claim_statics(&mut self, task: TaskId) -> Option<StaticsSwap> {
        let l = self.layout.as_ref()?;
        let heap = self.tasks[task].heap;
        if self.statics_holder == Some(heap) {
            return None;
        }
        let swap = StaticsSwap {
            save: self.statics_holder.map(|h| h + l.statics_copy),
            load: heap + l.statics_copy,
        };
        let before = self.statics_holder.replace(heap);
        self.tasks[task].statics_loads += 1;
        // Only entry 3 changes, and only for the tasks of the two heaps.
        for t in 0..MAX_TASKS {
            let h = self.tasks[t].heap;
            if h == heap || Some(h) == before {
                self.changed(t);
            }
        }
        Some(swap)
    }

    /// Task `task` claims `device` ([`device`]): `EBUSY` if a task holds
    /// it (the claimer included) or a driver holds another one already,
    /// `EPERM` for a user task, `EINVAL` for no such device. A driver's
    /// entry 0 then grants the device's window, read and write (but for a
    /// virtio slot, whose registers stay the kernel's); a server
    /// or privileged task reaches every device anyway and only becomes
    /// its holder.
    pub fn claim(&mut self, task: TaskId, device: u64) -> Result<(), Errno> {
        let d = usize::try_from(device)
            .ok()
            .filter(|d| *d < DEVICES)
            .ok_or(Errno::EINVAL)?;
        let t = &mut self.tasks[task];
        if t.role == Role::User {
            return Err(Errno::EPERM);
        }
        if self.claims[d].is_some() || t.role == Role::Driver && t.device.is_some() {
            return Err(Errno::EBUSY);
        }
        self.claims[d] = Some(task);
        if t.role == Role::Driver {
            t.device = Some(d);
            self.changed(task);
        }
        Ok(())
    }

    /// Task `task` gives `device` back (a probe that found another kind
    /// of device there); `EINVAL` if it does not hold it.
    pub fn release(&mut self, task: TaskId, device: u64) -> Result<(), Errno> {
        let d = usize::try_from(device)
            .ok()
            .filter(|d| *d < DEVICES && self.claims[*d] == Some(task))
            .ok_or(Errno::EINVAL)?;
        self.claims[d] = None;
        if self.tasks[task].device == Some(d) {
            self.tasks[task].device = None;
            self.changed(task);
        }
        Ok(())
    }

    /// The virtio-mmio slot task `task` holds, if any.
    pub fn claimed_virtio_slot(&self, task: TaskId) -> Option<u64> {
        (0..device::VIRTIO_SLOTS).find(|&s| self.claims[device::virtio(s) as usize] == Some(task))
    }

    /// Whether `[base, base + size)` can be a user task's or a driver's
    /// region: a
    /// naturally aligned power-of-two block (one NAPOT entry) of at least
    /// a page inside the region pool at the task heap's end (always,
    /// while protection is off).
    pub fn region_fits(&self, base: u64, size: u64) -> bool {
        let Some(l) = &self.layout else {
            return true;
        };
        size.is_power_of_two()
            && size >= 4096
            && base.is_multiple_of(size)
            && base >= l.regions_start
            && base.checked_add(size).is_some_and(|end| end <= l.heap_end)
    }

    /// User or driver task `task` runs with its stack and heap in `region`
    /// (`(base, size)`, [`Protection::region_fits`]).
    pub fn set_region(&mut self, task: TaskId, region: (u64, u64)) {
        self.tasks[task].region = Some(region);
        self.changed(task);
    }

    /// Whether task `task` may touch `[addr, addr + len)` (write it too
    /// if `write`), as its entries allow: the check of every buffer a
    /// system call names. `live(conn)` as in [`Protection::range_of`].
    #[inline]
    pub fn may_touch(
        &self,
        task: TaskId,
        addr: u64,
        len: u64,
        write: bool,
        live: impl Fn(ConnId) -> bool,
    ) -> bool {
        // Where the task's buffers usually are first: this runs for every
        // buffer of every call.
        let (start, stop) = self.usual[task];
        match addr.checked_add(len) {
            Some(end) if start <= addr && end <= stop => true,
            Some(end) => self.may_touch_elsewhere(task, addr, end, write, live),
            None => false,
        }
    }

    /// Where task `task`'s system-call buffers usually are, `[start,
    /// end)`: a buffer inside passes [`Protection::may_touch`] at once.
    #[inline]
    pub fn usual_window(&self, task: TaskId) -> (u64, u64) {
        self.usual[task]
    }

    /// [`Protection::may_touch`] for `[addr, end)` outside the task's
    /// usual place (its region): a user task's or a driver's arena ranges, the text and flash to read;
    /// for init anything. Never the runtime's statics: the
    /// copy in place may be another task's, and a posted receive buffer
    /// is written later.
    #[inline(never)]
    fn may_touch_elsewhere(
        &self,
        task: TaskId,
        addr: u64,
        end: u64,
        write: bool,
        live: impl Fn(ConnId) -> bool,
    ) -> bool {
        let Some(l) = &self.layout else {
            return true;
        };
        if self.tasks[task].role == Role::Privileged {
            // Anything but the statics (the copy in place may be
            // another task's).
            return end <= l.text.end || addr >= l.data_end;
        }
        let within = |r: Range<u64>| r.start <= addr && end <= r.end;
        let role = self.tasks[task].role;
        (role.confined()
            && self
                .range_of(task, addr, live)
                .is_some_and(|(_, range_end)| end <= range_end))
            || !write && (within(l.text.clone()) || within(l.flash.clone()))
    }

    fn changed(&mut self, task: TaskId) {
        self.entries[task] = self.compute(task);
        let t = &self.tasks[task];
        self.usual[task] = match (&self.layout, t.role) {
            (None, _) => (0, u64::MAX),
            (Some(l), Role::Server | Role::Privileged) => (l.data_end, l.arena_end),
            (Some(_), Role::User | Role::Driver) => {
                t.region.map_or((0, 0), |(base, size)| (base, base + size))
            }
        };
        self.hart.changed(task);
    }

    /// memsrv names the arena ranges connection `conn` (client task
    /// `client`) has mapped; they replace the last ones, and any range of
    /// that task's loaded entries is unloaded, so an unmapped range is
    /// gone before memsrv answers the unmap. `false` for a range outside
    /// the arena, out of order, or too many (the connection then has
    /// none). The host tests' form of [`Protection::set_regions_from`].
    pub fn set_regions(
        &mut self,
        conn: ConnId,
        slot: usize,
        client: TaskId,
        ranges: &[(u64, u64)],
    ) -> bool {
        let copy = |at: usize, out: &mut [(u64, u64)]| {
            out.copy_from_slice(&ranges[at..at + out.len()]);
            true
        };
        self.set_regions_from(
            conn,
            slot,
            client,
            ranges.len(),
            &[true; MAX_CONNECTIONS],
            copy,
        )
        .is_ok()
    }

    /// [`Protection::set_regions`] for `count` ranges that `read(at,
    /// out)` copies in (ranges `at..at + out.len()`, false: `EFAULT`);
    /// `alive[slot]` says whether the connection in a slot is still open
    /// (a closed one's ranges go if the pool must be compacted). `EINVAL`
    /// for a range outside the arena, unaligned or out of order,
    /// `ENOMEM` if the pool has no room: on any error the connection keeps
    /// no range, so nothing it no longer maps stays reachable.
    pub fn set_regions_from(
        &mut self,
        conn: ConnId,
        slot: usize,
        client: TaskId,
        count: usize,
        alive: &[bool; MAX_CONNECTIONS],
        mut read: impl FnMut(usize, &mut [(u64, u64)]) -> bool,
    ) -> Result<(), Errno> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let arena = layout.heap_end..layout.arena_end;
        self.conns[slot] = ConnRegions {
            conn,
            client,
            ..ConnRegions::NONE
        };
        let result = self.fill(slot, count, alive, &mut read, arena);
        let t = &mut self.tasks[client];
        t.resident = [Slot::Empty; RESIDENT];
        t.next_victim = 0;
        self.changed(client);
        result
    }

    /// Copy `count` ranges into the pool for slot `slot` and check them.
    fn fill(
        &mut self,
        slot: usize,
        count: usize,
        alive: &[bool; MAX_CONNECTIONS],
        read: &mut impl FnMut(usize, &mut [(u64, u64)]) -> bool,
        arena: Range<u64>,
    ) -> Result<(), Errno> {
        if count > RANGE_POOL - self.pool_top {
            self.compact(alive);
        }
        if count > RANGE_POOL - self.pool_top {
            return Err(Errno::ENOMEM);
        }
        let start = self.pool_top;
        let ranges = &mut self.pool[start..start + count];
        // In pieces, so a fault in the middle copies no more.
        for (i, piece) in ranges.chunks_mut(32).enumerate() {
            if !read(32 * i, piece) {
                return Err(Errno::EFAULT);
            }
        }
        let mut last_end = arena.start;
        for &(s, e) in ranges.iter() {
            if s >= e || s < last_end || e > arena.end || s % 8 != 0 || e % 8 != 0 {
                return Err(Errno::EINVAL);
            }
            last_end = e;
        }
        self.pool_top += count;
        self.conns[slot].start = start;
        self.conns[slot].len = count;
        Ok(())
    }

    /// Move the lists of open connections down to the pool's start, in
    /// the order they lie (so none is overwritten before it moves);
    /// closed connections' lists go.
    fn compact(&mut self, alive: &[bool; MAX_CONNECTIONS]) {
        let mut order: [usize; MAX_CONNECTIONS] = core::array::from_fn(|i| i);
        order.sort_unstable_by_key(|&i| self.conns[i].start);
        let mut top = 0;
        for i in order {
            let c = &mut self.conns[i];
            if c.len == 0 || !alive[i] {
                c.len = 0;
                continue;
            }
            self.pool.copy_within(c.start..c.start + c.len, top);
            c.start = top;
            top += c.len;
        }
        self.pool_top = top;
    }

    /// The connection whose ranges slot `slot` holds and its client.
    pub fn conn_at(&self, slot: usize) -> (ConnId, TaskId) {
        (self.conns[slot].conn, self.conns[slot].client)
    }

    /// The range of connection slot `c` holding `addr`, if any: a binary
    /// search of its list, which is ascending.
    fn in_conn(&self, c: &ConnRegions, addr: u64) -> Option<(u64, u64)> {
        let ranges = &self.pool[c.start..c.start + c.len];
        let i = ranges.partition_point(|&(_, end)| end <= addr);
        ranges.get(i).copied().filter(|&(start, _)| start <= addr)
    }

    /// The arena range of task `task`'s processes holding `addr`, if any;
    /// `live(conn)` says whether a connection is still open with `task`
    /// as its client.
    pub fn range_of(
        &self,
        task: TaskId,
        addr: u64,
        live: impl Fn(ConnId) -> bool,
    ) -> Option<(u64, u64)> {
        if self.layout.is_none() || !self.tasks[task].role.confined() {
            return None;
        }
        self.conns
            .iter()
            .filter(|c| c.client == task && c.len > 0)
            .filter_map(|c| Some((c.conn, self.in_conn(c, addr)?)))
            .find(|&(conn, _)| live(conn))
            .map(|(_, range)| range)
    }

    /// Task `task` took an access fault at `addr`, which lies in its range
    /// `range` ([`Protection::range_of`]): load the whole range, as one
    /// NAPOT entry if it is one naturally aligned block, else as a TOR
    /// pair (a range of `n` pages would be up to 2·log₂ `n` blocks, each
    /// its own fault; Lua's heap, hundreds of mappings memsrv joins into a
    /// few long ranges, took a refill every few thousand instructions).
    /// If it is loaded already, the access ran past the range's end: not
    /// the task's memory.
    pub fn refill(&mut self, task: TaskId, addr: u64, range: (u64, u64)) -> Refill {
        let t = &mut self.tasks[task];
        let Some(block) = napot_block(addr, range) else {
            return Refill::Stray;
        };
        if t.holds(addr) {
            return Refill::Stray;
        }
        t.load(range, block == (range.0, range.1 - range.0));
        self.changed(task);
        Refill::Loaded
    }

    /// How many refills task `task` has taken since it started, how many
    /// times its copy of the statics was put in place, and how many arena
    /// ranges its open connections name (the profile's figures).
    pub fn refills(&self, task: TaskId) -> (u64, u64, usize) {
        let ranges = self
            .conns
            .iter()
            .filter(|c| c.client == task)
            .map(|c| c.len)
            .sum();
        (
            self.tasks[task].refills,
            self.tasks[task].statics_loads,
            ranges,
        )
    }

    /// The entries task `task` runs with.
    pub fn entries(&self, task: TaskId) -> &Entries {
        &self.entries[task]
    }

    fn compute(&self, task: TaskId) -> Entries {
        let mut e = Entries::OFF;
        let Some(l) = &self.layout else {
            e.set(0, Entry::everything());
            return e;
        };
        let t = &self.tasks[task];
        let flash_size = l.flash.end - l.flash.start;
        let flash = Entry::napot(l.flash.start, flash_size, cfg::R | cfg::X);
        match (t.role, t.device) {
            // A driver's claimed device comes first, so that for the NOR
            // chip it wins over the flash's read-only entry (the lowest
            // matching entry decides); without one, nothing.
            // A virtio slot's registers stay the kernel's
            // (`Sys::BlockIo`): with them a driver could point the
            // device's DMA anywhere.
            (Role::Driver, Some(d)) if device::virtio_slot(d as u64).is_some() => {}
            (Role::Driver, Some(d)) => {
                let (base, size) = l.device_windows[d];
                e.set(0, Entry::napot(base, size, cfg::R | cfg::W));
            }
            (Role::Driver, None) => {}
            // memsrv reads and executes the flash (romfs files mapped in
            // place) and writes it never: the NOR chip's driver does.
            // Init has the same entry, so a switch between the two writes
            // only their last entry; init's writes to the flash go
            // through the NOR chip's driver too.
            (Role::User | Role::Server | Role::Privileged, _) => e.set(0, flash),
        }
        e.set(1, Entry::base(l.text.start));
        e.set(2, Entry::top(l.text.end, cfg::R | cfg::X));
        // The statics: the task whose copy is in place may touch them;
        // for any other the entry matches and grants nothing (so init's
        // catch-all below does not reach them either).
        let statics = if self.statics_holder == Some(t.heap) {
            cfg::R | cfg::W
        } else {
            0
        };
        e.set(3, Entry::top(l.data_end, statics));
        let first_arena = t.role.first_arena_entry();
        match t.role {
            // A server's entries and, last, everything else: a switch
            // between init and memsrv writes one address and one word.
            Role::Privileged | Role::Server => {
                // The task heap and the arena follow the data: entry 3's
                // top is their base. No device: memsrv serves memory, the
                // drivers their devices; init reaches them through its
                // last entry.
                e.set(4, Entry::top(l.arena_end, cfg::R | cfg::W));
                if t.role == Role::Privileged {
                    e.set(PMP_ENTRIES - 1, Entry::everything());
                }
            }
            Role::User | Role::Driver => {
                if let Some((base, size)) = t.region {
                    e.set(4, Entry::napot(base, size, cfg::R | cfg::W));
                }
                if t.role == Role::Driver {
                    // The flash to read (a romfs image in place): after
                    // its device, which may be a flash bank.
                    e.set(FIXED, flash);
                }
                let slots = PMP_ENTRIES - first_arena;
                for (i, slot) in t.resident.iter().take(slots).enumerate() {
                    let entry = match *slot {
                        Slot::Empty => continue,
                        Slot::Napot(base, size) => Entry::napot(base, size, cfg::R | cfg::W),
                        Slot::TorBase(start) => Entry::base(start),
                        Slot::TorTop(_, end) => Entry::top(end, cfg::R | cfg::W),
                    };
                    e.set(first_arena + i, entry);
                }
            }
        }
        e
    }
}

impl Kernel {
    /// `Regions(conn, ptr, count)`: memsrv (a server task, the server of
    /// `conn`) names the arena ranges `conn`'s process has mapped: `count`
    /// pairs of little-endian `(start, end)` words at `ptr`. 1 when the
    /// client task is not confined (memsrv or a privileged task): memsrv
    /// need not name its ranges again.
    pub(super) fn set_regions(
        &mut self,
        id: TaskId,
        conn: u64,
        addr: u64,
        count: u64,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        if self.protection.role(id) != Role::Server {
            return Err(Errno::EPERM);
        }
        let (slot, client, _) = self
            .peers(conn)
            .filter(|(_, _, server)| *server == id)
            .ok_or(Errno::EBADF)?;
        if !self.protection.role(client).confined() {
            return Ok(1);
        }
        let count = usize::try_from(count)
            .ok()
            .filter(|n| *n <= RANGE_POOL)
            .ok_or(Errno::EINVAL)?;
        // A list memsrv may not name is refused as a bad one: the
        // connection keeps no range (its old ones may be unmapped).
        let readable = count == 0 || self.may_touch(id, addr, 16 * count as u64, false);
        let alive: [bool; MAX_CONNECTIONS] = core::array::from_fn(|slot| {
            let (conn, client) = self.protection.conn_at(slot);
            self.peers(conn)
                .is_some_and(|(s, c, _)| s == slot && c == client)
        });
        let read = |at: usize, out: &mut [(u64, u64)]| {
            if !readable {
                return false;
            }
            let mut bytes = [0u8; 16 * 32];
            let bytes = &mut bytes[..16 * out.len()];
            if !machine.copy_in(addr + 16 * at as u64, bytes) {
                return false;
            }
            for (range, b) in out.iter_mut().zip(bytes.chunks_exact(16)) {
                let word = |i: usize| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&b[i..i + 8]);
                    u64::from_le_bytes(w)
                };
                *range = (word(0), word(8));
            }
            true
        };
        self.protection
            .set_regions_from(conn, slot, client, count, &alive, read)?;
        Ok(0)
    }

    /// `Claim(device, release)`: task `id` claims `device` (gives it back
    /// if `release` is 1) ([`Protection::claim`]).
    pub(super) fn claim_device(
        &mut self,
        id: TaskId,
        device: u64,
        release: u64,
        machine: &mut dyn Machine,
    ) -> Result<u64, Errno> {
        match release {
            0 => {
                self.protection.claim(id, device)?;
                // A virtio slot's queue is the kernel's to set up: the
                // holder never reaches its registers.
                if let Some(slot) = device::virtio_slot(device) {
                    if let Err(e) = machine.attach_disk(slot) {
                        self.protection.release(id, device)?;
                        return Err(e);
                    }
                }
                Ok(())
            }
            1 => self.protection.release(id, device),
            _ => Err(Errno::EINVAL),
        }
        .map(|()| 0)
    }

    /// Put task `id`'s copy of the statics in place (saving the one
    /// there); `Stray` if it is there already (a fetch from the statics).
    fn claim_statics(&mut self, id: TaskId, machine: &mut dyn Machine) -> Refill {
        let statics = self.protection.statics();
        let len = (statics.end - statics.start) as usize;
        let Some(swap) = self.protection.claim_statics(id) else {
            return Refill::Stray;
        };
        if let Some(save) = swap.save {
            machine.copy(statics.start, save, len);
        }
        machine.copy(swap.load, statics.start, len);
        Refill::Loaded
    }

    /// A user task `child` starts with a copy of its spawner `parent`'s
    /// statics, as a forked process with its parent's data.
    pub(super) fn inherit_statics(
        &mut self,
        parent: TaskId,
        child: TaskId,
        machine: &mut dyn Machine,
    ) {
        let statics = self.protection.statics();
        let from = self.protection.statics_of(parent);
        let to = self.protection.statics_of(child);
        if from != to {
            machine.copy(from, to, (statics.end - statics.start) as usize);
        }
    }

    /// Whether task `id` may touch `[addr, addr + len)` (write it too if
    /// `write`): every buffer a system call names is checked so.
    #[inline]
    pub(super) fn may_touch(&self, id: TaskId, addr: u64, len: u64, write: bool) -> bool {
        let live = |conn| self.peers(conn).is_some_and(|(_, client, _)| client == id);
        self.protection.may_touch(id, addr, len, write, live)
    }

    /// Task `id` took an access fault at `addr`: put its copy of the
    /// statics in place if `addr` is theirs, or load its arena range if it
    /// has one there.
    pub fn access_fault(&mut self, id: TaskId, addr: u64, machine: &mut dyn Machine) -> Refill {
        if self.protection.statics().contains(&addr) {
            return self.claim_statics(id, machine);
        }
        let live = |conn| self.peers(conn).is_some_and(|(_, client, _)| client == id);
        match self.protection.range_of(id, addr, live) {
            Some(range) => self.protection.refill(id, addr, range),
            None => Refill::Stray,
        }
    }
}

#[cfg(test)]
#[path = "pmp_tests.rs"]
mod tests;
