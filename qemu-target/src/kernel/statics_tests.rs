//! Host tests of the per-task copies of the runtime's statics: whose copy
//! is in place and who may touch it, the copies a claim makes, a spawned
//! task's copy made from its spawner's, and a task that ends leaving
//! nothing to save.

use super::*;

/// The statics in [`layout`]: from the text's end to the data's.
const STATICS: Range<u64> = 0x8030_0000..DATA_END;
/// Two user tasks' heaps (their regions' bases).
const HEAP_A: u64 = HEAP_START + 0x1_0000;
const HEAP_B: u64 = HEAP_START + 0x2_0000;

fn statics_perms(p: &Protection, task: TaskId) -> u8 {
    let entry = p.entries(task).get(3);
    assert_eq!(entry.addr, DATA_END >> 2);
    entry.cfg & (cfg::R | cfg::W | cfg::X)
}

/// init (privileged), memsrv (a server) on the task heap, two user tasks
/// with their own heaps.
fn four_tasks() -> Box<Protection> {
    let mut p = protection(&[Role::Privileged, Role::Server, Role::User, Role::User]);
    for (task, heap) in [(0, HEAP_START), (1, HEAP_START), (2, HEAP_A), (3, HEAP_B)] {
        p.set_heap(task, heap);
    }
    p.set_region(2, (HEAP_A, 0x1_0000));
    p.set_region(3, (HEAP_B, 0x1_0000));
    p
}

#[test]
fn only_the_tasks_whose_copy_is_in_place_touch_the_statics() {
    let mut p = four_tasks();
    let rw = cfg::R | cfg::W;
    // At boot the image's statics are init's and the servers'.
    assert_eq!(p.statics(), STATICS);
    assert_eq!([0, 1, 2, 3].map(|t| statics_perms(&p, t)), [rw, rw, 0, 0]);
    // A user task claims them: the task heap's copy is saved, its own
    // loaded, and now only it may touch them (init's catch-all entry
    // comes after entry 3, which matches and grants nothing).
    assert_eq!(
        p.claim_statics(2),
        Some(StaticsSwap {
            save: Some(HEAP_START + STATICS_COPY_AT),
            load: HEAP_A + STATICS_COPY_AT,
        })
    );
    assert_eq!([0, 1, 2, 3].map(|t| statics_perms(&p, t)), [0, 0, rw, 0]);
    assert_eq!(p.entries(0).get(PMP_ENTRIES - 1), Entry::everything());
    // Its own again: nothing to do (the fault was not about whose copy).
    assert_eq!(p.claim_statics(2), None);
    // Where each task's view of them is now.
    assert_eq!(p.statics_of(2), STATICS.start);
    assert_eq!(p.statics_of(3), HEAP_B + STATICS_COPY_AT);
    assert_eq!(p.statics_of(0), HEAP_START + STATICS_COPY_AT);
    // The other user task, then memsrv: each saves the one in place.
    assert_eq!(
        p.claim_statics(3),
        Some(StaticsSwap {
            save: Some(HEAP_A + STATICS_COPY_AT),
            load: HEAP_B + STATICS_COPY_AT,
        })
    );
    assert_eq!(
        p.claim_statics(1),
        Some(StaticsSwap {
            save: Some(HEAP_B + STATICS_COPY_AT),
            load: HEAP_START + STATICS_COPY_AT,
        })
    );
    // memsrv's copy is init's too.
    assert_eq!([0, 1, 2, 3].map(|t| statics_perms(&p, t)), [rw, rw, 0, 0]);
    // The profile counts each task's loads.
    assert_eq!([0, 1, 2, 3].map(|t| p.refills(t).1), [0, 1, 1, 1]);
}

#[test]
fn no_task_names_the_statics_in_a_system_call() {
    let p = four_tasks();
    let yes = |_| true;
    for task in 0..4 {
        assert!(!p.may_touch(task, STATICS.start, 8, false, yes));
        assert!(!p.may_touch(task, STATICS.end - 4, 8, true, yes));
    }
    // init may name anything else: the text, the kernel's state, its heap.
    assert!(p.may_touch(0, STATICS.start - 8, 8, true, yes));
    assert!(p.may_touch(0, 0x8000_1000, 8, true, yes));
    assert!(p.may_touch(0, HEAP_START, 0x1000, true, yes));
    assert!(p.may_touch(0, STATICS.end, 8, true, yes));
}

#[test]
fn a_task_that_ends_leaves_no_copy_to_save() {
    let mut p = four_tasks();
    p.claim_statics(2);
    // Ending: its copy was in its region, which its spawner frees.
    p.exit(2);
    assert_eq!(
        p.claim_statics(3),
        Some(StaticsSwap {
            save: None,
            load: HEAP_B + STATICS_COPY_AT,
        })
    );
    // A server that ends keeps the task heap's copy: the others share it.
    p.claim_statics(1);
    p.exit(1);
    assert_eq!(p.claim_statics(0), None);
}

/// Task memory that records the copies the kernel makes and takes every
/// other access.
#[derive(Default)]
struct Copies(Vec<(u64, u64, usize)>);

impl Machine for Copies {
    fn copy_out(&mut self, _addr: u64, _bytes: &[u8]) -> bool {
        true
    }
    fn copy_in(&mut self, _addr: u64, out: &mut [u8]) -> bool {
        out.fill(b'x');
        true
    }
    fn copy(&mut self, src: u64, dst: u64, len: usize) -> bool {
        self.0.push((src, dst, len));
        true
    }
    fn contains(&self, _addr: u64, _len: usize) -> bool {
        true
    }
    fn console(&mut self, _bytes: &[u8]) {}
}

#[test]
fn a_fault_on_the_statics_swaps_them_and_a_child_starts_with_its_spawners() {
    let mut k = Box::new(Kernel::new());
    k.protection.enable(layout());
    let init = k
        .spawn(
            "init",
            TaskStart {
                gp: HEAP_START,
                ..task(true)
            },
        )
        .expect("a slot");
    let mut m = Copies::default();
    let len = (STATICS.end - STATICS.start) as usize;
    // init spawns a user task in the region at HEAP_A (its gp while it
    // spawns): the child's copy is made from init's, in place.
    let spawn = |k: &mut Kernel, m: &mut Copies, base: u64| {
        let frame = &mut k.tasks[init].frame;
        frame.regs[reg::GP] = base;
        frame.regs[reg::A7] = Sys::Spawn as u64;
        let args = [0x100, 0, base + 0x1_0000, 0, 0x100, 4 | 0x1000 << 16, 0];
        for (i, a) in args.iter().enumerate() {
            frame.regs[reg::A0 + i] = *a;
        }
        k.syscall(init, 0, m);
        k.tasks[init].frame.regs[reg::A0] as TaskId
    };
    let child = spawn(&mut k, &mut m, HEAP_A);
    assert_eq!(k.protection.role(child), Role::User);
    assert_eq!(m.0, [(STATICS.start, HEAP_A + STATICS_COPY_AT, len)]);
    m.0.clear();
    // The child touches them: init's saved, its own loaded, the access
    // runs again.
    assert_eq!(
        k.access_fault(child, STATICS.start + 8, &mut m),
        Refill::Loaded
    );
    assert_eq!(
        m.0,
        [
            (STATICS.start, HEAP_START + STATICS_COPY_AT, len),
            (HEAP_A + STATICS_COPY_AT, STATICS.start, len),
        ]
    );
    // A fault there with its own in place (a fetch) is stray.
    m.0.clear();
    assert_eq!(
        k.access_fault(child, STATICS.start + 8, &mut m),
        Refill::Stray
    );
    assert!(m.0.is_empty());
    // A second child starts with init's view, now in init's heap header.
    spawn(&mut k, &mut m, HEAP_B);
    assert_eq!(
        m.0,
        [(HEAP_START + STATICS_COPY_AT, HEAP_B + STATICS_COPY_AT, len)]
    );
    // The first child ends: init takes them back without saving its copy.
    k.exit(child, 0, &mut m);
    m.0.clear();
    assert_eq!(k.access_fault(init, STATICS.start, &mut m), Refill::Loaded);
    assert_eq!(m.0, [(HEAP_START + STATICS_COPY_AT, STATICS.start, len)]);
}
