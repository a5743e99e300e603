//! Deferred replies: operation queues, timeouts and driver death.

use super::*;

// Deferred replies, queues, timeouts, death.

#[test]
fn replies_wait_for_the_driver_while_others_are_served() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    assert_eq!(r.reply(1, tag), None);
    // Another client is served meanwhile.
    assert!(r.call(2, anon_request(P)).into_result().is_ok());
    // An open of the same driver waits as well (it needs a lookup).
    let open = r.send(2, Rig::open_req("/data/f", RDONLY));
    assert_eq!(r.reply(2, open), None);
    assert_eq!(r.s.stats().pending_ops, 2);
    r.ok();
    r.release_held(DATA);
    assert!(matches!(r.reply(1, tag), Some(Reply::Mapped { .. })));
    assert_eq!(r.reply(2, open), Some(Reply::Fd(3)));
    assert_eq!(r.s.stats().pending_ops, 0);
    r.ok();
}

#[test]
fn one_object_one_request_at_a_time() {
    let mut r = env();
    let (fa, fb) = open_in_both(&mut r, "/data/f", RDONLY);
    r.d(DATA).hold = true;
    let t1 = r.send(1, Rig::mmap_req(P, R, PR, fa, 0));
    let t2 = r.send(2, Rig::mmap_req(P, R, PR, fb, 0));
    assert_eq!(r.d(DATA).held.len(), 1, "the second waits in the queue");
    r.release_held(DATA);
    let a = r.reply(1, t1).unwrap();
    let b = r.reply(2, t2).unwrap();
    // The second found the first's copy (the search ran after set-up).
    assert_eq!(a, b);
    assert_eq!(mc(&r), 4);
    r.ok();
}

#[test]
fn a_timeout_fails_with_eio_and_undoes_the_copy() {
    let mut r = env_with(|c| c.driver_timeout_ms = 100);
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.tick(1_000_000);
    r.d(DATA).hold = true;
    let free = r.s.stats().free_pages;
    let tag = r.send(1, Rig::mmap_req(2 * P, R, PR, f, 0));
    assert!(r.s.stats().free_pages < free, "the copy is allocated");
    r.tick(1_000_050);
    assert_eq!(r.reply(1, tag), None);
    // Whole milliseconds: at exactly the timeout the call may be up to
    // 1 ms short of it, so it fails only past it.
    r.tick(1_000_100);
    assert_eq!(r.reply(1, tag), None);
    r.tick(1_000_101);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    assert_eq!(r.s.stats().free_pages, free);
    assert_eq!(mc(&r), 0);
    r.ok();
    // The late answer is ignored; the driver keeps working.
    r.release_held(DATA);
    assert!(r.mmap(1, P, R, PR, f, 0).is_ok());
    r.ok();
}

#[test]
fn the_first_tick_starts_the_clock() {
    let mut r = env_with(|c| c.driver_timeout_ms = 100);
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    // A home whose clock reads large numbers does not expire it at once.
    r.tick(5_000_000);
    assert_eq!(r.reply(1, tag), None);
    r.tick(5_000_101);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    r.ok();
}

#[test]
fn driver_death_fails_pending_and_queued_operations() {
    let mut r = env();
    let sa = r.memory_file(1, "/tmp/s", 2 * P);
    let x = r.mmap(1, 2 * P, RW, SH, sa, 0).unwrap();
    r.d(TMP).hold = true;
    let t1 = r.send(1, Rig::mmap_req(P, R, PR, sa, 1));
    let t2 = r.send(2, Rig::open_req("/tmp/s", RDONLY));
    let t3 = r.send(1, Request::Fstat { fd: sa });
    let free_before_death = r.s.stats().free_pages;
    r.kill_driver(TMP);
    for (c, t) in [(1, t1), (2, t2), (1, t3)] {
        assert_eq!(r.reply(c, t), Some(Reply::Error(Errno::EIO)));
    }
    // The mapping still stands; its storage is kept while it does.
    assert_eq!(r.s.stats().free_pages, free_before_death);
    assert_eq!(r.pread(1, sa, 1, 0), Err(Errno::EIO));
    assert_eq!(r.open(1, "/tmp/s", RDONLY), Err(Errno::ENOENT));
    r.ok();
    r.munmap(1, x, 2 * P).unwrap();
    r.ok();
    // Region gone: the dead driver's storage is free (the ROM image
    // stays).
    assert_eq!(r.s.stats().backing_pages, 8);
    r.close(1, sa).unwrap();
    assert_eq!(r.s.stats().objects, 0);
    r.ok();
}

#[test]
fn a_release_waiting_its_turn_is_dropped_when_the_object_is_opened_again() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    r.d(DATA).hold = true;
    // A read holds the object; the close makes the Release due behind it.
    let read = r.send(
        1,
        Request::Read {
            fd: f,
            len: 4,
            offset: Some(0),
        },
    );
    assert_eq!(r.call(1, Request::Close { fd: f }), Reply::Done);
    // Another open looks the object up again before the Release's turn.
    let open = r.send(2, Rig::open_req("/data/f", RDONLY));
    r.release_held(DATA);
    assert!(matches!(r.reply(1, read), Some(Reply::Data(_))));
    assert_eq!(r.reply(2, open), Some(Reply::Fd(3)));
    // The read's answer dropped the last reference while the lookup was
    // in flight: the Release waited for it, the lookup named the object
    // again, and no Release was sent (the driver never saw a lookup of an
    // object it was then told to release).
    assert_eq!(r.d(DATA).obj("f").releases, 0);
    r.ok();
}

#[test]
fn a_caller_gone_mid_operation_leaves_nothing_behind() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    r.d(DATA).hold = true;
    r.d(TST).hold = true;
    let free = r.s.stats().free_pages;
    let copy = r.send(1, Rig::mmap_req(2 * P, R, PR, f, 0));
    let direct = r.send(1, Rig::mmap_req(P, R, SH, t, 0));
    r.disconnect(1);
    r.release_held(DATA);
    r.release_held(TST);
    assert_eq!((r.reply(1, copy), r.reply(1, direct)), (None, None));
    let st = r.s.stats();
    assert_eq!((st.free_pages, st.regions, st.vmas), (free, 0, 0));
    assert_eq!((st.objects, st.open_files, st.pending_ops), (0, 0, 0));
    // The driver approved a mapping that never came to be; nothing closes
    // it, but both objects were released.
    let log = r.d(TST).log.clone();
    assert_eq!(r.d(TST).obj("").releases, 1, "{log:?}");
    assert_eq!(r.d(DATA).obj("f").releases, 1);
    r.ok();
}

#[test]
fn bad_answers_fail_with_eio() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    // Wrong variant.
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    let (dtag, _) = r.d(DATA).held.pop().unwrap();
    r.d(DATA).hold = false;
    let mut buf = [0u8; protocol::MAX_FRAME];
    let len = protocol::encode_driver_reply(dtag, &protocol::DriverReply::Address(1), &mut buf);
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(DATA), &buf[..len], &mut fx);
    assert_eq!(replies_to(&fx, 1), [(tag, Reply::Error(Errno::EIO))]);
    assert_eq!(mc(&r), 0);
    r.ok();
    // An unknown tag fails what is in flight to that driver.
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 1));
    let len = protocol::encode_driver_reply(0xdead, &protocol::DriverReply::Done, &mut buf);
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(DATA), &buf[..len], &mut fx);
    assert_eq!(replies_to(&fx, 1), [(tag, Reply::Error(Errno::EIO))]);
    r.d(DATA).held.clear();
    r.d(DATA).hold = false;
    // A garbled driver reply is a bad answer too.
    r.d(DATA).hold = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 2));
    let (dtag, _) = r.d(DATA).held.pop().unwrap();
    r.d(DATA).hold = false;
    let len = protocol::encode_driver_reply(dtag, &protocol::DriverReply::Count(1), &mut buf);
    buf[len - 1] = 0xff;
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(DATA), &buf[..len], &mut fx);
    assert_eq!(replies_to(&fx, 1), [(tag, Reply::Error(Errno::EIO))]);
    // A driver reply from a connection that is no driver.
    let len = protocol::encode_driver_reply(7, &protocol::DriverReply::Done, &mut buf);
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(1), &buf[..len], &mut fx);
    assert_eq!(replies_to(&fx, 1), [(7, Reply::Error(Errno::EPROTO))]);
    r.ok();
}

#[test]
fn enosys_never_reaches_a_client() {
    let mut r = env();
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    set_tst(&mut r, |o| o.read_error = Some(Errno::ENOSYS));
    set_tst(&mut r, |o| o.gua = Some(Err(Errno::ENOSYS)));
    assert_eq!(r.mmap(1, P, R, PR, t, 0), Err(Errno::EIO));
    assert_eq!(r.mmap(1, P, R, SH, t, 0), Err(Errno::ENODEV));
    r.ok();
}

/// The replies in `fx` to connection `c`.
fn replies_to(fx: &[crate::Effect], c: u64) -> Vec<(u32, Reply)> {
    fx.iter()
        .filter_map(|e| match e {
            crate::Effect::Send { to, frame } if *to == ClientId(c) => {
                protocol::decode_reply(frame.as_slice())
                    .ok()
                    .map(|f| (f.tag, f.message))
            }
            _ => None,
        })
        .collect()
}
