//! The shared mapping state of the whole machine — pages, regions and
//! address spaces — with the `mm/nommu.c` operations implemented on it in
//! [`crate::mmap`] and [`crate::munmap`]. Processes and connections live
//! elsewhere ([`crate::process`]); this part only knows address spaces.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::backing::BackingRuns;
use crate::charge::Payer;
use crate::mm::{Mm, MmId, VmaKey};
use crate::page_alloc::{PageAllocator, PageIndex, Placement};
use crate::region::{ObjectKey, RegionId, RegionRegistry};
use protocol::PAGE_SIZE;

/// Limits and switches the mapping code consults (from [`crate::Config`]).
#[derive(Clone, Copy, Debug)]
pub struct Tunables {
    pub nr_trim_pages: u32,
    pub allow_uninitialized: bool,
    pub max_map_count: usize,
    /// `ULONG_MAX` of the clients' ABI: lengths and page offsets wrap here.
    pub ulong_max: u64,
}

/// The mappings and regions of one backing object (Linux's
/// `i_mmap` interval tree and the part of the region tree that holds the
/// object), so the §3 reuse search and the §7.5 truncate checks never walk
/// the whole registry.
#[derive(Default, Debug)]
pub struct ObjectMaps {
    /// Shareable regions of the object by `(pgoff, id)`.
    pub shareable: BTreeSet<(u64, RegionId)>,
    /// Every region of the object.
    pub regions: BTreeSet<RegionId>,
    /// Every mapping of the object, in every address space.
    pub vmas: BTreeSet<(MmId, VmaKey)>,
}

impl ObjectMaps {
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty() && self.vmas.is_empty()
    }
}

/// What the mapping code tells the file side when a file mapping or region
/// goes away (the object's reference count, `CloseVma`, dead drivers'
/// storage). Anonymous memory never produces one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A mapping of `key` was removed; `direct` if the driver approved it
    /// (its region is not a copy).
    VmaGone {
        key: ObjectKey,
        start: u64,
        len: u64,
        direct: bool,
    },
    /// A region of `key` left the registry.
    RegionGone {
        key: ObjectKey,
        id: RegionId,
        direct: bool,
    },
}

pub struct Nommu {
    /// First byte of the arena.
    pub base: u64,
    pub arena_size: u64,
    pub pages: PageAllocator,
    pub regions: RegionRegistry,
    pub mms: BTreeMap<MmId, Mm>,
    /// `mmap_pages_allocated`: pages held by copy regions.
    pub mmap_copy_pages: u64,
    pub tunables: Tunables,
    /// Per-object index of regions and mappings.
    pub files: BTreeMap<ObjectKey, ObjectMaps>,
    /// File mappings and regions removed since the server last looked.
    pub notices: Vec<Notice>,
    /// Storage handed to drivers (`AllocBacking`).
    pub backing: BackingRuns,
    /// SysV shared memory segments (spec §7.1–§7.4).
    pub shm: crate::shm::ShmTable,
    /// Who holds the copy pages and segments, against the limits.
    pub charges: crate::charge::Charges,
    /// Pages granted ahead of time to connections ([`crate::reserve`]).
    pub reserves: crate::reserve::Reserves,
    next_mm: u64,
    next_vma_seq: u64,
}

impl Nommu {
    pub fn new(
        base: u64,
        arena_size: u64,
        max_order: u32,
        placement: Placement,
        tunables: Tunables,
    ) -> Self {
        // The caller checked that the page count fits a PageIndex.
        let npages = (arena_size / PAGE_SIZE) as PageIndex;
        Self {
            base,
            arena_size,
            pages: PageAllocator::new(npages, max_order, placement),
            regions: RegionRegistry::default(),
            mms: BTreeMap::new(),
            mmap_copy_pages: 0,
            tunables,
            files: BTreeMap::new(),
            notices: Vec::new(),
            backing: BackingRuns::default(),
            shm: crate::shm::ShmTable::default(),
            charges: crate::charge::Charges::default(),
            reserves: crate::reserve::Reserves::default(),
            next_mm: 1,
            next_vma_seq: 0,
        }
    }

    /// A machine of `arena_size` bytes at `base` for unit tests: the
    /// default placement, one trim page, no uninitialized mappings, 100
    /// mappings per address space and a 64-bit client ABI.
    #[cfg(test)]
    pub(crate) fn for_tests(base: u64, arena_size: u64, max_order: u32) -> Self {
        let tunables = Tunables {
            nr_trim_pages: 1,
            allow_uninitialized: false,
            max_map_count: 100,
            ulong_max: u64::MAX,
        };
        Self::new(base, arena_size, max_order, Placement::default(), tunables)
    }

    /// A new, empty address space with one user.
    pub fn new_mm(&mut self) -> MmId {
        let id = MmId(self.next_mm);
        self.next_mm += 1;
        self.mms.insert(id, Mm::new());
        id
    }

    /// Another process uses `mm` (`CLONE_VM`).
    pub fn get_mm(&mut self, mm: MmId) {
        if let Some(m) = self.mms.get_mut(&mm) {
            m.users += 1;
        }
    }

    /// `mmput`: a user is gone; the last one tears the address space down.
    pub fn put_mm(&mut self, mm: MmId) {
        let last = match self.mms.get_mut(&mm) {
            Some(m) => {
                m.users = m.users.saturating_sub(1);
                m.users == 0
            }
            None => false,
        };
        if last {
            if let Some(mut m) = self.mms.remove(&mm) {
                self.exit_mmap(mm, &mut m);
                self.charges.mm_gone(mm);
            }
        }
    }

    pub fn next_vma_key(&mut self, start: u64, end: u64) -> VmaKey {
        let seq = self.next_vma_seq;
        self.next_vma_seq += 1;
        VmaKey { start, end, seq }
    }

    pub fn addr_of(&self, page: PageIndex) -> u64 {
        self.base + u64::from(page) * PAGE_SIZE
    }

    /// The page index of an arena address (`addr` must lie in the arena).
    pub fn page_of(&self, addr: u64) -> PageIndex {
        ((addr - self.base) / PAGE_SIZE) as PageIndex
    }

    /// Whether `[start, end)` lies inside the arena.
    pub fn in_arena(&self, start: u64, end: u64) -> bool {
        start >= self.base && start <= end && end - self.base <= self.arena_size
    }

    /// `free_page_series`: give `[from, to)` back, uncount it from
    /// `MmapCopy` and uncharge it from `payer`.
    pub fn free_page_series(&mut self, from: u64, to: u64, payer: Option<Payer>) {
        if to <= from || !self.in_arena(from, to) {
            return;
        }
        let first = self.page_of(from);
        let count = ((to - from) / PAGE_SIZE) as u32;
        self.release_pages(first, count);
        self.charges.uncharge_copy(payer, u64::from(count));
        self.mmap_copy_pages = self.mmap_copy_pages.saturating_sub(u64::from(count));
    }

    pub fn vma_count(&self) -> usize {
        self.mms.values().map(Mm::map_count).sum()
    }
}

/// `PAGE_ALIGN`, `None` on wrap-around.
pub fn page_align(len: u64) -> Option<u64> {
    Some(len.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}
