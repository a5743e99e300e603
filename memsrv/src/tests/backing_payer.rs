//! Memory-filesystem storage is charged to the caller of the request its
//! driver is serving when it asks (`AllocBacking`): the oldest request in
//! flight to that driver, as a driver serves its requests one at a time in
//! order, even while it has requests of several uids in flight.

use super::files::{env, TMP};
use protocol::linux::O_CREAT;
use protocol::{Reply, Request};

const RDWR: u32 = 2;

/// Pages of memory-filesystem storage charged to `uid`.
fn stored(r: &super::rig::Rig, uid: u32) -> u64 {
    r.s.nommu
        .charges
        .users()
        .find(|&(u, _, _)| u == uid)
        .map_or(0, |(_, c, _)| c.store)
}

fn alloc_backing(r: &mut super::rig::Rig, pages: u64) -> u64 {
    match r.call(TMP, Request::AllocBacking { pages }) {
        Reply::Mapped { addr } => addr,
        other => panic!("AllocBacking: {other:?}"),
    }
}

#[test]
fn storage_is_charged_to_the_caller_the_driver_is_serving_among_several_uids() {
    let mut r = env();
    r.process(3, 0);
    let a = r.open(1, "/tmp/a", RDWR | O_CREAT).unwrap();
    let b = r.open(3, "/tmp/b", RDWR | O_CREAT).unwrap();
    // Nothing in flight: storage the driver takes on its own is no one's.
    alloc_backing(&mut r, 1);
    assert_eq!((stored(&r, 1000), stored(&r, 0)), (0, 0));

    r.d(TMP).hold = true;
    let first = r.send(1, Request::Ftruncate { fd: a, len: 8192 });
    let second = r.send(3, Request::Ftruncate { fd: b, len: 8192 });
    assert_eq!(r.d(TMP).held.len(), 2, "both requests reached the driver");
    // The driver serves uid 1000's truncate first: its storage is 1000's,
    // not no one's because root also has a request in flight.
    alloc_backing(&mut r, 2);
    assert_eq!((stored(&r, 1000), stored(&r, 0)), (2, 0));
    r.ok();

    r.release_held(TMP);
    assert_eq!(r.reply(1, first), Some(Reply::Done));
    assert_eq!(r.reply(3, second), Some(Reply::Done));
    r.ok();
}
