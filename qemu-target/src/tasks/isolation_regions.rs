//! Task isolation beyond the arena (part of the robustness suite): each
//! user task's stack and heap are its own region, the kernel's statics are
//! no task's, and a system call naming
//! memory its caller may not touch is an error, never a copy. A task that
//! writes another's stack or heap, or such a static, is reported and
//! stopped; the task it aimed at, memsrv and the suite go on.

use crate::kernel::Sys;
use crate::memory;
use crate::sys::{self, IpcTransport};
use crate::trap;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;
use protocol::Errno;

type Check = Result<(), String>;

/// The kernel's exit code for a task stopped by a store access fault
/// (128 + mcause 7).
pub(super) const KILLED_BY_STORE_FAULT: i64 = 128 + 7;
/// What the victim keeps in its heap word and its stack word.
const PATTERN: [u8; 8] = 0x0dd_ba11_c0ff_ee00u64.to_le_bytes();
/// Its mailbox: where its heap word is, where its stack word is, and the
/// word the suite sets when it may end.
const HEAP_WORD: usize = 0;
const STACK_WORD: usize = 1;
const DONE: usize = 2;

/// A user (or driver-role) task with a word in its heap and one on its
/// stack, both holding
/// [`PATTERN`], their addresses in its mailbox; when told it is done, it
/// ends 0 if both still hold it.
fn victim() -> i64 {
    let mailbox = sys::mailbox();
    let heap_word = Box::new(PATTERN);
    let stack_word = core::hint::black_box(PATTERN);
    let heap_at = &*heap_word as *const [u8; 8] as u64;
    let stack_at = &stack_word as *const [u8; 8] as u64;
    mailbox[HEAP_WORD].store(heap_at, Ordering::Release);
    mailbox[STACK_WORD].store(stack_at, Ordering::Release);
    while mailbox[DONE].load(Ordering::Acquire) == 0 {
        sys::sleep_until(sys::now_ms() + 1);
    }
    let intact = |at: u64| {
        let mut word = [0u8; 8];
        memory::read(at, &mut word) && word == PATTERN
    };
    let held = intact(heap_at) && intact(stack_at);
    core::hint::black_box((&heap_word, &stack_word));
    if held {
        0
    } else {
        1
    }
}

/// Start a victim, run `check` with its heap and stack addresses, then
/// let it end: `check`'s verdict, and the victim must end 0.
pub(super) fn against_a_victim(check: impl FnOnce(u64, u64) -> Check) -> Check {
    against_a_victim_as(false, check)
}

/// [`against_a_victim`] with a driver-role victim (in a driver's region)
/// if `driver`.
pub(super) fn against_a_victim_as(driver: bool, check: impl FnOnce(u64, u64) -> Check) -> Check {
    let victim = if driver {
        sys::spawn_driver("driver-victim", 16 << 10, sys::TASK_HEAP, victim)
    } else {
        sys::spawn("victim", 16 << 10, victim)
    };
    let victim = victim.map_err(|e| format!("spawn: {e:?}"))?;
    let mailbox = victim.mailbox().ok_or("the victim has no mailbox")?;
    let deadline = sys::now_ms() + 2000;
    while mailbox[STACK_WORD].load(Ordering::Acquire) == 0 && sys::now_ms() < deadline {
        sys::sleep_until(sys::now_ms() + 1);
    }
    let heap_at = mailbox[HEAP_WORD].load(Ordering::Acquire);
    let stack_at = mailbox[STACK_WORD].load(Ordering::Acquire);
    let verdict = if heap_at == 0 || stack_at == 0 {
        Err("the victim published no address".into())
    } else {
        check(heap_at, stack_at)
    };
    mailbox[DONE].store(1, Ordering::Release);
    match victim.join() {
        Ok(0) => verdict,
        other => verdict.and(Err(format!(
            "the victim ended with {other:?}: its words changed"
        ))),
    }
}

/// A user task that stores [`PATTERN`]'s complement at `at`; how it ended.
pub(super) fn intruder(name: &str, at: u64) -> Result<i64, String> {
    intruder_as(name, at, false)
}

/// [`intruder`] as a driver-role task if `driver`.
pub(super) fn intruder_as(name: &str, at: u64, driver: bool) -> Result<i64, String> {
    let store = move || {
        memory::write(at, &(!u64::from_le_bytes(PATTERN)).to_le_bytes());
        // Only reached if the store was allowed.
        0
    };
    let task = if driver {
        sys::spawn_driver(name, 16 << 10, sys::TASK_HEAP, store)
    } else {
        sys::spawn(name, 16 << 10, store)
    };
    let task = task.map_err(|e| format!("spawn: {e:?}"))?;
    task.join().map_err(|e| format!("join: {e:?}"))
}

/// A task writing another task's heap word, then one writing its stack
/// word: each is stopped with a stray-store report; the victim's words
/// hold and it ends normally.
pub fn writing_another_tasks_stack_or_heap_is_stopped(_memsrv: usize) -> Check {
    against_a_victim(|heap_at, stack_at| {
        for (what, at) in [("heap", heap_at), ("stack", stack_at)] {
            match intruder(&format!("{what}-writer"), at)? {
                KILLED_BY_STORE_FAULT => {}
                code => return Err(format!("writing its {what} ended {code}, not stopped")),
            }
        }
        Ok(())
    })
}

/// A user task storing into a kernel static, then a driver-role task
/// doing the same, are stopped the same way. (No statics are shared
/// between drivers: which task holds a device is the kernel's record.)
pub fn writing_a_kernel_static_is_stopped(_memsrv: usize) -> Check {
    for (name, driver) in [("kernel-writer", false), ("driver-writer", true)] {
        let store = || {
            trap::store_to_kernel_static();
            0
        };
        let task = if driver {
            sys::spawn_driver(name, 16 << 10, sys::TASK_HEAP, store)
        } else {
            sys::spawn(name, 16 << 10, store)
        }
        .map_err(|e| format!("spawn: {e:?}"))?;
        match task.join() {
            Ok(KILLED_BY_STORE_FAULT) => {}
            other => return Err(format!("{name} ended with {other:?}, not stopped")),
        }
    }
    Ok(())
}

/// A task that names the victim's heap word as a system call's buffer
/// (to print, to send memsrv, to receive a reply into) gets `EFAULT` each
/// time and runs on; nothing is copied, so the victim's word holds.
pub fn another_tasks_buffer_is_refused(memsrv: usize) -> Check {
    against_a_victim(|heap_at, _| {
        let task = sys::spawn("borrower", 16 << 10, move || {
            let Ok(conn) = sys::connect(memsrv, 0, 0) else {
                return 1;
            };
            let transport = IpcTransport::new(conn);
            let own = [0u8; 64];
            let own_at = own.as_ptr() as u64;
            let efault = Err(Errno::EFAULT);
            let refused = [
                sys::raw_call(Sys::Console, &[heap_at, 8]),
                sys::raw_call(Sys::Send, &[conn, heap_at, 8]),
                sys::raw_call(Sys::Call, &[conn, own_at, 8, heap_at, 64]),
                sys::raw_call(Sys::Recv, &[conn, heap_at, 64, 0]),
            ];
            drop(transport);
            match refused.iter().position(|r| *r != efault) {
                None => 0,
                Some(i) => 10 + i as i64,
            }
        })
        .map_err(|e| format!("spawn: {e:?}"))?;
        match task.join() {
            Ok(0) => Ok(()),
            other => Err(format!(
                "the borrower ended with {other:?} (10 + the first call not refused)"
            )),
        }
    })
}
