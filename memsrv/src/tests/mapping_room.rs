//! `PhysicalMemory::may_add_mapping`: a home with no room for another
//! mapping of an address space (the board's PMP range table) makes the
//! `mmap` or `shmat` that would add one fail `ENOMEM` with nothing
//! changed, and the process goes on.

use super::sim::{hello, mmap, munmap, server_with, SimMemory, P};
use crate::{ClientId, MemoryServer};
use protocol::linux::{IPC_CREAT, IPC_PRIVATE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use protocol::{Errno, Reply, Request};

type S = MemoryServer<SimMemory>;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
const RW: u32 = PROT_READ | PROT_WRITE;

fn shmat(s: &mut S, c: u64, shmid: i32) -> Result<u64, Errno> {
    let request = Request::Shmat {
        shmid,
        addr: 0,
        flags: 0,
    };
    match s.handle_now(ClientId(c), request).into_result()? {
        Reply::Mapped { addr } => Ok(addr),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn no_room_for_a_mapping_fails_mmap_and_shmat_with_enomem_and_changes_nothing() {
    let mut s = server_with(64, |_| {});
    hello(&mut s, 1, 1000, None).unwrap();
    let kept = mmap(&mut s, 1, P, RW, ANON).unwrap();
    let shmid = match s.handle_now(
        ClientId(1),
        Request::Shmget {
            key: IPC_PRIVATE,
            size: P,
            flags: IPC_CREAT | 0o600,
        },
    ) {
        Reply::Value(id) => id as i32,
        other => panic!("unexpected {other:?}"),
    };
    let before = s.stats();
    s.memory_mut().refuse_mappings = true;
    assert_eq!(mmap(&mut s, 1, 2 * P, RW, ANON), Err(Errno::ENOMEM));
    assert_eq!(shmat(&mut s, 1, shmid), Err(Errno::ENOMEM));
    assert_eq!(s.stats(), before);
    s.check_invariants().unwrap();
    // What it had it keeps; once there is room it maps again.
    munmap(&mut s, 1, kept, P).unwrap();
    s.memory_mut().refuse_mappings = false;
    let again = mmap(&mut s, 1, 2 * P, RW, ANON).unwrap();
    let attached = shmat(&mut s, 1, shmid).unwrap();
    assert_ne!(again, attached);
    s.check_invariants().unwrap();
}

#[test]
fn no_room_for_a_mapping_fails_a_munmap_that_cuts_a_hole_and_no_other() {
    let mut s = server_with(64, |_| {});
    hello(&mut s, 1, 1000, None).unwrap();
    let at = mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    s.memory_mut().refuse_mappings = true;
    let before = s.stats();
    assert_eq!(munmap(&mut s, 1, at + P, P), Err(Errno::ENOMEM));
    assert_eq!(s.stats(), before);
    // Its end or its whole: no mapping more.
    munmap(&mut s, 1, at + 3 * P, P).unwrap();
    munmap(&mut s, 1, at, 3 * P).unwrap();
    s.check_invariants().unwrap();
}
