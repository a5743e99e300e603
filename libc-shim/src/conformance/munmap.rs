//! §14.5 `munmap`: anonymous mappings cut at page granularity (§5.1).

use super::support::{expect_filled, fill, ranges_within, Process, TrimPages, P};
use super::{Deferred, Failure, Home, Section, Vector};
use protocol::Errno;

const S: Section = Section::Munmap;

#[rustfmt::skip]
pub const VECTORS: &[Vector] = &[
    Vector { id: 64, section: S, name: "punching a hole splits the mapping", run: v64_hole },
    Vector { id: 65, section: S, name: "a range past the end is refused", run: v65_past_end },
    Vector { id: 66, section: S, name: "an unaligned start is refused", run: v66_unaligned_start },
    Vector { id: 67, section: S, name: "cutting the head", run: v67_head },
    Vector { id: 68, section: S, name: "cutting the tail frees the slack", run: v68_tail_with_slack },
    Vector { id: 70, section: S, name: "an address in no mapping", run: v70_unmapped },
    Vector { id: 71, section: S, name: "zero length is refused", run: v71_zero_length },
];

#[rustfmt::skip]
pub const DEFERRED: &[Deferred] = &[
    Deferred { id: 69, section: S, needs: "files: a /data/f copy" },
    Deferred { id: 72, section: S, needs: "device backings: a /rom/t direct mapping" },
    Deferred { id: 73, section: S, needs: "files: a copy region shared by two processes (anonymous regions are never shared)" },
];

/// 4 anonymous pages, page `i` filled with `i + 1`; returns the start.
fn four_pages(home: &dyn Home, p: &Process<'_>) -> Result<u64, Failure> {
    let a = ok!(p.anon(4 * P), "mmap 4 pages");
    for i in 0..4 {
        fill(home, a + i * P, P, i as u8 + 1)?;
    }
    Ok(a)
}

/// The process's mappings overlapping the 4 pages at `a`.
fn around(p: &Process<'_>, a: u64) -> Result<alloc::vec::Vec<(u64, u64)>, Failure> {
    ranges_within(&p.maps()?, a, a + 4 * P)
}

/// A refused `munmap` changes nothing.
fn refused(home: &dyn Home, p: &Process<'_>, addr: u64, len: u64) -> Result<(), Failure> {
    let a = four_pages(home, p)?;
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
            home,
            a + i * P,
            P,
            i as u8 + 1,
            "contents after the refusal",
        )?;
    }
    Ok(())
}

fn v64_hole(home: &mut dyn Home) -> Result<(), Failure> {
    let home: &dyn Home = home;
    let p = Process::spawn(home)?;
    let a = four_pages(home, &p)?;
    let before = p.mmap_copy_kb()?;
    ok!(p.munmap(a + P, P), "munmap(A+P, P)");
    ensure_eq!(p.mc_delta(before)?, -4, "MC delta");
    ensure_eq!(
        around(&p, a)?,
        [(a, a + P), (a + 2 * P, a + 4 * P)],
        "maps lines around A"
    );
    for i in [0, 2, 3] {
        expect_filled(home, a + i * P, P, i as u8 + 1, "remaining pages")?;
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

fn v65_past_end(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(home, &p, 3 * P, 2 * P)
}

fn v66_unaligned_start(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(home, &p, 100, P)
}

fn v67_head(home: &mut dyn Home) -> Result<(), Failure> {
    let home: &dyn Home = home;
    let p = Process::spawn(home)?;
    let a = four_pages(home, &p)?;
    let before = p.mmap_copy_kb()?;
    ok!(p.munmap(a, P), "munmap(A, P)");
    ensure_eq!(around(&p, a)?, [(a + P, a + 4 * P)], "maps lines around A");
    ensure_eq!(p.mc_delta(before)?, -4, "MC delta");
    for i in 1..4 {
        expect_filled(home, a + i * P, P, i as u8 + 1, "remaining pages")?;
    }
    ok!(p.munmap(a + P, 3 * P), "munmap of the rest");
    Ok(())
}

fn v68_tail_with_slack(home: &mut dyn Home) -> Result<(), Failure> {
    let home: &dyn Home = home;
    let p = Process::spawn(home)?;
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

fn v70_unmapped(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    let a = ok!(p.anon(P), "mmap 1 page");
    ok!(p.munmap(a, P), "munmap");
    ensure_errno!(p.munmap(a, P), Errno::EINVAL, "munmap of {a:#x} again");
    ensure_errno!(p.munmap(0, P), Errno::EINVAL, "munmap of address 0");
    Ok(())
}

fn v71_zero_length(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(home, &p, 0, 0)
}
