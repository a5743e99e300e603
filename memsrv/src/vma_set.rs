//! The ordered set of one address space's VMAs behind [`Mm`](crate::mm::Mm)
//! (Linux keeps them in the `mm_struct`'s tree, spec §1.3): a sorted
//! vector while an address space has a handful of mappings, a B-tree once
//! it has more.
//!
//! Most processes map a few regions; for them a look-up, insert or removal
//! is a short scan and a move of a few entries, without the B-tree's node
//! walks and its node allocated for the first mapping and freed with the
//! last. A process with many mappings moves to the B-tree, and back when
//! it has few again (with a gap between the two sizes, so a process
//! mapping and unmapping at the edge does not move every time).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Bound;

use crate::mm::{Vma, VmaKey};

/// Mappings kept in the vector at most.
const SMALL: usize = 16;
/// Mappings at which a B-tree goes back to a vector.
const BACK_TO_SMALL: usize = SMALL / 2;

/// VMAs in `(start, end, seq)` order.
pub enum VmaSet {
    /// Sorted by key, at most [`SMALL`] long.
    Small(Vec<(VmaKey, Vma)>),
    Large(BTreeMap<VmaKey, Vma>),
}

impl Default for VmaSet {
    fn default() -> Self {
        VmaSet::Small(Vec::new())
    }
}

/// One of two iterators, as the set's two forms give.
pub enum Either<A, B> {
    Small(A),
    Large(B),
}

impl<T, A: Iterator<Item = T>, B: Iterator<Item = T>> Iterator for Either<A, B> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        match self {
            Either::Small(a) => a.next(),
            Either::Large(b) => b.next(),
        }
    }
}

/// Where `key` is or would go in a sorted vector.
fn position(v: &[(VmaKey, Vma)], key: &VmaKey) -> Result<usize, usize> {
    v.binary_search_by(|(k, _)| k.cmp(key))
}

impl VmaSet {
    pub fn len(&self) -> usize {
        match self {
            VmaSet::Small(v) => v.len(),
            VmaSet::Large(m) => m.len(),
        }
    }

    pub fn get(&self, key: &VmaKey) -> Option<&Vma> {
        match self {
            VmaSet::Small(v) => position(v, key).ok().map(|i| &v[i].1),
            VmaSet::Large(m) => m.get(key),
        }
    }

    pub fn get_mut(&mut self, key: &VmaKey) -> Option<&mut Vma> {
        match self {
            VmaSet::Small(v) => position(v, key).ok().map(|i| &mut v[i].1),
            VmaSet::Large(m) => m.get_mut(key),
        }
    }

    /// Add `vma` at `key`, replacing a VMA with the same key (keys carry a
    /// unique sequence number, so none does).
    pub fn insert(&mut self, key: VmaKey, vma: Vma) {
        match self {
            VmaSet::Small(v) => match position(v, &key) {
                Ok(i) => v[i].1 = vma,
                Err(i) if v.len() < SMALL => v.insert(i, (key, vma)),
                Err(_) => {
                    let mut m: BTreeMap<VmaKey, Vma> = core::mem::take(v).into_iter().collect();
                    m.insert(key, vma);
                    *self = VmaSet::Large(m);
                }
            },
            VmaSet::Large(m) => {
                m.insert(key, vma);
            }
        }
    }

    pub fn remove(&mut self, key: &VmaKey) -> Option<Vma> {
        match self {
            VmaSet::Small(v) => position(v, key).ok().map(|i| v.remove(i).1),
            VmaSet::Large(m) => {
                let vma = m.remove(key)?;
                if m.len() <= BACK_TO_SMALL {
                    let mut v = Vec::with_capacity(SMALL);
                    v.extend(core::mem::take(m));
                    *self = VmaSet::Small(v);
                }
                Some(vma)
            }
        }
    }

    /// The VMAs with keys up to `upper`, highest first.
    #[inline]
    pub fn down_from(&self, upper: &VmaKey) -> impl Iterator<Item = (&VmaKey, &Vma)> + '_ {
        match self {
            VmaSet::Small(v) => {
                let end = v.partition_point(|(k, _)| k <= upper);
                Either::Small(v[..end].iter().rev().map(|(k, vma)| (k, vma)))
            }
            VmaSet::Large(m) => Either::Large(m.range(..=*upper).rev()),
        }
    }

    /// The key after `key` in order.
    pub fn after(&self, key: &VmaKey) -> Option<VmaKey> {
        match self {
            VmaSet::Small(v) => {
                let i = v.partition_point(|(k, _)| k <= key);
                v.get(i).map(|(k, _)| *k)
            }
            VmaSet::Large(m) => m
                .range((Bound::Excluded(*key), Bound::Unbounded))
                .next()
                .map(|(k, _)| *k),
        }
    }

    /// Every VMA in order.
    pub fn iter(&self) -> impl Iterator<Item = (&VmaKey, &Vma)> + '_ {
        match self {
            VmaSet::Small(v) => Either::Small(v.iter().map(|(k, vma)| (k, vma))),
            VmaSet::Large(m) => Either::Large(m.iter()),
        }
    }

    /// Whether the form fits the size: a vector at most [`SMALL`] long, a
    /// B-tree above [`BACK_TO_SMALL`] (invariant checker).
    pub fn form_fits(&self) -> bool {
        match self {
            VmaSet::Small(v) => v.len() <= SMALL && v.windows(2).all(|w| w[0].0 < w[1].0),
            VmaSet::Large(m) => m.len() > BACK_TO_SMALL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::RegionId;
    use alloc::vec;

    fn vma(region: u64) -> Vma {
        Vma {
            region: RegionId(region),
            pgoff: 0,
            flags: 0,
            backing: None,
        }
    }

    fn key(start: u64, seq: u64) -> VmaKey {
        VmaKey {
            start,
            end: start + 0x1000,
            seq,
        }
    }

    /// The set against a B-tree over a run of inserts and removals that
    /// crosses both sizes more than once.
    #[test]
    fn the_set_answers_as_a_btree_through_both_forms() {
        let mut set = VmaSet::default();
        let mut model = BTreeMap::new();
        let mut seen_large = false;
        let mut seen_small_again = false;
        // A fixed pseudo-random walk: grow to 40, shrink to 3, grow again.
        let mut x = 12345u64;
        let targets = [40usize, 3, 30, 0];
        let mut seq = 0;
        for &target in &targets {
            while model.len() != target {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if model.len() < target {
                    seq += 1;
                    let k = key((x >> 40) & !0xfff, seq);
                    set.insert(k, vma(seq));
                    model.insert(k, seq);
                } else {
                    let keys: Vec<VmaKey> = model.keys().copied().collect();
                    let k = keys[(x >> 33) as usize % keys.len()];
                    assert_eq!(set.remove(&k).map(|v| v.region.0), model.remove(&k));
                }
                assert!(set.form_fits());
                seen_large |= matches!(set, VmaSet::Large(_));
                seen_small_again |= seen_large && matches!(set, VmaSet::Small(_));
                assert_eq!(set.len(), model.len());
                let got: Vec<(VmaKey, u64)> = set.iter().map(|(k, v)| (*k, v.region.0)).collect();
                let want: Vec<(VmaKey, u64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                assert_eq!(got, want);
                for (k, v) in &model {
                    assert_eq!(set.get(k).map(|vma| vma.region.0), Some(*v));
                    let next = model.range((Bound::Excluded(*k), Bound::Unbounded)).next();
                    assert_eq!(set.after(k), next.map(|(k, _)| *k));
                    let down: Vec<VmaKey> = set.down_from(k).map(|(k, _)| *k).collect();
                    let want: Vec<VmaKey> = model.range(..=*k).rev().map(|(k, _)| *k).collect();
                    assert_eq!(down, want);
                }
            }
        }
        assert!(seen_large && seen_small_again);
        assert!(set.get(&key(0, 0)).is_none());
        assert!(set.remove(&key(0, 0)).is_none());
    }

    #[test]
    fn a_key_between_two_finds_its_neighbours() {
        let mut set = VmaSet::default();
        for (i, start) in [0x1000u64, 0x5000, 0x9000].into_iter().enumerate() {
            set.insert(key(start, i as u64), vma(i as u64));
        }
        let between = key(0x6000, 0);
        let down: Vec<u64> = set.down_from(&between).map(|(k, _)| k.start).collect();
        assert_eq!(down, vec![0x5000, 0x1000]);
        assert_eq!(set.after(&between).map(|k| k.start), Some(0x9000));
        assert_eq!(set.after(&key(0x9000, 2)), None);
        if let Some(v) = set.get_mut(&key(0x5000, 1)) {
            v.pgoff = 7;
        }
        assert_eq!(set.get(&key(0x5000, 1)).map(|v| v.pgoff), Some(7));
    }
}
