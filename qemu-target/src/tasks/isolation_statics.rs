//! Task isolation of the runtime's statics (part of the robustness suite):
//! every task has its own copy of the image's data and bss, at the same
//! address, swapped in when it touches them (`kernel/pmp.rs`). A task that
//! writes a static changes only its own copy; one that writes the copy
//! another task keeps in its region is reported and stopped, and that
//! task's static holds.

use super::isolation_regions::{intruder, KILLED_BY_STORE_FAULT};
use crate::sys;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

type Check = Result<(), String>;

/// A static of the runtime's kind (in the image's bss), which each task
/// sets to its own value.
static MARK: AtomicU64 = AtomicU64::new(0);

/// The victim's value of [`MARK`], and another task's.
const VICTIM_MARK: u64 = 0x5ee_d0f_5ec0_4d00;
const WRITER_MARK: u64 = 0xbad_5eed;
/// Mailbox words: where the victim keeps its copy of [`MARK`] while
/// another task's statics are in place, and the word set when it may end.
const SAVED_AT: usize = 0;
const DONE: usize = 1;

/// A user task that sets [`MARK`], publishes where its copy is saved, and
/// when told it is done ends 0 if [`MARK`] still holds its value.
fn victim() -> i64 {
    let mailbox = sys::mailbox();
    MARK.store(VICTIM_MARK, Ordering::Relaxed);
    let saved_at = sys::saved_static_at(&MARK as *const AtomicU64 as u64).unwrap_or(0);
    mailbox[SAVED_AT].store(saved_at, Ordering::Release);
    while mailbox[DONE].load(Ordering::Acquire) == 0 {
        sys::sleep_until(sys::now_ms() + 1);
    }
    if MARK.load(Ordering::Relaxed) == VICTIM_MARK {
        0
    } else {
        1
    }
}

/// A task setting the same static sets its own copy (the victim's and
/// init's stay as they were), and a task storing into the copy the victim
/// keeps in its region is stopped with a stray-store report; the victim's
/// static holds and it ends normally.
pub fn writing_another_tasks_statics_is_stopped(_memsrv: usize) -> Check {
    let own = MARK.load(Ordering::Relaxed);
    let victim =
        sys::spawn("statics-victim", 16 << 10, victim).map_err(|e| format!("spawn: {e:?}"))?;
    let mailbox = victim.mailbox().ok_or("the victim has no mailbox")?;
    let deadline = sys::now_ms() + 2000;
    while mailbox[SAVED_AT].load(Ordering::Acquire) == 0 && sys::now_ms() < deadline {
        sys::sleep_until(sys::now_ms() + 1);
    }
    let saved_at = mailbox[SAVED_AT].load(Ordering::Acquire);
    let verdict = (|| {
        if saved_at == 0 {
            return Err(String::from("the victim published no address"));
        }
        let writer = sys::spawn("statics-writer", 16 << 10, || {
            MARK.store(WRITER_MARK, Ordering::Relaxed);
            sys::yield_now();
            i64::from(MARK.load(Ordering::Relaxed) != WRITER_MARK)
        })
        .map_err(|e| format!("spawn: {e:?}"))?;
        match writer.join() {
            Ok(0) => {}
            other => return Err(format!("the writer's own static ended {other:?}")),
        }
        if MARK.load(Ordering::Relaxed) != own {
            return Err(String::from("another task's store changed init's static"));
        }
        match intruder("statics-intruder", saved_at)? {
            KILLED_BY_STORE_FAULT => Ok(()),
            code => Err(format!(
                "writing its saved statics ended {code}, not stopped"
            )),
        }
    })();
    mailbox[DONE].store(1, Ordering::Release);
    match victim.join() {
        Ok(0) => verdict,
        other => verdict.and(Err(format!(
            "the victim ended with {other:?}: its static changed"
        ))),
    }
}
