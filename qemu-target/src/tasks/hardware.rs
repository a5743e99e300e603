//! The board's real devices as backing devices, checked end to end
//! through memsrv: the NOR flash chip behind `/dev/mtd1` (QEMU's CFI
//! flash, bank 1) is erased and programmed with its real commands, and a
//! virtio-blk disk serves `/dev/vda` copy only.
//!
//! The disk holds [`disk_byte`] at every offset (written by
//! `scripts/board.sh flash`). A slow disk in memory checks, before the
//! virtio disk is mounted, that a driver answering after memsrv gave up
//! cannot fill the page it was lent (`isolation_lent`).

use super::driver::mount;
use crate::devices::{VirtioBlk, FLASH_BANK1};
use crate::memory;
use crate::println;
use crate::sys::{self, IpcTransport};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use drivers::blockdev::BlockDev;
use drivers::MountPoint;
use nommu::Client;
use protocol::linux::{MAP_PRIVATE, MAP_SHARED, PROT_READ};
use protocol::Errno;

/// Byte `i` of the virtio-blk disk.
pub const fn disk_byte(i: u64) -> u8 {
    ((i * 7 + 3) % 253) as u8
}

const O_RDWR: u32 = 2;
const P: u64 = 4096;

type Check = Result<(), String>;

fn errno(what: &str) -> impl Fn(Errno) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

fn process(memsrv: usize) -> Result<Client<IpcTransport>, String> {
    let conn = sys::connect(memsrv, 0, 0).map_err(errno("connect"))?;
    let client = Client::new(IpcTransport::new(conn));
    client.hello(None).map_err(errno("hello"))?;
    Ok(client)
}

/// `/dev/mtd1`: erase its first block through the `erase` control object,
/// program bytes into it, and read them back both through the driver and
/// straight off the chip in read-array mode; programming a 0 back to 1
/// fails as NOR flash does.
fn nor_flash(memsrv: usize) -> Check {
    let p = process(memsrv)?;
    let fd = p
        .open("/dev/mtd1", O_RDWR, 0)
        .map_err(errno("open /dev/mtd1"))?;
    let ctl = p
        .open("/dev/mtd1/erase", O_RDWR, 0)
        .map_err(errno("open /dev/mtd1/erase"))?;
    let block = 256u32 << 10;
    let mut erase = [0u8; 8];
    erase[4..].copy_from_slice(&block.to_le_bytes());
    p.write(ctl, &erase).map_err(errno("erase block 0"))?;
    let mut back = vec![0u8; 4096];
    p.pread(fd, &mut back, 0)
        .map_err(errno("pread after erase"))?;
    if back.iter().any(|b| *b != 0xff) {
        return Err("block 0 not erased".into());
    }
    let data: vec::Vec<u8> = (0..1000u32).map(|i| (i * 37 + 11) as u8 & 0xf7).collect();
    let n = p.pwrite(fd, &data, 100).map_err(errno("program"))?;
    if n != data.len() {
        return Err(format!("programmed {n} of {} bytes", data.len()));
    }
    p.pread(fd, &mut back[..1000], 100)
        .map_err(errno("pread after program"))?;
    if back[..1000] != data[..] {
        return Err("the driver reads other bytes than were programmed".into());
    }
    let mut chip = vec![0u8; 1000];
    if !memory::read(FLASH_BANK1 as u64 + 100, &mut chip) || chip != data {
        return Err("the chip's array does not hold the programmed bytes".into());
    }
    // Bit 3 is clear in every programmed byte: setting it needs an erase.
    let ones = vec![0xffu8; 16];
    let before = chip[..16].to_vec();
    let _ = p.pwrite(fd, &ones, 100);
    p.pread(fd, &mut back[..16], 100).map_err(errno("pread"))?;
    if back[..16] != before[..] {
        return Err("programming set bits without an erase".into());
    }
    p.write(ctl, &erase).map_err(errno("erase again"))?;
    p.close(ctl).map_err(errno("close"))?;
    p.close(fd).map_err(errno("close"))?;
    Ok(())
}

/// `/dev/vda`: copy-only; a private mapping is a copy in the arena filled
/// from the disk's sectors, a shared one is refused; writes that straddle
/// sectors read back.
fn virtio_disk(memsrv: usize) -> Check {
    let point = MountPoint::new("/dev/vda", (254, 0)).map_err(|e| format!("{e:?}"))?;
    // Probed in the driver task: it holds the slot, whose queue the
    // kernel drives.
    let make = |point| Ok(BlockDev::new(point, Box::new(VirtioBlk::probe()?)));
    mount(memsrv, point, make, |_| ()).map_err(errno("mounting /dev/vda (virtio-blk)"))?;
    let p = process(memsrv)?;
    let fd = p
        .open("/dev/vda", O_RDWR, 0)
        .map_err(errno("open /dev/vda"))?;
    let mut buf = vec![0u8; 3 * P as usize];
    p.pread(fd, &mut buf, 0).map_err(errno("pread"))?;
    if let Some(i) = (0..buf.len()).find(|&i| buf[i] != disk_byte(i as u64)) {
        return Err(format!("disk byte {i} reads {:#x}", buf[i]));
    }
    let addr = p
        .mmap(0, 2 * P, PROT_READ, MAP_PRIVATE, fd, P)
        .map_err(errno("mmap private"))?;
    // A copy: pages of the arena, not device memory.
    if !memory::arena().contains(&addr) {
        return Err(format!("the copy at {addr:#x} is not in the arena"));
    }
    let mut copy = vec![0u8; 2 * P as usize];
    memory::read(addr, &mut copy);
    if let Some(i) = (0..copy.len()).find(|&i| copy[i] != disk_byte(P + i as u64)) {
        return Err(format!("the copy's byte {i} is {:#x}", copy[i]));
    }
    p.munmap(addr, 2 * P).map_err(errno("munmap"))?;
    match p.mmap(0, P, PROT_READ, MAP_SHARED, fd, 0) {
        Err(Errno::ENODEV) => {}
        other => return Err(format!("MAP_SHARED of a copy-only disk: {other:?}")),
    }
    let patch: vec::Vec<u8> = (0..700u32).map(|i| (i * 3) as u8).collect();
    p.pwrite(fd, &patch, 500)
        .map_err(errno("pwrite across sectors"))?;
    p.pread(fd, &mut buf[..1400], 0).map_err(errno("pread"))?;
    let expect = |i: usize| {
        if (500..1200).contains(&i) {
            patch[i - 500]
        } else {
            disk_byte(i as u64)
        }
    };
    if let Some(i) = (0..1400).find(|&i| buf[i] != expect(i)) {
        return Err(format!("after the write, byte {i} reads {:#x}", buf[i]));
    }
    p.close(fd).map_err(errno("close"))?;
    Ok(())
}

/// Run the device checks; the number that failed.
pub fn run(memsrv: usize) -> usize {
    let checks: [(&str, fn(usize) -> Check); 4] = [
        ("nor-flash", nor_flash),
        // Before `/dev/vda` takes the last of memsrv's 16 mount points:
        // the slow disk's is free again once its driver is stopped.
        (
            "a page lent to a driver is taken back when memsrv gives up",
            super::isolation_lent::a_page_lent_to_a_driver_is_taken_back_when_memsrv_gives_up,
        ),
        // While the disk's slot is free: `/dev/vda` is mounted after.
        (
            "a driver's disk request into another task's memory is refused",
            super::isolation_dma::a_drivers_disk_request_into_another_tasks_memory_is_refused,
        ),
        ("virtio-blk", virtio_disk),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        match check(memsrv) {
            Ok(()) => println!("hardware: ok {name}"),
            Err(e) => {
                failed += 1;
                println!("hardware: FAILED {name}: {e}");
            }
        }
    }
    failed
}
