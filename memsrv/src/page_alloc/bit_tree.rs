//! A set of block numbers as a tree of 64-bit words: the free blocks of one
//! order under the grouped placement (spec §4.1: where a block comes from
//! is the server's choice). Each level's bit says whether the word below
//! it holds any bit, so insert, remove, lowest and highest each touch one
//! word per level (`⌈log64 n⌉` of them: 3 for a 64 MiB arena's pages).
//! It has no Linux counterpart; Linux keeps `free_area[order].free_list`.

use alloc::vec;
use alloc::vec::Vec;

pub struct BitTree {
    /// `levels[0]` holds one bit per block; `levels[k + 1]` one bit per
    /// word of `levels[k]`, set while that word is not zero. The last
    /// level is one word.
    levels: Vec<Vec<u64>>,
}

impl BitTree {
    /// An empty set of the numbers `0..len`.
    pub fn new(len: u32) -> Self {
        let mut levels = Vec::new();
        let mut words = (len as usize).div_ceil(64).max(1);
        loop {
            levels.push(vec![0u64; words]);
            if words == 1 {
                break;
            }
            words = words.div_ceil(64);
        }
        Self { levels }
    }

    #[cfg(test)]
    pub fn contains(&self, i: u32) -> bool {
        let i = i as usize;
        self.levels[0]
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn insert(&mut self, i: u32) {
        let mut i = i as usize;
        for level in &mut self.levels {
            let word = &mut level[i / 64];
            let was_empty = *word == 0;
            *word |= 1 << (i % 64);
            if !was_empty {
                break;
            }
            i /= 64;
        }
    }

    pub fn remove(&mut self, i: u32) {
        let mut i = i as usize;
        for level in &mut self.levels {
            let word = &mut level[i / 64];
            *word &= !(1 << (i % 64));
            if *word != 0 {
                break;
            }
            i /= 64;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.levels[self.levels.len() - 1][0] == 0
    }

    /// The smallest member.
    pub fn lowest(&self) -> Option<u32> {
        self.descend(|w| w.trailing_zeros())
    }

    /// The largest member.
    pub fn highest(&self) -> Option<u32> {
        self.descend(|w| 63 - w.leading_zeros())
    }

    /// From the top word down, pick one set bit per level with `pick`.
    fn descend(&self, pick: impl Fn(u64) -> u32) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        let mut at = 0usize;
        for level in self.levels.iter().rev() {
            let word = level[at];
            // A set bit above always has a non-zero word below it.
            at = at * 64 + pick(word) as usize;
        }
        Some(at as u32)
    }

    /// Every member, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.levels[0].iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            core::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some((w * 64) as u32 + bit)
            })
        })
    }

    /// Every summary bit says exactly whether its word is non-zero.
    pub fn check(&self) -> Result<(), &'static str> {
        for pair in self.levels.windows(2) {
            let (below, above) = (&pair[0], &pair[1]);
            for (w, &word) in below.iter().enumerate() {
                let marked = above[w / 64] & (1 << (w % 64)) != 0;
                if marked != (word != 0) {
                    return Err("summary bit disagrees with its word");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_and_highest_across_levels() {
        for len in [1u32, 63, 64, 65, 4096, 4097, 300_000] {
            let mut t = BitTree::new(len);
            assert_eq!((t.lowest(), t.highest()), (None, None));
            let picks = [len - 1, len / 2, len / 3, 0];
            for &p in &picks {
                t.insert(p);
                t.check().unwrap();
            }
            assert_eq!(t.lowest(), Some(0));
            assert_eq!(t.highest(), Some(len - 1));
            t.remove(0);
            t.remove(len - 1);
            t.check().unwrap();
            let mut expect: Vec<u32> = picks[1..3]
                .iter()
                .copied()
                .filter(|&p| p != 0 && p != len - 1)
                .collect();
            expect.sort_unstable();
            expect.dedup();
            assert_eq!(t.iter().collect::<Vec<_>>(), expect);
            assert_eq!(t.lowest(), expect.first().copied());
            assert_eq!(t.highest(), expect.last().copied());
            for p in expect {
                assert!(t.contains(p));
                t.remove(p);
            }
            assert!(t.is_empty());
            t.check().unwrap();
        }
    }
}
