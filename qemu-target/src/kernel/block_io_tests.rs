//! Host tests of the virtio disk's requests (`Sys::BlockIo`,
//! `kernel/block_io.rs`): claiming a virtio slot sets up its disk and
//! grants the driver no entry for the slot's registers; a request reaches
//! the device only for the slot's holder and with a buffer the holder may
//! touch (written by the device for a read), `EFAULT` otherwise.

use super::*;
use crate::kernel::block_io::BlockOp;

/// A machine with a virtio disk in slot 2 that records the requests the
/// kernel passes on.
#[derive(Default)]
struct Disk {
    attached: Vec<u64>,
    requests: Vec<(u64, BlockOp, u64, u64, u64)>,
}

impl Machine for Disk {
    fn copy_out(&mut self, _addr: u64, _bytes: &[u8]) -> bool {
        false
    }
    fn copy_in(&mut self, _addr: u64, _out: &mut [u8]) -> bool {
        false
    }
    fn copy(&mut self, _src: u64, _dst: u64, _len: usize) -> bool {
        false
    }
    fn contains(&self, _addr: u64, _len: usize) -> bool {
        false
    }
    fn console(&mut self, _bytes: &[u8]) {}
    fn attach_disk(&mut self, slot: u64) -> Result<(), Errno> {
        if slot != 2 {
            return Err(Errno::ENODEV);
        }
        self.attached.push(slot);
        Ok(())
    }
    fn disk_request(
        &mut self,
        slot: u64,
        op: BlockOp,
        sector: u64,
        buf: u64,
        len: u64,
    ) -> Result<u64, Errno> {
        self.requests.push((slot, op, sector, buf, len));
        Ok(0)
    }
}

fn errno(e: Errno) -> i64 {
    -i64::from(e.0)
}

/// The driver's region (task 1) and a user task's (task 2).
const DRIVER_REGION: (u64, u64) = (HEAP_START, 0x1_0000);
const USER_REGION: (u64, u64) = (HEAP_START + 0x1_0000, 0x1_0000);

/// memsrv (0), a driver (1) holding the disk's slot, a user task (2).
fn driver_holding_the_disk() -> (Box<Kernel>, Disk) {
    let (mut k, _) = kernel_with(["memsrv", "driver", "user"]);
    k.protection.start(1, Role::Driver);
    k.protection.set_region(1, DRIVER_REGION);
    k.protection.set_region(2, USER_REGION);
    let mut m = Disk::default();
    assert_eq!(
        call(&mut k, 1, Sys::Claim, &[device::virtio(2), 0], &mut m),
        0
    );
    (k, m)
}

#[test]
fn claiming_a_virtio_slot_sets_up_its_disk_and_grants_no_registers() {
    let (mut k, _) = kernel_with(["memsrv", "driver", "other"]);
    k.protection.start(1, Role::Driver);
    k.protection.start(2, Role::Driver);
    let mut disk = Disk::default();
    // No disk in slot 1: the claim is refused and the slot stays free
    // (the driver may still claim another).
    assert_eq!(
        call(&mut k, 1, Sys::Claim, &[device::virtio(1), 0], &mut disk),
        errno(Errno::ENODEV)
    );
    assert_eq!(k.protection.claimed_virtio_slot(1), None);
    assert_eq!(
        call(&mut k, 1, Sys::Claim, &[device::virtio(2), 0], &mut disk),
        0
    );
    assert_eq!(disk.attached, [2]);
    assert_eq!(k.protection.claimed_virtio_slot(1), Some(2));
    // The driver's entries reach no device: the kernel keeps the slot's
    // registers, which set where the device's DMA goes.
    let devices = 0x1000_0000..0x1001_0000;
    let e = k.protection.entries(1);
    assert!((0..PMP_ENTRIES).all(|i| {
        let e = e.get(i);
        e.cfg & cfg::NAPOT != cfg::NAPOT || !devices.contains(&(e.addr << 2))
    }));
    // Another driver cannot take it.
    assert_eq!(
        call(&mut k, 2, Sys::Claim, &[device::virtio(2), 0], &mut disk),
        errno(Errno::EBUSY)
    );
}

#[test]
fn a_request_reaches_the_disk_only_with_the_holders_own_buffer() {
    let (mut k, mut m) = driver_holding_the_disk();
    let own = DRIVER_REGION.0 + 0x1000;
    // Its own region, read and write.
    assert_eq!(
        call(&mut k, 1, Sys::BlockIo, &[0, 7, own, 0x200], &mut m),
        0
    );
    assert_eq!(
        call(&mut k, 1, Sys::BlockIo, &[1, 8, own, 0x400], &mut m),
        0
    );
    assert_eq!(
        m.requests,
        [
            (2, BlockOp::Read, 7, own, 0x200),
            (2, BlockOp::Write, 8, own, 0x400)
        ]
    );
    // A user task's region, memsrv's heap (below the region pool's
    // start here: the statics' end), a buffer running out of its region:
    // refused before the device sees them.
    let efault = errno(Errno::EFAULT);
    for (op, buf, len) in [
        (0, USER_REGION.0, 0x200),
        (1, USER_REGION.0, 0x200),
        (0, DATA_END - 0x1000, 0x200),
        (0, DRIVER_REGION.0 + DRIVER_REGION.1 - 0x200, 0x400),
        (0, u64::MAX - 0x100, 0x200),
    ] {
        assert_eq!(
            call(&mut k, 1, Sys::BlockIo, &[op, 0, buf, len], &mut m),
            efault
        );
    }
    // The text may be written to the disk, never read into from it.
    let text = 0x8020_0000;
    assert_eq!(
        call(&mut k, 1, Sys::BlockIo, &[0, 0, text, 0x200], &mut m),
        efault
    );
    assert_eq!(
        call(&mut k, 1, Sys::BlockIo, &[1, 0, text, 0x200], &mut m),
        0
    );
    assert_eq!(m.requests.len(), 3);
    // No such operation.
    assert_eq!(
        call(&mut k, 1, Sys::BlockIo, &[9, 0, own, 0x200], &mut m),
        errno(Errno::EINVAL)
    );
}

#[test]
fn only_the_slots_holder_reaches_the_disk() {
    let (mut k, mut m) = driver_holding_the_disk();
    let user = USER_REGION.0;
    // The user task in its own region, memsrv anywhere: neither holds it.
    assert_eq!(
        call(&mut k, 2, Sys::BlockIo, &[0, 0, user, 0x200], &mut m),
        errno(Errno::ENODEV)
    );
    assert_eq!(
        call(&mut k, 0, Sys::BlockIo, &[2, 0, 0, 0], &mut m),
        errno(Errno::ENODEV)
    );
    assert_eq!(call(&mut k, 1, Sys::BlockIo, &[2, 0, 0, 0], &mut m), 0);
    // Given back (or ended), the holder reaches it no more.
    assert_eq!(
        call(&mut k, 1, Sys::Claim, &[device::virtio(2), 1], &mut m),
        0
    );
    assert_eq!(
        call(&mut k, 1, Sys::BlockIo, &[2, 0, 0, 0], &mut m),
        errno(Errno::ENODEV)
    );
    assert_eq!(m.requests, [(2, BlockOp::Capacity, 0, 0, 0)]);
}
