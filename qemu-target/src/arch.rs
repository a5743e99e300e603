//! riscv64 specifics: the boot entry, the trap vectors that save and
//! restore a task's [`TrapFrame`](crate::kernel::TrapFrame), CSR access and
//! the machine timer. All assembly lives here. The kernel runs in M-mode
//! (no firmware below it), so it owns the PMP that confines the tasks
//! (written by `pmp_hw`).

use core::arch::{asm, global_asm};

// Boot: QEMU's reset code jumps to the boot stub in flash in M-mode with
// a0 = hart id and a1 = the device tree; the stub jumps to 0x80200000. Clear .bss, take the boot stack, run the kernel.
//
// Trap vectors. `mtvec` always points at the user vector. While a task
// runs, `mscratch` holds its TrapFrame; the vector swaps it into t6, saves
// every register there, and calls `trap_handler` on the kernel stack,
// which does not return: it jumps to `restore_frame` with the frame of
// the task to run next, which loads it and returns to user mode. While the kernel itself runs `mscratch` is
// 0 (the vector zeroes it as it takes the task's t6), so a trap in the
// kernel swaps 0 into t6 and goes to the kernel vector, which only
// reports (the kernel never expects a trap). One vector spares writing
// `mtvec` twice a trap.
global_asm!(
    r#"
    .option arch, +a, +d
    .section .text.entry
    .globl _start
_start:
    la sp, __kernel_stack_top
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:  call kmain
3:  wfi
    j 3b

    .section .text
    .align 4
    .globl user_trap_vector
user_trap_vector:
    csrrw t6, mscratch, t6
    beqz t6, kernel_trap_vector
    sd x1, 8(t6)
    sd x2, 16(t6)
    sd x3, 24(t6)
    sd x4, 32(t6)
    sd x5, 40(t6)
    sd x6, 48(t6)
    sd x7, 56(t6)
    sd x8, 64(t6)
    sd x9, 72(t6)
    sd x10, 80(t6)
    sd x11, 88(t6)
    sd x12, 96(t6)
    sd x13, 104(t6)
    sd x14, 112(t6)
    sd x15, 120(t6)
    sd x16, 128(t6)
    sd x17, 136(t6)
    sd x18, 144(t6)
    sd x19, 152(t6)
    sd x20, 160(t6)
    sd x21, 168(t6)
    sd x22, 176(t6)
    sd x23, 184(t6)
    sd x24, 192(t6)
    sd x25, 200(t6)
    sd x26, 208(t6)
    sd x27, 216(t6)
    sd x28, 224(t6)
    sd x29, 232(t6)
    sd x30, 240(t6)
    csrrw t5, mscratch, zero
    sd t5, 248(t6)
    # The float registers only if the task wrote them since the kernel
    # last saved or loaded them (mstatus.FS = Dirty): then they are saved,
    # the frame says so (fp_saved) and FS becomes Clean (clearing its low
    # bit, 1 << 13). The trap handler loads them back only when another
    # task's values are in them (see trap.rs). Dirty is read as
    # mstatus.SD (bit 63, the sign), which sums up FS, VS and XS: the
    # board's hart has no vector or custom state (VS and XS stay 0), and
    # were SD set by them the save would only be spare work (FS is never
    # Off, so the stores cannot trap).
    csrr t5, mstatus
    bgez t5, 5f
    fsd f0, 256(t6)
    fsd f1, 264(t6)
    fsd f2, 272(t6)
    fsd f3, 280(t6)
    fsd f4, 288(t6)
    fsd f5, 296(t6)
    fsd f6, 304(t6)
    fsd f7, 312(t6)
    fsd f8, 320(t6)
    fsd f9, 328(t6)
    fsd f10, 336(t6)
    fsd f11, 344(t6)
    fsd f12, 352(t6)
    fsd f13, 360(t6)
    fsd f14, 368(t6)
    fsd f15, 376(t6)
    fsd f16, 384(t6)
    fsd f17, 392(t6)
    fsd f18, 400(t6)
    fsd f19, 408(t6)
    fsd f20, 416(t6)
    fsd f21, 424(t6)
    fsd f22, 432(t6)
    fsd f23, 440(t6)
    fsd f24, 448(t6)
    fsd f25, 456(t6)
    fsd f26, 464(t6)
    fsd f27, 472(t6)
    fsd f28, 480(t6)
    fsd f29, 488(t6)
    fsd f30, 496(t6)
    fsd f31, 504(t6)
    frcsr t5
    sd t5, 512(t6)
    li t5, 1
    sb t5, 528(t6)
    lui t5, 2
    csrc mstatus, t5
5:
    csrr t5, mepc
    sd t5, 520(t6)
    # One kernel stack for every trap: its top is a link-time constant.
    la sp, __kernel_stack_top
    mv a0, t6
    call trap_handler
    .globl restore_frame
restore_frame:
    # Drop any LR reservation the last task held, so a task preempted
    # between its LR and SC cannot have its SC succeed against another
    # task's reservation (slot 0 of the frame is unused, so the store is
    # harmless if it happens).
    sc.d zero, zero, 0(a0)
    csrw mscratch, a0
    ld t5, 520(a0)
    csrw mepc, t5
    ld x1, 8(a0)
    ld x2, 16(a0)
    ld x3, 24(a0)
    ld x4, 32(a0)
    ld x5, 40(a0)
    ld x6, 48(a0)
    ld x7, 56(a0)
    ld x8, 64(a0)
    ld x9, 72(a0)
    ld x11, 88(a0)
    ld x12, 96(a0)
    ld x13, 104(a0)
    ld x14, 112(a0)
    ld x15, 120(a0)
    ld x16, 128(a0)
    ld x17, 136(a0)
    ld x18, 144(a0)
    ld x19, 152(a0)
    ld x20, 160(a0)
    ld x21, 168(a0)
    ld x22, 176(a0)
    ld x23, 184(a0)
    ld x24, 192(a0)
    ld x25, 200(a0)
    ld x26, 208(a0)
    ld x27, 216(a0)
    ld x28, 224(a0)
    ld x29, 232(a0)
    ld x30, 240(a0)
    ld x31, 248(a0)
    ld x10, 80(a0)
    mret

    .globl fp_load
fp_load:
    ld t0, 512(a0)
    fscsr t0
    fld f0, 256(a0)
    fld f1, 264(a0)
    fld f2, 272(a0)
    fld f3, 280(a0)
    fld f4, 288(a0)
    fld f5, 296(a0)
    fld f6, 304(a0)
    fld f7, 312(a0)
    fld f8, 320(a0)
    fld f9, 328(a0)
    fld f10, 336(a0)
    fld f11, 344(a0)
    fld f12, 352(a0)
    fld f13, 360(a0)
    fld f14, 368(a0)
    fld f15, 376(a0)
    fld f16, 384(a0)
    fld f17, 392(a0)
    fld f18, 400(a0)
    fld f19, 408(a0)
    fld f20, 416(a0)
    fld f21, 424(a0)
    fld f22, 432(a0)
    fld f23, 440(a0)
    fld f24, 448(a0)
    fld f25, 456(a0)
    fld f26, 464(a0)
    fld f27, 472(a0)
    fld f28, 480(a0)
    fld f29, 488(a0)
    fld f30, 496(a0)
    fld f31, 504(a0)
    ret

    .align 4
    .globl kernel_trap_vector
kernel_trap_vector:
    la sp, __kernel_stack_top
    call kernel_trap
4:  wfi
    j 4b
"#
);

extern "C" {
    fn restore_frame(frame: *mut crate::kernel::TrapFrame) -> !;
    fn fp_load(frame: *const crate::kernel::TrapFrame);
    fn user_trap_vector();
}

/// `mstatus` bits the kernel sets once.
const MSTATUS_FS_INITIAL: u64 = 1 << 13;
/// The mode `mret` returns to: cleared, user mode.
const MSTATUS_MPP: u64 = 3 << 11;
const MSTATUS_MIE: u64 = 1 << 3;
const MIE_MTIE: u64 = 1 << 7;
/// `time` and `instret` readable from user mode (`cycle` too).
const COUNTEREN_CY_TM_IR: u64 = 0b111;
/// QEMU virt's CLINT: hart 0's timer compare register.
const CLINT_MTIMECMP: u64 = 0x0200_4000;

/// Put the hart in the state the kernel runs in: traps to the vector with
/// `mscratch` 0 (the kernel runs: a trap is reported), interrupts off in M-mode (the kernel polls), the timer
/// interrupt enabled for user mode, floating point on, counters readable,
/// `mret` bound for user mode.
pub fn init_hart() {
    let vector = user_trap_vector as *const () as usize as u64;
    // SAFETY: the CSRs written here configure this hart's traps, interrupt
    // enables, FPU state and counter visibility; the values are valid and
    // the kernel is single-hart, so nothing else depends on their old
    // values.
    unsafe {
        asm!("csrw mscratch, zero");
        asm!("csrw mtvec, {}", in(reg) vector);
        asm!("csrc mstatus, {}", in(reg) MSTATUS_MIE | MSTATUS_MPP);
        asm!("csrs mstatus, {}", in(reg) MSTATUS_FS_INITIAL);
        asm!("csrs mie, {}", in(reg) MIE_MTIE);
        asm!("csrw mcounteren, {}", in(reg) COUNTEREN_CY_TM_IR);
        asm!("csrw scounteren, {}", in(reg) COUNTEREN_CY_TM_IR);
    }
}

/// `menvcfg.CBZE` / `senvcfg.CBZE`: `cbo.zero` allowed below M-mode / in
/// U-mode (privileged spec, the environment configuration registers).
const ENVCFG_CBZE: u64 = 1 << 7;

/// Let user mode run `cbo.zero`. Only on a hart with Zicboz (the device
/// tree says so), whose `menvcfg` and `senvcfg` then hold CBZE. The board's
/// hart has S-mode (its `scounteren` is written above), and a U-mode
/// `cbo.zero` needs both bits when S-mode exists.
pub fn enable_cbo_zero() {
    // SAFETY: setting CBZE only permits `cbo.zero` below M-mode; it
    // changes no other state, and tasks' stores stay bound by PMP.
    unsafe {
        asm!("csrs menvcfg, {}", in(reg) ENVCFG_CBZE);
        asm!("csrs senvcfg, {}", in(reg) ENVCFG_CBZE);
    }
}

/// Zero `[addr, end)` with `cbo.zero`, four blocks of `block` bytes a turn
/// (the instruction takes no offset: each block costs it and an add).
///
/// # Safety
/// `[addr, end)` must be memory the caller may write and a non-empty
/// whole number of four-block runs, `addr` a multiple of `block`, `block`
/// the hart's cache-block zero size, and `cbo.zero` enabled for the running
/// mode ([`enable_cbo_zero`]).
pub unsafe fn cbo_zero(addr: u64, end: u64, block: u64) {
    let mut at = addr;
    while at < end {
        // SAFETY: the caller's contract: the four blocks from `at` lie in
        // the range, and `cbo.zero` stores zeros over each as stores would.
        unsafe {
            asm!(
                ".option push",
                ".option arch, +zicboz",
                "cbo.zero ({at})",
                "add {at}, {at}, {block}",
                "cbo.zero ({at})",
                "add {at}, {at}, {block}",
                "cbo.zero ({at})",
                "add {at}, {at}, {block}",
                "cbo.zero ({at})",
                "add {at}, {at}, {block}",
                ".option pop",
                at = inout(reg) at,
                block = in(reg) block,
                options(nostack),
            )
        };
    }
}

/// Mark the float registers clean (they match a saved state, or were
/// reset): the task's next write to them sets Dirty again. Only with FS
/// Dirty.
fn fp_clean() {
    // SAFETY: clearing FS's low bit turns Dirty into Clean; the callers
    // only do it with FS Dirty.
    unsafe { asm!("csrc mstatus, {}", in(reg) MSTATUS_FS_INITIAL) };
}

/// Load the float registers and `fcsr` from `frame`.
pub fn fp_restore(frame: &crate::kernel::TrapFrame) {
    // SAFETY: fp_load reads the frame's fregs and fcsr, writes only the
    // float registers, fcsr and t0 (caller-saved), and returns. It also
    // overwrites the callee-saved float registers, which is sound because
    // the kernel's code keeps nothing in float registers: they hold the
    // task's state, which is the point.
    unsafe { fp_load(frame) };
    fp_clean();
}

/// Reset `fcsr` (rounding mode and flags) for a task that never used the
/// FPU, so it does not compute with another task's rounding mode; whether
/// it had to (it was not zero).
pub fn fp_reset() -> bool {
    let fcsr: u64;
    // SAFETY: reading fcsr has no side effects.
    unsafe { asm!("frcsr {}", out(reg) fcsr) };
    if fcsr == 0 {
        return false;
    }
    // SAFETY: writing fcsr changes only float rounding and flags, which
    // belong to the task about to run.
    unsafe { asm!("fscsr zero") };
    fp_clean();
    true
}

/// Enter a task: the first time, after the kernel idled, and at the end of
/// every trap (inlined there: a jump to `restore_frame`).
#[inline(always)]
pub fn enter(frame: *mut crate::kernel::TrapFrame) -> ! {
    // SAFETY: `frame` is a task's frame in the kernel's task table, set up
    // by `Kernel::spawn` with a valid pc and stack; restore_frame returns
    // to user mode through it and never comes back here.
    unsafe { restore_frame(frame) }
}

/// The trap's cause, trapped pc and trap value.
pub fn trap_cause() -> (u64, u64, u64) {
    let (mcause, mepc, mtval): (u64, u64, u64);
    // SAFETY: reading trap CSRs has no side effects.
    unsafe {
        asm!("csrr {}, mcause", out(reg) mcause);
        asm!("csrr {}, mepc", out(reg) mepc);
        asm!("csrr {}, mtval", out(reg) mtval);
    }
    (mcause, mepc, mtval)
}

/// The `time` counter (10 MHz on QEMU virt).
pub fn ticks() -> u64 {
    let t: u64;
    // SAFETY: reading the time CSR has no side effects.
    unsafe { asm!("rdtime {}", out(reg) t) };
    t
}

/// Instructions retired so far (exact under QEMU `-icount`).
pub fn instructions() -> u64 {
    let n: u64;
    // SAFETY: reading instret has no side effects.
    unsafe { asm!("rdinstret {}", out(reg) n) };
    n
}

pub const TICKS_PER_MS: u64 = 10_000;

/// The `cycle` counter (under QEMU's TCG, the host's cycle counter).
pub fn cycles() -> u64 {
    let c: u64;
    // SAFETY: reading the cycle CSR has no side effects; the kernel made
    // it readable in user mode.
    unsafe { asm!("rdcycle {}", out(reg) c) };
    c
}

/// Raise the machine timer interrupt at `ticks` (this also clears a
/// pending one: the interrupt is pending while `mtime` ≥ `mtimecmp`).
pub fn set_timer(ticks: u64) {
    // SAFETY: CLINT_MTIMECMP is hart 0's compare register of QEMU virt's
    // CLINT, an aligned 64-bit MMIO register the kernel alone writes.
    unsafe { core::ptr::write_volatile(CLINT_MTIMECMP as *mut u64, ticks) };
}

/// Sleep until an interrupt is pending (interrupts stay off in M-mode;
/// `wfi` still wakes).
pub fn wait_for_interrupt() {
    // SAFETY: wfi only stalls the hart until an interrupt is pending.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}

/// The hart's PMP registers.
pub struct Pmp;

impl crate::kernel::pmp::PmpRegisters for Pmp {
    fn set_addr(&mut self, index: usize, addr: u64) {
        macro_rules! write {
            ($($n:literal)*) => {
                match index {
                    // SAFETY: pmpaddrN only bounds what U-mode may touch;
                    // the kernel runs in M-mode, which unlocked entries do
                    // not bind.
                    $($n => unsafe { asm!(concat!("csrw pmpaddr", $n, ", {}"), in(reg) addr) },)*
                    _ => {}
                }
            };
        }
        write!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    }

    fn set_cfg(&mut self, first: usize, word: u64) {
        if first == 0 {
            // SAFETY: as for pmpaddr; pmpcfg0 holds entries 0–7, none
            // locked.
            unsafe { asm!("csrw pmpcfg0, {}", in(reg) word) };
        } else {
            // SAFETY: as above; on RV64 pmpcfg2 holds entries 8–15.
            unsafe { asm!("csrw pmpcfg2, {}", in(reg) word) };
        }
    }
}
