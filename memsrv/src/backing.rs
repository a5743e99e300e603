//! Storage handed to backing devices (`AllocBacking`/`FreeBacking`):
//! contiguous zeroed runs of arena pages a driver keeps its objects in, so
//! that a direct mapping is the address where the bytes already are.
//!
//! A run belongs to the driver that asked for it and is counted apart from
//! copies (`Shmem:` in `/proc/meminfo`, not `MmapCopy:`). When the driver
//! dies its runs become orphans, freed once no direct region points into
//! them any more. A driver may hand out only addresses inside its own runs
//! (or outside the arena: device memory), so no direct mapping can alias a
//! page the server owns for someone else.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::nommu::Nommu;
use crate::page_alloc::order_for;
use crate::region::{DriverId, ObjectKey};
use crate::vm_flags::is_copy;
use crate::PhysicalMemory;
use protocol::{Errno, PAGE_SIZE};

/// One run of pages a driver got with `AllocBacking`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackingRun {
    pub driver: DriverId,
    pub pages: u64,
    /// The driver died; the run goes once no region points into it.
    pub orphan: bool,
    /// The uid the pages are charged to ([`crate::charge`]), if any.
    pub payer: Option<u32>,
}

/// Every run, keyed by its first address.
#[derive(Default, Debug)]
pub struct BackingRuns {
    pub runs: BTreeMap<u64, BackingRun>,
    /// Pages held by all runs (`Shmem`).
    pub pages: u64,
}

impl BackingRuns {
    /// The run holding `addr`, with its start and end.
    pub fn containing(&self, addr: u64) -> Option<(u64, u64, BackingRun)> {
        let (&start, run) = self.runs.range(..=addr).next_back()?;
        let end = start.saturating_add(run.pages.saturating_mul(PAGE_SIZE));
        (addr < end).then_some((start, end, *run))
    }

    /// Whether `[start, end)` is covered by adjacent runs that all pass
    /// `ok`.
    pub fn covers(&self, start: u64, end: u64, ok: impl Fn(&BackingRun) -> bool) -> bool {
        let mut at = start;
        while at < end {
            match self.containing(at) {
                Some((_, run_end, run)) if ok(&run) => at = run_end,
                _ => return false,
            }
        }
        true
    }

    fn insert(&mut self, start: u64, run: BackingRun) {
        if run.pages > 0 {
            self.runs.insert(start, run);
        }
    }
}

impl Nommu {
    /// `AllocBacking`: `pages` contiguous zeroed pages owned by `driver`.
    pub fn alloc_backing<M: PhysicalMemory>(
        &mut self,
        driver: DriverId,
        pages: u64,
        memory: &mut M,
    ) -> Result<u64, Errno> {
        if pages == 0 {
            return Err(Errno::EINVAL);
        }
        if order_for(pages) > self.pages.max_order() {
            return Err(Errno::ENOMEM);
        }
        // Trimming by one page keeps exactly `pages`.
        let (first, kept) = self.alloc_pages(pages, 1).ok_or(Errno::ENOMEM)?;
        let start = self.addr_of(first);
        let len = kept * PAGE_SIZE;
        memory.fill(start, len, 0);
        self.backing.insert(
            start,
            BackingRun {
                driver,
                pages: kept,
                orphan: false,
                payer: None,
            },
        );
        self.backing.pages += kept;
        Ok(start)
    }

    /// `FreeBacking`: give back `pages` pages at `addr`, any page-aligned
    /// part of one of the driver's runs that no direct region points into.
    pub fn free_backing(&mut self, driver: DriverId, addr: u64, pages: u64) -> Result<(), Errno> {
        if pages == 0 || !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = pages.checked_mul(PAGE_SIZE).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        let (start, run_end, run) = self.backing.containing(addr).ok_or(Errno::EINVAL)?;
        if run.driver != driver || run.orphan || end > run_end {
            return Err(Errno::EINVAL);
        }
        if self
            .direct_ranges_of(driver)
            .any(|(s, e)| s < end && addr < e)
        {
            // A mapping still shows these pages.
            return Err(Errno::EBUSY);
        }
        self.backing.runs.remove(&start);
        let head = (addr - start) / PAGE_SIZE;
        let tail = (run_end - end) / PAGE_SIZE;
        self.backing
            .insert(start, BackingRun { pages: head, ..run });
        self.backing.insert(end, BackingRun { pages: tail, ..run });
        self.release_backing_pages(addr, pages, run.payer);
        Ok(())
    }

    /// Whether a driver may hand out `[start, start+len)` for a direct
    /// mapping: covered by its own live runs (adjacent runs join), or
    /// wholly outside the arena (device memory the server does not manage).
    pub fn direct_range_ok(&self, driver: DriverId, start: u64, len: u64) -> bool {
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        let arena_end = self.base.saturating_add(self.arena_size);
        if end <= self.base || start >= arena_end {
            return true;
        }
        self.backing
            .covers(start, end, |run| run.driver == driver && !run.orphan)
    }

    /// The extents of the direct regions of `driver`'s objects.
    pub fn direct_ranges_of(&self, driver: DriverId) -> impl Iterator<Item = (u64, u64)> + '_ {
        let from = ObjectKey { driver, object: 0 };
        let to = ObjectKey {
            driver,
            object: u64::MAX,
        };
        self.files
            .range(from..=to)
            .flat_map(|(_, maps)| maps.regions.iter())
            .filter_map(|id| self.regions.get(*id))
            .filter(|r| !is_copy(r.flags))
            .map(|r| (r.start, r.end.max(r.top)))
    }

    /// The driver died: its runs become orphans, and those no region
    /// points into are freed now.
    pub fn orphan_backing(&mut self, driver: DriverId) {
        for run in self.backing.runs.values_mut() {
            if run.driver == driver {
                run.orphan = true;
            }
        }
        self.free_orphans(driver);
    }

    /// Free the orphan runs of a dead `driver` that no region points into.
    pub fn free_orphans(&mut self, driver: DriverId) {
        let ranges: Vec<(u64, u64)> = self.direct_ranges_of(driver).collect();
        let idle: Vec<(u64, BackingRun)> = self
            .backing
            .runs
            .iter()
            .filter(|(_, r)| r.driver == driver && r.orphan)
            .map(|(&s, &r)| (s, r))
            .filter(|&(s, r)| {
                let e = s.saturating_add(r.pages.saturating_mul(PAGE_SIZE));
                !ranges.iter().any(|&(a, b)| a < e && s < b)
            })
            .collect();
        for (start, run) in idle {
            self.backing.runs.remove(&start);
            self.release_backing_pages(start, run.pages, run.payer);
        }
    }

    fn release_backing_pages(&mut self, start: u64, pages: u64, payer: Option<u32>) {
        if pages == 0 || !self.in_arena(start, start.saturating_add(pages * PAGE_SIZE)) {
            return;
        }
        let first = self.page_of(start);
        // A run is at most one maximal block, so the count fits.
        self.pages.free_range(first, pages as u32);
        if let Some(uid) = payer {
            self.charges.uncharge_store(uid, pages);
        }
        self.backing.pages = self.backing.pages.saturating_sub(pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::sim::SimMemory;

    const P: u64 = PAGE_SIZE;
    const BASE: u64 = 0x10_0000;

    fn nommu() -> (Nommu, SimMemory) {
        (
            Nommu::for_tests(BASE, 64 * P, 4),
            SimMemory::new(BASE, 64 * P),
        )
    }

    #[test]
    fn runs_are_zeroed_counted_and_split_on_free() {
        let (mut nommu, mut mem) = nommu();
        let d = DriverId(1);
        let a = nommu.alloc_backing(d, 5, &mut mem).unwrap();
        assert!(mem.slice(a, 5 * P).iter().all(|&b| b == 0));
        assert_eq!((nommu.backing.pages, nommu.pages.free_pages()), (5, 59));
        assert_eq!(nommu.alloc_backing(d, 0, &mut mem), Err(Errno::EINVAL));
        assert_eq!(nommu.alloc_backing(d, 17, &mut mem), Err(Errno::ENOMEM));
        // Not the driver's, not aligned, past the run.
        assert_eq!(nommu.free_backing(DriverId(2), a, 1), Err(Errno::EINVAL));
        assert_eq!(nommu.free_backing(d, a + 1, 1), Err(Errno::EINVAL));
        assert_eq!(nommu.free_backing(d, a, 6), Err(Errno::EINVAL));
        // A hole in the middle leaves two runs.
        nommu.free_backing(d, a + P, 2).unwrap();
        assert_eq!(nommu.backing.runs.len(), 2);
        assert_eq!(nommu.backing.pages, 3);
        assert!(nommu.direct_range_ok(d, a + 3 * P + 0x230, P));
        assert!(!nommu.direct_range_ok(d, a + 3 * P + 0x230, 2 * P));
        assert!(!nommu.direct_range_ok(d, a + P, P), "freed");
        let b = nommu.alloc_backing(d, 1, &mut mem).unwrap();
        let c = nommu.alloc_backing(d, 1, &mut mem).unwrap();
        let (lo, hi) = (b.min(c), b.max(c));
        assert_eq!(hi - lo, P, "adjacent single pages");
        assert!(nommu.direct_range_ok(d, lo, 2 * P), "adjacent runs join");
        assert!(!nommu.direct_range_ok(DriverId(2), a, P));
        assert!(
            nommu.direct_range_ok(d, 0x4000_0000, P),
            "outside the arena"
        );
        nommu.orphan_backing(d);
        assert_eq!((nommu.backing.pages, nommu.pages.free_pages()), (0, 64));
        assert!(
            !nommu.direct_range_ok(d, lo, P),
            "orphans are not handed out"
        );
        nommu.pages.check().unwrap();
    }
}
