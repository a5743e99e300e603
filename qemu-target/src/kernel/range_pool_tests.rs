//! Host tests of the kernel's pool of arena ranges: a connection keeps as
//! many separate ranges as memsrv names, each exact (a gap between two is
//! never reachable); closed connections' lists make room when the pool is
//! full; a list that does not fit, or one out of order, leaves its
//! connection no range at all.

use super::*;

/// `n` separate one-page ranges: every other page of the arena.
fn separate(n: u64) -> Vec<(u64, u64)> {
    (0..n).map(page).collect()
}

#[test]
fn forty_separate_ranges_stay_exact_and_each_is_reachable() {
    let mut p = protection(&[Role::User]);
    let ranges = separate(40);
    assert!(p.set_regions(7, 0, 0, &ranges));
    let yes = |_| true;
    for &(start, end) in &ranges {
        assert_eq!(p.range_of(0, start, yes), Some((start, end)));
        assert_eq!(p.range_of(0, end - 8, yes), Some((start, end)));
        // The page after it is a gap.
        assert_eq!(p.range_of(0, end, yes), None);
        assert_eq!(refill(&mut p, 0, end, yes), Refill::Stray);
        assert!(p.may_touch(0, start, end - start, true, yes));
        assert!(!p.may_touch(0, start, end - start + 8, false, yes));
    }
    for &(start, _) in &ranges {
        assert_eq!(refill(&mut p, 0, start, yes), Refill::Loaded);
    }
    assert_eq!(p.refills(0).2, 40);
}

#[test]
fn closed_connections_make_room_and_open_ones_keep_their_ranges() {
    let mut p = protection(&[Role::User, Role::User]);
    let half = RANGE_POOL / 2;
    let big: Vec<_> = (0..half as u64)
        .map(|i| {
            let start = HEAP_END + 0x100_0000 + i * 0x100;
            (start, start + 0x80)
        })
        .collect();
    // Two lists of half the pool each, in slots 0 and 1.
    assert!(p.set_regions(10, 0, 0, &big));
    assert!(p.set_regions(11, 1, 1, &big));
    // Slot 0 names a short list: no room until its old list goes, and
    // it goes only in a compaction (the connection is open).
    let mut alive = [false; MAX_CONNECTIONS];
    alive[0] = true;
    alive[1] = true;
    let short = separate(3);
    let copy = |at: usize, out: &mut [(u64, u64)]| {
        out.copy_from_slice(&short[at..at + out.len()]);
        true
    };
    assert_eq!(p.set_regions_from(10, 0, 0, 3, &alive, copy), Ok(()));
    let yes = |_| true;
    assert_eq!(p.range_of(0, short[2].0, yes), Some(short[2]));
    assert_eq!(p.range_of(0, big[5].0, yes), None);
    assert_eq!(p.range_of(1, big[half - 1].0, yes), Some(big[half - 1]));
    // Slot 1's connection closes; slot 2's names most of the pool: the
    // closed list goes, slot 0's moves and stays whole.
    alive[1] = false;
    let most: Vec<_> = (0..(RANGE_POOL - 3) as u64)
        .map(|i| {
            let start = HEAP_END + 0x200_0000 + i * 0x100;
            (start, start + 0x80)
        })
        .collect();
    let copy = |at: usize, out: &mut [(u64, u64)]| {
        out.copy_from_slice(&most[at..at + out.len()]);
        true
    };
    assert_eq!(
        p.set_regions_from(12, 2, 1, most.len(), &alive, copy),
        Ok(())
    );
    for r in &short {
        assert_eq!(p.range_of(0, r.0, yes), Some(*r));
    }
    assert_eq!(p.range_of(1, most[0].0, yes), Some(most[0]));
    assert_eq!(p.range_of(1, big[7].0, yes), None);
}

#[test]
fn a_list_that_does_not_fit_or_is_out_of_order_leaves_no_range() {
    let mut p = protection(&[Role::User]);
    let yes = |_| true;
    assert!(p.set_regions(7, 0, 0, &separate(4)));
    assert_eq!(refill(&mut p, 0, page(1).0, yes), Refill::Loaded);
    // Out of order, overlapping: refused, and the old ranges are gone
    // (loaded entries included).
    assert!(!p.set_regions(7, 0, 0, &[page(2), page(1)]));
    assert!(!p.set_regions(7, 0, 0, &[(page(1).0, page(2).1), page(2)]));
    assert_eq!(p.range_of(0, page(1).0, yes), None);
    assert!(loaded(&p, 0).is_empty());
    // More than the pool holds: ENOMEM, nothing reachable.
    assert!(p.set_regions(7, 0, 0, &separate(4)));
    let alive = [true; MAX_CONNECTIONS];
    let never = |_: usize, _: &mut [(u64, u64)]| -> bool { unreachable!() };
    assert_eq!(
        p.set_regions_from(7, 0, 0, RANGE_POOL + 1, &alive, never),
        Err(Errno::ENOMEM)
    );
    assert_eq!(p.range_of(0, page(0).0, yes), None);
    // A fault while copying in: EFAULT, nothing reachable.
    assert!(p.set_regions(7, 0, 0, &separate(4)));
    let fault = |_: usize, _: &mut [(u64, u64)]| false;
    assert_eq!(
        p.set_regions_from(7, 0, 0, 4, &alive, fault),
        Err(Errno::EFAULT)
    );
    assert_eq!(p.range_of(0, page(0).0, yes), None);
}

#[test]
fn memsrv_names_forty_ranges_through_the_system_call() {
    let (mut k, mut m) = kernel_with(["memsrv", "client", "init"]);
    k.protection.start(1, Role::User);
    let conn = call(&mut k, 1, Sys::Connect, &[0, 0, 0], &mut m) as u64;
    let ranges = separate(40);
    // The list in memsrv's memory.
    for (i, &(s, e)) in ranges.iter().enumerate() {
        m.0[16 * i..16 * i + 8].copy_from_slice(&s.to_le_bytes());
        m.0[16 * i + 8..16 * i + 16].copy_from_slice(&e.to_le_bytes());
    }
    assert_eq!(
        call(&mut k, 0, Sys::Regions, &[conn, HEAP_START, 40], &mut m),
        0
    );
    assert_eq!(k.access_fault(1, ranges[25].0, &mut m), Refill::Loaded);
    assert_eq!(k.access_fault(1, ranges[5].0, &mut m), Refill::Loaded);
    assert_eq!(k.access_fault(1, ranges[25].1, &mut m), Refill::Stray);
}

#[test]
fn an_empty_list_needs_no_buffer_and_a_bad_buffer_leaves_no_range() {
    let (mut k, mut m) = kernel_with(["memsrv", "client", "init"]);
    k.protection.start(1, Role::User);
    let conn = call(&mut k, 1, Sys::Connect, &[0, 0, 0], &mut m) as u64;
    let name = |k: &mut Kernel, m: &mut Page, ptr: u64, count: u64| {
        let (s, e) = page(1);
        m.0[..8].copy_from_slice(&s.to_le_bytes());
        m.0[8..16].copy_from_slice(&e.to_le_bytes());
        call(k, 0, Sys::Regions, &[conn, ptr, count], m)
    };
    assert_eq!(name(&mut k, &mut m, HEAP_START, 1), 0);
    assert_eq!(k.access_fault(1, page(1).0, &mut m), Refill::Loaded);
    // Nothing mapped any more: an empty list, whatever the pointer (an
    // empty vector's is dangling).
    assert_eq!(name(&mut k, &mut m, 8, 0), 0);
    assert_eq!(k.access_fault(1, page(1).0, &mut m), Refill::Stray);
    // A list memsrv may not name: EFAULT, and no range is left.
    assert_eq!(name(&mut k, &mut m, HEAP_START, 1), 0);
    assert_eq!(name(&mut k, &mut m, 8, 1), -i64::from(Errno::EFAULT.0));
    assert_eq!(k.access_fault(1, page(1).0, &mut m), Refill::Stray);
}
