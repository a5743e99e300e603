//! Task isolation of devices (part of the robustness suite): a driver
//! reaches only the device it claimed from the kernel (`Sys::Claim`): the
//! NOR chip's bank to send it commands (a virtio slot's registers stay the
//! kernel's: `isolation_dma.rs`).
//! A driver-role task that touches the disk's registers or sends the NOR
//! chip a command without holding them is reported and stopped, and the
//! disk's driver serves on; one that asks the kernel for a device another
//! driver holds, or to give it back, is refused: there is no taken flag
//! in memory it could set or clear.

use super::hardware::disk_byte;
use super::isolation::{process, KILLED_BY_LOAD_FAULT};
use super::isolation_regions::{intruder_as, KILLED_BY_STORE_FAULT};
use crate::devices::{self, cfi_flash, virtio_blk, CfiFlash, VirtioBlk, FLASH_BANK1};
use crate::kernel::pmp::device;
use crate::memory;
use crate::sys;
use alloc::format;
use alloc::string::String;

type Check = Result<(), String>;

const O_RDONLY: u32 = 0;

/// A driver-role task named `name` running `body`; how it ended.
pub(super) fn stray_driver(name: &str, body: fn(u64) -> i64, arg: u64) -> Result<i64, String> {
    let task = sys::spawn_driver(name, 16 << 10, sys::TASK_HEAP, move || body(arg))
        .map_err(|e| format!("spawn {name}: {e:?}"))?;
    task.join().map_err(|e| format!("join {name}: {e:?}"))
}

/// A driver-role task that reads the disk's virtio registers is stopped
/// (`stray load`), one that sends the NOR chip a command is stopped
/// (`stray store`) and the bank still reads as its array; the disk's own
/// driver then serves `/dev/vda` as before.
pub fn a_driver_touching_another_drivers_device_is_stopped(memsrv: usize) -> Check {
    let regs = virtio_blk::disk_registers().ok_or("no virtio disk")?;
    let read = |base: u64| i64::from(virtio_blk::read_slot(base).is_some());
    match stray_driver("device-snooper", read, regs)? {
        KILLED_BY_LOAD_FAULT => {}
        code => {
            return Err(format!(
                "the disk's registers read by a stray driver ({code})"
            ))
        }
    }
    let mut before = [0u8; 16];
    if !memory::read(FLASH_BANK1 as u64, &mut before) {
        return Err("bank 1 not readable".into());
    }
    let command = |_| {
        cfi_flash::command_unclaimed();
        0
    };
    let ended = stray_driver("flash-commander", command, 0)?;
    let mut after = [0u8; 16];
    memory::read(FLASH_BANK1 as u64, &mut after);
    if ended != KILLED_BY_STORE_FAULT {
        cfi_flash::read_array_mode();
        return Err(format!(
            "a stray driver sent the NOR chip a command ({ended})"
        ));
    }
    if after != before {
        return Err("bank 1 no longer reads as its array".into());
    }
    the_disk_serves(memsrv)
}

/// `/dev/vda` reads as the disk: its driver runs on.
fn the_disk_serves(memsrv: usize) -> Check {
    let p = process(memsrv)?;
    let fd = p
        .open("/dev/vda", O_RDONLY, 0)
        .map_err(|e| format!("open /dev/vda: {e:?}"))?;
    let mut buf = [0u8; 512];
    p.pread(fd, &mut buf, 4096)
        .map_err(|e| format!("pread /dev/vda: {e:?}"))?;
    p.close(fd).map_err(|e| format!("close: {e:?}"))?;
    match (0..buf.len()).find(|&i| buf[i] != disk_byte(4096 + i as u64)) {
        None => Ok(()),
        Some(i) => Err(format!("/dev/vda byte {i} reads {:#x}", buf[i])),
    }
}

/// What a driver-role task got when it asked for the devices other
/// drivers hold: a bit per request granted.
fn take_held_devices(_: u64) -> i64 {
    let mut granted = 0;
    if devices::release(device::NOR_FLASH).is_ok() {
        granted |= 1;
    }
    if CfiFlash::take_bank1().is_some() {
        granted |= 2;
    }
    match VirtioBlk::probe() {
        Err(protocol::Errno::EBUSY) => {}
        _ => granted |= 4,
    }
    granted
}

/// While `/dev/mtd1`'s driver holds the NOR chip and `/dev/vda`'s the
/// disk's slot, a driver-role task can neither give them back for them
/// nor take them (the disk's probe finds its slot busy); nor can it store
/// just past the runtime's statics, where the drivers' shared taken flags
/// were (`stray store`): no memory holds such a flag. The disk serves on.
pub fn a_driver_cannot_take_or_give_back_another_drivers_device(memsrv: usize) -> Check {
    match stray_driver("device-taker", take_held_devices, 0)? {
        0 => {}
        granted => {
            return Err(format!(
                "a driver was given what another holds ({granted:#b})"
            ))
        }
    }
    match intruder_as("flag-writer", memory::statics().end, true)? {
        KILLED_BY_STORE_FAULT => the_disk_serves(memsrv),
        code => Err(format!("a driver wrote past the statics ({code})")),
    }
}
