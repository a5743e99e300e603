//! `backing_ranges`: what a home that confines its drivers (the board's
//! PMP) lets a driver's connection touch in the arena — the runs of
//! backing storage that driver holds, joined where they touch, and nothing
//! of another driver's or a process's.

use alloc::vec::Vec;

use crate::tests::rig::*;
use crate::tests::sim::{ANON, P};
use crate::ClientId;
use protocol::linux::*;
use protocol::{Reply, Request};

fn ranges(r: &Rig, c: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    r.s.backing_ranges(ClientId(c), &mut out);
    out
}

fn alloc(r: &mut Rig, c: u64, pages: u64) -> u64 {
    match r.call(c, Request::AllocBacking { pages }) {
        Reply::Mapped { addr } => addr,
        other => panic!("AllocBacking: {other:?}"),
    }
}

#[test]
fn a_driver_sees_its_own_backing_runs_and_loses_what_it_frees() {
    let mut r = Rig::with(64, |_| {});
    r.driver(10, "/a", (0x1f, 1), false, false);
    r.driver(11, "/b", (0x1f, 2), false, false);
    r.process(1, 0);
    assert!(ranges(&r, 10).is_empty());
    let a = alloc(&mut r, 10, 2);
    let b = alloc(&mut r, 11, 1);
    let mine = ranges(&r, 10);
    assert!(mine.iter().any(|&(s, e)| s <= a && a + 2 * P <= e));
    assert!(!mine.iter().any(|&(s, e)| s < b + P && b < e));
    assert_eq!(ranges(&r, 11), [(b, b + P)]);
    // A process's mapping is no driver's; a process has no backing runs.
    let m = r.mmap(1, P, PROT_READ | PROT_WRITE, ANON, -1, 0).unwrap();
    assert!(!ranges(&r, 10).iter().any(|&(s, e)| s < m + P && m < e));
    assert!(ranges(&r, 1).is_empty());
    // Freed: gone.
    assert_eq!(
        r.call(11, Request::FreeBacking { addr: b, pages: 1 }),
        Reply::Done
    );
    assert!(ranges(&r, 11).is_empty());
    r.ok();
}
