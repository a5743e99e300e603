//! The trap path: every trap from a task (system calls, the timer,
//! faults) goes from here to the [`kernel`](crate::kernel)'s plain code,
//! and here the hart idles. Runs with interrupts off on one hart; every entry
//! comes through a trap, so nothing here is reentered.

use crate::arch;
use crate::console;
use crate::devices::virtio_queue;
use crate::kernel::block_io::BlockOp;
use crate::kernel::frame_copy;
use crate::kernel::pmp::{Access, Refill};
use crate::kernel::{reg, Kernel, Machine, Outcome, TaskStart, TaskState, NEVER};
use crate::kprintln;
use crate::memory;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};
use protocol::Errno;

/// Whether the hart is in the kernel (for the panic handler: a task's
/// panic ends the task, the kernel's ends the run). Kernel state: below
/// the image, out of every task's reach.
#[link_section = ".data.kernel"]
static IN_KERNEL: AtomicBool = AtomicBool::new(true);

pub fn in_kernel() -> bool {
    IN_KERNEL.load(Ordering::Relaxed)
}

/// Store into a kernel static from a task, as a stray pointer would: no
/// task's PMP entry covers the kernel's state, so the store faults and the
/// kernel ends the task (the isolation suite's check). Were it let
/// through, it would write the value the flag has while a task runs.
pub fn store_to_kernel_static() {
    // SAFETY: a byte store of `false` into the flag, which holds `false`
    // while any task runs; under PMP it never happens (the task is ended).
    unsafe { core::ptr::write_volatile(IN_KERNEL.as_ptr(), false) };
}

/// Time slice before a busy task is preempted.
const SLICE_MS: u64 = 10;

struct State {
    kernel: Kernel,
    profile: Profile,
    current: usize,
    /// The deadline (ms) the timer was last programmed for; 0: none.
    armed: u64,
    /// Whose float state the float registers hold (`None`: nobody's, or
    /// a reset `fcsr`): a switch loads them only when it changes owner.
    fp_owner: Option<usize>,
}

struct Global(UnsafeCell<State>);

// SAFETY: the kernel runs on one hart with interrupts off; the state is
// only touched from `kmain` before the first task and from trap handling,
// which never overlap or nest.
unsafe impl Sync for Global {}

/// The kernel's state, below the image where no task's PMP entry reaches
/// (`link.ld`).
#[link_section = ".data.kernel"]
static STATE: Global = Global(UnsafeCell::new(State {
    kernel: Kernel::new(),
    profile: Profile::new(),
    current: 0,
    armed: 0,
    fp_owner: None,
}));

fn state() -> &'static mut State {
    // SAFETY: see `Global`: one hart, no nesting, so no two references
    // are live at once.
    unsafe { &mut *STATE.0.get() }
}

/// Where the instructions went, when the image is built with
/// `BOARD_PROFILE` set: each task's own (from the kernel's return to its
/// next trap) and the kernel's (the trap handler; the assembly that saves
/// and restores registers is not counted, its cost is fixed). A window
/// ends at a console write that follows at least a million instructions,
/// and is printed: the demo's timed loops are one window.
struct Profile {
    /// Instructions retired when the handler last returned to a task.
    left_kernel: u64,
    kernel: u64,
    traps: u64,
    task: [u64; crate::kernel::MAX_TASKS],
}

const PROFILE: bool = option_env!("BOARD_PROFILE").is_some();

impl Profile {
    const fn new() -> Self {
        Self {
            left_kernel: 0,
            kernel: 0,
            traps: 0,
            task: [0; crate::kernel::MAX_TASKS],
        }
    }

    fn enter(&mut self, task: usize) -> u64 {
        let now = arch::instructions();
        self.task[task] += now.saturating_sub(self.left_kernel);
        self.traps += 1;
        now
    }

    fn leave(&mut self, entered: u64) {
        let now = arch::instructions();
        self.kernel += now - entered;
        self.left_kernel = now;
    }

    fn report(&mut self, kernel: &Kernel) {
        let users: u64 = self.task.iter().sum();
        if users + self.kernel >= 1_000_000 {
            kprintln!(
                "profile: {} traps, {} instructions in the trap handler",
                self.traps,
                self.kernel
            );
            for (id, n) in self.task.iter().enumerate().filter(|(_, n)| **n > 0) {
                let (refills, loads, ranges) = kernel.protection.refills(id);
                kprintln!(
                    "profile:   task {id} {}: {n} ({refills} PMP refills and {loads} statics loads since it started, {ranges} arena ranges)",
                    kernel.tasks[id].name(),
                );
            }
        }
        *self = Self::new();
        self.left_kernel = arch::instructions();
    }
}

/// [`Board::copy`] outside the common case (a frame from the flash
/// window, an unaligned buffer), out of line so the common one stays small.
#[inline(never)]
fn copy_elsewhere(src: u64, dst: u64, len: u64) -> bool {
    memory::copy(src, dst, len)
}

/// Task memory as the kernel copies it: any RAM after the firmware.
struct Board;

impl Machine for Board {
    fn copy_out(&mut self, addr: u64, bytes: &[u8]) -> bool {
        memory::write(addr, bytes)
    }

    fn copy_in(&mut self, addr: u64, out: &mut [u8]) -> bool {
        memory::read(addr, out)
    }

    #[inline]
    fn copy(&mut self, src: u64, dst: u64, len: usize) -> bool {
        // A frame into a word-aligned buffer (the client's and memsrv's
        // receive buffers, the common call) is a few word moves;
        // `memmove`'s set-up costs more than that for a short frame.
        // Both in task memory (RAM, the common case: a frame from the
        // flash window goes through `memory::copy`), apart: one pass of
        // compares instead of `readable` and `writable` in turn.
        let ram = memory::task_memory();
        let (low, top, n) = (src.min(dst), src.max(dst), len as u64);
        if dst % 8 == 0
            && ram.start <= low
            && top <= ram.end
            && n <= ram.end - top
            && top - low >= n
        {
            // SAFETY: both ranges lie in task memory (checked above), do
            // not overlap, and `dst` is word aligned.
            unsafe { frame_copy::copy_to_aligned(src as *const u8, dst as *mut u8, len) };
            return true;
        }
        copy_elsewhere(src, dst, len as u64)
    }

    fn contains(&self, addr: u64, len: usize) -> bool {
        memory::readable(addr, len)
    }

    fn read_word(&mut self, addr: u64) -> Option<u64> {
        // The stack canary, read at traps: an aligned word in RAM, whose
        // end is word aligned.
        let ram = memory::task_memory();
        if addr % 8 == 0 && ram.start <= addr && addr < ram.end {
            // SAFETY: an aligned word in RAM (checked above); volatile so
            // it stays one load.
            return Some(unsafe { core::ptr::read_volatile(addr as *const u64) });
        }
        let mut word = [0u8; 8];
        memory::read(addr, &mut word).then_some(u64::from_le_bytes(word))
    }

    fn console(&mut self, bytes: &[u8]) {
        console::put_bytes(bytes);
    }

    fn attach_disk(&mut self, slot: u64) -> Result<(), Errno> {
        virtio_queue::attach(slot)
    }

    fn disk_request(
        &mut self,
        slot: u64,
        op: BlockOp,
        sector: u64,
        buf: u64,
        len: u64,
    ) -> Result<u64, Errno> {
        virtio_queue::request(slot, op, sector, buf, len)
    }
}

pub fn now_ms() -> u64 {
    arch::ticks() / arch::TICKS_PER_MS
}

/// Start the first task and never return.
pub fn start(name: &str, start: TaskStart) -> ! {
    arch::init_hart();
    let s = state();
    let Some(id) = s.kernel.spawn(name, start) else {
        kprintln!("kernel: cannot start {name}");
        console::power_off(2);
    };
    s.current = id;
    s.kernel.protection.enable(memory::pmp_layout());
    load_pmp(s, id);
    arm(s, now_ms() + SLICE_MS);
    IN_KERNEL.store(false, Ordering::Relaxed);
    arch::enter(&mut s.kernel.tasks[id].frame);
}

fn arm(s: &mut State, at_ms: u64) {
    s.armed = at_ms;
    arch::set_timer(at_ms.saturating_mul(arch::TICKS_PER_MS));
}

const INTERRUPT: u64 = 1 << 63;
const TIMER_INTERRUPT: u64 = INTERRUPT | 7;
const ECALL_FROM_USER: u64 = 8;

fn cause_name(scause: u64) -> &'static str {
    match scause {
        0 => "instruction address misaligned",
        1 => "instruction access fault",
        2 => "illegal instruction",
        3 => "breakpoint",
        4 => "load address misaligned",
        5 => "load access fault",
        6 => "store address misaligned",
        7 => "store access fault",
        12 => "instruction page fault",
        13 => "load page fault",
        15 => "store page fault",
        _ => "unexpected trap",
    }
}

/// Every trap from a task lands here with its registers saved in its
/// frame, and leaves through `restore_frame` into the task to resume. It
/// never returns to the trap vector: every register of the task that
/// trapped is in its frame, so the handler need not keep the vector's
/// callee-saved registers (it spares saving and loading them each trap).
#[no_mangle]
extern "C" fn trap_handler(frame: *mut crate::kernel::TrapFrame) -> ! {
    arch::enter(handle_trap(frame))
}

/// [`trap_handler`]'s work: the frame to resume.
#[inline(always)]
fn handle_trap(_frame: *mut crate::kernel::TrapFrame) -> *mut crate::kernel::TrapFrame {
    IN_KERNEL.store(true, Ordering::Relaxed);
    let s = state();
    let entered = if PROFILE {
        s.profile.enter(s.current)
    } else {
        0
    };
    let (scause, sepc, stval) = arch::trap_cause();
    let now = now_ms();
    let current = s.current;
    let mut preempt = false;
    match scause {
        TIMER_INTERRUPT => {
            s.armed = 0;
            s.kernel.expire(now);
            preempt = true;
        }
        ECALL_FROM_USER => {
            if PROFILE && s.kernel.tasks[current].frame.regs[reg::A7] == 0 {
                s.profile.report(&s.kernel);
            }
            s.kernel.tasks[current].frame.sepc = sepc + 4;
            // The common request and answer first, inline here (done:
            // the caller blocked, its peer is handed the hart); every other
            // call, or that case failing a check, goes the general way.
            if !s.kernel.syscall_fast(current, now, &mut Board) {
                match s.kernel.syscall_general(current, now, &mut Board) {
                    Outcome::Continue => {}
                    Outcome::Yield => preempt = true,
                    Outcome::PowerOff(code) => power_off_by(s, current, code),
                }
            }
        }
        _ if Access::from_cause(scause).is_some()
            && s.kernel.access_fault(current, stval, &mut Board) == Refill::Loaded =>
        {
            // The range was the task's, now loaded: the access runs again.
        }
        _ => kill_faulting(s, current, scause, sepc, stval),
    }
    if s.kernel.tasks[current].state == TaskState::Ready
        && !s.kernel.stack_intact(current, &mut Board)
    {
        kill_overflowed(s, current, sepc);
    }
    // A task that blocked in IPC hands the hart straight to the peer it
    // woke (a call to the server, a receive to the client just answered);
    // only a preemption or a wait nobody answered goes round robin.
    // Only a pass that idled (waited for a deadline) reads the time again.
    let (next, now) = if preempt {
        (next_task(s), now_ms())
    } else if s.kernel.tasks[current].state == TaskState::Ready {
        (current, now)
    } else if let Some(peer) = s.kernel.handoff() {
        (peer, now)
    } else {
        (next_task(s), now_ms())
    };
    s.current = next;
    // Only a timer that fired (armed = 0) needs every deadline; otherwise
    // the one wait this call may have begun is the only new deadline (a
    // wake only removes one: firing early is harmless).
    let deadline = if s.armed == 0 {
        s.kernel.next_deadline()
    } else {
        s.kernel.tasks[current].state.deadline()
    };
    let deadline = deadline.min(now + SLICE_MS);
    if deadline < s.armed || s.armed == 0 {
        arm(s, deadline);
    }
    if next != current {
        switch_fp(s, current, next);
    }
    load_pmp(s, next);
    let frame = &mut s.kernel.tasks[next].frame;
    if PROFILE {
        s.profile.leave(entered);
    }
    IN_KERNEL.store(false, Ordering::Relaxed);
    frame
}

/// Task `current` asked to power the board off with `code`.
#[cold]
#[inline(never)]
fn power_off_by(s: &State, current: usize, code: u64) -> ! {
    kprintln!(
        "kernel: powered off by {} with {code}",
        s.kernel.tasks[current].name()
    );
    console::power_off(code);
}

/// Task `current` took a trap it cannot go on from (a fault outside its
/// memory, an illegal instruction, ...): report it and end the task. Out
/// of line, so the common trap keeps its registers for itself.
#[cold]
#[inline(never)]
fn kill_faulting(s: &mut State, current: usize, scause: u64, sepc: u64, stval: u64) {
    let task = &s.kernel.tasks[current];
    if let Some(access) = Access::from_cause(scause) {
        kprintln!(
            "kernel: task {} ({current}) stray {} at {stval:#x}: not its memory",
            task.name(),
            access.name()
        );
    }
    kprintln!(
        "kernel: task {} ({current}) killed: {} at pc {sepc:#x} (stval {stval:#x}, ra {:#x}, sp {:#x})",
        task.name(),
        cause_name(scause),
        task.frame.regs[reg::RA],
        task.frame.regs[reg::SP],
    );
    s.kernel.exit(current, 128 + scause as i64, &mut Board);
}

/// Task `current`'s stack ran over its bottom: report it and end the
/// task.
#[cold]
#[inline(never)]
fn kill_overflowed(s: &mut State, current: usize, sepc: u64) {
    let task = &s.kernel.tasks[current];
    kprintln!(
        "kernel: task {} ({current}) killed: stack overflow (sp {:#x}, stack bottom {:#x}, pc {sepc:#x})",
        task.name(),
        task.frame.regs[reg::SP],
        task.stack_bottom
    );
    s.kernel.exit(current, 128 + 64, &mut Board);
}

/// The float registers on a switch from `from` to `to`. The entry code
/// saved them if `from` wrote them (the kernel's own code uses none), so
/// they hold `from`'s state if it has one; they are loaded only if `to`
/// has a state and it is not already there. A task that never used the
/// FPU leaves them as they are (so its peer's state stays in place), only
/// with `fcsr` reset if it is not already, so it does not round with
/// another task's mode.
fn switch_fp(s: &mut State, from: usize, to: usize) {
    let (saved_from, saved_to) = (
        s.kernel.tasks[from].frame.fp_saved,
        s.kernel.tasks[to].frame.fp_saved,
    );
    if !saved_from && !saved_to {
        // Neither has float state: `from` never wrote the registers (the
        // entry code would have saved them), and `fcsr` was reset when it
        // was switched to, so there is nothing to do.
        return;
    }
    if saved_from {
        s.fp_owner = Some(from);
    }
    let frame = &s.kernel.tasks[to].frame;
    if saved_to {
        if s.fp_owner != Some(to) {
            arch::fp_restore(frame);
            s.fp_owner = Some(to);
        }
    } else if arch::fp_reset() {
        s.fp_owner = None;
    }
}

/// Give the hart task `next`'s PMP entries, writing only those that
/// differ from what it holds (inlined: it runs at every trap).
#[inline(always)]
fn load_pmp(s: &mut State, next: usize) {
    s.kernel.protection.switch_to(next, &mut arch::Pmp);
}

/// The next ready task, idling until a deadline makes one ready.
fn next_task(s: &mut State) -> usize {
    loop {
        if let Some(id) = s.kernel.schedule() {
            return id;
        }
        let deadline = s.kernel.next_deadline();
        if deadline == NEVER {
            report_deadlock(s);
        }
        arm(s, deadline);
        while now_ms() < deadline {
            arch::wait_for_interrupt();
        }
        s.kernel.expire(now_ms());
    }
}

/// No task can run and none waits for a time: nothing will ever happen
/// again. Say who waits for what, and fail the run.
fn report_deadlock(s: &State) -> ! {
    if !s.kernel.any_alive() {
        kprintln!("kernel: every task has ended");
        console::power_off(3);
    }
    kprintln!("kernel: deadlock, every task is blocked:");
    for (id, task) in s.kernel.tasks.iter().enumerate() {
        if task.state != TaskState::Empty {
            kprintln!("  {id} {}: {:?}", task.name(), task.state);
        }
    }
    console::power_off(4);
}

/// A trap taken in the kernel itself: a kernel bug. Report and stop.
#[no_mangle]
extern "C" fn kernel_trap() -> ! {
    let (scause, sepc, stval) = arch::trap_cause();
    kprintln!(
        "kernel: trap in the kernel: {} (scause {scause:#x}) at pc {sepc:#x}, stval {stval:#x}",
        cause_name(scause)
    );
    console::power_off(5);
}
