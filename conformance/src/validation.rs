//! §14.1 Argument validation: the order and errnos of §2.1–§2.2.

use super::env::{
    caps, TestDevConfig, DATA_F, DATA_NOEXEC_F, FB0, O_RDONLY, O_RDWR, O_WRONLY, PIPE, SOCKET, TST,
};
use super::support::{landmark, open, ranges_within, Process, Tst, P, PRIVATE_ANON, RW};
use super::{Failure, Harness, Landmark};
use protocol::linux::{
    MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE,
    PROT_EXEC, PROT_READ,
};
use protocol::Errno;

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

/// Vectors whose whole test is one [`refused`] call in a fresh process:
/// name, errno, what the call is, and the call.
macro_rules! refused_vectors {
    ($($(#[$doc:meta])* $name:ident: $errno:ident, $what:literal, |$p:ident| $call:expr;)*) => {
        $(
            $(#[$doc])*
            pub(super) fn $name(harness: &dyn Harness) -> Result<(), Failure> {
                let p = Process::spawn(harness)?;
                refused(&p, Errno::$errno, $what, |$p| $call)
            }
        )*
    };
}

refused_vectors! {
    v1_map_fixed: EINVAL, "mmap(0, P, RW, PRIVATE|ANON|FIXED)", |p| p.mmap(0, P, RW, PRIVATE_ANON | MAP_FIXED);
    v3_zero_length: EINVAL, "mmap of length 0", |p| p.mmap(0, 0, RW, PRIVATE_ANON);
    v4_type_zero: EINVAL, "mmap with flags MAP_ANONYMOUS only", |p| p.mmap(0, P, RW, MAP_ANONYMOUS);
    v5_shared_validate: EINVAL, "mmap with MAP_SHARED_VALIDATE|MAP_ANONYMOUS", |p| p.mmap(0, P, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS);
    /// `SIZE_MAX − 100` of the wire's 64-bit length: page alignment wraps.
    v6_huge_length: ENOMEM, "anonymous mmap of SIZE_MAX - 100 bytes", |p| p.mmap(0, u64::MAX - 100, RW, PRIVATE_ANON);
    /// `ULONG_MAX` of the wire's 64-bit page offset: `pgoff + pages(len)`
    /// overflows, and the check applies to anonymous mappings too.
    v7_pgoff_overflow: EOVERFLOW, "anonymous mmap2 with pgoff ULONG_MAX", |p| p.client().mmap2(0, P, RW, PRIVATE_ANON, -1, u64::MAX);
    v9_bad_fd: EBADF, "mmap of fd 1234 (not open)", |p| p.client().mmap(0, P, PROT_READ, MAP_PRIVATE, 1234, 0);
}

pub(super) fn v2_hint_ignored(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
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

/// §2.1 item 2: the byte-offset entry point refuses an unaligned offset
/// before the descriptor is looked up: with `/data/f`, with a descriptor
/// that is not open (where the fd test would give `EBADF` if it came
/// first) and without one.
pub(super) fn v8_unaligned_offset(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = ok!(p.open(DATA_F, O_RDONLY), "open {DATA_F}");
    refused(
        &p,
        Errno::EINVAL,
        "mmap of /data/f at byte offset 100",
        |p| p.map_fd(P, PROT_READ, MAP_PRIVATE, fd, 100),
    )?;
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

pub(super) fn v19_fixed_noreplace(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let flags = PRIVATE_ANON | MAP_FIXED_NOREPLACE;
    let addr = ok!(
        p.mmap(0x1234_0000, P, RW, flags),
        "mmap with MAP_FIXED_NOREPLACE"
    );
    ensure_eq!(addr % P, 0, "alignment of {addr:#x}");
    ok!(p.munmap(addr, P), "munmap");
    Ok(())
}

/// In a fresh process, `path` opened with `open_flags` and mapped from
/// offset 0 as `(len, prot, flags)` is [`refused`] with `errno`.
fn map_refused(
    harness: &dyn Harness,
    (path, open_flags): (&str, u32),
    (len, prot, flags): (u64, u32, u32),
    errno: Errno,
    what: &str,
) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = open(&p, path, open_flags)?;
    refused(&p, errno, what, |p| p.map_fd(len, prot, flags, fd, 0))
}

/// Vectors whose whole test is one [`map_refused`]: name, the file and
/// how it is opened, the mapping, the errno and what the mapping is.
macro_rules! map_refused_vectors {
    ($($name:ident: $file:expr, ($len:expr, $prot:expr, $flags:expr), $errno:ident, $what:literal;)*) => {
        $(
            pub(super) fn $name(harness: &dyn Harness) -> Result<(), Failure> {
                map_refused(harness, $file, ($len, $prot, $flags), Errno::$errno, $what)
            }
        )*
    };
}

map_refused_vectors! {
    v10_pipe: (PIPE, O_RDONLY), (P, PROT_READ, MAP_PRIVATE), ENODEV, "PRIVATE R of a pipe's read end";
    v11_socket: (SOCKET, O_RDWR), (P, PROT_READ, MAP_PRIVATE), EINVAL, "PRIVATE R of a socket";
    v12_write_only: (DATA_F, O_WRONLY), (P, PROT_READ, MAP_PRIVATE), EACCES, "PRIVATE R of /data/f opened O_WRONLY";
    v14_shared_copy_only: (DATA_F, O_RDONLY), (P, PROT_READ, MAP_SHARED), ENODEV, "SHARED R of /data/f";
    v15_fb_private: (FB0, O_RDWR), (P, PROT_READ, MAP_PRIVATE), ENODEV, "PRIVATE R of /dev/fb0";
    v16_fb_exec: (FB0, O_RDWR), (P, PROT_READ | PROT_EXEC, MAP_SHARED), EINVAL, "SHARED R|X of /dev/fb0";
}

pub(super) fn v13_shared_rw_read_only(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let writer = p.fresh_file("/tmp/x", 8192)?;
    ok!(p.client().close(writer), "close /tmp/x");
    let fd = open(&p, "/tmp/x", O_RDONLY)?;
    refused(
        &p,
        Errno::EACCES,
        "SHARED RW of /tmp/x opened O_RDONLY",
        |p| p.map_fd(8192, RW, MAP_SHARED, fd, 0),
    )
}

/// The spec's `0x30000000` is the screen base the framebuffer driver got
/// in this home's arena ([`Landmark::FrameBuffer`]).
pub(super) fn v17_fb_shared(harness: &dyn Harness) -> Result<(), Failure> {
    let screen = landmark(harness, Landmark::FrameBuffer)?;
    let p = Process::spawn(harness)?;
    let fd = open(&p, FB0, O_RDWR)?;
    let what = "SHARED RW of /dev/fb0, len 8192 (at the screen base)";
    let x = p.map_direct(fd, (8192, RW, MAP_SHARED, 0), screen, what)?;
    ok!(p.munmap(x, 8192), "munmap of the screen");
    Ok(())
}

/// `/data` remounted `noexec` is [`DATA_NOEXEC_F`]: the same file on a
/// second copy-only mount registered `noexec` (the protocol has no
/// remount). The same request on the executable mount succeeds, so the
/// refusal is the mount's doing.
pub(super) fn v18_noexec(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let fd = open(&p, DATA_NOEXEC_F, O_RDONLY)?;
    refused(
        &p,
        Errno::EPERM,
        "PRIVATE R|X of /data/f on a noexec mount",
        |p| p.map_fd(P, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0),
    )?;
    let fd = open(&p, DATA_F, O_RDONLY)?;
    let x = ok!(
        p.map_fd(P, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0),
        "PRIVATE R|X of /data/f on the executable mount"
    );
    ok!(p.munmap(x, P), "munmap");
    Ok(())
}

pub(super) fn v20_no_get_unmapped_area(harness: &dyn Harness) -> Result<(), Failure> {
    let config = TestDevConfig {
        get_unmapped_area: None,
        ..TestDevConfig::default()
    };
    let what = "SHARED R of /dev/tst without get_unmapped_area";
    tst_map_refused(harness, config, MAP_SHARED, what)
}

pub(super) fn v21_no_read(harness: &dyn Harness) -> Result<(), Failure> {
    let config = TestDevConfig {
        caps: Some(caps::COPY | caps::DIRECT | caps::READ),
        read: false,
        ..TestDevConfig::default()
    };
    let what = "PRIVATE R of /dev/tst without a read method";
    tst_map_refused(harness, config, MAP_PRIVATE, what)
}

/// Vectors 20 and 21: with `/dev/tst` configured as `config`, one page
/// of it opened read-only and mapped `PROT_READ` with `flags` is
/// [`map_refused`] with `ENODEV`.
fn tst_map_refused(
    harness: &dyn Harness,
    config: TestDevConfig,
    flags: u32,
    what: &str,
) -> Result<(), Failure> {
    let _tst = Tst::set(harness, config)?;
    map_refused(
        harness,
        (TST, O_RDONLY),
        (P, PROT_READ, flags),
        Errno::ENODEV,
        what,
    )
}
