//! `address_space_of`: connections whose processes share an address space
//! (`CLONE_VM`) are known as such, so a home that confines each to its
//! process's mappings (the board's PMP) can name a change made through
//! one to all of them before the call that made it returns.

use super::sim::*;
use crate::ClientId;
use protocol::linux::*;
use protocol::{Reply, Request};

fn clone(s: &mut crate::MemoryServer<SimMemory>, c: u64, flags: u64) -> u64 {
    match s.handle_now(ClientId(c), Request::Clone { flags }) {
        Reply::Cloned { ticket, .. } => ticket,
        other => panic!("{other:?}"),
    }
}

#[test]
fn clone_vm_siblings_share_an_address_space_and_see_each_others_ranges() {
    let mut s = root_process(64);
    let vm = clone(&mut s, 1, CLONE_VM);
    hello(&mut s, 2, 0, Some(vm)).unwrap();
    let fork = clone(&mut s, 1, 0);
    hello(&mut s, 3, 0, Some(fork)).unwrap();
    let space = |s: &crate::MemoryServer<SimMemory>, c| s.address_space_of(ClientId(c));
    assert!(space(&s, 1).is_some());
    assert_eq!(space(&s, 1), space(&s, 2));
    assert_ne!(space(&s, 1), space(&s, 3));
    assert_eq!(space(&s, 9), None);
    // What one maps, the other has mapped.
    let a = mmap(&mut s, 1, P, RW, ANON).unwrap();
    let mut ranges = alloc::vec::Vec::new();
    s.mapped_ranges(ClientId(2), &mut ranges);
    assert!(ranges.iter().any(|&(st, e)| st <= a && a + P <= e));
    s.mapped_ranges(ClientId(3), &mut ranges);
    assert!(!ranges.iter().any(|&(st, e)| st < a + P && a < e));
    s.check_invariants().unwrap();
}
