//! `driver_call_in_flight`: how long a driver request is awaited, which is
//! how long a home that confines its drivers (the board's PMP) lends the
//! driver the page a `Read` fills — until it is answered, or its
//! operation fails on a time-out, or its driver goes.

use super::*;

/// The tag of the one request `DATA` holds, a `Read` into a private
/// copy.
fn held_read(r: &mut Rig) -> u32 {
    let held = &r.d(DATA).held;
    assert_eq!(held.len(), 1);
    assert!(matches!(held[0].1, DriverRequest::Read { .. }));
    held[0].0
}

#[test]
fn a_read_is_awaited_until_it_is_answered() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    let read = held_read(&mut r);
    assert!(r.s.driver_call_in_flight(read));
    r.release_held(DATA);
    assert!(matches!(r.reply(1, tag), Some(Reply::Mapped { .. })));
    assert!(!r.s.driver_call_in_flight(read));
    r.ok();
}

#[test]
fn a_read_is_no_longer_awaited_after_a_time_out_or_its_drivers_death() {
    let mut r = env_with(|c| c.driver_timeout_ms = 100);
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let f2 = r.open(2, "/data/f", RDONLY).unwrap();
    r.tick(1_000_000);
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    let read = held_read(&mut r);
    r.tick(1_000_100);
    assert!(r.s.driver_call_in_flight(read));
    r.tick(1_000_101);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    assert!(!r.s.driver_call_in_flight(read));
    // Its client gone first: while the request is still awaited its
    // copy is not freed (no one else gets the lent page); once the
    // driver dies it is awaited no longer.
    r.d(DATA).held.clear();
    r.send(2, Rig::mmap_req(P, R, PR, f2, 0));
    let read = held_read(&mut r);
    r.disconnect(2);
    if r.s.driver_call_in_flight(read) {
        assert!(r.s.stats().mmap_copy_pages > 0);
    }
    r.kill_driver(DATA);
    assert!(!r.s.driver_call_in_flight(read));
    r.ok();
}
