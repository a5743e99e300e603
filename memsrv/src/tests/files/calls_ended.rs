//! `PhysicalMemory::driver_call_ended`: the home learns that a driver
//! request is awaited no longer inside the step that ends it (answered,
//! timed out, its driver gone), once per request, so a home that lent the
//! driver a page for it (the board's PMP) takes the page back before the
//! operation frees or reuses it.

use super::*;

/// The tag of the one request `DATA` holds (the calls ended before it,
/// the `open`'s lookup, forgotten).
fn held_tag(r: &mut Rig) -> u32 {
    r.s.memory_mut().ended_calls.clear();
    let held = &r.d(DATA).held;
    assert_eq!(held.len(), 1);
    assert!(matches!(held[0].1, DriverRequest::Read { .. }));
    held[0].0
}

fn ended(r: &Rig) -> &[u32] {
    &r.s.memory().ended_calls
}

#[test]
fn an_answered_read_is_ended_once_as_its_answer_is_handled() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    let read = held_tag(&mut r);
    assert!(!ended(&r).contains(&read));
    r.release_held(DATA);
    assert!(matches!(r.reply(1, tag), Some(Reply::Mapped { .. })));
    assert_eq!(ended(&r), &[read][..]);
    r.ok();
}

#[test]
fn a_timed_out_read_is_ended_in_the_tick_that_fails_it() {
    let mut r = env_with(|c| c.driver_timeout_ms = 100);
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.tick(1_000_000);
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    let read = held_tag(&mut r);
    r.tick(1_000_100);
    assert!(!ended(&r).contains(&read));
    r.tick(1_000_101);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    assert_eq!(ended(&r), &[read][..]);
    // The late answer ends nothing again.
    r.release_held(DATA);
    assert_eq!(ended(&r), &[read][..]);
    r.ok();
}

#[test]
fn a_read_whose_driver_dies_is_ended_once() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    let read = held_tag(&mut r);
    r.kill_driver(DATA);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    assert_eq!(ended(&r), &[read][..]);
    r.ok();
}
