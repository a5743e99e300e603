//! Host tests of a driver's confinement: its fixed entries (its own
//! region of the region pool, the flash to read, no device until it
//! claims one, no shared statics, no task heap and no arena), the arena
//! ranges memsrv names for its connection loaded on faults after its
//! flash entry, and the buffers it may name.

use super::*;

/// A driver's region: 64 KiB of the region pool, after a user task's.
const DRIVER_REGION: (u64, u64) = (HEAP_START + 0x1_0000, 0x1_0000);

#[test]
fn a_driver_reaches_its_region_and_flash_and_only_its_named_arena_ranges() {
    let mut p = protection(&[Role::Driver, Role::Server, Role::User]);
    p.set_region(0, DRIVER_REGION);
    p.set_region(2, (HEAP_START, 0x1_0000));
    let e = p.entries(0);
    let rw = cfg::R | cfg::W;
    // No device before it claims one (`device_claim_tests.rs`).
    assert_eq!(e.get(0), Entry::default());
    // Its region, then the flash; nothing between the statics and the
    // task heap (no statics are shared between drivers).
    assert_eq!(e.get(4), Entry::napot(DRIVER_REGION.0, DRIVER_REGION.1, rw));
    assert_eq!(
        e.get(FIXED),
        Entry::napot(0x2000_0000, 0x400_0000, cfg::R | cfg::X)
    );
    assert!((FIXED + 1..PMP_ENTRIES).all(|i| e.get(i) == Entry::default()));
    assert!(Role::Driver.confined() && Role::User.confined() && !Role::Server.confined());
    // Its buffers: its region, its named ranges; not what lies between
    // the statics and the task heap, a user task's region nor other
    // arena pages.
    let yes = |_| true;
    assert!(p.may_touch(0, DRIVER_REGION.0, 0x1_0000, true, yes));
    assert!(!p.may_touch(0, HEAP_START, 8, false, yes));
    assert!(!p.may_touch(0, DRIVER_REGION.0 - 8, 16, false, yes));
    assert!(!p.may_touch(0, DATA_END, 8, true, yes));
    assert!(!p.may_touch(0, page(1).0, 8, false, yes));
    assert!(p.set_regions(7, 0, 0, &[page(1)]));
    assert!(p.may_touch(0, page(1).0, 0x1000, true, yes));
    assert!(!p.may_touch(0, page(2).0, 8, false, yes));
    assert!(!p.may_touch(0, HEAP_END - 8, 16, false, yes));
    // A fault in its range loads it after the flash entry; elsewhere stray.
    assert_eq!(refill(&mut p, 0, page(1).0, yes), Refill::Loaded);
    assert_eq!(
        p.entries(0).get(FIXED + 1),
        Entry::napot(page(1).0, 0x1000, rw)
    );
    assert_eq!(refill(&mut p, 0, page(2).0, yes), Refill::Stray);
}

#[test]
fn a_driver_has_one_arena_entry_fewer_and_loads_oldest_out() {
    let mut p = protection(&[Role::Driver]);
    p.set_region(0, DRIVER_REGION);
    let slots = RESIDENT - 1;
    let ranges: Vec<_> = (0..slots as u64 + 1).map(page).collect();
    assert!(p.set_regions(7, 0, 0, &ranges));
    for r in &ranges {
        assert_eq!(refill(&mut p, 0, r.0, |_| true), Refill::Loaded);
    }
    // The last range took the first arena entry back; the region and
    // flash entries stay.
    let e = p.entries(0);
    let rw = cfg::R | cfg::W;
    assert_eq!(e.get(4), Entry::napot(DRIVER_REGION.0, DRIVER_REGION.1, rw));
    assert_eq!(
        e.get(FIXED),
        Entry::napot(0x2000_0000, 0x400_0000, cfg::R | cfg::X)
    );
    assert_eq!(e.get(FIXED + 1), Entry::napot(ranges[slots].0, 0x1000, rw));
    assert_eq!(
        e.get(PMP_ENTRIES - 1),
        Entry::napot(ranges[slots - 1].0, 0x1000, rw)
    );
}

#[test]
fn memsrv_names_a_drivers_ranges_through_its_connection() {
    let (mut k, mut m) = kernel_with(["memsrv", "driver", "init"]);
    k.protection.start(1, Role::Driver);
    let conn = call(&mut k, 1, Sys::Connect, &[0, 0, 0], &mut m) as u64;
    let (start, end) = page(1);
    m.0[..8].copy_from_slice(&start.to_le_bytes());
    m.0[8..16].copy_from_slice(&end.to_le_bytes());
    // Confined: 0, not "need not say more".
    assert_eq!(
        call(&mut k, 0, Sys::Regions, &[conn, HEAP_START, 1], &mut m),
        0
    );
    assert_eq!(k.access_fault(1, start, &mut m), Refill::Loaded);
    assert_eq!(k.access_fault(1, page(2).0, &mut m), Refill::Stray);
    // A driver may not name ranges itself.
    assert_eq!(
        call(&mut k, 1, Sys::Regions, &[conn, HEAP_START, 1], &mut m),
        -i64::from(Errno::EPERM.0)
    );
}
