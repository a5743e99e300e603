//! Address spaces (Linux `mm_struct`) and their mappings (VMAs).
//!
//! VMAs are kept in an ordered multimap keyed `(start, end, seq)`, the
//! Legacy rb-tree order ([`VmaSet`]: a sorted vector for a few mappings, a
//! B-tree for more), so identical mappings coexist (spec §3.4 server
//! decision). Mappings of one address space may overlap (shared regions), so
//! an address lookup scans back from the address only as far as the longest
//! mapping could reach (known within a factor of two from a count of
//! mappings per power-of-two length class), never over the whole set.

use alloc::sync::Arc;

use crate::region::{BackingObject, RegionId};
use crate::vm_flags::VmFlags;
use crate::vma_set::VmaSet;

/// An address space's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MmId(pub u64);

/// Where a VMA sits: its range, then its creation sequence for equal ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmaKey {
    pub start: u64,
    pub end: u64,
    pub seq: u64,
}

/// One mapping of one address space (spec §1.3).
#[derive(Clone, Debug)]
pub struct Vma {
    pub region: RegionId,
    pub pgoff: u64,
    pub flags: VmFlags,
    /// The mapping's own reference to its backing object.
    pub backing: Option<Arc<BackingObject>>,
}

/// How many mappings there are of each length class, to bound the backward
/// scan of [`Mm::find_vma`]: class `k` holds the lengths of bit length
/// `k + 1` (`[2^k, 2^(k+1))`). Counting costs an array slot per change,
/// where an exact multiset of lengths would cost a tree update.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LengthClasses {
    count: [u32; 64],
    /// Bit `k` set while class `k` is not empty.
    occupied: u64,
}

impl Default for LengthClasses {
    fn default() -> Self {
        Self {
            count: [0; 64],
            occupied: 0,
        }
    }
}

impl LengthClasses {
    /// The class of a length ≥ 1.
    fn class(len: u64) -> usize {
        (63 - len.max(1).leading_zeros()) as usize
    }

    fn add(&mut self, len: u64) {
        let k = Self::class(len);
        self.count[k] += 1;
        self.occupied |= 1 << k;
    }

    fn remove(&mut self, len: u64) {
        let k = Self::class(len);
        self.count[k] = self.count[k].saturating_sub(1);
        if self.count[k] == 0 {
            self.occupied &= !(1 << k);
        }
    }

    /// At least the longest length counted (less than twice it); `None`
    /// when nothing is counted.
    fn longest_bound(&self) -> Option<u64> {
        let k = 63 - self.occupied.checked_ilog2()?;
        Some(u64::MAX >> k)
    }
}

/// One address space, shared by every process that uses it (`CLONE_VM`).
#[derive(Default)]
pub struct Mm {
    vmas: VmaSet,
    /// The mappings' lengths by class, to bound the backward scan of
    /// [`Mm::find_vma`].
    lengths: LengthClasses,
    /// Processes (live or waiting to be claimed) using this address space.
    pub users: u32,
    /// Bytes mapped (`total_vm`) and the most ever mapped (`hiwater_vm`),
    /// for `/proc/<pid>/status`.
    pub total_vm: u64,
    pub hiwater_vm: u64,
}

impl Mm {
    pub fn new() -> Self {
        Self {
            users: 1,
            ..Self::default()
        }
    }

    /// `map_count`.
    pub fn map_count(&self) -> usize {
        self.vmas.len()
    }

    pub fn get(&self, key: &VmaKey) -> Option<&Vma> {
        self.vmas.get(key)
    }

    pub fn get_mut(&mut self, key: &VmaKey) -> Option<&mut Vma> {
        self.vmas.get_mut(key)
    }

    pub fn insert(&mut self, key: VmaKey, vma: Vma) {
        self.lengths.add(key.end - key.start);
        self.total_vm += key.end - key.start;
        self.hiwater_vm = self.hiwater_vm.max(self.total_vm);
        self.vmas.insert(key, vma);
    }

    pub fn remove(&mut self, key: &VmaKey) -> Option<Vma> {
        let vma = self.vmas.remove(key)?;
        self.lengths.remove(key.end - key.start);
        self.total_vm -= key.end - key.start;
        Some(vma)
    }

    /// Change a VMA's range (the key moves; the record stays the same).
    pub fn rekey(&mut self, key: &VmaKey, start: u64, end: u64) -> Option<VmaKey> {
        let vma = self.remove(key)?;
        let new = VmaKey {
            start,
            end,
            seq: key.seq,
        };
        self.insert(new, vma);
        Some(new)
    }

    /// `find_vma` (Legacy): the first mapping, in `(start, end, seq)` order,
    /// that contains `addr`.
    pub fn find_vma(&self, addr: u64) -> Option<VmaKey> {
        self.find_vma_entry(addr).map(|(key, _)| key)
    }

    /// [`Self::find_vma`] with the mapping found, so a caller that reads
    /// it does not walk the tree again.
    pub fn find_vma_entry(&self, addr: u64) -> Option<(VmaKey, &Vma)> {
        let longest = self.lengths.longest_bound()?;
        let upper = VmaKey {
            start: addr,
            end: u64::MAX,
            seq: u64::MAX,
        };
        let mut first = None;
        for (key, vma) in self.vmas.down_from(&upper) {
            if key.start.saturating_add(longest) <= addr {
                break;
            }
            if addr < key.end {
                first = Some((*key, vma));
            }
        }
        first
    }

    /// The mapping after `key` in address order.
    pub fn next_after(&self, key: &VmaKey) -> Option<VmaKey> {
        self.vmas.after(key)
    }

    /// Every mapping in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&VmaKey, &Vma)> + '_ {
        self.vmas.iter()
    }

    /// The lowest mapping, for tearing an address space down in order.
    pub fn first(&self) -> Option<VmaKey> {
        self.vmas.iter().next().map(|(k, _)| *k)
    }

    /// Consistency of the length index (invariant checker).
    pub fn check_lengths(&self) -> Result<(), alloc::string::String> {
        let mut expect = LengthClasses::default();
        if !self.vmas.form_fits() {
            return Err("VMA set's form does not fit its size".into());
        }
        for (key, _) in self.vmas.iter() {
            if key.start >= key.end {
                return Err(alloc::format!("empty or inverted VMA {key:?}"));
            }
            expect.add(key.end - key.start);
        }
        if expect != self.lengths {
            return Err("VMA length index out of date".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma() -> Vma {
        Vma {
            region: RegionId(0),
            pgoff: 0,
            flags: 0,
            backing: None,
        }
    }

    fn key(start: u64, end: u64, seq: u64) -> VmaKey {
        VmaKey { start, end, seq }
    }

    #[test]
    fn find_vma_takes_the_first_containing_mapping() {
        let mut mm = Mm::new();
        mm.insert(key(0x1000, 0x5000, 0), vma());
        mm.insert(key(0x2000, 0x3000, 1), vma());
        mm.insert(key(0x2000, 0x3000, 2), vma());
        mm.insert(key(0x8000, 0x9000, 3), vma());
        assert_eq!(mm.find_vma(0x2800), Some(key(0x1000, 0x5000, 0)));
        assert_eq!(mm.find_vma(0x5000), None);
        assert_eq!(mm.find_vma(0x8fff), Some(key(0x8000, 0x9000, 3)));
        assert_eq!(mm.find_vma(0x0), None);
        mm.remove(&key(0x1000, 0x5000, 0));
        assert_eq!(mm.find_vma(0x2800), Some(key(0x2000, 0x3000, 1)));
        assert_eq!(
            mm.next_after(&key(0x2000, 0x3000, 1)),
            Some(key(0x2000, 0x3000, 2))
        );
        mm.check_lengths().unwrap();
        let k = mm.rekey(&key(0x8000, 0x9000, 3), 0x8000, 0x8800).unwrap();
        assert_eq!(mm.lengths.longest_bound(), Some(0x1fff));
        assert_eq!(mm.find_vma(0x8900), None);
        assert_eq!(mm.find_vma(0x8000), Some(k));
        mm.check_lengths().unwrap();
    }

    #[test]
    fn the_scan_bound_covers_the_longest_mapping_within_twice_its_length() {
        let mut classes = LengthClasses::default();
        assert_eq!(classes.longest_bound(), None);
        for len in [1, 4096, 4097, 0x3000, u64::MAX] {
            classes.add(len);
            let bound = classes.longest_bound().unwrap();
            assert!(bound >= len && bound / 2 < len, "{len:#x}: {bound:#x}");
            classes.remove(len);
        }
        classes.add(4096);
        classes.add(1 << 20);
        classes.add(1 << 20);
        classes.remove(1 << 20);
        assert_eq!(classes.longest_bound(), Some((2 << 20) - 1));
        classes.remove(1 << 20);
        assert_eq!(classes.longest_bound(), Some(8191));
        classes.remove(4096);
        assert_eq!(classes.longest_bound(), None);
    }
}
