//! Host tests of the PMP switch (`pmp_switch.rs`): the registers it
//! writes between two tasks, a remembered difference used only while
//! neither task changed, and, over random task sequences and changes, the
//! hart always holding exactly what a full recompute of the running
//! task's entries says.

use super::*;

/// The hart's PMP registers as a switch leaves them, and how many writes
/// it made.
#[derive(Default)]
struct Hart {
    addr: [u64; PMP_ENTRIES],
    cfg: [u64; PMP_ENTRIES / 8],
    writes: usize,
}

impl PmpRegisters for Hart {
    fn set_addr(&mut self, index: usize, addr: u64) {
        self.addr[index] = addr;
        self.writes += 1;
    }
    fn set_cfg(&mut self, first: usize, word: u64) {
        self.cfg[first / 8] = word;
        self.writes += 1;
    }
}

impl Hart {
    /// The hart holds task `task`'s entries as computed afresh now.
    fn holds_recomputed(&self, p: &Protection, task: TaskId) -> bool {
        let want = p.compute(task);
        self.addr == want.addr && self.cfg == want.cfg && *p.entries(task) == want
    }
}

/// init, memsrv, two user tasks in regions of their own, a driver.
fn five_tasks() -> Box<Protection> {
    let roles = [
        Role::Privileged,
        Role::Server,
        Role::User,
        Role::User,
        Role::Driver,
    ];
    let mut p = protection(&roles);
    for task in 0..2 {
        p.set_heap(task, HEAP_START);
    }
    for task in 2..5 {
        let region = (HEAP_START + task as u64 * 0x1_0000, 0x1_0000);
        p.set_heap(task, region.0);
        p.set_region(task, region);
    }
    p
}

#[test]
fn switching_between_the_same_two_tasks_again_writes_only_their_difference() {
    let mut p = five_tasks();
    let mut hart = Hart::default();
    p.switch_to(0, &mut hart);
    p.switch_to(1, &mut hart);
    assert!(hart.holds_recomputed(&p, 1));
    // init and memsrv differ in the last entry's address and the
    // configuration word holding it, whichever way and however often.
    for (to, from) in [(0, 1), (1, 0), (0, 1), (1, 0)] {
        let before = hart.writes;
        p.switch_to(to, &mut hart);
        assert_eq!(hart.writes - before, 2, "to {to} from {from}");
        assert!(hart.holds_recomputed(&p, to));
    }
    // A change to the task switched to is seen, not the remembered
    // difference: memsrv's statics go to a user task.
    p.switch_to(1, &mut hart);
    assert!(p.claim_statics(2).is_some());
    p.switch_to(0, &mut hart);
    assert!(hart.holds_recomputed(&p, 0));
    // Nor one to the task switched from, while it runs.
    assert!(p.set_regions(7, 0, 2, &[page(1)]));
    p.switch_to(2, &mut hart);
    assert_eq!(refill(&mut p, 2, page(1).0, |_| true), Refill::Loaded);
    p.switch_to(2, &mut hart);
    assert!(hart.holds_recomputed(&p, 2));
    p.switch_to(1, &mut hart);
    assert!(hart.holds_recomputed(&p, 1));
    assert!(p.set_regions(7, 0, 2, &[]));
    p.switch_to(2, &mut hart);
    assert!(hart.holds_recomputed(&p, 2));
    assert_eq!(loaded(&p, 2), []);
}

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

#[test]
fn no_stale_entry_survives_any_sequence_of_switches_and_changes() {
    for seed in 1..=40u64 {
        let mut p = five_tasks();
        let mut hart = Hart::default();
        let mut rng = Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut running = 0;
        p.switch_to(running, &mut hart);
        for step in 0..400 {
            match rng.below(10) {
                // Switches, most of all: between the servers and the
                // others, as requests do, and anywhere.
                0..=5 => {
                    running = if rng.below(2) == 0 && running != 1 {
                        1
                    } else {
                        rng.below(5) as TaskId
                    };
                    p.switch_to(running, &mut hart);
                    assert!(
                        hart.holds_recomputed(&p, running),
                        "seed {seed} step {step}: task {running}"
                    );
                }
                // memsrv names a confined task's ranges anew.
                6 => {
                    let client = 2 + rng.below(3) as TaskId;
                    let ranges: Vec<_> = (0..rng.below(12))
                        .map(|n| page(n * 3 + client as u64))
                        .collect();
                    assert!(p.set_regions(7 + client as u64, client, client, &ranges));
                }
                // A confined task faults on one of its pages.
                7 => {
                    let task = 2 + rng.below(3) as TaskId;
                    let addr = page(rng.below(12) * 3 + task as u64).0;
                    let _ = refill(&mut p, task, addr, |_| true);
                }
                // Someone claims the statics.
                8 => {
                    let _ = p.claim_statics(rng.below(5) as TaskId);
                }
                // A user task ends and another starts in its slot.
                _ => {
                    let task = 2 + rng.below(2) as TaskId;
                    p.exit(task);
                    p.start(task, Role::User);
                    let region = (HEAP_START + task as u64 * 0x1_0000, 0x1_0000);
                    p.set_heap(task, region.0);
                    p.set_region(task, region);
                }
            }
        }
    }
}
