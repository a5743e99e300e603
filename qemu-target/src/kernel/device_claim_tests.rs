//! Host tests of device claims: a driver's entries reach only the device
//! it claimed (the UART's page, or the NOR chip's bank to
//! send commands), each device has one holder at a time, and a claim
//! ends with its holder.

use super::*;

const RW: u8 = cfg::R | cfg::W;

#[test]
fn a_driver_reaches_only_the_device_it_claimed() {
    let mut p = protection(&[Role::Driver, Role::Driver, Role::User]);
    assert_eq!(p.entries(0).get(0), Entry::default());
    assert_eq!(p.claim(0, device::UART), Ok(()));
    // Its device's page, not a virtio slot's.
    assert_eq!(p.entries(0).get(0), Entry::napot(0x1000_0000, 0x1000, RW));
    // No other entry reaches a device: not the whole MMIO window, no
    // other slot, not the UART.
    let devices = 0x1000_0000..0x1001_0000;
    assert!((1..PMP_ENTRIES).all(|i| {
        let e = p.entries(0).get(i);
        e.cfg & cfg::NAPOT != cfg::NAPOT || !devices.contains(&(e.addr << 2))
    }));
    // The NOR chip: its bank read and write ahead of the flash's
    // read-only entry; no other driver may write the flash.
    assert_eq!(p.claim(1, device::NOR_FLASH), Ok(()));
    let nor = p.entries(1);
    assert_eq!(nor.get(0), Entry::napot(0x2200_0000, 0x200_0000, RW));
    assert_eq!(
        nor.get(FIXED),
        Entry::napot(0x2000_0000, 0x400_0000, cfg::R | cfg::X)
    );
    assert_eq!(
        p.entries(0).get(FIXED),
        Entry::napot(0x2000_0000, 0x400_0000, cfg::R | cfg::X)
    );
    // A user task claims nothing.
    assert_eq!(p.claim(2, device::UART), Err(Errno::EPERM));
    assert_eq!(DEVICE_WINDOWS.len(), DEVICES);
}

#[test]
fn a_device_has_one_holder_until_it_gives_it_back_or_ends() {
    let mut p = protection(&[Role::Driver, Role::Driver, Role::Server]);
    assert_eq!(p.claim(0, device::NOR_FLASH), Ok(()));
    assert_eq!(p.claim(1, device::NOR_FLASH), Err(Errno::EBUSY));
    assert_eq!(p.claim(0, device::NOR_FLASH), Err(Errno::EBUSY));
    // One device per driver.
    assert_eq!(p.claim(0, device::virtio(0)), Err(Errno::EBUSY));
    assert_eq!(p.claim(2, device::NOR_FLASH), Err(Errno::EBUSY));
    assert_eq!(p.claim(1, DEVICES as u64), Err(Errno::EINVAL));
    // A probe gives back a slot that holds another kind of device.
    assert_eq!(p.claim(1, device::virtio(3)), Ok(()));
    assert_eq!(p.release(0, device::virtio(3)), Err(Errno::EINVAL));
    assert_eq!(p.release(1, device::virtio(3)), Ok(()));
    assert_eq!(p.entries(1).get(0), Entry::default());
    // The holder ends: the device is free, its entry gone.
    p.exit(0);
    assert_eq!(p.entries(0).get(0), Entry::default());
    assert_eq!(p.claim(1, device::NOR_FLASH), Ok(()));
    // A server only becomes a holder (it reaches every device anyway).
    let before = *p.entries(2);
    assert_eq!(p.claim(2, device::BOOT_FLASH), Ok(()));
    assert_eq!(*p.entries(2), before);
    assert_eq!(p.claim(1, device::BOOT_FLASH), Err(Errno::EBUSY));
}

#[test]
fn claim_is_a_system_call() {
    let (mut k, mut m) = kernel_with(["memsrv", "driver", "other"]);
    k.protection.start(1, Role::Driver);
    k.protection.start(2, Role::Driver);
    // A virtio slot's claim also sets up its disk (`block_io_tests.rs`);
    // the NOR chip's is the claim alone.
    assert_eq!(
        call(&mut k, 1, Sys::Claim, &[device::NOR_FLASH, 0], &mut m),
        0
    );
    assert_eq!(
        call(&mut k, 2, Sys::Claim, &[device::NOR_FLASH, 0], &mut m),
        -i64::from(Errno::EBUSY.0)
    );
    assert_eq!(
        call(&mut k, 2, Sys::Claim, &[device::NOR_FLASH, 2], &mut m),
        -i64::from(Errno::EINVAL.0)
    );
    assert_eq!(
        call(&mut k, 1, Sys::Claim, &[device::NOR_FLASH, 1], &mut m),
        0
    );
    assert_eq!(
        call(&mut k, 2, Sys::Claim, &[device::NOR_FLASH, 0], &mut m),
        0
    );
}
