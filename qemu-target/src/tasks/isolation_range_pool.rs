//! Task isolation's range pool (part of the robustness suite): the kernel
//! keeps the arena ranges of all connections in one pool of
//! `RANGE_POOL`. A task that maps separate pages until the pool would
//! overflow gets `ENOMEM` from the `mmap` that would, holds every page it
//! had, and goes on mapping once it gives one back, instead of its list
//! being refused and the task being stopped at its next access.

use super::isolation::{mmap_pages, process};
use crate::kernel::pmp::RANGE_POOL;
use crate::memory;
use crate::sys;
use alloc::format;
use alloc::string::String;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use protocol::Errno;

type Check = Result<(), String>;

const PAGE: u64 = 4096;

/// Whether a word written at `at` reads back.
fn reaches(at: u64, word: u64) -> bool {
    let word = word.to_le_bytes();
    let mut back = [0u8; 8];
    memory::write(at, &word) && memory::read(at, &mut back) && back == word
}

/// Pages of each mapping the task makes before it cuts holes in it.
const CHUNK: u64 = 64;

/// The task: mappings of `CHUNK` pages with every other page unmapped,
/// so that each kept page is a mapping and a range of its own, each
/// written, until a `munmap` (a cut is one mapping more) or a `mmap`
/// fails; it must fail `ENOMEM` after at least half the pool, and so must
/// a `mmap` of one page then. The first page still holds its word, and
/// once it is unmapped a new mapping is made and reached. The exit code
/// says which step failed (0: none).
fn range_filler(memsrv: usize) -> i64 {
    let Ok(client) = process(memsrv) else {
        return 1;
    };
    let rw = PROT_READ | PROT_WRITE;
    let anonymous = MAP_PRIVATE | MAP_ANONYMOUS;
    let mut first = None;
    let mut pieces = 0u64;
    let refused = 'fill: loop {
        if pieces as usize > RANGE_POOL {
            return 2;
        }
        let base = match client.mmap(0, CHUNK * PAGE, rw, anonymous, -1, 0) {
            Ok(base) => base,
            Err(e) => break e,
        };
        first.get_or_insert(base);
        for hole in (1..CHUNK).step_by(2) {
            if let Err(e) = client.munmap(base + hole * PAGE, PAGE) {
                break 'fill e;
            }
            if !reaches(base + (hole - 1) * PAGE, pieces) {
                return 3;
            }
            pieces += 1;
        }
    };
    if refused != Errno::ENOMEM || (pieces as usize) < RANGE_POOL / 2 {
        crate::println!("range-filler: {pieces} pages, then {refused:?}");
        return 4;
    }
    if client.mmap(0, PAGE, rw, anonymous, -1, 0) != Err(Errno::ENOMEM) {
        return 5;
    }
    let Some(first) = first else {
        return 6;
    };
    let mut back = [0u8; 8];
    if !memory::read(first, &mut back) || u64::from_le_bytes(back) != 0 {
        return 7;
    }
    if client.munmap(first, PAGE).is_err() {
        return 8;
    }
    match mmap_pages(&client, 1) {
        Ok(again) if reaches(again, !0) => 0,
        _ => 9,
    }
}

/// A task that maps separate pages until the kernel's range pool is full
/// gets `ENOMEM` and goes on; it ends normally.
pub fn a_task_beyond_the_range_pool_gets_enomem_and_goes_on(memsrv: usize) -> Check {
    let task = sys::spawn("range-filler", 32 << 10, move || range_filler(memsrv))
        .map_err(|e| format!("spawn: {e:?}"))?;
    match task.join() {
        Ok(0) => Ok(()),
        other => Err(format!("the task ended {other:?}")),
    }
}
