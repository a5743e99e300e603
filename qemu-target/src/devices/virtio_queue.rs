//! The virtio-blk disk's queue, driven by the kernel (`Sys::BlockIo`,
//! `kernel/block_io.rs`) on QEMU virt's virtio-mmio transport (8 slots of
//! 0x1000 bytes from 0x1000_1000), polled: one split virtqueue of 8
//! entries, one request at a time as a 3-descriptor chain (header, data,
//! status). Both the legacy interface (version 1, QEMU's default for
//! virtio-mmio) and the modern one (version 2, with
//! `-global virtio-mmio.force-legacy=false`) are driven.
//!
//! The device's DMA is not checked by PMP, so nothing a task can write
//! reaches it: the queue lives in the kernel's statics (below the image,
//! in no task's PMP entry), the slot's registers are set up here when a
//! driver claims the slot (its PMP entries never cover the page), and a
//! request's data buffer is the one the kernel checked against the
//! caller. The device's view and ours meet only through atomic stores and
//! loads with fences around publishing; data moves straight to and from
//! the caller's buffer (physical = virtual addresses).

use super::Mmio;
use crate::kernel::block_io::BlockOp;
use core::cell::UnsafeCell;
use core::sync::atomic::{fence, AtomicU32, Ordering};
use protocol::Errno;

const MMIO_BASE: usize = 0x1000_1000;
pub(super) const MMIO_SLOT: usize = 0x1000;
pub(super) const MMIO_SLOTS: usize = 8;

// Register offsets (virtio 1.2 §4.2.2, legacy §4.2.4).
pub(super) const MAGIC: usize = 0x000;
const VERSION: usize = 0x004;
const DEVICE_ID: usize = 0x008;
const DEVICE_FEATURES: usize = 0x010;
const DEVICE_FEATURES_SEL: usize = 0x014;
const DRIVER_FEATURES: usize = 0x020;
const DRIVER_FEATURES_SEL: usize = 0x024;
const GUEST_PAGE_SIZE: usize = 0x028; // legacy
const QUEUE_SEL: usize = 0x030;
const QUEUE_NUM_MAX: usize = 0x034;
const QUEUE_NUM: usize = 0x038;
const QUEUE_ALIGN: usize = 0x03c; // legacy
const QUEUE_PFN: usize = 0x040; // legacy
const QUEUE_READY: usize = 0x044;
const QUEUE_NOTIFY: usize = 0x050;
const INTERRUPT_STATUS: usize = 0x060;
const INTERRUPT_ACK: usize = 0x064;
const STATUS: usize = 0x070;
const QUEUE_DESC: usize = 0x080;
const QUEUE_DRIVER: usize = 0x090;
const QUEUE_DEVICE: usize = 0x0a0;
const CONFIG_GENERATION: usize = 0x0fc;
const CONFIG_CAPACITY: usize = 0x100;

const MAGIC_VALUE: u32 = 0x7472_6976; // "virt"
const BLOCK_DEVICE: u32 = 2;

const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;
const FAILED: u32 = 128;

/// `VIRTIO_BLK_F_RO` (word 0) and `VIRTIO_F_VERSION_1` (word 1, bit 0).
const F_RO: u32 = 1 << 5;
const F_VERSION_1: u32 = 1;

const REQ_IN: u32 = 0;
const REQ_OUT: u32 = 1;
const DESC_NEXT: u32 = 1;
const DESC_WRITE: u32 = 2;
const AVAIL_NO_INTERRUPT: u32 = 1;

/// Requests always count 512-byte sectors.
pub const SECTOR: usize = 512;
/// Bytes one request moves at most.
pub const MAX_REQUEST: usize = 32 * 1024;
/// Used-ring polls before the device counts as stuck.
const POLLS: u32 = 1 << 28;

/// Queue geometry: 8 entries, legacy layout with 4096-byte alignment
/// (descriptors at 0, available ring at 128, used ring at 4096), the
/// request header and status byte after the used ring.
const QUEUE_SIZE: u32 = 8;
const PAGE: usize = 4096;
const AVAIL: usize = 16 * QUEUE_SIZE as usize;
const USED: usize = PAGE;
const HEADER: usize = PAGE + 256;
const STATUS_BYTE: usize = HEADER + 16;

/// Two pages of queue memory, shared with the device.
#[repr(C, align(4096))]
struct QueueMemory {
    words: [AtomicU32; 2 * PAGE / 4],
}

/// The queue: the kernel's, out of every task's reach (`link.ld`).
#[link_section = ".data.kernel"]
static QUEUE: QueueMemory = QueueMemory {
    words: [const { AtomicU32::new(0) }; 2 * PAGE / 4],
};

/// The disk the kernel drives, if a driver has claimed one.
struct Attached(UnsafeCell<Option<Disk>>);

// SAFETY: only the kernel touches it, on one hart with interrupts off,
// from system calls, which never overlap or nest.
unsafe impl Sync for Attached {}

#[link_section = ".data.kernel"]
static DISK: Attached = Attached(UnsafeCell::new(None));

fn attached() -> &'static mut Option<Disk> {
    // SAFETY: as for `Attached`: one system call at a time, and no
    // reference outlives the call that took it.
    unsafe { &mut *DISK.0.get() }
}

/// Set up the disk in virtio-mmio slot `slot` (a driver claimed it) on
/// the kernel's queue: `ENODEV` if the slot holds no disk this code can
/// drive. A disk set up before in another slot is reset first (it shares
/// the queue), and its holder's requests fail `ENODEV`.
pub fn attach(slot: u64) -> Result<(), Errno> {
    let i = usize::try_from(slot)
        .ok()
        .filter(|i| *i < MMIO_SLOTS)
        .ok_or(Errno::ENODEV)?;
    let regs = Mmio::fixed(slot_base(i), MMIO_SLOT);
    if !is_disk(regs) {
        return Err(Errno::ENODEV);
    }
    if let Some(old) = attached().take() {
        old.regs.write32(STATUS, 0);
    }
    // A fresh queue: a used index left from an earlier disk would read as
    // a completion.
    for word in &QUEUE.words {
        word.store(0, Ordering::Relaxed);
    }
    let mut disk = Disk {
        slot,
        regs,
        queue: &QUEUE,
        capacity: 0,
        read_only: false,
        avail_idx: 0,
        broken: false,
    };
    if let Err(e) = disk.init() {
        disk.regs.write32(STATUS, FAILED);
        return Err(e);
    }
    *attached() = Some(disk);
    Ok(())
}

/// Request `op` to the disk attached in `slot`, `len` bytes at `buf`
/// (checked against the caller by the kernel) for sector `sector`.
pub fn request(slot: u64, op: BlockOp, sector: u64, buf: u64, len: u64) -> Result<u64, Errno> {
    let disk = attached()
        .as_mut()
        .filter(|d| d.slot == slot)
        .ok_or(Errno::ENODEV)?;
    let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
    match op {
        BlockOp::Capacity => Ok(disk.capacity),
        BlockOp::ReadOnly => Ok(u64::from(disk.read_only)),
        BlockOp::Read => disk.transfer(REQ_IN, sector, buf, len).map(|()| 0),
        BlockOp::Write if disk.read_only => Err(Errno::EROFS),
        BlockOp::Write => disk.transfer(REQ_OUT, sector, buf, len).map(|()| 0),
    }
}

/// Where virtio-mmio slot `i`'s registers are.
pub(super) const fn slot_base(i: usize) -> usize {
    MMIO_BASE + i * MMIO_SLOT
}

/// Whether the slot at `r` holds a virtio block device.
pub(super) fn is_disk(r: Mmio) -> bool {
    r.read32(MAGIC) == MAGIC_VALUE && r.read32(DEVICE_ID) == BLOCK_DEVICE
}

impl QueueMemory {
    fn addr(&self) -> u64 {
        self.words.as_ptr() as u64
    }

    /// The word at byte `offset` (4-aligned, inside).
    fn word(&self, offset: usize) -> &AtomicU32 {
        &self.words[offset / 4]
    }

    /// Descriptor `i`: address, length, flags, next.
    fn describe(&self, i: usize, addr: u64, len: u32, flags: u32, next: u32) {
        let at = 16 * i;
        self.word(at).store(addr as u32, Ordering::Relaxed);
        self.word(at + 4)
            .store((addr >> 32) as u32, Ordering::Relaxed);
        self.word(at + 8).store(len, Ordering::Relaxed);
        self.word(at + 12)
            .store(flags | (next << 16), Ordering::Relaxed);
    }
}

/// A polled virtio-blk disk on the kernel's queue.
struct Disk {
    slot: u64,
    regs: Mmio,
    queue: &'static QueueMemory,
    capacity: u64,
    read_only: bool,
    avail_idx: u16,
    /// A request timed out: the queue state is unknown, refuse more.
    broken: bool,
}

impl Disk {
    fn init(&mut self) -> Result<(), Errno> {
        let r = self.regs;
        let modern = match r.read32(VERSION) {
            1 => false,
            2 => true,
            _ => return Err(Errno::ENODEV),
        };
        r.write32(STATUS, 0);
        let mut status = ACKNOWLEDGE;
        r.write32(STATUS, status);
        status |= DRIVER;
        r.write32(STATUS, status);

        r.write32(DEVICE_FEATURES_SEL, 0);
        self.read_only = r.read32(DEVICE_FEATURES) & F_RO != 0;
        r.write32(DRIVER_FEATURES_SEL, 0);
        r.write32(DRIVER_FEATURES, 0);
        if modern {
            r.write32(DEVICE_FEATURES_SEL, 1);
            if r.read32(DEVICE_FEATURES) & F_VERSION_1 == 0 {
                return Err(Errno::ENODEV);
            }
            r.write32(DRIVER_FEATURES_SEL, 1);
            r.write32(DRIVER_FEATURES, F_VERSION_1);
            status |= FEATURES_OK;
            r.write32(STATUS, status);
            if r.read32(STATUS) & FEATURES_OK == 0 {
                return Err(Errno::ENODEV);
            }
        } else {
            r.write32(GUEST_PAGE_SIZE, PAGE as u32);
        }

        r.write32(QUEUE_SEL, 0);
        if r.read32(QUEUE_NUM_MAX) < QUEUE_SIZE {
            return Err(Errno::ENODEV);
        }
        let base = self.queue.addr();
        if modern {
            if r.read32(QUEUE_READY) != 0 {
                return Err(Errno::EBUSY);
            }
            r.write32(QUEUE_NUM, QUEUE_SIZE);
            for (reg, addr) in [
                (QUEUE_DESC, base),
                (QUEUE_DRIVER, base + AVAIL as u64),
                (QUEUE_DEVICE, base + USED as u64),
            ] {
                r.write32(reg, addr as u32);
                r.write32(reg + 4, (addr >> 32) as u32);
            }
        } else {
            if r.read32(QUEUE_PFN) != 0 {
                return Err(Errno::EBUSY);
            }
            r.write32(QUEUE_NUM, QUEUE_SIZE);
            r.write32(QUEUE_ALIGN, PAGE as u32);
        }
        // No interrupts: we poll. Ring entries stay 0 (every chain starts
        // at descriptor 0), the index starts at 0.
        self.queue
            .word(AVAIL)
            .store(AVAIL_NO_INTERRUPT, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if modern {
            r.write32(QUEUE_READY, 1);
        } else {
            let pfn = u32::try_from(base / PAGE as u64).map_err(|_| Errno::ENODEV)?;
            r.write32(QUEUE_PFN, pfn);
        }
        status |= DRIVER_OK;
        r.write32(STATUS, status);

        self.capacity = loop {
            let generation = r.read32(CONFIG_GENERATION);
            let low = r.read32(CONFIG_CAPACITY);
            let high = r.read32(CONFIG_CAPACITY + 4);
            // Legacy devices have no generation counter (reads 0).
            if !modern || r.read32(CONFIG_GENERATION) == generation {
                break u64::from(low) | (u64::from(high) << 32);
            }
        };
        Ok(())
    }

    /// One request of `len` bytes at `data` for sector `sector`.
    fn request(&mut self, kind: u32, sector: u64, data: u64, len: usize) -> Result<(), Errno> {
        if self.broken {
            return Err(Errno::EIO);
        }
        let q = self.queue;
        let header = q.addr() + HEADER as u64;
        q.word(HEADER).store(kind, Ordering::Relaxed);
        q.word(HEADER + 4).store(0, Ordering::Relaxed);
        q.word(HEADER + 8).store(sector as u32, Ordering::Relaxed);
        q.word(HEADER + 12)
            .store((sector >> 32) as u32, Ordering::Relaxed);
        q.word(STATUS_BYTE).store(0xFF, Ordering::Relaxed);
        let data_flags = if kind == REQ_IN { DESC_WRITE } else { 0 };
        q.describe(0, header, 16, DESC_NEXT, 1);
        q.describe(1, data, len as u32, DESC_NEXT | data_flags, 2);
        q.describe(2, q.addr() + STATUS_BYTE as u64, 1, DESC_WRITE, 0);

        // Publish: descriptors before the index, the index before the
        // notification.
        fence(Ordering::SeqCst);
        let idx = self.avail_idx.wrapping_add(1);
        q.word(AVAIL).store(
            AVAIL_NO_INTERRUPT | (u32::from(idx) << 16),
            Ordering::Release,
        );
        self.avail_idx = idx;
        fence(Ordering::SeqCst);
        self.regs.write32(QUEUE_NOTIFY, 0);

        let mut done = false;
        for _ in 0..POLLS {
            if (q.word(USED).load(Ordering::Acquire) >> 16) as u16 == idx {
                done = true;
                break;
            }
            core::hint::spin_loop();
        }
        fence(Ordering::SeqCst);
        let pending = self.regs.read32(INTERRUPT_STATUS);
        self.regs.write32(INTERRUPT_ACK, pending);
        if !done {
            // Reset the device: a late completion must not write a
            // buffer its caller has moved on from.
            self.regs.write32(STATUS, 0);
            self.broken = true;
            return Err(Errno::EIO);
        }
        match q.word(STATUS_BYTE).load(Ordering::Acquire) & 0xFF {
            0 => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    /// One request of `len` bytes (whole sectors, at most
    /// [`MAX_REQUEST`]) at `data` from sector `first`, inside the disk.
    fn transfer(&mut self, kind: u32, first: u64, data: u64, len: usize) -> Result<(), Errno> {
        if len == 0 || len > MAX_REQUEST {
            return Err(Errno::EINVAL);
        }
        check_sectors(self.capacity, first, len)?;
        self.request(kind, first, data, len)
    }
}

/// Check a transfer of `len` bytes from sector `first` on a disk of
/// `capacity` sectors: whole sectors, inside (`EINVAL` otherwise).
pub fn check_sectors(capacity: u64, first: u64, len: usize) -> Result<(), Errno> {
    if !len.is_multiple_of(SECTOR) {
        return Err(Errno::EINVAL);
    }
    let end = first
        .checked_add((len / SECTOR) as u64)
        .ok_or(Errno::EINVAL)?;
    if end > capacity {
        return Err(Errno::EINVAL);
    }
    Ok(())
}
