//! Host tests of task isolation: the entries each role runs with, the
//! refill of arena ranges on access faults, which writes a switch makes,
//! and the `Regions` call memsrv makes.

use super::*;
use crate::kernel::{reg, Event, Sys, TaskStart, TaskState};
use std::boxed::Box;
use std::vec::Vec;

const DATA_END: u64 = 0x803f_0000;
/// Between the two, no task's but init's and memsrv's (their entry
/// covers the task heap from the statics' end).
const HEAP_START: u64 = 0x8040_0000;
const HEAP_END: u64 = 0x8100_0000;
const ARENA_END: u64 = 0x8800_0000;
/// Where a heap header keeps its tasks' copy of the statics.
const STATICS_COPY_AT: u64 = 0x40;

fn layout() -> Layout {
    Layout {
        flash: 0x2000_0000..0x2400_0000,
        text: 0x8020_0000..0x8030_0000,
        data_end: DATA_END,
        statics_copy: STATICS_COPY_AT,
        heap_start: HEAP_START,
        // The whole task heap is the region pool here.
        regions_start: HEAP_START,
        heap_end: HEAP_END,
        arena_end: ARENA_END,
        devices: 0x1000_0000..0x1001_0000,
        device_windows: DEVICE_WINDOWS,
    }
}

/// QEMU virt's: the UART, eight virtio-mmio slots, the two flash banks.
const DEVICE_WINDOWS: [(u64, u64); DEVICES] = [
    (0x1000_0000, 0x1000),
    (0x1000_1000, 0x1000),
    (0x1000_2000, 0x1000),
    (0x1000_3000, 0x1000),
    (0x1000_4000, 0x1000),
    (0x1000_5000, 0x1000),
    (0x1000_6000, 0x1000),
    (0x1000_7000, 0x1000),
    (0x1000_8000, 0x1000),
    (0x2200_0000, 0x200_0000),
    (0x2000_0000, 0x200_0000),
];

/// A page of the arena.
fn page(n: u64) -> (u64, u64) {
    let start = HEAP_END + n * 0x2000;
    (start, start + 0x1000)
}

fn protection(roles: &[Role]) -> Box<Protection> {
    let mut p = Box::new(Protection::new());
    p.enable(layout());
    for (task, role) in roles.iter().enumerate() {
        p.start(task, *role);
    }
    p
}

/// The arena ranges task `task`'s entries let it touch, `[start, end)`,
/// entry by entry (a TOR range where its top is).
fn loaded(p: &Protection, task: TaskId) -> Vec<(u64, u64)> {
    let e = p.entries(task);
    (FIXED..PMP_ENTRIES)
        .filter(|&i| e.get(i).cfg != 0)
        .map(|i| {
            let entry = e.get(i);
            if entry.cfg == cfg::TOR | cfg::R | cfg::W {
                assert!(i > FIXED, "a TOR range takes its base from an arena entry");
                assert_eq!(e.get(i - 1).cfg, 0, "its base is an entry that is off");
                return (e.get(i - 1).addr << 2, entry.addr << 2);
            }
            assert_eq!(entry.cfg, cfg::NAPOT | cfg::R | cfg::W);
            let size = 8u64 << (entry.addr.trailing_ones());
            let start = (entry.addr << 2) & !(size - 1);
            (start, start + size)
        })
        .collect()
}

fn refill(p: &mut Protection, task: TaskId, addr: u64, live: impl Fn(ConnId) -> bool) -> Refill {
    match p.range_of(task, addr, live) {
        Some(range) => p.refill(task, addr, range),
        None => Refill::Stray,
    }
}

#[test]
fn a_user_task_runs_with_flash_text_and_data_and_no_arena() {
    let p = protection(&[Role::User]);
    let e = p.entries(0);
    assert_eq!(e.get(0).cfg, cfg::NAPOT | cfg::R | cfg::X);
    assert_eq!(e.get(0).addr, (0x2000_0000 | (0x200_0000 - 1)) >> 2);
    assert_eq!(
        e.get(1),
        Entry {
            cfg: 0,
            addr: 0x8020_0000 >> 2
        }
    );
    assert_eq!(e.get(2).cfg, cfg::TOR | cfg::R | cfg::X);
    // The statics: the image's own (the task heap's tasks') are in place,
    // not this task's, so the entry grants nothing until it claims them.
    assert_eq!(
        e.get(3),
        Entry {
            cfg: cfg::TOR,
            addr: DATA_END >> 2
        }
    );
    // No region yet: entry 4 is off.
    assert_eq!(e.get(4), Entry::default());
    assert!(loaded(&p, 0).is_empty());
}

/// A user task's region: 64 KiB at the start of the task heap.
const REGION: (u64, u64) = (HEAP_START, 0x1_0000);

#[test]
fn a_user_task_reaches_its_region_through_one_entry() {
    let mut p = protection(&[Role::User]);
    assert!(p.region_fits(REGION.0, REGION.1));
    p.set_region(0, REGION);
    assert_eq!(
        p.entries(0).get(4),
        Entry::napot(REGION.0, REGION.1, cfg::R | cfg::W)
    );
    // Not a power of two, not aligned, smaller than a page, outside the
    // task heap (the image, the arena).
    assert!(!p.region_fits(HEAP_START, 0x1_8000));
    assert!(!p.region_fits(HEAP_START + 0x8000, 0x1_0000));
    assert!(!p.region_fits(HEAP_START, 0x800));
    assert!(!p.region_fits(DATA_END, 0x1_0000));
    assert!(!p.region_fits(0x8020_0000, 0x1_0000));
    assert!(!p.region_fits(HEAP_END - 0x8000, 0x1_0000));
    assert!(!p.region_fits(HEAP_END, 0x1_0000));
}

#[test]
fn a_task_may_name_only_what_its_entries_cover() {
    let mut p = protection(&[Role::User, Role::User, Role::Server]);
    p.set_region(0, REGION);
    p.set_region(1, (REGION.0 + REGION.1, REGION.1));
    assert!(p.set_regions(7, 0, 0, &[page(1)]));
    let yes = |_| true;
    let (base, size) = REGION;
    // Its region, its mapping; text and flash to read. Not the statics,
    // whoever's copy is in place.
    assert!(p.may_touch(0, base, size, true, yes));
    assert!(p.may_touch(0, page(1).0, 0x1000, true, yes));
    assert!(!p.may_touch(0, 0x8030_0000, 16, true, yes));
    assert!(!p.may_touch(0, 0x8030_0000, 16, false, yes));
    assert!(p.may_touch(0, 0x8020_0000, 16, false, yes));
    assert!(!p.may_touch(0, 0x8020_0000, 16, true, yes));
    assert!(p.may_touch(0, 0x2000_0000, 16, false, yes));
    // Past its region or mapping, another task's region, the mapping of
    // a closed connection, the kernel's state below the image, the task
    // heap outside regions, a range that wraps.
    assert!(!p.may_touch(0, base, size + 1, true, yes));
    assert!(!p.may_touch(0, page(1).0, 0x1001, true, yes));
    assert!(!p.may_touch(1, page(1).0, 8, false, yes));
    assert!(!p.may_touch(0, base + size, 8, false, yes));
    assert!(!p.may_touch(0, page(1).0, 8, false, |_| false));
    assert!(!p.may_touch(0, 0x8000_1000, 8, false, yes));
    assert!(!p.may_touch(0, HEAP_END - 8, 8, false, yes));
    assert!(!p.may_touch(0, DATA_END, 8, false, yes));
    assert!(!p.may_touch(0, DATA_END - 8, 16, false, yes));
    assert!(!p.may_touch(0, u64::MAX - 4, 8, false, yes));
    // A server: the task heap and the arena, not the kernel's state.
    assert!(p.may_touch(2, base, 8, true, yes));
    assert!(p.may_touch(2, DATA_END, 8, true, yes));
    assert!(p.may_touch(2, page(5).0, 8, true, yes));
    assert!(!p.may_touch(2, 0x8000_1000, 8, true, yes));
}

#[test]
fn servers_reach_the_arena_and_read_the_flash_and_init_everything() {
    let mut p = protection(&[Role::Server, Role::Privileged]);
    let server = p.entries(0);
    assert_eq!(server.get(0).cfg, cfg::NAPOT | cfg::R | cfg::X);
    assert_eq!(
        server.get(4),
        Entry {
            cfg: cfg::TOR | cfg::R | cfg::W,
            addr: ARENA_END >> 2
        }
    );
    // No device, and no flash to write.
    assert_eq!(server.get(FIXED).cfg, 0);
    assert!((0..PMP_ENTRIES).all(|i| server.get(i) != Entry::everything()));
    let init = p.entries(1);
    assert!((0..PMP_ENTRIES).any(|i| init.get(i) == Entry::everything()));
    // Between init and memsrv (the demo's requests) one entry differs.
    p.switch_to(1, &mut Recorder::default());
    let mut hart = Recorder::default();
    p.switch_to(0, &mut hart);
    assert_eq!(hart.addr, [PMP_ENTRIES - 1]);
    assert_eq!(hart.cfg, [8]);
}

#[test]
fn a_fault_in_a_mapped_range_loads_it_and_a_fault_elsewhere_is_stray() {
    let mut p = protection(&[Role::User, Role::User]);
    let (start, end) = page(3);
    assert!(p.set_regions(7, 1, 0, &[page(1), (start, end)]));
    let live = |conn: ConnId| conn == 7;
    assert_eq!(refill(&mut p, 0, start + 8, live), Refill::Loaded);
    assert_eq!(loaded(&p, 0), [(start, end)]);
    // The same range again: the access runs past its end.
    assert_eq!(refill(&mut p, 0, end - 4, live), Refill::Stray);
    // Between the ranges, and another task's fault at the same address.
    assert_eq!(refill(&mut p, 0, page(2).0, live), Refill::Stray);
    assert_eq!(refill(&mut p, 1, start, live), Refill::Stray);
    // A connection that is no longer open names nothing.
    assert_eq!(refill(&mut p, 0, page(1).0, |_| false), Refill::Stray);
}

#[test]
fn more_ranges_than_entries_are_loaded_oldest_out() {
    let mut p = protection(&[Role::User]);
    let ranges: Vec<_> = (0..RESIDENT as u64 + 2).map(page).collect();
    assert!(p.set_regions(7, 0, 0, &ranges));
    for r in &ranges {
        assert_eq!(refill(&mut p, 0, r.0, |_| true), Refill::Loaded);
    }
    let now = loaded(&p, 0);
    assert_eq!(now.len(), RESIDENT);
    assert!(!now.contains(&ranges[0]) && !now.contains(&ranges[1]));
    assert!(now.contains(&ranges[RESIDENT + 1]));
    assert_eq!(refill(&mut p, 0, ranges[0].0, |_| true), Refill::Loaded);
    assert!(loaded(&p, 0).contains(&ranges[0]));
}

#[test]
fn new_ranges_unload_the_old_ones_and_bad_ones_are_refused() {
    let mut p = protection(&[Role::User]);
    assert!(p.set_regions(7, 0, 0, &[page(1)]));
    assert_eq!(refill(&mut p, 0, page(1).0, |_| true), Refill::Loaded);
    assert!(p.set_regions(7, 0, 0, &[]));
    assert!(loaded(&p, 0).is_empty());
    assert_eq!(refill(&mut p, 0, page(1).0, |_| true), Refill::Stray);
    // Outside the arena, empty, unaligned, too many.
    assert!(!p.set_regions(7, 0, 0, &[(0x8020_0000, 0x8020_1000)]));
    assert!(!p.set_regions(7, 0, 0, &[(DATA_END, DATA_END + 0x1000)]));
    assert!(!p.set_regions(7, 0, 0, &[(HEAP_END + 0x1000, HEAP_END + 0x1000)]));
    assert!(!p.set_regions(7, 0, 0, &[(HEAP_END + 2, HEAP_END + 0x1000)]));
    let many: Vec<_> = (0..RANGE_POOL as u64 + 1).map(page).collect();
    assert!(!p.set_regions(7, 0, 0, &many));
}

/// The writes a switch makes.
#[derive(Default)]
struct Recorder {
    addr: Vec<usize>,
    cfg: Vec<usize>,
}

impl PmpRegisters for Recorder {
    fn set_addr(&mut self, index: usize, _addr: u64) {
        self.addr.push(index);
    }
    fn set_cfg(&mut self, first: usize, _word: u64) {
        self.cfg.push(first);
    }
}

#[test]
fn a_switch_writes_only_the_entries_that_differ() {
    let mut p = protection(&[Role::User, Role::User]);
    assert!(p.set_regions(7, 0, 0, &[page(1)]));
    assert_eq!(refill(&mut p, 0, page(1).0, |_| true), Refill::Loaded);
    let mut hart = Recorder::default();
    p.switch_to(1, &mut hart);
    assert_eq!(hart.addr, [0, 1, 2, 3]);
    assert_eq!(hart.cfg, [0]);
    // Each in its own region.
    p.set_region(0, REGION);
    p.set_region(1, (REGION.0 + REGION.1, REGION.1));
    p.switch_to(1, &mut Recorder::default());
    // The same task again: nothing.
    let mut hart = Recorder::default();
    p.switch_to(1, &mut hart);
    assert!(hart.addr.is_empty() && hart.cfg.is_empty());
    // Another user task: only its region and its arena block.
    let mut hart = Recorder::default();
    p.switch_to(0, &mut hart);
    assert_eq!(hart.addr, [4, FIXED]);
    assert_eq!(hart.cfg, [0]);
    // A refill of the running task rewrites its entries at the next switch.
    assert!(p.set_regions(7, 0, 0, &[page(1), page(2)]));
    assert_eq!(refill(&mut p, 0, page(2).0, |_| true), Refill::Loaded);
    let mut hart = Recorder::default();
    p.switch_to(0, &mut hart);
    assert_eq!(hart.addr, [FIXED]);
}

#[test]
fn a_range_that_is_not_one_block_is_loaded_whole_as_a_tor_pair() {
    let mut p = protection(&[Role::User]);
    // Three pages from an odd page (a page and an aligned pair as NAPOT
    // blocks), and an aligned pair.
    let start = HEAP_END + 0x1000;
    let pair = (HEAP_END + 0x8000, HEAP_END + 0xa000);
    assert!(p.set_regions(7, 0, 0, &[(start, start + 0x3000), pair]));
    assert_eq!(refill(&mut p, 0, start + 0x2800, |_| true), Refill::Loaded);
    assert_eq!(loaded(&p, 0), [(start, start + 0x3000)]);
    // Loaded already: an access that faults there ran past the end.
    assert_eq!(refill(&mut p, 0, start + 0x2ffc, |_| true), Refill::Stray);
    assert_eq!(refill(&mut p, 0, pair.0 + 0x1000, |_| true), Refill::Loaded);
    assert_eq!(loaded(&p, 0), [(start, start + 0x3000), pair]);
    assert_eq!(p.refills(0), (2, 0, 2));
}

#[test]
fn a_tor_pair_goes_whole_when_either_half_is_replaced() {
    let mut p = protection(&[Role::User]);
    let long = (HEAP_END + 0x10_1000, HEAP_END + 0x10_4000);
    let mut ranges: Vec<_> = (0..RESIDENT as u64 * 2).map(page).collect();
    ranges.push(long);
    assert!(p.set_regions(7, 0, 0, &ranges));
    let load = |p: &mut Protection, at: u64| assert_eq!(refill(p, 0, at, |_| true), Refill::Loaded);
    // Every slot but the last holds a page; the pair does not fit there,
    // so it takes the first two.
    for n in 0..RESIDENT as u64 - 1 {
        load(&mut p, page(n).0);
    }
    load(&mut p, long.0);
    let now = loaded(&p, 0);
    assert_eq!(now.len(), RESIDENT - 2);
    assert!(now.contains(&long) && !now.contains(&page(0)) && !now.contains(&page(1)));
    // The pages that follow replace the oldest; the one that lands on the
    // pair's base takes its top out with it (no entry is left to take
    // another base).
    for n in RESIDENT as u64..2 * RESIDENT as u64 - 1 {
        load(&mut p, page(n).0);
    }
    let now = loaded(&p, 0);
    assert!(!now.contains(&long));
    assert!(now.contains(&page(2 * RESIDENT as u64 - 2)));
    assert!(refill(&mut p, 0, long.0, |_| true) == Refill::Loaded);
    assert!(loaded(&p, 0).contains(&long));
}

/// Task memory for system calls: two pages at [`HEAP_START`], the start of
/// the task heap.
struct Page([u8; 0x2000]);

impl Machine for Page {
    fn copy_out(&mut self, addr: u64, bytes: &[u8]) -> bool {
        let at = addr.wrapping_sub(HEAP_START) as usize;
        self.0
            .get_mut(at..at + bytes.len())
            .map(|d| d.copy_from_slice(bytes))
            .is_some()
    }
    fn copy_in(&mut self, addr: u64, out: &mut [u8]) -> bool {
        let at = addr.wrapping_sub(HEAP_START) as usize;
        self.0
            .get(at..at + out.len())
            .map(|s| out.copy_from_slice(s))
            .is_some()
    }
    fn copy(&mut self, _src: u64, _dst: u64, _len: usize) -> bool {
        false
    }
    fn contains(&self, addr: u64, len: usize) -> bool {
        addr >= HEAP_START && ((addr - HEAP_START) as usize).saturating_add(len) <= self.0.len()
    }
    fn console(&mut self, _bytes: &[u8]) {}
}

fn call(k: &mut Kernel, task: TaskId, nr: Sys, args: &[u64], m: &mut dyn Machine) -> i64 {
    let frame = &mut k.tasks[task].frame;
    frame.regs[reg::A7] = nr as u64;
    for (i, a) in args.iter().enumerate() {
        frame.regs[reg::A0 + i] = *a;
    }
    k.syscall(task, 0, m);
    k.tasks[task].frame.regs[reg::A0] as i64
}

fn task(privileged: bool) -> TaskStart {
    TaskStart {
        entry: 0x100,
        arg: 0,
        stack_top: 0x800,
        tls: 0,
        gp: 0,
        exit_trampoline: 0,
        privileged,
        stack_bottom: 0,
    }
}

/// A kernel with protection on and tasks `names` (task 0 memsrv, a
/// server; "init" privileged; the rest user tasks), and their memory.
fn kernel_with(names: [&str; 3]) -> (Box<Kernel>, Page) {
    let mut k = Box::new(Kernel::new());
    k.protection.enable(layout());
    for name in names {
        k.spawn(name, task(name == "init"));
    }
    k.protection.start(0, Role::Server);
    (k, Page([0; 0x2000]))
}

#[test]
fn only_the_server_of_a_connection_names_its_ranges() {
    let (mut k, mut m) = kernel_with(["memsrv", "user", "init"]);
    let conn = call(&mut k, 1, Sys::Connect, &[0, 0, 0], &mut m) as u64;
    let init_conn = call(&mut k, 2, Sys::Connect, &[0, 0, 0], &mut m) as u64;
    let (start, end) = page(1);
    m.0[..8].copy_from_slice(&start.to_le_bytes());
    m.0[8..16].copy_from_slice(&end.to_le_bytes());
    let eperm = -i64::from(Errno::EPERM.0);
    // The client itself may not, nor may anyone not serving the connection.
    assert_eq!(
        call(&mut k, 1, Sys::Regions, &[conn, HEAP_START, 1], &mut m),
        eperm
    );
    assert_eq!(
        call(
            &mut k,
            0,
            Sys::Regions,
            &[0xdead_0001, HEAP_START, 1],
            &mut m
        ),
        -i64::from(Errno::EBADF.0)
    );
    assert_eq!(
        call(&mut k, 0, Sys::Regions, &[conn, HEAP_START, 1], &mut m),
        0
    );
    assert_eq!(k.access_fault(1, start, &mut m), Refill::Loaded);
    assert_eq!(k.access_fault(1, end, &mut m), Refill::Stray);
    // init is not confined: memsrv is told so, and need not say more.
    assert_eq!(
        call(&mut k, 0, Sys::Regions, &[init_conn, HEAP_START, 1], &mut m),
        1
    );
    // Once the client closes, its ranges are gone with the connection.
    call(&mut k, 1, Sys::Close, &[conn], &mut m);
    assert_eq!(k.access_fault(1, start + 0x10, &mut m), Refill::Stray);
    assert_ne!(k.tasks[1].state, TaskState::Empty);
}

#[test]
fn a_buffer_the_caller_may_not_touch_is_refused_before_any_copy() {
    let (mut k, mut m) = kernel_with(["memsrv", "user", "other"]);
    // The page is the other task's region; the user's is the next block.
    k.protection.set_region(2, (HEAP_START, 0x1000));
    k.protection.set_region(1, (HEAP_START + 0x1000, 0x1000));
    let conn = call(&mut k, 1, Sys::Connect, &[0, 0, 0], &mut m) as u64;
    let efault = -i64::from(Errno::EFAULT.0);
    m.0[..4].copy_from_slice(b"mine");
    // Console, send, call (either buffer), receive into the other's page.
    assert_eq!(
        call(&mut k, 1, Sys::Console, &[HEAP_START, 4], &mut m),
        efault
    );
    assert_eq!(
        call(&mut k, 1, Sys::Send, &[conn, HEAP_START, 4], &mut m),
        efault
    );
    let own = HEAP_START + 0x1000;
    assert_eq!(
        call(
            &mut k,
            1,
            Sys::Call,
            &[conn, own, 4, HEAP_START, 64],
            &mut m
        ),
        efault
    );
    assert_eq!(
        call(
            &mut k,
            1,
            Sys::Call,
            &[conn, HEAP_START, 4, own, 64],
            &mut m
        ),
        efault
    );
    assert_eq!(
        call(&mut k, 1, Sys::Recv, &[conn, HEAP_START, 64, 0], &mut m),
        efault
    );
    // Nothing reached memsrv (its open, then nothing), and the page is as
    // it was.
    let receive =
        |k: &mut Kernel, m: &mut Page| call(k, 0, Sys::Receive, &[HEAP_START + 0x800, 64, 0], m);
    assert_eq!(receive(&mut k, &mut m), conn as i64);
    assert_eq!(k.tasks[0].frame.regs[reg::A2], Event::Open as u64);
    assert_eq!(receive(&mut k, &mut m), -i64::from(Errno::ETIMEDOUT.0));
    assert_eq!(&m.0[..4], b"mine");
    // Its own region is fine: the frame goes through.
    assert_eq!(call(&mut k, 1, Sys::Send, &[conn, own, 4], &mut m), 0);
}

#[path = "statics_tests.rs"]
mod statics;

#[path = "driver_pmp_tests.rs"]
mod drivers;

#[path = "pmp_switch_tests.rs"]
mod switch;

#[path = "recv_buffer_tests.rs"]
mod recv_buffer;

#[path = "device_claim_tests.rs"]
mod devices;

#[path = "block_io_tests.rs"]
mod block_io;

#[path = "range_pool_tests.rs"]
mod range_pool;
