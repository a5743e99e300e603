//! §14.1 Argument validation: the order and errnos of §2.1–§2.2, for the
//! requests that need no file or device.

use super::support::{ranges_within, Process, P, PRIVATE_ANON, RW};
use super::{Deferred, Failure, Home, Section, Vector};
use protocol::linux::{
    MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED_VALIDATE, PROT_READ,
};
use protocol::Errno;

const S: Section = Section::Validation;

#[rustfmt::skip]
pub const VECTORS: &[Vector] = &[
    Vector { id: 1, section: S, name: "MAP_FIXED is refused", run: v1_map_fixed },
    Vector { id: 2, section: S, name: "an address hint is ignored", run: v2_hint_ignored },
    Vector { id: 3, section: S, name: "zero length is refused", run: v3_zero_length },
    Vector { id: 4, section: S, name: "mapping type 0 is refused", run: v4_type_zero },
    Vector { id: 5, section: S, name: "MAP_SHARED_VALIDATE is refused", run: v5_shared_validate },
    Vector { id: 6, section: S, name: "a length that wraps when aligned", run: v6_huge_length },
    Vector { id: 7, section: S, name: "mmap2 page offset overflow", run: v7_pgoff_overflow },
    Vector { id: 8, section: S, name: "unaligned byte offset, before the fd", run: v8_unaligned_offset },
    Vector { id: 9, section: S, name: "an fd that is not open", run: v9_bad_fd },
    Vector { id: 19, section: S, name: "MAP_FIXED_NOREPLACE is only a hint", run: v19_fixed_noreplace },
];

#[rustfmt::skip]
pub const DEFERRED: &[Deferred] = &[
    Deferred { id: 10, section: S, needs: "pipes (a descriptor with no mmap method)" },
    Deferred { id: 11, section: S, needs: "sockets" },
    Deferred { id: 12, section: S, needs: "files: /data/f opened O_WRONLY" },
    Deferred { id: 13, section: S, needs: "the memory filesystem (/tmp/x)" },
    Deferred { id: 14, section: S, needs: "files on the copy-only filesystem (/data/f)" },
    Deferred { id: 15, section: S, needs: "device backings (/dev/fb0)" },
    Deferred { id: 16, section: S, needs: "device backings (/dev/fb0)" },
    Deferred { id: 17, section: S, needs: "device backings (/dev/fb0)" },
    Deferred { id: 18, section: S, needs: "files and a noexec mount" },
    Deferred { id: 20, section: S, needs: "the configurable test device (/dev/tst)" },
    Deferred { id: 21, section: S, needs: "the configurable test device (/dev/tst)" },
];

/// `call` fails with exactly `errno` and leaves the maps and `MmapCopy`
/// as they were.
fn refused(
    p: &Process<'_>,
    errno: Errno,
    what: &str,
    call: impl FnOnce(&Process<'_>) -> Result<u64, Errno>,
) -> Result<(), Failure> {
    let (copy, maps) = (p.mmap_copy_kb()?, p.maps()?);
    ensure_errno!(call(p), errno, "{what}");
    ensure_eq!(p.mmap_copy_kb()?, copy, "MmapCopy after a refused {what}");
    ensure_eq!(p.maps()?, maps, "maps after a refused {what}");
    Ok(())
}

fn v1_map_fixed(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(
        &p,
        Errno::EINVAL,
        "mmap(0, P, RW, PRIVATE|ANON|FIXED)",
        |p| p.mmap(0, P, RW, PRIVATE_ANON | MAP_FIXED),
    )
}

fn v2_hint_ignored(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    let addr = ok!(p.mmap(0x1234_0000, P, RW, PRIVATE_ANON), "mmap with a hint");
    ensure_eq!(addr % P, 0, "alignment of {addr:#x}");
    let maps = p.maps()?;
    ensure_eq!(
        ranges_within(&maps, addr, addr + P)?,
        [(addr, addr + P)],
        "maps"
    );
    ok!(p.munmap(addr, P), "munmap");
    Ok(())
}

fn v3_zero_length(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(&p, Errno::EINVAL, "mmap of length 0", |p| {
        p.mmap(0, 0, RW, PRIVATE_ANON)
    })
}

fn v4_type_zero(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(
        &p,
        Errno::EINVAL,
        "mmap with flags MAP_ANONYMOUS only",
        |p| p.mmap(0, P, RW, MAP_ANONYMOUS),
    )
}

fn v5_shared_validate(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(
        &p,
        Errno::EINVAL,
        "mmap with MAP_SHARED_VALIDATE|MAP_ANONYMOUS",
        |p| p.mmap(0, P, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS),
    )
}

/// `SIZE_MAX − 100` of the wire's 64-bit length: page alignment wraps.
fn v6_huge_length(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(
        &p,
        Errno::ENOMEM,
        "anonymous mmap of SIZE_MAX - 100 bytes",
        |p| p.mmap(0, u64::MAX - 100, RW, PRIVATE_ANON),
    )
}

/// `ULONG_MAX` of the wire's 64-bit page offset: `pgoff + pages(len)`
/// overflows, and the check applies to anonymous mappings too.
fn v7_pgoff_overflow(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(
        &p,
        Errno::EOVERFLOW,
        "anonymous mmap2 with pgoff ULONG_MAX",
        |p| p.client().mmap2(0, P, RW, PRIVATE_ANON, -1, u64::MAX),
    )
}

/// §2.1 item 2: the byte-offset entry point refuses an unaligned offset
/// before the descriptor is looked up. The vector's `/data/f` waits for
/// files; the rule is checked with a descriptor that is not open (where the
/// fd test would give `EBADF` if it came first) and without one.
fn v8_unaligned_offset(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(
        &p,
        Errno::EINVAL,
        "mmap of fd 1234 at byte offset 100",
        |p| p.client().mmap(0, P, PROT_READ, MAP_PRIVATE, 1234, 100),
    )?;
    refused(
        &p,
        Errno::EINVAL,
        "anonymous mmap at byte offset 100",
        |p| p.client().mmap(0, P, RW, PRIVATE_ANON, -1, 100),
    )
}

fn v9_bad_fd(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    refused(&p, Errno::EBADF, "mmap of fd 1234 (not open)", |p| {
        p.client().mmap(0, P, PROT_READ, MAP_PRIVATE, 1234, 0)
    })
}

fn v19_fixed_noreplace(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    let flags = PRIVATE_ANON | MAP_FIXED_NOREPLACE;
    let addr = ok!(
        p.mmap(0x1234_0000, P, RW, flags),
        "mmap with MAP_FIXED_NOREPLACE"
    );
    ensure_eq!(addr % P, 0, "alignment of {addr:#x}");
    ok!(p.munmap(addr, P), "munmap");
    Ok(())
}
