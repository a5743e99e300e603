//! `mapped_ranges`: what a home that confines its processes (the board's
//! PMP) lets a client touch — its process's mappings, joined where they
//! touch, and nothing of another process's.

use alloc::vec::Vec;

use crate::tests::rig::*;
use crate::tests::sim::{ANON, P};
use crate::ClientId;
use protocol::linux::*;

const RW: u32 = PROT_READ | PROT_WRITE;

fn ranges(r: &Rig, c: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    r.s.mapped_ranges(ClientId(c), &mut out);
    out
}

#[test]
fn a_process_sees_its_own_mappings_and_loses_what_it_unmaps() {
    let mut r = Rig::with(64, |_| {});
    r.process(1, 0);
    r.process(2, 0);
    assert!(ranges(&r, 1).is_empty());
    let a = r.mmap(1, 4 * P, RW, ANON, -1, 0).unwrap();
    let b = r.mmap(2, P, RW, ANON, -1, 0).unwrap();
    assert_eq!(ranges(&r, 1), [(a, a + 4 * P)]);
    assert_eq!(ranges(&r, 2), [(b, b + P)]);
    // A hole in the middle: two ranges, ascending.
    r.munmap(1, a + P, P).unwrap();
    assert_eq!(ranges(&r, 1), [(a, a + P), (a + 2 * P, a + 4 * P)]);
    // A no-MMU munmap does not span two mappings.
    r.munmap(1, a, P).unwrap();
    r.munmap(1, a + 2 * P, 2 * P).unwrap();
    assert!(ranges(&r, 1).is_empty());
    // A client with no process has none.
    assert!(ranges(&r, 9).is_empty());
}
