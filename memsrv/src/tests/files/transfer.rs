//! Leases to a driver that moves the bytes itself (`Transfer`, through a
//! staging buffer the server owns): whole steps at odd offsets and
//! lengths, short past the end, a write growing the file, `EFAULT` for
//! memory not the caller's, a count above the step refused, a client
//! killed while the driver works, a timed-out step whose buffer waits for
//! the driver to go; the staging pages always come back.

use super::page_map::{buffer, lease};
use super::*;
use protocol::{DriverReply, BULK_WINDOW, LEASE_STEP};

/// `/data/g`: 300 KiB on the heap whose driver declares `TRANSFER`,
/// opened read-write by process 1, which holds a buffer of `pages` pages;
/// the object's handle.
fn env_transfer(pages: u64) -> (Rig, i32, u64, u64) {
    let mut r = env();
    let g = r.add(DATA, "g", |_, _| {
        FakeObject::new(
            0,
            ObjectKind::RegularFile,
            None,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::TRANSFER,
            Store::Heap(pattern(300 << 10)),
        )
    });
    let fd = r.open(1, "/data/g", RDWR).unwrap();
    let buf = buffer(&mut r, 1, pages * P);
    (r, fd, buf, g)
}

fn transfers(r: &mut Rig) -> Vec<(u64, u64, bool)> {
    r.d(DATA)
        .log
        .iter()
        .filter_map(|q| match q {
            DriverRequest::Transfer {
                offset, len, write, ..
            } => Some((*offset, *len, *write)),
            _ => None,
        })
        .collect()
}

fn framed_steps(r: &mut Rig) -> usize {
    r.d(DATA)
        .log
        .iter()
        .filter(|q| {
            matches!(
                q,
                DriverRequest::ReadData { .. }
                    | DriverRequest::WriteData { .. }
                    | DriverRequest::Pages { .. }
            )
        })
        .count()
}

fn free_pages(r: &Rig) -> u64 {
    r.s.stats().free_pages
}

#[test]
fn whole_steps_at_odd_offsets_short_past_the_end_and_growing_writes() {
    let (mut r, fd, buf, _) = env_transfer(100);
    let free = free_pages(&r);
    let size = 300u64 << 10;
    // A read across a step boundary at odd places: two Transfers.
    let (at, len) = (4097, 270_001);
    assert_eq!(
        lease(&mut r, 1, false, fd, buf + 3, len, at),
        Reply::Count(len)
    );
    let whole = pattern(size as usize);
    assert_eq!(
        r.bytes(buf + 3, len),
        whole[at as usize..(at + len) as usize]
    );
    assert_eq!(
        transfers(&mut r),
        [
            (at, LEASE_STEP, false),
            (at + LEASE_STEP, len - LEASE_STEP, false)
        ]
    );
    // Past the end: short, then nothing.
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, 5000, size - 10),
        Reply::Count(10)
    );
    assert_eq!(r.bytes(buf, 10), whole[size as usize - 10..]);
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, 5000, size + 1),
        Reply::Count(0)
    );
    assert_eq!(framed_steps(&mut r), 0, "every step was one Transfer");
    // A write growing the file, from an odd place in the mapping.
    r.s.memory_mut().bytes_at(buf + 11, 6001).fill(0x6b);
    assert_eq!(
        lease(&mut r, 1, true, fd, buf + 11, 6001, size - 1),
        Reply::Count(6001)
    );
    assert_eq!(r.fstat(1, fd).unwrap().size, size + 6000);
    assert_eq!(r.pread(1, fd, 20, size - 1).unwrap(), [0x6b; 20]);
    // Through the bulk window too.
    let win = match r.call(1, Request::BulkWindow) {
        Reply::Mapped { addr } => addr,
        other => panic!("{other:?}"),
    };
    let free_after_window = free_pages(&r);
    let framed = framed_steps(&mut r);
    assert_eq!(
        lease(&mut r, 1, false, fd, win + 1, 999, 77),
        Reply::Count(999)
    );
    assert_eq!(r.bytes(win + 1, 999), whole[77..1076]);
    assert_eq!(framed_steps(&mut r), framed, "one Transfer, no framed step");
    // Every staging buffer went back.
    assert_eq!(free_pages(&r), free_after_window);
    assert_eq!(free, free_after_window + BULK_WINDOW / P);
    r.ok();
}

#[test]
fn memory_not_the_callers_is_efault_and_nothing_is_sent() {
    let (mut r, fd, _, _) = env_transfer(1);
    let theirs = r
        .mmap(2, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    let ro = r.mmap(1, P, R, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
    for (buf, write) in [(theirs, false), (theirs, true), (ro, false), (0x10, true)] {
        let got = lease(&mut r, 1, write, fd, buf, 100, 0);
        assert_eq!(got, Reply::Error(Errno::EFAULT), "{buf:#x} {write}");
    }
    assert!(transfers(&mut r).is_empty());
    r.ok();
}

#[test]
fn a_count_above_the_step_is_refused_and_nothing_is_copied() {
    let (mut r, fd, buf, _) = env_transfer(2);
    let free = free_pages(&r);
    r.d(DATA).hold = true;
    let tag = r.send(1, protocol::lease_request(false, fd, buf, 100, Some(0)));
    let (dtag, req) = r.d(DATA).held.pop().unwrap();
    r.d(DATA).hold = false;
    let DriverRequest::Transfer { at, len: 100, .. } = req else {
        panic!("{req:?}");
    };
    // The driver scribbles past what was asked and claims it.
    r.s.memory_mut().bytes_at(at, 200).fill(0xee);
    let mut frame = [0u8; protocol::MAX_FRAME];
    let len = protocol::encode_driver_reply(dtag, &DriverReply::Count(200), &mut frame);
    let mut fx = Vec::new();
    r.s.handle_frame(ClientId(DATA), &frame[..len], &mut fx);
    let answers: Vec<(u32, Reply)> = fx
        .iter()
        .filter_map(|e| match e {
            crate::Effect::Send { to, frame } if *to == ClientId(1) => {
                protocol::decode_reply(frame.as_slice())
                    .ok()
                    .map(|f| (f.tag, f.message))
            }
            _ => None,
        })
        .collect();
    assert_eq!(answers, [(tag, Reply::Error(Errno::EIO))]);
    assert!(
        r.bytes(buf, 2 * P).iter().all(|&b| b == 0),
        "nothing copied"
    );
    assert_eq!(free_pages(&r), free);
    r.ok();
}

#[test]
fn a_client_killed_while_the_driver_works_loses_nothing() {
    let (mut r, fd, buf, _) = env_transfer(4);
    let free = free_pages(&r);
    r.d(DATA).hold = true;
    let tag = r.send(1, protocol::lease_request(false, fd, buf, 4 * P, Some(0)));
    assert_eq!(r.d(DATA).held.len(), 1);
    r.ok();
    r.disconnect(1);
    // The caller's pages may go to someone else now; the driver writes
    // only the staging buffer, which is still the server's.
    let other = buffer(&mut r, 2, 4 * P);
    r.ok();
    r.release_held(DATA);
    assert!(r.bytes(other, 4 * P).iter().all(|&b| b == 0));
    assert_eq!(r.reply(1, tag), None, "nobody to answer");
    r.munmap(2, other, 4 * P).unwrap();
    r.ok();
    // Process 1's buffer went with it; the staging buffer came back.
    assert_eq!(free_pages(&r), free + 4);
}

#[test]
fn a_timed_out_step_keeps_its_buffer_until_the_driver_goes() {
    let (mut r, fd, buf, _) = env_transfer(2);
    let free = free_pages(&r);
    r.tick(0);
    r.d(DATA).hold = true;
    let tag = r.send(1, protocol::lease_request(true, fd, buf, 2 * P, Some(0)));
    r.tick(1);
    r.tick(1_000_000);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::EIO)));
    // The driver may still read the buffer: it is not handed out again.
    assert_eq!(free_pages(&r), free - 2);
    r.ok();
    r.kill_driver(DATA);
    assert_eq!(free_pages(&r), free);
    r.ok();
}

#[test]
fn a_driver_that_declared_it_but_answers_enosys_gets_framed_steps() {
    let (mut r, fd, buf, g) = env_transfer(2);
    // The object's store cannot do it after all.
    r.d(DATA).objects.get_mut(&g).unwrap().info.ops.0 &= !DriverOps::TRANSFER;
    assert_eq!(
        lease(&mut r, 1, false, fd, buf, 3000, 5),
        Reply::Count(3000)
    );
    assert_eq!(r.bytes(buf, 3000), pattern(3005)[5..]);
    assert_eq!(transfers(&mut r).len(), 1);
    assert!(framed_steps(&mut r) > 0);
    r.ok();
}
