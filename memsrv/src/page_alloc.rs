//! The page allocator: the arena's pages for copies, anonymous memory,
//! SysV segments and driver storage, with the no-MMU sizes of spec
//! §4.1/§4.2 (`order_for` is Linux `get_order`; `pages_to_keep` the trim
//! of `do_mmap_private` in mm/nommu.c).
//!
//! Where a request's pages come from is the server's choice
//! ([`Placement`]): Linux's buddy allocator exactly ([`buddy`]), or the
//! grouped placement (the default, [`extents`]), which keeps the memory
//! trimming saves and large free runs after long churn.
//!
//! All metadata (per-page marks and links, per-order or per-class heads)
//! is allocated once in [`PageAllocator::new`] and never grows, so no
//! client can make the allocator itself consume more memory.

mod buddy;
mod extents;

use alloc::string::String;
use alloc::vec::Vec;

use buddy::Buddy;
use extents::Extents;

/// Index of a page inside the arena (0 = the arena's first page).
pub type PageIndex = u32;

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

/// Where the allocator takes a request's pages from (spec §4.1 fixes
/// only how many it holds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// Linux's buddy allocator exactly: the `2^order` block from the
    /// smallest order that has one, the block freed last first, a split's
    /// lower half kept, a trimmed excess cut off the block's end.
    Linux,
    /// The kept pages only, from free runs in TLSF-style size classes
    /// (good fit), small requests from a run's low end and large ones from
    /// its high end; freed pages merge with both free neighbours. No
    /// trimmed tails are left to pepper the arena, and a mapping of `n`
    /// pages needs `n` free pages in a row, not an aligned `2^order` block.
    #[default]
    Grouped,
}

/// The arena's free pages under one [`Placement`].
enum Pages {
    Linux(Buddy),
    Grouped(Extents),
}

/// The page allocator over `npages` pages.
pub struct PageAllocator {
    npages: u32,
    max_order: u32,
    pages: Pages,
}

impl PageAllocator {
    /// All `npages` pages free.
    pub fn new(npages: u32, max_order: u32, placement: Placement) -> Self {
        let max_order = max_order.min(ORDER_LIMIT);
        let pages = match placement {
            Placement::Linux => Pages::Linux(Buddy::new(npages, max_order)),
            Placement::Grouped => Pages::Grouped(Extents::new(npages, max_order)),
        };
        Self {
            npages,
            max_order,
            pages,
        }
    }

    pub fn total_pages(&self) -> u64 {
        u64::from(self.npages)
    }

    pub fn free_pages(&self) -> u64 {
        match &self.pages {
            Pages::Linux(b) => b.free_pages(),
            Pages::Grouped(e) => e.free_pages(),
        }
    }

    /// Largest block order handed out.
    pub fn max_order(&self) -> u32 {
        self.max_order
    }

    /// Take `2^order` pages.
    #[cfg(test)]
    pub fn alloc_block(&mut self, order: u32) -> Option<PageIndex> {
        self.alloc_copy(1 << order, 0).map(|(first, _)| first)
    }

    /// Allocate `pages` contiguous pages for a copy (spec §4.1): the
    /// power-of-two block trimmed per `nr_trim_pages`. Returns the first
    /// page and the number of pages kept (≥ `pages`).
    pub fn alloc_copy(&mut self, pages: u64, nr_trim_pages: u32) -> Option<(PageIndex, u64)> {
        if pages == 0 {
            return None;
        }
        let order = order_for(pages);
        if order > self.max_order {
            return None;
        }
        let keep = pages_to_keep(pages, nr_trim_pages);
        // keep ≤ 2^order ≤ 2^max_order, so it fits in u32.
        match &mut self.pages {
            Pages::Linux(b) => {
                let first = b.alloc_block(order)?;
                let block = 1u64 << order;
                if keep < block {
                    b.free_range(first + keep as u32, (block - keep) as u32);
                }
                Some((first, keep))
            }
            Pages::Grouped(e) => e.alloc(keep as u32).map(|first| (first, keep)),
        }
    }

    /// Return `count` pages starting at `first` (any alignment): they merge
    /// with the free pages beside them.
    pub fn free_range(&mut self, first: PageIndex, count: u32) {
        match &mut self.pages {
            Pages::Linux(b) => b.free_range(first, count),
            Pages::Grouped(e) => e.free_range(first, count),
        }
    }

    /// Whether a request of `2^order` pages would be served now.
    pub fn has_block(&self, order: u32) -> bool {
        order <= self.max_order
            && match &self.pages {
                Pages::Linux(b) => b.has_block(order),
                Pages::Grouped(e) => e.has_run(1 << order),
            }
    }

    /// The largest order [`Self::has_block`] says yes to.
    #[cfg(test)]
    pub fn largest_free_order(&self) -> Option<u32> {
        (0..=self.max_order).rev().find(|&o| self.has_block(o))
    }

    /// Free blocks per order, order 0 first (`/proc/buddyinfo`): the buddy
    /// lists, or each free run cut into the largest blocks it holds.
    pub fn free_counts(&self) -> Vec<u32> {
        match &self.pages {
            Pages::Linux(b) => b.free_counts(),
            Pages::Grouped(e) => e.free_counts(),
        }
    }

    /// Every free page, as `(first page, order)` blocks.
    pub fn free_blocks(&self) -> Vec<(PageIndex, u32)> {
        match &self.pages {
            Pages::Linux(b) => b.free_blocks(),
            Pages::Grouped(e) => e.free_blocks(),
        }
    }

    /// The allocator's own consistency.
    pub fn check(&self) -> Result<(), String> {
        match &self.pages {
            Pages::Linux(b) => b.check(),
            Pages::Grouped(e) => e.check(),
        }
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
                if placement == Placement::Linux {
                    // Kept from the block's start, the excess cut off its end.
                    assert_eq!(first % 8, 0);
                } else {
                    // Three pages and more are taken from the arena's high end.
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
        // 33 pages: exactly 33, at the top; the next large one below it.
        assert_eq!(a.alloc_copy(33, 1), Some((1024 - 33, 33)));
        assert_eq!(a.alloc_copy(5, 1), Some((1024 - 38, 5)));
        // A freed hole is refilled (good fit) before the big run is cut.
        a.free_range(1, 1);
        assert_eq!(a.alloc_copy(1, 1), Some((1, 1)));
        a.free_range(1024 - 33, 33);
        assert_eq!(a.alloc_copy(20, 1), Some((1024 - 20, 20)));
        // 13 pages left there, merged with nothing: a request of 64 comes
        // from the big run, 16 takes the 13's class only if it fits.
        assert_eq!(a.alloc_copy(13, 1), Some((1024 - 33, 13)));
        check(&a);
        a.free_range(1024 - 20, 20);
        a.free_range(1024 - 33, 13);
        a.free_range(1024 - 38, 5);
        a.free_range(0, 4);
        check(&a);
        assert_eq!(a.free_blocks(), [(0, 10)]);
    }

    #[test]
    fn grouped_needs_a_run_not_an_aligned_block() {
        // Pages 1..=64 free, 0 held: Linux has no aligned 64, grouped has
        // the run.
        for placement in BOTH {
            let mut a = PageAllocator::new(128, 10, placement);
            let (held, _) = a.alloc_copy(128, 1).unwrap();
            a.free_range(held + 1, 64);
            assert_eq!(a.has_block(6), placement == Placement::Grouped);
            assert_eq!(
                a.alloc_copy(64, 1).is_some(),
                placement == Placement::Grouped
            );
            check(&a);
        }
    }

    /// The fragmentation bench's churn on the allocator alone: 64 MiB,
    /// 70 % held, 20,000 random frees and allocations of mostly 1–2 pages,
    /// some up to 64, `nr_trim_pages` 1.
    #[test]
    fn grouped_survives_churn_with_large_runs_free() {
        let mut a = PageAllocator::new(16384, 10, Placement::Grouped);
        let mut seed = 0x5eed_u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let size = |r: &mut dyn FnMut(u64) -> u64| {
            if r(100) < 85 {
                1 + r(2)
            } else {
                3 + r(62)
            }
        };
        let mut held: Vec<(PageIndex, u64)> = Vec::new();
        let mut held_pages = 0;
        while held_pages < 16384 * 70 / 100 {
            let n = size(&mut rand);
            held.push(a.alloc_copy(n, 1).unwrap());
            held_pages += n;
        }
        for _ in 0..20_000 {
            let (first, kept) = held.swap_remove(rand(held.len() as u64) as usize);
            a.free_range(first, kept as u32);
            let n = size(&mut rand);
            let got = a.alloc_copy(n, 1);
            assert!(got.is_some(), "{n} pages failed, {} free", a.free_pages());
            held.push(got.unwrap());
        }
        check(&a);
        let held: u64 = held.iter().map(|&(_, k)| k).sum();
        assert_eq!(a.free_pages(), 16384 - held);
        let largest = 1u64 << a.largest_free_order().unwrap();
        assert!(largest >= a.free_pages().min(1024) / 2, "largest {largest}");
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
            assert_eq!(a.free_blocks(), [(0, 10)]);
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
            assert_eq!(a.free_blocks(), [(0, 4)]);
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
            assert_eq!(
                a.free_blocks().iter().map(|(_, o)| 1u32 << *o).sum::<u32>(),
                13
            );
            assert!(a.has_block(3));
            assert!(!a.has_block(4));
        }
    }
}
