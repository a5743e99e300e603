//! Regions (Linux `vm_region`): the global, shared, reference-counted runs of
//! memory that back mappings, and their registry ordered by start address.
//!
//! Several regions may share a start address (spec §3.4 server decision), so
//! the registry's order is `(start, creation sequence)`; a region keeps a
//! stable [`RegionId`] while its start moves (munmap of its head).

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::sync::Arc;
use hashbrown::HashMap;

use crate::charge::Payer;
use crate::vm_flags::VmFlags;

/// A region's identity: its creation sequence number, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionId(pub u64);

/// A registered backing device (driver). Numbers are never reused, so a
/// restarted driver is never mistaken for the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DriverId(pub u32);

/// One object of one driver: the identity region sharing keys on (Linux's
/// inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub driver: DriverId,
    /// The driver's own handle for it.
    pub object: u64,
}

/// The object a file-backed region or mapping refers to (Linux `struct file`
/// as far as mappings need it). Anonymous memory has none.
#[derive(Debug, PartialEq, Eq)]
pub struct BackingObject {
    /// Identity of the underlying object (inode): regions of the same
    /// object are reuse candidates for each other.
    pub key: ObjectKey,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// Path shown in `/proc` maps.
    pub path: String,
}

#[cfg(test)]
impl BackingObject {
    /// The file unit tests map: object 37 of driver 1, shown as `/data/f`
    /// on device 1f:02 (vector 109's file).
    pub(crate) fn test_file() -> Self {
        Self {
            key: ObjectKey {
                driver: DriverId(1),
                object: 37,
            },
            dev_major: 0x1f,
            dev_minor: 2,
            inode: 37,
            path: "/data/f".into(),
        }
    }
}

/// One region (spec §1.3).
#[derive(Clone, Debug)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    /// End of the memory actually owned (> `end` for untrimmed copies).
    pub top: u64,
    pub pgoff: u64,
    pub flags: VmFlags,
    pub backing: Option<Arc<BackingObject>>,
    /// Mappings, in every process, that reference the region.
    pub usage: u32,
    /// Set once the first executable mapping flushed the icache; read when
    /// file-backed executable mappings arrive.
    #[allow(dead_code)]
    pub icache_flushed: bool,
    /// Whom a copy's pages `[start, top)` are charged to (none for a
    /// direct region, or a copy no call paid for).
    pub payer: Option<Payer>,
}

/// The global registry (`nommu_region_tree`).
#[derive(Default)]
pub struct RegionRegistry {
    /// The regions by id: a hash map, since only the start index needs an
    /// order (and no code walks this one), and a lookup or update there
    /// costs no tree walk.
    by_id: HashMap<RegionId, Region>,
    by_start: BTreeSet<(u64, RegionId)>,
    next_seq: u64,
}

impl RegionRegistry {
    /// `add_nommu_region`. Inlined, so that the region is built where the
    /// map keeps it rather than copied there (80 bytes, a `memcpy` call).
    #[inline(always)]
    pub fn add(&mut self, region: Region) -> RegionId {
        let id = RegionId(self.next_seq);
        self.next_seq += 1;
        self.by_start.insert((region.start, id));
        self.by_id.insert(id, region);
        id
    }

    /// One usage of region `id` is gone: the region, taken out of the
    /// registry (`delete_nommu_region`), if that was its last (one look-up
    /// either way). Inlined, so that the caller reads the fields it needs
    /// instead of a copy of the whole region.
    #[inline(always)]
    pub fn put(&mut self, id: RegionId) -> Option<Region> {
        let hashbrown::hash_map::EntryRef::Occupied(mut entry) = self.by_id.entry_ref(&id) else {
            return None;
        };
        let usage = &mut entry.get_mut().usage;
        *usage = usage.saturating_sub(1);
        if *usage != 0 {
            return None;
        }
        let region = entry.remove();
        self.by_start.remove(&(region.start, id));
        Some(region)
    }

    pub fn get(&self, id: RegionId) -> Option<&Region> {
        self.by_id.get(&id)
    }

    /// Change anything but the start.
    pub fn get_mut(&mut self, id: RegionId) -> Option<&mut Region> {
        self.by_id.get_mut(&id)
    }

    /// Move a region's start, keeping the ordered index right.
    pub fn set_start(&mut self, id: RegionId, start: u64) {
        if let Some(region) = self.by_id.get_mut(&id) {
            self.by_start.remove(&(region.start, id));
            region.start = start;
            self.by_start.insert((start, id));
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Regions in registry order (`/proc/maps` order).
    pub fn iter_ordered(&self) -> impl Iterator<Item = (RegionId, &Region)> + '_ {
        self.by_start
            .iter()
            .filter_map(move |&(_, id)| self.by_id.get(&id).map(|r| (id, r)))
    }

    /// Index consistency for the invariant checker.
    pub fn check_index(&self) -> Result<(), String> {
        if self.by_start.len() != self.by_id.len() {
            return Err(alloc::format!(
                "region index holds {} entries for {} regions",
                self.by_start.len(),
                self.by_id.len()
            ));
        }
        for &(start, id) in &self.by_start {
            match self.by_id.get(&id) {
                Some(r) if r.start == start => {}
                _ => return Err(alloc::format!("region index entry {start:#x}/{id:?} stale")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64) -> Region {
        Region {
            start,
            end: start + 4096,
            top: start + 4096,
            pgoff: 0,
            flags: 0,
            backing: None,
            usage: 1,
            icache_flushed: false,
            payer: None,
        }
    }

    #[test]
    fn same_start_regions_coexist_in_creation_order() {
        let mut reg = RegionRegistry::default();
        let b = reg.add(region(0x2000));
        let a1 = reg.add(region(0x1000));
        let a2 = reg.add(region(0x1000));
        let order: alloc::vec::Vec<_> = reg.iter_ordered().map(|(id, _)| id).collect();
        assert_eq!(order, [a1, a2, b]);
        reg.set_start(a1, 0x3000);
        let order: alloc::vec::Vec<_> = reg.iter_ordered().map(|(id, _)| id).collect();
        assert_eq!(order, [a2, b, a1]);
        reg.check_index().unwrap();
        assert!(reg.put(a2).is_some(), "its one usage was the last");
        assert_eq!(reg.len(), 2);
        reg.check_index().unwrap();
    }
}
