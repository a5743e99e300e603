//! Staging buffers for leases a driver moves itself (`Transfer`, spec §7,
//! docs/protocol.md "Leases"): arena pages the server owns for the length
//! of one driver request, the bounce buffer Linux's block layer uses when
//! a device cannot reach the caller's pages (`blk_queue_bounce`).
//!
//! The driver never sees the caller's memory: a driver runs outside the
//! server's turn, and meanwhile another thread of the caller may unmap the
//! lease and the pages go to another process. So the server copies between
//! the lease (checked again when the answer comes) and a staging buffer,
//! and the driver reads or writes only the staging buffer.
//!
//! A staging buffer is freed when the driver answers. When the request
//! fails without an answer (a timeout, a reply the server could not match)
//! the driver may still write into it, so it stays the driver's until the
//! driver's connection closes ([`MemoryServer::free_orphan_stages`]).

use crate::region::DriverId;
use crate::{MemoryServer, PhysicalMemory};
use protocol::PAGE_SIZE;

/// One staging buffer: its first address and its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    pub addr: u64,
    pub pages: u64,
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// A staging buffer of at least `len` bytes (`len` > 0), or `None`
    /// when the arena has no room (the caller then moves the bytes in
    /// framed steps). Not charged to anyone, as a kernel's bounce buffer
    /// is not: it lives only while one driver request is in flight.
    pub(crate) fn alloc_stage(&mut self, len: u64) -> Option<Stage> {
        let pages = len.div_ceil(PAGE_SIZE).max(1).next_power_of_two();
        let (first, kept) = self.nommu.alloc_pages(pages, 0)?;
        Some(Stage {
            addr: self.nommu.addr_of(first),
            pages: kept,
        })
    }

    /// The driver answered: the buffer goes back.
    pub(crate) fn free_stage(&mut self, stage: Stage) {
        let first = self.nommu.page_of(stage.addr);
        self.nommu.release_pages(first, stage.pages as u32);
    }

    /// A request failed without an answer from `driver`: the buffer goes
    /// back now if the driver is gone, else when it goes.
    pub(crate) fn orphan_stage(&mut self, driver: DriverId, stage: Stage) {
        if self.files.alive(driver) {
            self.ops
                .orphan_stages
                .entry(driver)
                .or_default()
                .push(stage);
        } else {
            self.free_stage(stage);
        }
    }

    /// `driver`'s connection closed: nothing can write into the buffers
    /// its unanswered requests named any more.
    pub(crate) fn free_orphan_stages(&mut self, driver: DriverId) {
        for stage in self.ops.orphan_stages.remove(&driver).unwrap_or_default() {
            self.free_stage(stage);
        }
    }
}
