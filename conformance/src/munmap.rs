//! §14.5 `munmap`: anonymous mappings cut at page granularity, file
//! mappings only whole (§5.1), shared regions outliving one process (§5.2).

use super::env::{data_f_byte, DATA_F, O_RDONLY, ROM_T};
use super::support::{
    expect_bytes, expect_filled, fill, landmark, ranges_within, Process, TrimPages, P,
};
use super::{Failure, Harness, Landmark};
use protocol::linux::{MAP_PRIVATE, PROT_READ};
use protocol::Errno;

/// 4 anonymous pages, page `i` filled with `i + 1`; returns the start.
fn four_pages(harness: &dyn Harness, p: &Process<'_>) -> Result<u64, Failure> {
    let a = ok!(p.anon(4 * P), "mmap 4 pages");
    for i in 0..4 {
        fill(harness, a + i * P, P, i as u8 + 1)?;
    }
    Ok(a)
}

/// The process's mappings overlapping the 4 pages at `a`.
fn around(p: &Process<'_>, a: u64) -> Result<alloc::vec::Vec<(u64, u64)>, Failure> {
    ranges_within(&p.maps()?, a, a + 4 * P)
}

/// A refused `munmap` changes nothing.
fn refused(harness: &dyn Harness, p: &Process<'_>, addr: u64, len: u64) -> Result<(), Failure> {
    let a = four_pages(harness, p)?;
    let (addr, before) = (a + addr, p.mmap_copy_kb()?);
    ensure_errno!(
        p.munmap(addr, len),
        Errno::EINVAL,
        "munmap({addr:#x}, {len:#x})"
    );
    ensure_eq!(
        around(p, a)?,
        [(a, a + 4 * P)],
        "the mapping after the refusal"
    );
    ensure_eq!(p.mc_delta(before)?, 0, "MC delta");
    for i in 0..4 {
        expect_filled(
            harness,
            a + i * P,
            P,
            i as u8 + 1,
            "contents after the refusal",
        )?;
    }
    Ok(())
}

pub(super) fn v64_hole(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = four_pages(harness, &p)?;
    let before = p.mmap_copy_kb()?;
    ok!(p.munmap(a + P, P), "munmap(A+P, P)");
    ensure_eq!(p.mc_delta(before)?, -4, "MC delta");
    ensure_eq!(
        around(&p, a)?,
        [(a, a + P), (a + 2 * P, a + 4 * P)],
        "maps lines around A"
    );
    for i in [0, 2, 3] {
        expect_filled(harness, a + i * P, P, i as u8 + 1, "remaining pages")?;
    }
    ok!(p.munmap(a, P), "munmap of the lower part");
    ok!(p.munmap(a + 2 * P, 2 * P), "munmap of the upper part");
    ensure_eq!(
        p.mc_delta(before)?,
        -16,
        "MC delta after unmapping the rest"
    );
    Ok(())
}

pub(super) fn v65_past_end(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    refused(harness, &p, 3 * P, 2 * P)
}

pub(super) fn v66_unaligned_start(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    refused(harness, &p, 100, P)
}

pub(super) fn v67_head(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = four_pages(harness, &p)?;
    let before = p.mmap_copy_kb()?;
    ok!(p.munmap(a, P), "munmap(A, P)");
    ensure_eq!(around(&p, a)?, [(a + P, a + 4 * P)], "maps lines around A");
    ensure_eq!(p.mc_delta(before)?, -4, "MC delta");
    for i in 1..4 {
        expect_filled(harness, a + i * P, P, i as u8 + 1, "remaining pages")?;
    }
    ok!(p.munmap(a + P, 3 * P), "munmap of the rest");
    Ok(())
}

pub(super) fn v68_tail_with_slack(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let _trim = TrimPages::set(&p, 0)?;
    let before = p.mmap_copy_kb()?;
    let a = ok!(p.anon(5 * P), "mmap 5 pages");
    ensure_eq!(p.mc_delta(before)?, 32, "MC delta after mapping 5 pages");
    ok!(p.munmap(a + 4 * P, P), "munmap(A+4P, P)");
    ensure_eq!(p.mc_delta(before)?, 16, "MC after cutting the tail (−16)");
    ensure_eq!(
        ranges_within(&p.maps()?, a, a + 8 * P)?,
        [(a, a + 4 * P)],
        "maps lines around A"
    );
    ok!(p.munmap(a, 4 * P), "munmap of the rest");
    ensure_eq!(p.mc_delta(before)?, 0, "MC delta after unmapping the rest");
    Ok(())
}

pub(super) fn v70_unmapped(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = ok!(p.anon(P), "mmap 1 page");
    ok!(p.munmap(a, P), "munmap");
    ensure_errno!(p.munmap(a, P), Errno::EINVAL, "munmap of {a:#x} again");
    ensure_errno!(p.munmap(0, P), Errno::EINVAL, "munmap of address 0");
    Ok(())
}

pub(super) fn v71_zero_length(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    refused(harness, &p, 0, 0)
}

pub(super) fn v69_file_copy_whole(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let before = p.mmap_copy_kb()?;
    let a = p.open_map(DATA_F, O_RDONLY, 2 * P, PROT_READ, MAP_PRIVATE, 0)?;
    ensure_errno!(p.munmap(a, P), Errno::EINVAL, "munmap(A, P) of a file copy");
    expect_bytes(harness, a, 2 * P, data_f_byte, "the copy after the refusal")?;
    ok!(p.munmap(a, 2 * P), "munmap(A, 2P)");
    ensure_eq!(p.mc_delta(before)?, 0, "MC delta");
    Ok(())
}

/// The spec's `0x40001230` is [`Landmark::RomTData`].
pub(super) fn v72_xip_unaligned(harness: &dyn Harness) -> Result<(), Failure> {
    let t = landmark(harness, Landmark::RomTData)?;
    let p = Process::spawn(harness)?;
    let x = p.open_map(ROM_T, O_RDONLY, 8192, PROT_READ, MAP_PRIVATE, 0)?;
    ensure_eq!(x, t, "the XIP address");
    ok!(p.munmap(x, 8192), "munmap(X, 8192)");
    ensure_eq!(
        ranges_within(&p.maps()?, x, x + 8192)?,
        [],
        "maps after munmap"
    );
    Ok(())
}

/// "A exits" is A's `Exit` (its connection closes with it).
pub(super) fn v73_shared_copy_exit(harness: &dyn Harness) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    let before = b.mmap_copy_kb()?;
    let x = a.open_map(DATA_F, O_RDONLY, 2 * P, PROT_READ, MAP_PRIVATE, 0)?;
    let y = b.open_map(DATA_F, O_RDONLY, 2 * P, PROT_READ, MAP_PRIVATE, 0)?;
    ensure_eq!(y, x, "B shares A's copy");
    let shared = b.mc_delta(before)?;
    ensure_eq!(shared, 8, "MC delta of the shared copy");
    ok!(a.client().exit(), "A exits");
    drop(a);
    ensure_eq!(b.mc_delta(before)?, shared, "MC after A exited");
    expect_bytes(harness, y, 2 * P, data_f_byte, "B's mapping after A exited")?;
    ensure_eq!(
        ranges_within(&b.maps()?, y, y + 2 * P)?,
        [(y, y + 2 * P)],
        "B's maps"
    );
    let observer = Process::spawn(harness)?;
    ok!(b.client().exit(), "B exits");
    drop(b);
    ensure_eq!(observer.mc_delta(before)?, 0, "MC after B exited");
    Ok(())
}
