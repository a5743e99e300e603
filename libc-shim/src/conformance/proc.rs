//! §14.10 `/proc`: the exact text of the maps and meminfo lines (§9).

use super::support::{anon_rw_line, Process, P};
use super::{Deferred, Failure, Home, Section, Vector};
use alloc::format;
use protocol::ProcView;

const S: Section = Section::Proc;

#[rustfmt::skip]
pub const VECTORS: &[Vector] = &[
    Vector { id: 108, section: S, name: "maps line of an anonymous mapping", run: v108_anon_maps_line },
    Vector { id: 111, section: S, name: "the MmapCopy line of meminfo", run: v111_meminfo_line },
];

#[rustfmt::skip]
pub const DEFERRED: &[Deferred] = &[
    Deferred { id: 109, section: S, needs: "files: a /data/f copy (the padded path column)" },
    Deferred { id: 110, section: S, needs: "the memory filesystem (/tmp/s shared)" },
    Deferred { id: 112, section: S, needs: "the configurable test device (/dev/tst direct region)" },
];

/// The spec's address 0x00a40000 is wherever the allocator puts the
/// mapping here; the line is checked for the address returned.
fn v108_anon_maps_line(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    let a = ok!(p.anon(2 * P), "mmap 8192 bytes RW");
    let maps = p.maps()?;
    let line = format!("{}\n", anon_rw_line(a, a + 2 * P));
    let found = maps.split_inclusive('\n').any(|l| l == line);
    ensure!(found, "maps has no line {line:?}: {maps:?}");
    Ok(())
}

/// Needs `MmapCopy` at 0 before the vector, as the spec's "zero baseline".
fn v111_meminfo_line(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
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
