//! `munmap` and the teardown paths (spec §3.5, §5): `do_munmap`,
//! `split_vma`, `shrink_vma`, `delete_vma`, `put_region`, `exit_mmap`.

use protocol::{Errno, PAGE_SIZE};

use crate::mm::{Mm, MmId, Vma, VmaKey};
use crate::nommu::{page_align, Nommu, Notice};
use crate::region::{ObjectKey, Region, RegionId};
use crate::shm::SHM_DRIVER;
use crate::vm_flags::is_copy;

impl Nommu {
    /// `do_munmap` (Legacy lookup: `start` must lie inside a mapping).
    pub fn do_munmap(&mut self, mm_id: MmId, start: u64, len: u64) -> Result<(), Errno> {
        let len = page_align(len).ok_or(Errno::EINVAL)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        // Linux would wrap; a range past the top of the address space names
        // no mapping, so refuse it as one that matches nothing.
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        // The steps below need the address space and the rest of the state
        // at once, so the map of address spaces is set aside for the call
        // (a move of its root; none of those steps looks at another address
        // space) where removing and re-inserting the one address space
        // would rebalance the map twice.
        let mut mms = core::mem::take(&mut self.mms);
        let result = match mms.get_mut(&mm_id) {
            Some(mm) => self.munmap_in(mm_id, mm, start, end),
            None => Err(Errno::EINVAL),
        };
        self.mms = mms;
        result
    }

    /// Whether `do_munmap(mm_id, start, len)` would cut a hole in an
    /// anonymous mapping (`split_vma`: one mapping more).
    pub fn munmap_splits(&self, mm_id: MmId, start: u64, len: u64) -> bool {
        let Some(mm) = self.mms.get(&mm_id) else {
            return false;
        };
        let end = page_align(len).and_then(|len| start.checked_add(len));
        match (mm.find_vma_entry(start), end) {
            (Some((found, vma)), Some(end)) => {
                vma.backing.is_none() && start > found.start && end < found.end
            }
            _ => false,
        }
    }

    fn munmap_in(&mut self, mm_id: MmId, mm: &mut Mm, start: u64, end: u64) -> Result<(), Errno> {
        let (found, vma) = mm.find_vma_entry(start).ok_or(Errno::EINVAL)?;
        let file_backed = vma.backing.is_some();
        if file_backed {
            // Partial unmapping is impossible: walk on until a mapping ends
            // exactly at `end`; only that one goes.
            let mut at = Some(found);
            while let Some(key) = at {
                if start > key.start {
                    return Err(Errno::EINVAL);
                }
                if end == key.end {
                    self.delete_vma(mm_id, mm, &key);
                    return Ok(());
                }
                at = mm.next_after(&key);
            }
            return Err(Errno::EINVAL);
        }
        // Anonymous: the range must be a page-aligned part of this mapping.
        if start == found.start && end == found.end {
            self.delete_vma(mm_id, mm, &found);
            return Ok(());
        }
        if start < found.start || end > found.end {
            return Err(Errno::EINVAL);
        }
        if !start.is_multiple_of(PAGE_SIZE) || (end != found.end && !end.is_multiple_of(PAGE_SIZE))
        {
            return Err(Errno::EINVAL);
        }
        let mut key = found;
        if start != found.start && end != found.end {
            key = self.split_vma(mm, &found, start)?;
        }
        self.shrink_vma(mm, &key, start, end);
        Ok(())
    }

    /// `split_vma(..., new_below = 1)`: cut the anonymous mapping at `addr`
    /// into a new lower mapping with its own new lower region; the original
    /// keeps the part from `addr`. Returns the original's new key.
    pub fn split_vma(&mut self, mm: &mut Mm, key: &VmaKey, addr: u64) -> Result<VmaKey, Errno> {
        let vma = mm.get(key).cloned().ok_or(Errno::EINVAL)?;
        if vma.backing.is_some() {
            return Err(Errno::ENOMEM);
        }
        if mm.map_count() >= self.tunables.max_map_count {
            return Err(Errno::ENOMEM);
        }
        let old = self.regions.get(vma.region).cloned().ok_or(Errno::EINVAL)?;
        let npages = (addr - key.start) / PAGE_SIZE;
        let lower_region = self.regions.add(Region {
            end: addr,
            top: addr,
            ..old.clone()
        });
        let lower_key = self.next_vma_key(key.start, addr);
        mm.insert(
            lower_key,
            Vma {
                region: lower_region,
                ..vma.clone()
            },
        );
        // The upper part keeps the original records, moved up.
        self.regions.set_start(vma.region, addr);
        if let Some(r) = self.regions.get_mut(vma.region) {
            r.pgoff = old.pgoff.wrapping_add(npages);
        }
        let upper = mm.rekey(key, addr, key.end).ok_or(Errno::EINVAL)?;
        if let Some(v) = mm.get_mut(&upper) {
            v.pgoff = vma.pgoff.wrapping_add(npages);
        }
        Ok(upper)
    }

    /// `shrink_vma`: cut `[from, to)` off the head or the tail of an
    /// anonymous mapping and its region, freeing the pages (for a tail cut,
    /// the untrimmed slack up to the old top as well).
    pub fn shrink_vma(&mut self, mm: &mut Mm, key: &VmaKey, from: u64, to: u64) {
        let Some(region_id) = mm.get(key).map(|v| v.region) else {
            return;
        };
        let Some(region) = self.regions.get(region_id).cloned() else {
            return;
        };
        let (free_from, free_to) = if from > key.start {
            mm.rekey(key, key.start, from);
            if let Some(r) = self.regions.get_mut(region_id) {
                r.end = from;
                r.top = from;
            }
            (from, region.top)
        } else {
            // Linux leaves pgoff alone when the head goes.
            mm.rekey(key, to, key.end);
            self.regions.set_start(region_id, to);
            (from, to)
        };
        if is_copy(region.flags) {
            self.free_page_series(free_from, free_to, region.payer);
        }
    }

    /// `delete_vma_from_mm` + `delete_vma`: the mapping goes and drops its
    /// region usage. A file mapping leaves the object's index and tells the
    /// file side (its `close` callback, its object reference).
    pub fn delete_vma(&mut self, mm_id: MmId, mm: &mut Mm, key: &VmaKey) {
        if let Some(vma) = mm.remove(key) {
            if let Some(b) = &vma.backing {
                let direct = self
                    .regions
                    .get(vma.region)
                    .is_some_and(|r| !is_copy(r.flags));
                if let Some(maps) = self.files.get_mut(&b.key) {
                    maps.vmas.remove(&(mm_id, *key));
                }
                self.notices.push(Notice::VmaGone {
                    key: b.key,
                    start: key.start,
                    len: key.end - key.start,
                    direct,
                });
            }
            self.put_region(vma.region);
            if let Some(b) = vma.backing.as_ref().filter(|b| b.key.driver == SHM_DRIVER) {
                self.shm_vma_gone(b.key.object);
            }
        }
    }

    /// `__put_nommu_region`: the last user frees a copy's `[start, top)`.
    pub fn put_region(&mut self, id: RegionId) {
        if let Some(r) = self.regions.put(id) {
            if is_copy(r.flags) {
                self.free_page_series(r.start, r.top, r.payer);
            }
            if let Some(b) = &r.backing {
                self.unindex_region(b.key, id, r.pgoff);
                self.notices.push(Notice::RegionGone {
                    key: b.key,
                    id,
                    direct: !is_copy(r.flags),
                });
            }
        }
    }

    /// Take a file region out of its object's index.
    fn unindex_region(&mut self, key: ObjectKey, id: RegionId, pgoff: u64) {
        if let Some(maps) = self.files.get_mut(&key) {
            maps.shareable.remove(&(pgoff, id));
            maps.regions.remove(&id);
            if maps.is_empty() {
                self.files.remove(&key);
            }
        }
    }

    /// `exit_mmap`: every mapping goes, in address order (spec §5.2).
    pub fn exit_mmap(&mut self, mm_id: MmId, mm: &mut Mm) {
        while let Some(key) = mm.first() {
            self.delete_vma(mm_id, mm, &key);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The file-backed branch, on hand-made file mappings (no descriptor
    //! table exists yet to make them through mmap).
    use super::*;
    use crate::region::BackingObject;
    use crate::vm_flags::{VM_MAPPED_COPY, VM_MAYOVERLAY, VM_MAYREAD, VM_READ};
    use alloc::sync::Arc;

    const P: u64 = PAGE_SIZE;
    const BASE: u64 = 0x10_0000;

    fn nommu() -> (Nommu, MmId) {
        let mut nommu = Nommu::for_tests(BASE, 64 * P, 10);
        let mm = nommu.new_mm();
        (nommu, mm)
    }

    fn file() -> Arc<BackingObject> {
        Arc::new(BackingObject::test_file())
    }

    fn region(nommu: &mut Nommu, start: u64, len: u64, copy: bool) -> RegionId {
        let flags = VM_READ | VM_MAYREAD | VM_MAYOVERLAY | if copy { VM_MAPPED_COPY } else { 0 };
        nommu.regions.add(Region {
            start,
            end: start + len,
            top: (start + len + P - 1) & !(P - 1),
            pgoff: 0,
            flags,
            backing: Some(file()),
            usage: 0,
            icache_flushed: false,
            payer: None,
        })
    }

    fn map(nommu: &mut Nommu, mm: MmId, region: RegionId, start: u64, len: u64) -> VmaKey {
        nommu.regions.get_mut(region).unwrap().usage += 1;
        let flags = nommu.regions.get(region).unwrap().flags;
        let key = nommu.next_vma_key(start, start + len);
        nommu.mms.get_mut(&mm).unwrap().insert(
            key,
            Vma {
                region,
                pgoff: 0,
                flags,
                backing: Some(file()),
            },
        );
        key
    }

    #[test]
    fn vector_72_unaligned_direct_mapping_goes_whole() {
        let (mut nommu, mm) = nommu();
        let x = 0x4000_1230;
        let r = region(&mut nommu, x, 8192, false);
        map(&mut nommu, mm, r, x, 8192);
        assert_eq!(nommu.do_munmap(mm, x + P, P), Err(Errno::EINVAL));
        assert_eq!(nommu.do_munmap(mm, x, 8192), Ok(()));
        assert_eq!(nommu.regions.len(), 0);
        assert_eq!(nommu.pages.free_pages(), 64);
    }

    #[test]
    fn vector_69_file_copies_cannot_be_cut() {
        let (mut nommu, mm) = nommu();
        let (first, kept) = nommu.pages.alloc_copy(2, 1).unwrap();
        nommu.mmap_copy_pages += kept;
        let a = nommu.addr_of(first);
        let r = region(&mut nommu, a, 2 * P, true);
        map(&mut nommu, mm, r, a, 2 * P);
        assert_eq!(nommu.do_munmap(mm, a, P), Err(Errno::EINVAL));
        assert_eq!(nommu.do_munmap(mm, a + P, P), Err(Errno::EINVAL));
        assert_eq!(nommu.do_munmap(mm, a, 2 * P), Ok(()));
        assert_eq!((nommu.pages.free_pages(), nommu.mmap_copy_pages), (64, 0));
    }

    #[test]
    fn the_walk_removes_the_later_mapping_that_ends_at_end() {
        let (mut nommu, mm) = nommu();
        let x = 0x5000_0000;
        let r = region(&mut nommu, x, 4 * P, false);
        let small = map(&mut nommu, mm, r, x, 2 * P);
        let big = map(&mut nommu, mm, r, x, 4 * P);
        assert_eq!(nommu.do_munmap(mm, x, 4 * P), Ok(()));
        let m = &nommu.mms[&mm];
        assert!(m.get(&small).is_some() && m.get(&big).is_none());
        assert_eq!(nommu.regions.get(r).unwrap().usage, 1);
        // No mapping ends at x + 3P.
        assert_eq!(nommu.do_munmap(mm, x, 3 * P), Err(Errno::EINVAL));
    }

    #[test]
    fn vector_53_identical_mappings_go_one_at_a_time() {
        let (mut nommu, mm) = nommu();
        let x = 0x5000_0000;
        let r = region(&mut nommu, x, 2 * P, false);
        map(&mut nommu, mm, r, x, 2 * P);
        map(&mut nommu, mm, r, x, 2 * P);
        assert_eq!(nommu.do_munmap(mm, x, 2 * P), Ok(()));
        assert_eq!(nommu.regions.get(r).unwrap().usage, 1);
        assert_eq!(nommu.do_munmap(mm, x, 2 * P), Ok(()));
        assert!(nommu.regions.get(r).is_none());
        assert_eq!(nommu.do_munmap(mm, x, 2 * P), Err(Errno::EINVAL));
    }

    #[test]
    fn file_mappings_are_never_split() {
        let (mut nommu, mm) = nommu();
        let x = 0x5000_0000;
        let r = region(&mut nommu, x, 4 * P, false);
        let key = map(&mut nommu, mm, r, x, 4 * P);
        let mut m = nommu.mms.remove(&mm).unwrap();
        assert_eq!(nommu.split_vma(&mut m, &key, x + P), Err(Errno::ENOMEM));
    }
}
