//! What a no-MMU port must expect, shown against the threads home: one
//! address space shared by every process, no `MAP_FIXED`, no `fork`, and a
//! SysV segment at one address in every process that attaches it.

use hosted::threads::ThreadsHome;
use nommu::Errno;
use protocol::linux::{
    IPC_CREAT, IPC_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE,
};

const PAGE: u64 = 4096;

#[test]
fn two_processes_share_one_address_space() {
    let home = ThreadsHome::with_arena_size(1 << 20).unwrap();
    let writer = home.spawn_process().unwrap();
    let reader = home.spawn_process().unwrap();
    let addr = writer.mmap_anon(PAGE, PROT_READ | PROT_WRITE).unwrap();
    writer.write(addr, b"one address, one byte").unwrap();
    // Without an MMU nothing stops another process reading it.
    let mut seen = [0u8; 21];
    reader.read(addr, &mut seen).unwrap();
    assert_eq!(&seen, b"one address, one byte");
    writer.munmap(addr, PAGE).unwrap();
    home.check_invariants().unwrap();
}

#[test]
fn fixed_addresses_and_fork_are_refused() {
    let home = ThreadsHome::with_arena_size(1 << 20).unwrap();
    let process = home.spawn_process().unwrap();
    let fixed = process.client().mmap(
        0x1000_0000,
        PAGE,
        PROT_READ,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        -1,
        0,
    );
    assert_eq!(fixed, Err(Errno::EINVAL));
    // fork() cannot give the child a copy at the same addresses: EINVAL,
    // as no-MMU Linux answers; vfork + exec is the way.
    assert_eq!(process.client().fork(), Err(Errno::EINVAL));
}

#[test]
fn a_sysv_segment_has_one_address_in_every_process() {
    let home = ThreadsHome::with_arena_size(1 << 20).unwrap();
    let first = home.spawn_process().unwrap();
    let second = home.spawn_process().unwrap();
    let id = first
        .client()
        .shmget(IPC_PRIVATE, 3 * PAGE, IPC_CREAT | 0o600)
        .unwrap();
    let here = first.client().shmat(id, 0, 0).unwrap();
    let there = second.client().shmat(id, 0, 0).unwrap();
    assert_eq!(here, there);
    first.client().shmdt(here).unwrap();
    second.client().shmdt(there).unwrap();
    first.client().shm_remove(id).unwrap();
    drop((first, second));
    // Everything is back: no pages held by a copy or a segment.
    let stats = home.stats().unwrap();
    assert_eq!(stats.free_pages, stats.total_pages);
    home.check_invariants().unwrap();
}
