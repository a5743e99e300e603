//! Task isolation of drivers (part of the robustness suite): a driver
//! task reaches, in the arena, only what memsrv names for its connection
//! (its backing runs and the page it fills for a call in flight; the
//! suite's drivers serve every conformance vector so), and in the task
//! heap no user task's region. A driver-role task that touches a page
//! some process mapped, or a user task's heap, is reported and stopped,
//! and what it aimed at holds.

use super::isolation::{mmap_pages, process, KILLED_BY_LOAD_FAULT};
use super::isolation_regions::{against_a_victim, intruder_as, KILLED_BY_STORE_FAULT};
use crate::memory;
use crate::sys;
use alloc::format;
use alloc::string::String;

type Check = Result<(), String>;

/// What the suite's page holds.
const PATTERN: [u8; 8] = 0xd1_5c0_0f_f1_0e_d0u64.to_le_bytes();

/// A driver-role task that reads a page mapped by the suite's own process
/// is stopped with a stray-load report; the page holds its bytes.
pub fn a_driver_touching_arena_pages_not_its_own_is_stopped(memsrv: usize) -> Check {
    let client = process(memsrv)?;
    let page = mmap_pages(&client, 1)?;
    if !memory::write(page, &PATTERN) {
        return Err("a write outside RAM".into());
    }
    let snooper = sys::spawn_driver("driver-snooper", 16 << 10, sys::TASK_HEAP, move || {
        let mut word = [0u8; 8];
        memory::read(page, &mut word);
        core::hint::black_box(word);
        // Only reached if the load was allowed.
        0
    })
    .map_err(|e| format!("spawn: {e:?}"))?;
    let ended = snooper.join().map_err(|e| format!("join: {e:?}"))?;
    let mut word = [0u8; 8];
    let held = memory::read(page, &mut word) && word == PATTERN;
    client
        .munmap(page, 4096)
        .map_err(|e| format!("munmap: {e:?}"))?;
    match (ended, held) {
        (KILLED_BY_LOAD_FAULT, true) => Ok(()),
        (KILLED_BY_LOAD_FAULT, false) => Err("the page lost its bytes".into()),
        (code, _) => Err(format!("the driver-role snooper ended {code}, not stopped")),
    }
}

/// A driver-role task that writes a user task's heap word is stopped with
/// a stray-store report; the user task's word holds and it ends normally.
pub fn a_driver_writing_a_user_tasks_region_is_stopped(_memsrv: usize) -> Check {
    against_a_victim(
        |heap_at, _| match intruder_as("region-writer", heap_at, true)? {
            KILLED_BY_STORE_FAULT => Ok(()),
            code => Err(format!("the driver-role writer ended {code}, not stopped")),
        },
    )
}
