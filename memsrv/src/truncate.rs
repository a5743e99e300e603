//! Size changes of mapped files (spec §7.5): `ramfs_nommu_check_mappings`
//! and `nommu_shrink_inode_mappings`, plus the memory filesystem's checks
//! on the "truncate from 0 to N" that asks for contiguous memory.
//!
//! Shrinking fails `ETXTBSY` while a `MAP_SHARED` mapping, or (server
//! decision) a private direct mapping, covers a file page from
//! `⌊new/P⌋` on; otherwise the driver truncates and every direct region of
//! the file reaching past the new size has its `top` (and, if needed,
//! `end`) cut down to it. Copies are never cut: their pages are the
//! server's, not the file's.

use crate::nommu::{page_align, Nommu};
use crate::page_alloc::order_for;
use crate::region::ObjectKey;
use crate::vm_flags::{is_copy, VM_SHARED};
use crate::{MemoryServer, PhysicalMemory};
use protocol::{Errno, ObjectKind, PAGE_SIZE};

/// Sizes from here on cannot be a memory file's contiguous run.
const FOUR_GIB: u64 = 1 << 32;

impl Nommu {
    /// `ramfs_nommu_check_mappings`: `ETXTBSY` if a shared (or private
    /// direct) mapping of `key` covers a file page at or beyond
    /// `⌊new_size/P⌋`.
    pub fn check_truncate_mappings(&self, key: ObjectKey, new_size: u64) -> Result<(), Errno> {
        let Some(maps) = self.files.get(&key) else {
            return Ok(());
        };
        let low = new_size / PAGE_SIZE;
        for (mm_id, vk) in &maps.vmas {
            let Some(vma) = self.mms.get(mm_id).and_then(|m| m.get(vk)) else {
                continue;
            };
            let direct = self
                .regions
                .get(vma.region)
                .is_some_and(|r| !is_copy(r.flags));
            if vma.flags & VM_SHARED == 0 && !direct {
                continue;
            }
            let pages = page_align(vk.end - vk.start).map_or(u64::MAX, |l| l / PAGE_SIZE);
            if vma.pgoff.saturating_add(pages) > low {
                return Err(Errno::ETXTBSY);
            }
        }
        Ok(())
    }

    /// `nommu_shrink_inode_mappings` after the check passed: direct
    /// regions of `key` reaching past `new_size` are cut down to it.
    pub fn shrink_file_regions(&mut self, key: ObjectKey, new_size: u64) {
        let Some(maps) = self.files.get(&key) else {
            return;
        };
        let ids: alloc::vec::Vec<_> = maps.regions.iter().copied().collect();
        for id in ids {
            let Some(r) = self.regions.get_mut(id) else {
                continue;
            };
            if is_copy(r.flags) {
                continue;
            }
            let r_size = r.top - r.start;
            let r_top = r.pgoff.saturating_mul(PAGE_SIZE).saturating_add(r_size);
            if r_top <= new_size {
                continue;
            }
            let new_top = r.top.saturating_sub(r_top - new_size);
            // A region wholly past the new end keeps its extent (its
            // mappings made the check fail first, unless it lies past the
            // old end too, where Linux assumes none exist).
            if new_top > r.start {
                r.top = new_top;
                r.end = r.end.min(new_top);
            }
        }
    }
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// Whether the size of `key` may change from `old` to `new`.
    pub(crate) fn truncate_allowed(&self, key: ObjectKey, old: u64, new: u64) -> Result<(), Errno> {
        let kind = self.files.objects.get(&key).map(|o| o.info.kind);
        if kind == Some(ObjectKind::MemoryFile) && old == 0 && new > 0 {
            // The expansion wants one contiguous run of pages(new) pages.
            if new >= FOUR_GIB {
                return Err(Errno::EFBIG);
            }
            let pages = page_align(new).map_or(u64::MAX, |l| l / PAGE_SIZE);
            if order_for(pages) > self.nommu.pages.max_order() {
                return Err(Errno::EFBIG);
            }
        }
        if new < old {
            self.nommu.check_truncate_mappings(key, new)?;
        }
        Ok(())
    }

    /// The check passed: before the driver drops pages, the regions
    /// reaching past a shrunk end are cut (as `ramfs_nommu_resize` does
    /// before `truncate_setsize`), so no region points at freed storage.
    pub(crate) fn truncate_mappings(&mut self, key: ObjectKey, old: u64, new: u64) {
        if new < old {
            self.nommu.shrink_file_regions(key, new);
        }
    }

    /// The driver changed the size.
    pub(crate) fn truncate_done(&mut self, key: ObjectKey, new: u64) {
        if let Some(o) = self.files.objects.get_mut(&key) {
            o.info.size = new;
        }
    }
}
