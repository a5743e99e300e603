//! Task isolation under bad input (part of the robustness suite): a user
//! task reaches its own mappings, more of them than the PMP holds at once;
//! a task that reads another task's mapping, or a page it has unmapped, is
//! reported and stopped, and the owner and memsrv go on.

use crate::memory;
use crate::sys::{self, IpcTransport};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use nommu::Client;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};

type Check = Result<(), String>;

/// The kernel's exit code for a task stopped by a load access fault
/// (128 + mcause 5).
pub(super) const KILLED_BY_LOAD_FAULT: i64 = 128 + 5;
const PAGE: u64 = 4096;
/// Separate mappings the owner holds: more than the eleven arena ranges
/// a user task's PMP entries hold at once, so touching them all refills
/// entries.
const RANGES: u64 = 13;

/// A process of its own for the calling task.
pub(super) fn process(memsrv: usize) -> Result<Client<IpcTransport>, String> {
    let client = Client::new(IpcTransport::new(
        sys::connect(memsrv, 0, 0).map_err(|e| format!("connect: {e:?}"))?,
    ));
    client.hello(None).map_err(|e| format!("hello: {e:?}"))?;
    Ok(client)
}

pub(super) fn mmap_pages(client: &Client<IpcTransport>, pages: u64) -> Result<u64, String> {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    client
        .mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0)
        .map_err(|e| format!("mmap: {e:?}"))
}

/// What one page holds in the owner's pattern.
fn pattern(page: u64) -> [u8; 8] {
    (0x5eed_0000_0000_0000 | page).to_le_bytes()
}

/// Whether every page the owner wrote still holds its pattern.
fn pages_hold_their_pattern(pages: &[u64]) -> bool {
    pages.iter().enumerate().all(|(i, &at)| {
        let mut word = [0u8; 8];
        memory::read(at, &mut word) && word == pattern(i as u64)
    })
}

/// The owner: `RANGES` separate one-page mappings (every other page of a
/// larger one unmapped), each written and read back twice round, its first
/// page's address published in its mailbox's first word; then it waits
/// for the second word and checks its pages again.
fn owner(memsrv: usize) -> i64 {
    let [shared, done, ..] = sys::mailbox();
    let run = || -> Result<(), String> {
        let client = process(memsrv)?;
        let base = mmap_pages(&client, 2 * RANGES)?;
        let mut pages = Vec::new();
        for i in 0..RANGES {
            let hole = base + (2 * i + 1) * PAGE;
            client
                .munmap(hole, PAGE)
                .map_err(|e| format!("munmap: {e:?}"))?;
            pages.push(base + 2 * i * PAGE);
        }
        for (i, &at) in pages.iter().enumerate() {
            if !memory::write(at, &pattern(i as u64)) {
                return Err("a write outside RAM".into());
            }
        }
        if !pages_hold_their_pattern(&pages) || !pages_hold_their_pattern(&pages) {
            return Err("its own pages lost their pattern".into());
        }
        shared.store(pages[0], Ordering::Release);
        while done.load(Ordering::Acquire) == 0 {
            sys::sleep_until(sys::now_ms() + 1);
        }
        if !pages_hold_their_pattern(&pages) {
            return Err("its pages changed while another task was stopped".into());
        }
        client.exit().map_err(|e| format!("exit: {e:?}"))
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            crate::println!("isolation: owner: {e}");
            1
        }
    }
}

/// A task with a process of its own reads the first page of another
/// task's mapping: the kernel reports the stray load and stops it; the
/// owner's pages are untouched and it ends normally.
pub fn reading_another_tasks_mapping_is_stopped(memsrv: usize) -> Check {
    let owner = sys::spawn("owner", 32 << 10, move || owner(memsrv))
        .map_err(|e| format!("spawn the owner: {e:?}"))?;
    let [shared, done, ..] = owner.mailbox().ok_or("the owner has no mailbox")?;
    let deadline = sys::now_ms() + 2000;
    while shared.load(Ordering::Acquire) == 0 && sys::now_ms() < deadline {
        sys::sleep_until(sys::now_ms() + 1);
    }
    let target = shared.load(Ordering::Acquire);
    let snooper = sys::spawn("snooper", 32 << 10, move || {
        let _process = process(memsrv);
        let mut word = [0u8; 8];
        memory::read(target, &mut word);
        core::hint::black_box(word);
        // Only reached if the read was allowed.
        0
    })
    .map_err(|e| format!("spawn the snooper: {e:?}"))?;
    let snooped = snooper.join();
    done.store(1, Ordering::Release);
    let owned = owner.join();
    match (target, snooped, owned) {
        (0, ..) => Err("the owner published no page".into()),
        (_, Ok(KILLED_BY_LOAD_FAULT), Ok(0)) => Ok(()),
        other => Err(format!(
            "(page, snooper's end, owner's end) = {other:x?}, not stopped and 0"
        )),
    }
}

/// A task that reads a page it has unmapped is stopped: memsrv named its
/// ranges anew before it answered the unmap.
pub fn reading_an_unmapped_page_is_stopped(memsrv: usize) -> Check {
    let task = sys::spawn("unmapper", 32 << 10, move || {
        let Ok(client) = process(memsrv) else {
            return 1;
        };
        let Ok(at) = mmap_pages(&client, 1) else {
            return 2;
        };
        if !memory::write(at, &pattern(0)) || !pages_hold_their_pattern(&[at]) {
            return 3;
        }
        if client.munmap(at, PAGE).is_err() {
            return 4;
        }
        let mut word = [0u8; 8];
        memory::read(at, &mut word);
        core::hint::black_box(word);
        0
    })
    .map_err(|e| format!("spawn: {e:?}"))?;
    match task.join() {
        Ok(KILLED_BY_LOAD_FAULT) => Ok(()),
        other => Err(format!("the task ended with {other:?}, not stopped")),
    }
}
