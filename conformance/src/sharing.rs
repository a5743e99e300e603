//! §14.3 Region sharing (§3): read-only private file mappings and shared
//! mappings of the same object range reuse one region, in any process.

use super::direct::data_or_zero;
use super::env::{data_f_byte, TestDevConfig, DATA_F, O_RDONLY, O_RDWR, TST};
use super::support::{expect_bytes, lines_for, open, Process, Tst, P, RW};
use super::{Failure, Harness};
use alloc::vec::Vec;
use protocol::linux::{MAP_PRIVATE, MAP_SHARED, PROT_READ};
use protocol::Errno;

const R: u32 = PROT_READ;

/// `/data/f` mapped `prot`, `MAP_PRIVATE`, `pages` pages from `pgoff`.
fn map_data(p: &Process<'_>, prot: u32, pgoff: u64, pages: u64) -> Result<u64, Errno> {
    let fd = p.open(DATA_F, O_RDONLY)?;
    p.map_fd(pages * P, prot, MAP_PRIVATE, fd, pgoff * P)
}

/// Same, a call that must succeed.
fn mapped(p: &Process<'_>, prot: u32, pgoff: u64, pages: u64) -> Result<u64, Failure> {
    Ok(ok!(
        map_data(p, prot, pgoff, pages),
        "mmap of /data/f, prot {prot:#x}, pgoff {pgoff}, {pages} page(s)"
    ))
}

pub(super) fn v45_same_address(harness: &dyn Harness) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    let before = a.mmap_copy_kb()?;
    let x = mapped(&a, R, 0, 2)?;
    let y = mapped(&b, R, 0, 2)?;
    ensure_eq!(y, x, "B's address");
    ensure_eq!(a.mc_delta(before)?, 8, "MC delta for both");
    expect_bytes(harness, y, 8192, data_f_byte, "B's view of /data/f")?;
    Ok(())
}

pub(super) fn v46_contained(harness: &dyn Harness) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    let x = mapped(&a, R, 0, 4)?;
    let y = mapped(&b, R, 1, 2)?;
    ensure_eq!(y, x + P, "B's address for pgoff 1, 2 pages");
    expect_bytes(harness, y, 2 * P, |i| data_or_zero(i + P), "B's pages")?;
    Ok(())
}

pub(super) fn v47_mismatched(harness: &dyn Harness) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    mapped(&a, R, 0, 2)?;
    let before = b.mmap_copy_kb()?;
    ensure_errno!(
        map_data(&b, R, 1, 3),
        Errno::EINVAL,
        "B: pgoff 1, 3 pages over A's pages 0-1"
    );
    ensure_eq!(b.mc_delta(before)?, 0, "MC delta of the refusal");
    Ok(())
}

pub(super) fn v48_mismatched_same_process(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    mapped(&p, R, 0, 1)?;
    ensure_errno!(
        map_data(&p, R, 0, 4),
        Errno::EINVAL,
        "pages 0-3 over page 0"
    );
    Ok(())
}

pub(super) fn v49_rw_after_r(harness: &dyn Harness) -> Result<(), Failure> {
    apart(harness, R, RW, "PRIVATE RW got the shared copy")
}

pub(super) fn v50_r_after_rw(harness: &dyn Harness) -> Result<(), Failure> {
    apart(harness, RW, R, "PRIVATE R got A's private RW copy")
}

/// Vectors 49 and 50: A maps pages 0-1 of `/data/f` with `first`, B with
/// `second`; a writable copy is nobody else's, so B gets a copy of its own
/// (`shared` says what it would be to get A's).
fn apart(harness: &dyn Harness, first: u32, second: u32, shared: &str) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    let x = mapped(&a, first, 0, 2)?;
    let y = mapped(&b, second, 0, 2)?;
    ensure!(y != x, "{shared} {x:#x}");
    Ok(())
}

/// `/data/f`'s first bytes overwritten for the life of the guard (the
/// environment's file is shared by every vector), then put back.
struct Rewritten<'p, 'h> {
    process: &'p Process<'h>,
    fd: i32,
    original: Vec<u8>,
}

impl<'p, 'h> Rewritten<'p, 'h> {
    fn new(process: &'p Process<'h>, bytes: &[u8]) -> Result<Self, Failure> {
        let fd = open(process, DATA_F, O_RDWR)?;
        let original: Vec<u8> = (0..bytes.len() as u64).map(data_f_byte).collect();
        let wrote = ok!(process.client().pwrite(fd, bytes, 0), "pwrite of /data/f");
        ensure_eq!(wrote, bytes.len(), "bytes written to /data/f");
        Ok(Self {
            process,
            fd,
            original,
        })
    }
}

impl Drop for Rewritten<'_, '_> {
    fn drop(&mut self) {
        // Nowhere to report to; a later vector reading /data/f would show it.
        let _ = self.process.client().pwrite(self.fd, &self.original, 0);
    }
}

pub(super) fn v51_stale_copy(harness: &dyn Harness) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    let x = mapped(&a, R, 0, 2)?;
    let _rewritten = Rewritten::new(&a, &[0xee; 64])?;
    let mut now = [0u8; 64];
    let fd = open(&b, DATA_F, O_RDONLY)?;
    ok!(
        b.client().pread(fd, &mut now, 0),
        "pread of the rewritten file"
    );
    ensure_eq!(now, [0xee; 64], "the file after pwrite");
    let y = mapped(&b, R, 0, 2)?;
    ensure_eq!(y, x, "B's address");
    expect_bytes(harness, y, 8192, data_f_byte, "B's view (the old bytes)")?;
    Ok(())
}

pub(super) fn v52_traced(harness: &dyn Harness) -> Result<(), Failure> {
    let (debugger, t) = Process::two(harness)?;
    let (u, v) = Process::two(harness)?;
    ok!(
        debugger.client().ptrace_attach(t.pid()),
        "ptrace attach to T"
    );
    let x = mapped(&t, R, 0, 2)?;
    let y = mapped(&u, R, 0, 2)?;
    ensure!(y != x, "untraced U got traced T's private mapping {x:#x}");
    let z = mapped(&v, R, 0, 2)?;
    ensure_eq!(z, y, "V's address (U's)");
    expect_bytes(harness, x, 8192, data_f_byte, "T's copy")?;
    ok!(
        debugger.client().ptrace_detach(t.pid()),
        "ptrace detach from T"
    );
    Ok(())
}

pub(super) fn v53_twice_in_one_process(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let before = p.mmap_copy_kb()?;
    let x = mapped(&p, R, 0, 2)?;
    let y = mapped(&p, R, 0, 2)?;
    ensure_eq!(y, x, "second mapping's address");
    ensure_eq!(
        lines_for(&p.maps()?, x, x + 8192).len(),
        2,
        "maps lines for the two mappings"
    );
    ok!(p.munmap(x, 8192), "first munmap");
    expect_bytes(harness, x, 8192, data_f_byte, "the copy after one munmap")?;
    ok!(p.munmap(x, 8192), "second munmap");
    ensure_eq!(p.mc_delta(before)?, 0, "MC delta after both munmaps");
    ensure_errno!(p.munmap(x, 8192), Errno::EINVAL, "a third munmap");
    Ok(())
}

/// The spec's `0x50000000` is the test device's base
/// ([`TestDevControl::base`](super::TestDevControl::base)).
pub(super) fn v54_direct_shared(harness: &dyn Harness) -> Result<(), Failure> {
    let tst = Tst::set(harness, TestDevConfig::default())?;
    let (a, b) = Process::two(harness)?;
    let start = tst.counters();
    let fa = open(&a, TST, O_RDONLY)?;
    let fb = open(&b, TST, O_RDONLY)?;
    let x = ok!(a.map_fd(P, R, MAP_SHARED, fa, 0), "A: SHARED R of /dev/tst");
    let y = ok!(b.map_fd(P, R, MAP_SHARED, fb, 0), "B: SHARED R of /dev/tst");
    ensure_eq!(x, tst.base(), "A's address");
    ensure_eq!(y, tst.base(), "B's address");
    let mapped = tst.counters();
    ensure_eq!(mapped.mmap_calls - start.mmap_calls, 2, "driver mmap calls");
    ok!(a.munmap(x, P), "A: munmap");
    ok!(b.munmap(y, P), "B: munmap");
    tst.expect_closes(&b, fb, start, 2)?;
    Ok(())
}

pub(super) fn v55_one_line(harness: &dyn Harness) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    let x = mapped(&a, R, 0, 2)?;
    let y = mapped(&b, R, 0, 2)?;
    ensure_eq!(y, x, "B's address");
    let maps = a.global_maps()?;
    ensure_eq!(
        lines_for(&maps, x, x + 8192).len(),
        1,
        "/proc/maps lines for the region: {maps:?}"
    );
    Ok(())
}

pub(super) fn v56_duplicate_start(harness: &dyn Harness) -> Result<(), Failure> {
    let (tst, p, fd) = Tst::opened(harness, TestDevConfig::default(), O_RDONLY)?;
    let x = ok!(p.map_fd(2 * P, R, MAP_SHARED, fd, 0), "SHARED R pages 0-1");
    let y = ok!(p.map_fd(4 * P, R, MAP_SHARED, fd, 0), "SHARED R pages 0-3");
    ensure_eq!(x, tst.base(), "pages 0-1");
    ensure_eq!(y, tst.base(), "pages 0-3");
    let maps = p.global_maps()?;
    ensure_eq!(
        lines_for(&maps, x, x + 2 * P).len(),
        1,
        "/proc/maps: the 2-page region"
    );
    ensure_eq!(
        lines_for(&maps, y, y + 4 * P).len(),
        1,
        "/proc/maps: the 4-page region"
    );
    ok!(p.munmap(y, 4 * P), "munmap of pages 0-3");
    ok!(p.munmap(x, 2 * P), "munmap of pages 0-1");
    Ok(())
}
