//! §14.10 `/proc`: the exact text of the maps and meminfo lines (§9).

use super::env::{TestDevConfig, DATA_DEV, DATA_F, DATA_F_INO, O_RDONLY, TST};
use super::support::{anon_rw_line, lines_for, Process, Tst, P};
use super::{Failure, Harness};
use alloc::format;
use protocol::linux::{MAP_PRIVATE, MAP_SHARED, PROT_READ};
use protocol::ProcView;

/// The spec's address 0x00a40000 is wherever the allocator puts the
/// mapping here; the line is checked for the address returned.
pub(super) fn v108_anon_maps_line(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = ok!(p.anon(2 * P), "mmap 8192 bytes RW");
    let maps = p.maps()?;
    let line = format!("{}\n", anon_rw_line(a, a + 2 * P));
    let found = maps.split_inclusive('\n').any(|l| l == line);
    ensure!(found, "maps has no line {line:?}: {maps:?}");
    Ok(())
}

/// Needs `MmapCopy` at 0 before the vector, as the spec's "zero baseline".
pub(super) fn v111_meminfo_line(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let before = p.mmap_copy_kb()?;
    ensure_eq!(before, 0, "MmapCopy baseline (the vector needs 0)");
    ok!(p.anon(5 * P), "mmap 5 pages");
    let meminfo = p.proc_text(ProcView::Meminfo)?;
    let line = format!("{:<16}{:>8} kB", "MmapCopy:", 20);
    ensure!(
        meminfo.lines().any(|l| l == line),
        "meminfo has no line {line:?}: {meminfo:?}"
    );
    Ok(())
}

/// The spec's 0x00a50000 is wherever the copy lands. The path column is
/// `25 + 6·sizeof(void*) − 1` (48 on the spec's 32-bit system, 72 with
/// 8-byte words): the line is padded with spaces to it, then one space.
pub(super) fn v109_file_maps_line(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let a = p.open_map(DATA_F, O_RDONLY, 3 * P, PROT_READ, MAP_PRIVATE, 0)?;
    let (major, minor) = DATA_DEV;
    let head = format!(
        "{a:08x}-{:08x} r--p 00000000 {major:02x}:{minor:02x} {DATA_F_INO} ",
        a + 3 * P
    );
    let column = (25 + 6 * harness.word_size() - 1) as usize;
    let line = format!("{head:<column$} {DATA_F}");
    let maps = p.maps()?;
    let found = maps.lines().any(|l| l == line);
    ensure!(found, "maps has no line {line:?}: {maps:?}");
    Ok(())
}

pub(super) fn v110_shared_perms(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let (_, x) = p.shared_fresh_file("/tmp/s", 8192)?;
    let maps = p.maps()?;
    let lines = lines_for(&maps, x, x + 8192);
    ensure_eq!(lines.len(), 1, "maps lines for {x:#x}: {maps:?}");
    let perms = lines[0].split(' ').nth(1).unwrap_or("");
    ensure_eq!(perms, "rw-S", "permission field of {:?}", lines[0]);
    Ok(())
}

/// Vector 54's two shared mappings of `/dev/tst`: one direct region.
pub(super) fn v112_direct_region_listed(harness: &dyn Harness) -> Result<(), Failure> {
    let tst = Tst::set(harness, TestDevConfig::default())?;
    let (a, b) = Process::two(harness)?;
    let x = a.open_map(TST, O_RDONLY, P, PROT_READ, MAP_SHARED, 0)?;
    let y = b.open_map(TST, O_RDONLY, P, PROT_READ, MAP_SHARED, 0)?;
    ensure_eq!((x, y), (tst.base(), tst.base()), "both addresses");
    let maps = a.global_maps()?;
    ensure_eq!(
        lines_for(&maps, x, x + P).len(),
        1,
        "/proc/maps lines for the direct region: {maps:?}"
    );
    Ok(())
}
