//! The PMP switch: giving the hart the entries of the task that runs next
//! ([`Protection::switch_to`]), writing only the registers that differ
//! from what it holds.
//!
//! Every request switches task twice (client to server, server back), so
//! the switch must not compare all 18 registers each time. Each task's
//! entries carry a generation, taken from one counter whenever they change
//! (a refill, a new range list, a statics claim), so a task and a
//! generation name one exact set of entries. The hart records whose
//! entries it holds at which generation, and each task the last switch
//! away from it: to whom, at which generations, and which registers
//! differed. A switch between the same two unchanged tasks again is then
//! a compare of two ids and two generations and the writes of the
//! registers that differ; entries shared by both tasks stay as they are.
//! Anything else (a changed task, a new pair) compares all the registers
//! once and remembers the difference.

use super::{Entries, PmpRegisters, Protection, PMP_ENTRIES};
use crate::kernel::task_table::{TaskId, MAX_TASKS};

/// The registers two tasks' entries differ in, as a list of the
/// registers and the values to write (a write per item, no bit scan and no
/// look-up of the entries): `pmpaddr<n>` as `n`, the `pmpcfg` word holding
/// entries `8 * k..` as [`PMP_ENTRIES`]` + k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Difference {
    len: u8,
    registers: [u8; REGISTERS],
    values: [u64; REGISTERS],
}

/// The addresses and the configuration words.
const REGISTERS: usize = PMP_ENTRIES + PMP_ENTRIES / 8;

impl Difference {
    const NONE: Difference = Difference {
        len: 0,
        registers: [0; REGISTERS],
        values: [0; REGISTERS],
    };

    fn push(&mut self, register: usize, value: u64) {
        let n = usize::from(self.len);
        self.registers[n] = register as u8;
        self.values[n] = value;
        self.len += 1;
    }
}

/// A switch away from a task, remembered: the task switched to, both
/// tasks' generations then, and the registers that differed.
#[derive(Clone, Copy, Debug)]
struct LastSwitch {
    to: TaskId,
    from_generation: u64,
    to_generation: u64,
    difference: Difference,
}

impl LastSwitch {
    /// Before any switch away from a task. Generation 0 is a task's
    /// before its entries are first computed (all off, as the hart's at
    /// reset), so the empty difference is right should it match.
    const NONE: LastSwitch = LastSwitch {
        to: 0,
        from_generation: 0,
        to_generation: 0,
        difference: Difference::NONE,
    };
}

/// What the hart holds and what the switch remembers.
pub(super) struct Hart {
    /// The registers as written (all off at reset): the addresses, then
    /// the configuration words.
    held: [u64; REGISTERS],
    /// Whose entries `held` is, at which generation (`None`: nobody's, as
    /// at reset).
    loaded: Option<(TaskId, u64)>,
    /// Each task's generation: changed with its entries.
    generation: [u64; MAX_TASKS],
    /// The next generation to hand out (never 0, never reused).
    next_generation: u64,
    /// Each task's last switch away from it.
    last_switch: [LastSwitch; MAX_TASKS],
}

impl Hart {
    pub(super) const fn new() -> Self {
        Self {
            held: [0; REGISTERS],
            loaded: None,
            generation: [0; MAX_TASKS],
            next_generation: 1,
            last_switch: [LastSwitch::NONE; MAX_TASKS],
        }
    }

    /// Task `task`'s entries changed: they get a new generation, so no
    /// remembered switch and no record of what is loaded matches them.
    pub(super) fn changed(&mut self, task: TaskId) {
        self.generation[task] = self.next_generation;
        self.next_generation += 1;
    }

    /// Compare every register the hart holds with `want`.
    fn compare(&self, want: &Entries) -> Difference {
        let mut d = Difference::NONE;
        let wanted = want.addr.iter().chain(&want.cfg);
        for (i, (held, want)) in self.held.iter().zip(wanted).enumerate() {
            if held != want {
                d.push(i, *want);
            }
        }
        d
    }
}

/// Write the registers `d` names into the hart and `held`.
#[inline(always)]
fn write(held: &mut [u64; REGISTERS], d: &Difference, hart: &mut impl PmpRegisters) {
    let n = usize::from(d.len);
    for (&register, &value) in d.registers[..n].iter().zip(&d.values[..n]) {
        let i = usize::from(register);
        if i < PMP_ENTRIES {
            hart.set_addr(i, value);
        } else {
            hart.set_cfg(8 * (i - PMP_ENTRIES), value);
        }
        if let Some(held) = held.get_mut(i) {
            *held = value;
        }
    }
}

impl Protection {
    /// Give the hart task `next`'s entries, writing only those that
    /// differ from what it holds: nothing when it holds them already, the
    /// remembered difference when the last switch from the task running
    /// now went to `next` too and neither changed since.
    #[inline]
    pub fn switch_to(&mut self, next: TaskId, hart: &mut impl PmpRegisters) {
        let h = &mut self.hart;
        let generation = h.generation[next];
        let Some((from, from_generation)) = h.loaded else {
            return self.switch_slowly(next, hart);
        };
        if from == next && from_generation == generation {
            return;
        }
        let last = &h.last_switch[from];
        if last.to == next
            && last.from_generation == from_generation
            && last.to_generation == generation
        {
            write(&mut h.held, &last.difference, hart);
            h.loaded = Some((next, generation));
            return;
        }
        self.switch_slowly(next, hart);
    }

    /// [`Protection::switch_to`] without a remembered difference: compare
    /// all the registers, write those that differ, and remember them for
    /// the next switch between the same two tasks.
    #[inline(never)]
    fn switch_slowly(&mut self, next: TaskId, hart: &mut impl PmpRegisters) {
        let h = &mut self.hart;
        let want = &self.entries[next];
        let difference = h.compare(want);
        write(&mut h.held, &difference, hart);
        let generation = h.generation[next];
        if let Some((from, from_generation)) = h.loaded.filter(|(from, _)| *from != next) {
            h.last_switch[from] = LastSwitch {
                to: next,
                from_generation,
                to_generation: generation,
                difference,
            };
        }
        h.loaded = Some((next, generation));
    }
}
