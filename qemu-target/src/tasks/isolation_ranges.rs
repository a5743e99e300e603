//! Task isolation of many mappings (part of the robustness suite): the
//! kernel keeps every arena range memsrv names for a process exactly,
//! however many (more than the 32 it once held per connection, beyond
//! which memsrv joined neighbours and opened the gaps between them). A
//! task with forty separate mappings reaches each, and is stopped at a gap
//! between two of them.

use super::isolation::{mmap_pages, process, KILLED_BY_LOAD_FAULT};
use crate::memory;
use crate::sys;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;

type Check = Result<(), String>;

const PAGE: u64 = 4096;
/// Separate one-page mappings the task holds.
const RANGES: u64 = 40;

/// The task: `RANGES` mappings (every other page of a larger one
/// unmapped), each written and read back twice round; its mailbox's first
/// word set once all held; then a load from the first gap, where memsrv
/// joining neighbours used to open the range. Ends 0 only if that load
/// was let through.
fn gap_reader(memsrv: usize) -> i64 {
    let [reached, ..] = sys::mailbox();
    let Ok(client) = process(memsrv) else {
        return 1;
    };
    let Ok(base) = mmap_pages(&client, 2 * RANGES) else {
        return 2;
    };
    for i in 0..RANGES {
        if client.munmap(base + (2 * i + 1) * PAGE, PAGE).is_err() {
            return 3;
        }
    }
    for round in 0..2u64 {
        for i in 0..RANGES {
            let at = base + 2 * i * PAGE + 8 * round;
            let word = (i << 8 | round).to_le_bytes();
            let mut back = [0u8; 8];
            if !memory::write(at, &word) || !memory::read(at, &mut back) || back != word {
                return 4;
            }
        }
    }
    reached.store(1, Ordering::Release);
    let mut word = [0u8; 8];
    memory::read(base + PAGE, &mut word);
    core::hint::black_box(word);
    0
}

/// A task with forty separate mappings writes and reads each, then reads
/// the gap between its first two: it is stopped with a stray-load report.
pub fn a_task_with_forty_mappings_reaches_each_and_no_gap(memsrv: usize) -> Check {
    let task = sys::spawn("gap-reader", 32 << 10, move || gap_reader(memsrv))
        .map_err(|e| format!("spawn: {e:?}"))?;
    // Its word is set before the gap's load; the mailbox stays until the
    // join.
    let reached = {
        let [reached, ..] = task.mailbox().ok_or("the task has no mailbox")?;
        let deadline = sys::now_ms() + 5000;
        while reached.load(Ordering::Acquire) == 0 && sys::now_ms() < deadline {
            sys::sleep_until(sys::now_ms() + 1);
        }
        reached.load(Ordering::Acquire)
    };
    let ended = task.join();
    match (reached, ended) {
        (1, Ok(KILLED_BY_LOAD_FAULT)) => Ok(()),
        (1, Ok(0)) => Err("the gap between two of its mappings was reachable".into()),
        other => Err(format!("(all mappings reached, end) = {other:?}")),
    }
}
