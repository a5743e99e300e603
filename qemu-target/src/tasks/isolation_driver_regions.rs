//! Drivers' regions (part of the robustness suite): each driver task runs
//! in a region of its own from the region pool, as a user task does, so
//! memsrv's heap (the task heap, whose allocator memsrv shares with init)
//! and every other driver's stack, heap and device are out of its reach.
//! A driver-role task that writes a word of memsrv's heap, or a word in
//! another driver's heap or on its stack, is reported and stopped; the
//! word holds, the other driver ends normally and memsrv serves on. A
//! driver stopped so while it builds its device fails its mount.

use super::driver::mount;
use super::isolation::{mmap_pages, process};
use super::isolation_regions::{against_a_victim_as, intruder_as, KILLED_BY_STORE_FAULT};
use crate::memory;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use drivers::ramfs::Ramfs;
use drivers::MountPoint;
use protocol::Errno;

type Check = Result<(), String>;

/// What the word in memsrv's heap holds.
const PATTERN: [u8; 8] = 0x5e_4e_4d_5e_4e_4d_5e_4eu64.to_le_bytes();

/// A word in memsrv's heap: allocated in the task heap (the suite runs in
/// init, which allocates from the heap memsrv's allocations come from).
fn word_in_memsrvs_heap() -> Result<(Box<[u8; 8]>, u64), String> {
    let word = Box::new(PATTERN);
    let at = &*word as *const [u8; 8] as u64;
    if !memory::shared_heap().contains(&at) {
        return Err(format!("the word at {at:#x} is not in memsrv's heap"));
    }
    Ok((word, at))
}

/// The word holds, and memsrv still maps and unmaps for a process.
fn held_and_memsrv_serves(memsrv: usize, word: &[u8; 8]) -> Check {
    if *core::hint::black_box(word) != PATTERN {
        return Err("the word in memsrv's heap changed".into());
    }
    let client = process(memsrv)?;
    let page = mmap_pages(&client, 1)?;
    client
        .munmap(page, 4096)
        .map_err(|e| format!("memsrv after the stray store: munmap: {e:?}"))
}

/// A driver-role task storing into a word of memsrv's heap is stopped
/// with a stray-store report, the word holds, and memsrv serves on.
pub fn a_driver_writing_memsrvs_heap_is_stopped(memsrv: usize) -> Check {
    let (word, at) = word_in_memsrvs_heap()?;
    match intruder_as("memsrv-writer", at, true)? {
        KILLED_BY_STORE_FAULT => held_and_memsrv_serves(memsrv, &word),
        code => Err(format!("the driver-role writer ended {code}, not stopped")),
    }
}

/// A driver whose device's constructor (run in the driver task, as every
/// board driver builds its device) stores into memsrv's heap is stopped
/// before it reports its start: the mount fails `EIO` and does not wait
/// on, the word holds, and memsrv serves on.
pub fn a_driver_stopped_while_it_starts_fails_its_mount(memsrv: usize) -> Check {
    let (word, at) = word_in_memsrvs_heap()?;
    let point = MountPoint::new("/dev/stray-mount", (0, 0x7f)).map_err(|e| format!("{e:?}"))?;
    let make = move |point| {
        memory::write(at, &(!u64::from_le_bytes(PATTERN)).to_le_bytes());
        // Only reached if the store was allowed.
        Ok(Ramfs::new(point))
    };
    match mount(memsrv, point, make, |_| ()) {
        Err(Errno::EIO) => held_and_memsrv_serves(memsrv, &word),
        Err(e) => Err(format!("the mount failed {e:?}, not EIO")),
        Ok(_) => Err("the driver started: its store was let through".into()),
    }
}

/// A driver-role victim keeps a word in its heap and one on its stack; a
/// driver-role task writing the heap word, then one writing the stack
/// word, are each stopped; the victim's words hold and it ends normally.
pub fn a_driver_writing_another_drivers_region_is_stopped(_memsrv: usize) -> Check {
    against_a_victim_as(true, |heap_at, stack_at| {
        for (what, at) in [("heap", heap_at), ("stack", stack_at)] {
            match intruder_as(&format!("drv-{what}-writer"), at, true)? {
                KILLED_BY_STORE_FAULT => {}
                code => return Err(format!("writing its {what} ended {code}, not stopped")),
            }
        }
        Ok(())
    })
}
