//! §14.6 `mremap` (§6), in the strict profile the spec describes: a
//! mapping never moves, `MREMAP_MAYMOVE` is ignored, and the bound is the
//! region's mapped length. A home runs these with memsrv's
//! `Config::strict_mremap` set (memsrv's default moves a private anonymous
//! mapping that outgrows its region when `MREMAP_MAYMOVE` allows it, which
//! vector 75 would see).

use super::env::{DATA_F, O_RDONLY};
use super::support::{Process, TrimPages, P, RW};
use super::{Failure, Harness};
use protocol::linux::{MAP_PRIVATE, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ};
use protocol::Errno;

pub(super) fn v74_shrink_grow(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = ok!(p.anon(4 * P), "mmap 4 pages");
    let c = p.client();
    ensure_eq!(
        ok!(c.mremap(a, 4 * P, 2 * P, 0, 0), "mremap 4P -> 2P"),
        a,
        "address after shrinking"
    );
    ensure_eq!(
        ok!(c.mremap(a, 2 * P, 4 * P, 0, 0), "mremap 2P -> 4P"),
        a,
        "address after growing back"
    );
    ok!(p.munmap(a, 4 * P), "munmap 4P");
    Ok(())
}

pub(super) fn v75_no_move(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = ok!(p.anon(4 * P), "mmap 4 pages");
    ensure_errno!(
        p.client().mremap(a, 4 * P, 5 * P, MREMAP_MAYMOVE, 0),
        Errno::ENOMEM,
        "mremap 4P -> 5P with MREMAP_MAYMOVE"
    );
    let maps = p.maps()?;
    ensure_eq!(
        super::support::ranges_within(&maps, a, a + 8 * P)?,
        [(a, a + 4 * P)],
        "the mapping after the refusal"
    );
    Ok(())
}

pub(super) fn v76_bound_is_mapped_length(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let _trim = TrimPages::set(&p, 0)?;
    let a = ok!(p.anon(5 * P), "mmap 5 pages (8 allocated)");
    ensure_errno!(
        p.client().mremap(a, 5 * P, 6 * P, 0, 0),
        Errno::ENOMEM,
        "mremap 5P -> 6P into the slack"
    );
    ok!(p.munmap(a, 5 * P), "munmap");
    Ok(())
}

pub(super) fn v77_old_len_mismatch(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = ok!(p.anon(4 * P), "mmap 4 pages");
    ensure_errno!(
        p.client().mremap(a, 3 * P, 2 * P, 0, 0),
        Errno::EINVAL,
        "mremap with old_len 3P of a 4P mapping"
    );
    Ok(())
}

pub(super) fn v78_shareable(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = p.open_map(DATA_F, O_RDONLY, 2 * P, PROT_READ, MAP_PRIVATE, 0)?;
    ensure_errno!(
        p.client().mremap(a, 2 * P, P, 0, 0),
        Errno::EPERM,
        "mremap of a PRIVATE R /data/f mapping"
    );
    Ok(())
}

pub(super) fn v79_private_copy(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = p.open_map(DATA_F, O_RDONLY, 2 * P, RW, MAP_PRIVATE, 0)?;
    ensure_eq!(
        ok!(p.client().mremap(a, 2 * P, P, 0, 0), "mremap 2P -> P"),
        a,
        "address of the PRIVATE RW copy after shrinking"
    );
    ok!(p.munmap(a, P), "munmap of the shrunk mapping");
    Ok(())
}

pub(super) fn v80_fixed(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = ok!(p.anon(4 * P), "mmap 4 pages");
    let b = a + 16 * P;
    let c = p.client();
    ensure_errno!(
        c.mremap(a, 4 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, b),
        Errno::EINVAL,
        "MAYMOVE|FIXED to another address"
    );
    ensure_eq!(
        ok!(
            c.mremap(a, 4 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, a),
            "MAYMOVE|FIXED to A"
        ),
        a,
        "address"
    );
    ok!(p.munmap(a, 2 * P), "munmap 2P");
    Ok(())
}

pub(super) fn v81_bad_arguments(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = ok!(p.anon(4 * P), "mmap 4 pages");
    let c = p.client();
    ensure_errno!(
        c.mremap(a + 1, 4 * P, 2 * P, 0, 0),
        Errno::EINVAL,
        "mremap(A+1, ...)"
    );
    ensure_errno!(
        c.mremap(a, 4 * P, 0, 0, 0),
        Errno::EINVAL,
        "mremap with new_len 0"
    );
    ensure_errno!(
        c.mremap(a, 0, 2 * P, 0, 0),
        Errno::EINVAL,
        "mremap with old_len 0"
    );
    ok!(p.munmap(a, 4 * P), "munmap: nothing changed");
    Ok(())
}

pub(super) fn v82_munmap_after_shrink(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = ok!(p.anon(4 * P), "mmap 4 pages");
    ok!(p.client().mremap(a, 4 * P, 2 * P, 0, 0), "mremap 4P -> 2P");
    let before = p.mmap_copy_kb()?;
    ensure_errno!(
        p.munmap(a, 4 * P),
        Errno::EINVAL,
        "munmap(A, 4P) of the 2P mapping"
    );
    ok!(p.munmap(a, 2 * P), "munmap(A, 2P)");
    ensure_eq!(p.mc_delta(before)?, -16, "MC delta of the munmap");
    Ok(())
}

pub(super) fn v83_traced(harness: &dyn Harness) -> Result<(), Failure> {
    let (debugger, t) = Process::two(harness)?;
    ok!(debugger.client().ptrace_attach(t.pid()), "ptrace attach");
    let a = t.open_map(DATA_F, O_RDONLY, 2 * P, PROT_READ, MAP_PRIVATE, 0)?;
    ensure_eq!(
        ok!(
            t.client().mremap(a, 2 * P, P, 0, 0),
            "traced: mremap 2P -> P"
        ),
        a,
        "address after shrinking"
    );
    ok!(t.munmap(a, P), "munmap P");
    ok!(debugger.client().ptrace_detach(t.pid()), "ptrace detach");
    Ok(())
}
