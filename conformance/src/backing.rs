//! §14.12 Backing contract (§11): the driver is asked to approve every new
//! direct mapping and told of every removed one; declared capabilities and
//! the defaults decide what is direct.

use super::env::{TestDevConfig, O_RDONLY, O_RDWR, RAMDISK, RAMDISK_DIRECT, TST};
use super::support::{landmark, open, Process, Tst, P, RW};
use super::{Failure, Harness, Landmark};
use protocol::linux::{MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ};
use protocol::Errno;

const R: u32 = PROT_READ;

pub(super) fn v120_per_mapping_hooks(harness: &dyn Harness) -> Result<(), Failure> {
    let tst = Tst::set(harness, TestDevConfig::default())?;
    let p = Process::spawn(harness)?;
    let start = tst.counters();
    let fd = open(&p, TST, O_RDONLY)?;
    let x = ok!(p.map_fd(P, R, MAP_SHARED, fd, 0), "first SHARED R");
    let y = ok!(p.map_fd(P, R, MAP_SHARED, fd, 0), "second SHARED R");
    ensure_eq!((x, y), (tst.base(), tst.base()), "both addresses");
    ensure_eq!(
        tst.counters().mmap_calls - start.mmap_calls,
        2,
        "driver mmap calls"
    );
    ok!(p.munmap(x, P), "first munmap");
    ok!(p.munmap(y, P), "second munmap");
    tst.expect_closes(&p, fd, start, 2)?;
    Ok(())
}

/// The spec's `0x50000000` is the device's base.
pub(super) fn v121_default_caps(harness: &dyn Harness) -> Result<(), Failure> {
    let config = TestDevConfig {
        caps: None,
        get_unmapped_area: Some(Ok(())),
        ..TestDevConfig::default()
    };
    let (tst, p, fd) = Tst::opened(harness, config, O_RDWR)?;
    let x = ok!(p.map_fd(P, RW, MAP_SHARED, fd, 0), "SHARED RW");
    ensure_eq!(x, tst.base(), "SHARED RW address");
    ensure_errno!(
        p.map_fd(P, R, MAP_PRIVATE, fd, 0),
        Errno::ENODEV,
        "PRIVATE R"
    );
    ensure_errno!(
        p.map_fd(P, R | PROT_EXEC, MAP_SHARED, fd, 0),
        Errno::EINVAL,
        "SHARED R|X"
    );
    ok!(p.munmap(x, P), "munmap");
    Ok(())
}

/// The direct ramdisk's array is [`Landmark::RamdiskArray`].
pub(super) fn v122_ramdisk(harness: &dyn Harness) -> Result<(), Failure> {
    let array = landmark(harness, Landmark::RamdiskArray)?;
    let p = Process::spawn(harness)?;
    let fd = open(&p, RAMDISK, O_RDONLY)?;
    ensure_errno!(
        p.map_fd(P, R, MAP_SHARED, fd, 0),
        Errno::ENODEV,
        "SHARED R of the default ramdisk"
    );
    let before = p.mmap_copy_kb()?;
    let c = ok!(
        p.map_fd(P, R, MAP_PRIVATE, fd, 0),
        "PRIVATE R of the default ramdisk"
    );
    ensure_eq!(p.mc_delta(before)?, 4, "MC delta of the copy");
    ensure_eq!(c % P, 0, "alignment of the copy {c:#x}");
    let direct = open(&p, RAMDISK_DIRECT, O_RDWR)?;
    let what = "SHARED RW of the ramdisk declaring DIRECT|COPY|READ|WRITE (at its array)";
    p.map_direct(direct, (P, RW, MAP_SHARED, 0), array, what)?;
    Ok(())
}
