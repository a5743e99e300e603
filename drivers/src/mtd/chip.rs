//! The MTD device over a real [`FlashChip`]: reads come from the chip,
//! program and erase run as the chip's commands inside one exclusive
//! section (the chip's window shows status words meanwhile).

use crate::flags::{available, data_len, zeroed_bytes};
use crate::flash::FlashChip;
use crate::mount::DEVICE_OBJECT;
use crate::DriverHost;
use core::ops::Range;
use protocol::{Bytes, Errno};

/// Bytes moved per step (a bare-metal driver task has a small stack).
const STEP: usize = 256;

/// `read()`: at most `len` bytes from `offset`, none at or past `size`.
pub(super) fn read_data(
    chip: &mut dyn FlashChip,
    size: u64,
    offset: u64,
    len: u32,
) -> Result<Bytes, Errno> {
    let n = available(offset, data_len(len) as u64, size);
    let mut bytes = zeroed_bytes(usize::try_from(n).map_err(|_| Errno::EIO)?)?;
    if n > 0 {
        chip.read(offset, &mut bytes)?;
    }
    Ok(bytes)
}

/// Fill a private copy at arena address `dest`; short at the end.
pub(super) fn read_into(
    chip: &mut dyn FlashChip,
    host: &mut dyn DriverHost,
    size: u64,
    offset: u64,
    len: u64,
    dest: u64,
) -> Result<u64, Errno> {
    let n = available(offset, len, size);
    let mut buf = [0u8; STEP];
    let mut done = 0u64;
    while done < n {
        let step = usize::try_from(n.saturating_sub(done)).map_or(STEP, |r| r.min(STEP));
        let part = buf.get_mut(..step).ok_or(Errno::EIO)?;
        chip.read(offset.checked_add(done).ok_or(Errno::EINVAL)?, part)?;
        host.write_arena(dest.checked_add(done).ok_or(Errno::EFAULT)?, part)?;
        done = done.saturating_add(step as u64);
    }
    Ok(n)
}

/// Program `data` at `offset` (inside the chip): every byte becomes
/// `old & new`, so the chip is never asked to set a bit.
pub(super) fn program(
    chip: &mut dyn FlashChip,
    host: &mut dyn DriverHost,
    offset: u64,
    data: &[u8],
) -> Result<(), Errno> {
    exclusive(host, || {
        let mut old = [0u8; STEP];
        let mut at = offset;
        for new in data.chunks(STEP) {
            let old = old.get_mut(..new.len()).ok_or(Errno::EIO)?;
            chip.read(at, old)?;
            for (o, n) in old.iter_mut().zip(new) {
                *o &= *n;
            }
            chip.program(at, old)?;
            at = at.saturating_add(new.len() as u64);
        }
        Ok(())
    })
}

/// Erase the whole blocks of `range` (checked by the caller).
pub(super) fn erase(
    chip: &mut dyn FlashChip,
    host: &mut dyn DriverHost,
    range: Range<u64>,
    erase_size: u64,
) -> Result<(), Errno> {
    exclusive(host, || {
        let mut at = range.start;
        while at < range.end {
            chip.erase_block(at)?;
            at = at.checked_add(erase_size).ok_or(Errno::EINVAL)?;
        }
        Ok(())
    })
}

/// Run `work` with exclusive use of the device; the section ends even
/// when the work fails (the chip is back in read-array mode by then).
fn exclusive(
    host: &mut dyn DriverHost,
    work: impl FnOnce() -> Result<(), Errno>,
) -> Result<(), Errno> {
    host.begin_exclusive(DEVICE_OBJECT)?;
    let result = work();
    let ended = host.end_exclusive(DEVICE_OBJECT);
    result.and(ended)
}
