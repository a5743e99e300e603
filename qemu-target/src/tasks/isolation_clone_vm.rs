//! Task isolation of a shared address space (part of the robustness
//! suite): a `CLONE_VM` sibling in another task maps what its process
//! maps. memsrv names a change made through one connection to every
//! confined connection sharing that address space before the call that
//! made it returns, so the sibling reaches a page the moment the `mmap`
//! returns and is stopped at it the moment the `munmap` does, with no
//! call of its own in between.

use super::isolation::{process, KILLED_BY_LOAD_FAULT};
use crate::memory;
use crate::sys::{self, IpcTransport};
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use nommu::Client;
use protocol::linux::{CLONE_VM, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};

type Check = Result<(), String>;

const PAGE: u64 = 4096;
/// The sibling's mailbox: the step both are at, and the page.
const STEP: usize = 0;
const PAGE_AT: usize = 1;
/// What the page holds.
const PATTERN: [u8; 8] = 0x5ca1_ab1e_0000_00c1u64.to_le_bytes();

/// Wait until `word` is at least `step` (or two seconds passed); whether
/// it is.
fn reached(word: &AtomicU64, step: u64) -> bool {
    let deadline = sys::now_ms() + 2000;
    while word.load(Ordering::Acquire) < step && sys::now_ms() < deadline {
        sys::sleep_until(sys::now_ms() + 1);
    }
    word.load(Ordering::Acquire) >= step
}

/// The sibling: joins the address space with `ticket` (step 1); once the
/// page is mapped (step 2) reads it and checks it (step 3, or 9 if it
/// differs); once it is unmapped (step 4) reads it again: only reached if
/// that was let through.
fn sibling(memsrv: usize, ticket: u64) -> i64 {
    let [step, page_at, ..] = sys::mailbox();
    let Ok(conn) = sys::connect(memsrv, 0, 0) else {
        return 1;
    };
    let child = Client::new(IpcTransport::new(conn));
    if child.hello(Some(ticket)).is_err() {
        return 2;
    }
    step.store(1, Ordering::Release);
    if !reached(step, 2) {
        return 3;
    }
    let at = page_at.load(Ordering::Acquire);
    let mut word = [0u8; 8];
    memory::read(at, &mut word);
    step.store(if word == PATTERN { 3 } else { 9 }, Ordering::Release);
    if !reached(step, 4) {
        return 4;
    }
    memory::read(at, &mut word);
    core::hint::black_box(word);
    0
}

/// init's process clones itself with `CLONE_VM` into a user task; init
/// maps a page and writes it: the sibling reads it at once; init unmaps
/// it: the sibling's next read is stopped (`stray load`).
pub fn a_clone_vm_sibling_sees_a_range_change_at_once(memsrv: usize) -> Check {
    let parent = process(memsrv)?;
    let (_, ticket) = parent
        .clone_process(CLONE_VM)
        .map_err(|e| format!("clone: {e:?}"))?;
    let task = sys::spawn("vm-sibling", 32 << 10, move || sibling(memsrv, ticket))
        .map_err(|e| format!("spawn: {e:?}"))?;
    let seen = {
        let mailbox = task.mailbox().ok_or("the sibling has no mailbox")?;
        let step = &mailbox[STEP];
        let run = || -> Result<u64, String> {
            if !reached(step, 1) {
                return Err("the sibling did not join the address space".into());
            }
            let rw = PROT_READ | PROT_WRITE;
            let at = parent
                .mmap(0, PAGE, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                .map_err(|e| format!("mmap: {e:?}"))?;
            if !memory::write(at, &PATTERN) {
                return Err("a write outside RAM".into());
            }
            mailbox[PAGE_AT].store(at, Ordering::Release);
            step.store(2, Ordering::Release);
            reached(step, 3);
            let seen = step.load(Ordering::Acquire);
            parent
                .munmap(at, PAGE)
                .map_err(|e| format!("munmap: {e:?}"))?;
            step.store(4, Ordering::Release);
            Ok(seen)
        };
        let seen = run();
        // Let the sibling go on whatever happened.
        step.store(4, Ordering::Release);
        seen
    };
    let ended = task.join();
    let _ = parent.exit();
    match (seen?, ended) {
        (3, Ok(KILLED_BY_LOAD_FAULT)) => Ok(()),
        (2, Ok(KILLED_BY_LOAD_FAULT)) => {
            Err("the sibling was stopped at the page its process had just mapped".into())
        }
        (3, Ok(0)) => Err("the sibling read the page its process had unmapped".into()),
        other => Err(format!("(step seen, sibling's end) = {other:?}")),
    }
}
