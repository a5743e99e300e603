//! §14.4 Allocation and trimming: power-of-two blocks, `nr_trim_pages`,
//! zero fill.

use super::support::{expect_filled, fill, Process, TrimPages, P, PRIVATE_ANON, RW};
use super::{Failure, Harness};
use protocol::linux::MAP_UNINITIALIZED;
use protocol::{Errno, Sysctl};

pub(super) fn v57_trimmed(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    mapped_and_freed(&p, 5 * P, 20)?;
    Ok(())
}

pub(super) fn v58_no_trim(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let _trim = TrimPages::set(&p, 0)?;
    mapped_and_freed(&p, 5 * P, 32)?;
    Ok(())
}

/// An anonymous mapping of `len` bytes costs `kb` of `MmapCopy`, and its
/// `munmap(addr, len)` gives all of it back; returns the address it had.
fn mapped_and_freed(p: &Process<'_>, len: u64, kb: i64) -> Result<u64, Failure> {
    let before = p.mmap_copy_kb()?;
    let a = ok!(p.anon(len), "mmap {len} bytes");
    ensure_eq!(p.mc_delta(before)?, kb, "MC delta after {len} bytes");
    ok!(p.munmap(a, len), "munmap(addr, {len})");
    ensure_eq!(p.mmap_copy_kb()?, before, "MC after munmap (-{kb})");
    Ok(a)
}

pub(super) fn v59_trim_threshold(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let _trim = TrimPages::set(&p, 4)?;
    for (pages, kb) in [(5u64, 32i64), (9, 36), (3, 16)] {
        let before = p.mmap_copy_kb()?;
        ok!(p.anon(pages * P), "mmap {pages} pages");
        ensure_eq!(p.mc_delta(before)?, kb, "MC delta after {pages} pages");
    }
    Ok(())
}

/// Another process writes pages and frees them; a new anonymous mapping
/// of the same size (very likely the same pages) reads zero.
pub(super) fn v60_reused_pages_zeroed(harness: &dyn Harness) -> Result<(), Failure> {
    let b = Process::spawn(harness)?;
    let len = 8 * P;
    dirty_and_free(harness, &b, len, 0xa5)?;
    drop(b);
    let a = Process::spawn(harness)?;
    let new = ok!(a.anon(len), "A: mmap 8 pages");
    expect_filled(harness, new, len, 0, "A's fresh mapping")
}

pub(super) fn v61_unaligned_length(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = mapped_and_freed(&p, 100, 4)?;
    ensure_eq!(a % P, 0, "alignment of {a:#x}");
    Ok(())
}

pub(super) fn v62_negative_trim(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let value = p.nr_trim_pages()?;
    ensure_errno!(
        p.client().write_sysctl(Sysctl::NrTrimPages, -1),
        Errno::EINVAL,
        "writing -1 to nr_trim_pages"
    );
    ensure_eq!(
        p.nr_trim_pages()?,
        value,
        "nr_trim_pages after the refused write"
    );
    Ok(())
}

/// Pages are dirtied and freed first, so a mapping that skipped the zero
/// fill would show it.
pub(super) fn v63_uninitialized_zeroed(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let len = 4 * P;
    dirty_and_free(harness, &p, len, 0xff)?;
    let a = ok!(
        p.mmap(0, len, RW, PRIVATE_ANON | MAP_UNINITIALIZED),
        "mmap with MAP_UNINITIALIZED"
    );
    expect_filled(harness, a, len, 0, "the MAP_UNINITIALIZED mapping")
}

/// `p` maps `len` bytes, fills them with `byte` and unmaps them, so that
/// pages handed out next show whether they were zeroed.
fn dirty_and_free(
    harness: &dyn Harness,
    p: &Process<'_>,
    len: u64,
    byte: u8,
) -> Result<(), Failure> {
    let old = ok!(p.anon(len), "mmap {len} bytes to dirty");
    fill(harness, old, len, byte)?;
    ok!(p.munmap(old, len), "munmap of the dirtied pages");
    Ok(())
}
