//! The page allocator: a buddy allocator of power-of-two page blocks over the
//! arena, with the no-MMU trimming of spec §4.1/§4.2 on top (Linux
//! `__rmqueue_smallest`, `expand` and `__free_one_page` in mm/page_alloc.c;
//! the trim of `do_mmap_private` in mm/nommu.c).
//!
//! Where a block comes from is the server's choice ([`Placement`]): Linux's
//! LIFO free lists, or the grouped placement (the default), which keeps
//! small blocks at the arena's low end and large ones at its high end, each
//! packed address-ordered, so the free memory between them stays in large
//! blocks after long churn.
//!
//! All metadata (a per-page head marker, the per-order free sets and
//! counts) is allocated once in [`PageAllocator::new`] and never grows, so
//! no client can make the allocator itself consume more memory.

mod bit_tree;

use alloc::vec;
use alloc::vec::Vec;

use bit_tree::BitTree;
/// Index of a page inside the arena (0 = the arena's first page).
pub type PageIndex = u32;

const NIL: u32 = u32::MAX;
/// Marks `head[i]` as the first page of a free block; the low bits hold the order.
const FREE_HEAD: u8 = 0x80;

/// Largest order the allocator accepts (2^30 pages = 4 TiB): keeps every
/// block size and index inside `u32`.
pub const ORDER_LIMIT: u32 = 30;

/// `⌈log2 n⌉` for `n ≥ 1` (Linux `get_order` in pages).
pub fn order_for(pages: u64) -> u32 {
    if pages <= 1 {
        0
    } else {
        64 - (pages - 1).leading_zeros()
    }
}

/// Pages actually kept for an `n`-page request (spec §4.1): the power-of-two
/// block, trimmed to `n` when `nr_trim_pages ≠ 0` and the excess reaches it.
pub fn pages_to_keep(pages: u64, nr_trim_pages: u32) -> u64 {
    let total = 1u64 << order_for(pages);
    let excess = total - pages;
    if nr_trim_pages != 0 && excess >= u64::from(nr_trim_pages) {
        pages
    } else {
        total
    }
}

/// Where the allocator takes a block from (spec §4.1 fixes only the sizes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// Linux's buddy allocator exactly: the smallest order that has a free
    /// block, the block freed last first (LIFO free lists), a split's lower
    /// half kept, a trimmed excess cut off the block's end.
    Linux,
    /// Small requests (below [`LARGE_ORDER`]) take the lowest-addressed
    /// free block that fits, large ones the highest-addressed; a block is
    /// split and trimmed so the part given back faces the arena's middle,
    /// where it coalesces with the free blocks there. Small blocks so never
    /// pepper the large blocks' end, holes are refilled before the middle
    /// is cut into, and the middle stays in whole blocks.
    #[default]
    Grouped,
}

/// Under [`Placement::Grouped`], requests of this order (5–8 pages) and up
/// are placed from the arena's high end.
pub const LARGE_ORDER: u32 = 3;

/// Which end of the arena a grouped request packs towards.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Low,
    High,
}

/// The free blocks of each order.
enum FreeSets {
    /// Linux's `free_area[order].free_list`: intrusive doubly linked
    /// lists through the first page of each block, newest first.
    Lists {
        next: Vec<u32>,
        prev: Vec<u32>,
        first: Vec<u32>,
    },
    /// One set of block numbers (first page >> order) per order, each
    /// answering its lowest and highest member in `O(log64 n)`.
    Trees(Vec<BitTree>),
}

/// Buddy allocator over `npages` pages.
pub struct PageAllocator {
    npages: u32,
    max_order: u32,
    /// `FREE_HEAD | order` for the first page of a free block, else 0.
    head: Vec<u8>,
    sets: FreeSets,
    /// Free blocks of each order (`/proc/buddyinfo`).
    nr_free: Vec<u32>,
    free_pages: u64,
}

impl PageAllocator {
    /// All `npages` pages free, carved into the largest aligned blocks.
    pub fn new(npages: u32, max_order: u32, placement: Placement) -> Self {
        let max_order = max_order.min(ORDER_LIMIT);
        let n = npages as usize;
        let orders = max_order as usize + 1;
        let sets = match placement {
            Placement::Linux => FreeSets::Lists {
                next: vec![NIL; n],
                prev: vec![NIL; n],
                first: vec![NIL; orders],
            },
            Placement::Grouped => {
                FreeSets::Trees((0..=max_order).map(|o| BitTree::new(npages >> o)).collect())
            }
        };
        let mut this = Self {
            npages,
            max_order,
            head: vec![0; n],
            sets,
            nr_free: vec![0; orders],
            free_pages: 0,
        };
        this.free_range(0, npages);
        this
    }

    pub fn total_pages(&self) -> u64 {
        u64::from(self.npages)
    }

    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Largest block order handed out.
    pub fn max_order(&self) -> u32 {
        self.max_order
    }

    /// Free blocks per order, order 0 first (`/proc/buddyinfo`).
    pub fn free_counts(&self) -> &[u32] {
        &self.nr_free
    }

    /// The order of the largest free block, if any page is free.
    pub fn largest_free_order(&self) -> Option<u32> {
        (0..=self.max_order)
            .rev()
            .find(|&o| self.nr_free[o as usize] != 0)
    }

    /// Take one block of `2^order` pages, splitting a larger one if needed.
    #[cfg(test)]
    pub fn alloc_block(&mut self, order: u32) -> Option<PageIndex> {
        self.take(order).map(|(block, _)| block)
    }

    /// Allocate `pages` contiguous pages for a copy (spec §4.1): take the
    /// power-of-two block and trim it per `nr_trim_pages`. Returns the first
    /// page and the number of pages kept (≥ `pages`).
    pub fn alloc_copy(&mut self, pages: u64, nr_trim_pages: u32) -> Option<(PageIndex, u64)> {
        if pages == 0 {
            return None;
        }
        let order = order_for(pages);
        if order > self.max_order {
            return None;
        }
        let (first, side) = self.take(order)?;
        let keep = pages_to_keep(pages, nr_trim_pages);
        let block = 1u64 << order;
        if keep == block {
            return Some((first, keep));
        }
        // keep < block ≤ 2^max_order, so both fit in u32.
        let excess = (block - keep) as u32;
        match side {
            Side::Low => {
                self.free_range(first + keep as u32, excess);
                Some((first, keep))
            }
            Side::High => {
                self.free_range(first, excess);
                Some((first + excess, keep))
            }
        }
    }

    /// Remove a free block of `2^order` pages from the free sets, split
    /// from a larger one if needed; the side says which end of the arena
    /// the request packs towards.
    fn take(&mut self, order: u32) -> Option<(PageIndex, Side)> {
        if order > self.max_order {
            return None;
        }
        let (found, block, side) = match &self.sets {
            FreeSets::Lists { first, .. } => {
                // __rmqueue_smallest: the smallest order with a free block.
                let found = (order..=self.max_order).find(|&o| first[o as usize] != NIL)?;
                (found, first[found as usize], Side::Low)
            }
            FreeSets::Trees(trees) => {
                let side = if order >= LARGE_ORDER {
                    Side::High
                } else {
                    Side::Low
                };
                let mut best: Option<(u32, PageIndex)> = None;
                // Address-ordered first fit over every order that fits:
                // at most max_order + 1 tree descents.
                for o in order..=self.max_order {
                    let tree = &trees[o as usize];
                    let candidate = match side {
                        Side::Low => tree.lowest(),
                        Side::High => tree.highest(),
                    };
                    let Some(b) = candidate else { continue };
                    let at = b << o;
                    let better = match (best, side) {
                        (None, _) => true,
                        (Some((_, cur)), Side::Low) => at < cur,
                        (Some((_, cur)), Side::High) => at > cur,
                    };
                    if better {
                        best = Some((o, at));
                    }
                }
                let (found, block) = best?;
                (found, block, side)
            }
        };
        self.unlink(block, found);
        // expand(): hand back the halves facing away from the request's end.
        let mut kept = block;
        let mut o = found;
        while o > order {
            o -= 1;
            match side {
                Side::Low => self.link(kept + (1 << o), o),
                Side::High => {
                    self.link(kept, o);
                    kept += 1 << o;
                }
            }
        }
        self.free_pages -= 1u64 << order;
        Some((kept, side))
    }

    /// Return `count` pages starting at `first` (any alignment): they are
    /// split into aligned blocks, each merged with its free buddies.
    pub fn free_range(&mut self, first: PageIndex, count: u32) {
        let mut at = first;
        let end = first + count;
        while at < end {
            let mut order = if at == 0 {
                self.max_order
            } else {
                at.trailing_zeros().min(self.max_order)
            };
            while (1u32 << order) > end - at {
                order -= 1;
            }
            self.free_block(at, order);
            at += 1 << order;
        }
    }

    fn free_block(&mut self, mut block: PageIndex, mut order: u32) {
        self.free_pages += 1u64 << order;
        while order < self.max_order {
            let buddy = block ^ (1 << order);
            let fits = u64::from(buddy) + (1u64 << order) <= u64::from(self.npages);
            if !fits || self.head[buddy as usize] != FREE_HEAD | order as u8 {
                break;
            }
            self.unlink(buddy, order);
            block = block.min(buddy);
            order += 1;
        }
        self.link(block, order);
    }

    fn link(&mut self, block: PageIndex, order: u32) {
        let b = block as usize;
        self.head[b] = FREE_HEAD | order as u8;
        self.nr_free[order as usize] += 1;
        match &mut self.sets {
            FreeSets::Lists { next, prev, first } => {
                let old = first[order as usize];
                next[b] = old;
                prev[b] = NIL;
                if old != NIL {
                    prev[old as usize] = block;
                }
                first[order as usize] = block;
            }
            FreeSets::Trees(trees) => trees[order as usize].insert(block >> order),
        }
    }

    fn unlink(&mut self, block: PageIndex, order: u32) {
        let b = block as usize;
        self.head[b] = 0;
        self.nr_free[order as usize] -= 1;
        match &mut self.sets {
            FreeSets::Lists { next, prev, first } => {
                let (n, p) = (next[b], prev[b]);
                if p == NIL {
                    first[order as usize] = n;
                } else {
                    next[p as usize] = n;
                }
                if n != NIL {
                    prev[n as usize] = p;
                }
                next[b] = NIL;
                prev[b] = NIL;
            }
            FreeSets::Trees(trees) => trees[order as usize].remove(block >> order),
        }
    }

    /// Whether a free block of at least `2^order` pages exists.
    pub fn has_block(&self, order: u32) -> bool {
        self.largest_free_order().is_some_and(|o| o >= order)
    }

    /// Every free block of one order, as first pages.
    fn blocks_of(&self, order: u32) -> impl Iterator<Item = PageIndex> + '_ {
        let (list, tree) = match &self.sets {
            FreeSets::Lists { next, first, .. } => {
                let head = Some(first[order as usize]).filter(|&b| b != NIL);
                let walk = core::iter::successors(head, move |&b| {
                    Some(next[b as usize]).filter(|&n| n != NIL)
                });
                (Some(walk), None)
            }
            FreeSets::Trees(trees) => (
                None,
                Some(trees[order as usize].iter().map(move |b| b << order)),
            ),
        };
        list.into_iter().flatten().chain(tree.into_iter().flatten())
    }

    /// Every free block as `(first page, order)`.
    pub fn free_blocks(&self) -> impl Iterator<Item = (PageIndex, u32)> + '_ {
        (0..=self.max_order).flat_map(move |order| self.blocks_of(order).map(move |b| (b, order)))
    }

    /// The allocator's own consistency: the free sets' structure, head
    /// markers, alignment, no two free buddies left unmerged, and the free
    /// block and page counts.
    pub fn check(&self) -> Result<(), alloc::string::String> {
        use alloc::format;
        match &self.sets {
            FreeSets::Lists { next, prev, first } => {
                for order in 0..=self.max_order {
                    let mut back = NIL;
                    let mut at = first[order as usize];
                    let mut steps = 0u64;
                    while at != NIL {
                        steps += 1;
                        if steps > u64::from(self.npages) {
                            return Err(format!("free list {order} loops"));
                        }
                        if prev[at as usize] != back {
                            return Err(format!("block {at}: bad back link"));
                        }
                        back = at;
                        at = next[at as usize];
                    }
                }
            }
            FreeSets::Trees(trees) => {
                for (order, tree) in trees.iter().enumerate() {
                    tree.check().map_err(|e| format!("free set {order}: {e}"))?;
                }
            }
        }
        let mut counted = 0u64;
        let mut heads = 0usize;
        for order in 0..=self.max_order {
            let mut blocks = 0u32;
            for at in self.blocks_of(order) {
                let a = at as usize;
                if !at.is_multiple_of(1 << order)
                    || u64::from(at) + (1 << order) > u64::from(self.npages)
                {
                    return Err(format!("block {at} of order {order} misplaced"));
                }
                if self.head[a] != FREE_HEAD | order as u8 {
                    return Err(format!(
                        "block {at} in free set {order} has head {:#x}",
                        self.head[a]
                    ));
                }
                if order < self.max_order {
                    let buddy = at ^ (1 << order);
                    if (buddy as usize) < self.head.len()
                        && self.head[buddy as usize] == FREE_HEAD | order as u8
                    {
                        return Err(format!("free buddies {at} and {buddy} not merged"));
                    }
                }
                counted += 1 << order;
                blocks += 1;
            }
            if blocks != self.nr_free[order as usize] {
                return Err(format!(
                    "order {order}: count {} but {blocks} free blocks",
                    self.nr_free[order as usize]
                ));
            }
            heads += blocks as usize;
        }
        let marked = self.head.iter().filter(|&&h| h & FREE_HEAD != 0).count();
        if marked != heads {
            return Err(format!("{marked} head markers but {heads} listed blocks"));
        }
        if counted != self.free_pages {
            return Err(format!(
                "free count {} but lists hold {counted}",
                self.free_pages
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &PageAllocator) {
        a.check().unwrap();
    }

    #[test]
    fn orders() {
        assert_eq!(order_for(1), 0);
        assert_eq!(order_for(2), 1);
        assert_eq!(order_for(3), 2);
        assert_eq!(order_for(5), 3);
        assert_eq!(order_for(1024), 10);
        assert_eq!(order_for(1025), 11);
    }

    #[test]
    fn trimming_keeps_what_nr_trim_pages_says() {
        // Vector 57: trim 1, 5 pages → 5 kept (20 kB).
        assert_eq!(pages_to_keep(5, 1), 5);
        // Vector 58 / 68: trim 0 keeps the whole block.
        assert_eq!(pages_to_keep(5, 0), 8);
        // Vector 59: trim 4: 5 → 8 (excess 3 < 4), 9 → 9 (excess 7), 3 → 4.
        assert_eq!(pages_to_keep(5, 4), 8);
        assert_eq!(pages_to_keep(9, 4), 9);
        assert_eq!(pages_to_keep(3, 4), 4);
        assert_eq!(pages_to_keep(4, 1), 4);
    }

    const BOTH: [Placement; 2] = [Placement::Linux, Placement::Grouped];

    #[test]
    fn trimmed_excess_returns_to_the_allocator() {
        for placement in BOTH {
            for (trim, n, kept) in [
                (1u32, 5u64, 5u64),
                (0, 5, 8),
                (4, 5, 8),
                (4, 9, 9),
                (4, 3, 4),
            ] {
                let mut a = PageAllocator::new(64, 10, placement);
                let (first, k) = a.alloc_copy(n, trim).unwrap();
                assert_eq!(k, kept);
                if placement == Placement::Linux || order_for(n) < LARGE_ORDER {
                    // Kept from the block's start, the excess cut off its end.
                    assert_eq!(first % 8, 0);
                } else {
                    // Kept at the arena's high end, the excess facing the middle.
                    assert_eq!(u64::from(first) + k, 64);
                }
                assert_eq!(a.free_pages(), 64 - kept);
                check(&a);
                a.free_range(first, k as u32);
                assert_eq!(a.free_pages(), 64);
                check(&a);
                assert!(a.has_block(6));
            }
        }
    }

    #[test]
    fn linux_takes_the_block_freed_last() {
        let mut a = PageAllocator::new(64, 10, Placement::Linux);
        let blocks: Vec<_> = (0..4).map(|_| a.alloc_block(0).unwrap()).collect();
        assert_eq!(blocks, [0, 1, 2, 3]);
        a.free_range(1, 1);
        a.free_range(3, 1);
        assert_eq!(a.alloc_block(0), Some(3));
        assert_eq!(a.alloc_block(0), Some(1));
    }

    #[test]
    fn grouped_packs_small_low_and_large_high() {
        let mut a = PageAllocator::new(1024, 10, Placement::Grouped);
        let small: Vec<_> = (0..4).map(|_| a.alloc_copy(1, 1).unwrap().0).collect();
        assert_eq!(small, [0, 1, 2, 3]);
        // 33 pages: an order-6 block at the top, its 31-page excess below.
        assert_eq!(a.alloc_copy(33, 1), Some((1024 - 33, 33)));
        // The excess (blocks of 16, 8, 4, 2, 1 pages from page 960) is the
        // highest free memory, so the next large request takes its highest
        // block of 8 (pages 976..984), kept at that block's top.
        assert_eq!(a.alloc_copy(5, 1), Some((984 - 5, 5)));
        // A hole left low is refilled before anything higher.
        a.free_range(1, 1);
        assert_eq!(a.alloc_copy(1, 1), Some((1, 1)));
        // Both large ones gone, their excess coalesces into the top block.
        a.free_range(1024 - 33, 33);
        assert_eq!(a.alloc_copy(64, 1), Some((1024 - 128, 64)));
        a.free_range(984 - 5, 5);
        assert_eq!(a.alloc_copy(64, 1), Some((1024 - 64, 64)));
        check(&a);
    }

    #[test]
    fn largest_free_order_and_counts() {
        for placement in BOTH {
            let mut a = PageAllocator::new(1024, 10, placement);
            assert_eq!(a.largest_free_order(), Some(10));
            assert_eq!(a.free_counts(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            let b = a.alloc_block(0).unwrap();
            assert_eq!(a.largest_free_order(), Some(9));
            assert_eq!(a.free_counts(), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
            a.free_range(b, 1);
            assert_eq!(a.largest_free_order(), Some(10));
            check(&a);
        }
    }

    #[test]
    fn freed_blocks_coalesce_back_to_the_largest_order() {
        for placement in BOTH {
            let mut a = PageAllocator::new(1024, 10, placement);
            let mut got = Vec::new();
            for _ in 0..1024 {
                got.push(a.alloc_block(0).unwrap());
            }
            assert!(a.alloc_block(0).is_none());
            assert_eq!(a.free_pages(), 0);
            check(&a);
            // Free in an interleaved order: evens then odds.
            for &p in got.iter().filter(|p| *p % 2 == 0) {
                a.free_range(p, 1);
            }
            assert!(!a.has_block(1));
            for &p in got.iter().filter(|p| *p % 2 == 1) {
                a.free_range(p, 1);
            }
            check(&a);
            assert_eq!(a.free_blocks().collect::<Vec<_>>(), [(0, 10)]);
        }
    }

    #[test]
    fn partial_frees_of_a_block_merge() {
        for placement in BOTH {
            let mut a = PageAllocator::new(16, 4, placement);
            let b = a.alloc_block(4).unwrap();
            a.free_range(b + 3, 5); // pages 3..8
            a.free_range(b + 11, 5); // pages 11..16
            check(&a);
            assert_eq!(a.free_pages(), 10);
            a.free_range(b, 3);
            a.free_range(b + 8, 3);
            check(&a);
            assert_eq!(a.free_blocks().collect::<Vec<_>>(), [(0, 4)]);
        }
    }

    #[test]
    fn exhaustion_and_orders_above_max() {
        for placement in BOTH {
            let mut a = PageAllocator::new(24, 3, placement);
            assert!(a.alloc_copy(9, 1).is_none(), "order 4 > max 3");
            assert!(a.alloc_copy(8, 1).is_some());
            assert!(a.alloc_copy(8, 1).is_some());
            assert!(a.alloc_copy(8, 1).is_some());
            assert!(a.alloc_copy(1, 1).is_none());
            check(&a);
        }
    }

    #[test]
    fn arena_not_a_multiple_of_the_largest_block() {
        for placement in BOTH {
            let a = PageAllocator::new(13, 10, placement);
            check(&a);
            assert_eq!(a.free_blocks().map(|(_, o)| 1u32 << o).sum::<u32>(), 13);
            assert!(a.has_block(3));
            assert!(!a.has_block(4));
        }
    }
}
