//! The page allocator: a buddy allocator of power-of-two page blocks over the
//! arena, with the no-MMU trimming of spec §4.1/§4.2 on top.
//!
//! All metadata (a per-page head marker and intrusive free-list links) is
//! allocated once in [`PageAllocator::new`] and never grows, so no client can
//! make the allocator itself consume more memory.

use alloc::vec;
use alloc::vec::Vec;

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

/// Buddy allocator over `npages` pages.
pub struct PageAllocator {
    npages: u32,
    max_order: u32,
    /// `FREE_HEAD | order` for the first page of a free block, else 0.
    head: Vec<u8>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// First free block of each order, or `NIL`.
    free_list: Vec<u32>,
    free_pages: u64,
}

impl PageAllocator {
    /// All `npages` pages free, carved into the largest aligned blocks.
    pub fn new(npages: u32, max_order: u32) -> Self {
        let max_order = max_order.min(ORDER_LIMIT);
        let n = npages as usize;
        let mut this = Self {
            npages,
            max_order,
            head: vec![0; n],
            next: vec![NIL; n],
            prev: vec![NIL; n],
            free_list: vec![NIL; max_order as usize + 1],
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

    /// Take one block of `2^order` pages, splitting a larger one if needed.
    pub fn alloc_block(&mut self, order: u32) -> Option<PageIndex> {
        if order > self.max_order {
            return None;
        }
        let found = (order..=self.max_order).find(|&o| self.free_list[o as usize] != NIL)?;
        let block = self.free_list[found as usize];
        self.unlink(block, found);
        // Hand the upper halves back until the block has the wanted size.
        let mut o = found;
        while o > order {
            o -= 1;
            self.link(block + (1 << o), o);
        }
        self.free_pages -= 1u64 << order;
        Some(block)
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
        let first = self.alloc_block(order)?;
        let keep = pages_to_keep(pages, nr_trim_pages);
        let block = 1u64 << order;
        if keep < block {
            // keep < block ≤ 2^max_order, so both fit in u32.
            self.free_range(first + keep as u32, (block - keep) as u32);
        }
        Some((first, keep))
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
        let old = self.free_list[order as usize];
        self.head[b] = FREE_HEAD | order as u8;
        self.next[b] = old;
        self.prev[b] = NIL;
        if old != NIL {
            self.prev[old as usize] = block;
        }
        self.free_list[order as usize] = block;
    }

    fn unlink(&mut self, block: PageIndex, order: u32) {
        let b = block as usize;
        let (next, prev) = (self.next[b], self.prev[b]);
        if prev == NIL {
            self.free_list[order as usize] = next;
        } else {
            self.next[prev as usize] = next;
        }
        if next != NIL {
            self.prev[next as usize] = prev;
        }
        self.head[b] = 0;
        self.next[b] = NIL;
        self.prev[b] = NIL;
    }

    /// Whether a free block of at least `2^order` pages exists.
    pub fn has_block(&self, order: u32) -> bool {
        order <= self.max_order
            && (order..=self.max_order).any(|o| self.free_list[o as usize] != NIL)
    }

    /// Every free block as `(first page, order)`.
    pub fn free_blocks(&self) -> impl Iterator<Item = (PageIndex, u32)> + '_ {
        (0..=self.max_order).flat_map(move |order| {
            let mut at = self.free_list[order as usize];
            core::iter::from_fn(move || {
                if at == NIL {
                    return None;
                }
                let this = at;
                at = self.next[at as usize];
                Some((this, order))
            })
        })
    }

    /// The allocator's own consistency: list links, head markers, alignment,
    /// no two free buddies left unmerged, and the free page count.
    pub fn check(&self) -> Result<(), alloc::string::String> {
        use alloc::format;
        let mut counted = 0u64;
        let mut heads = 0usize;
        for order in 0..=self.max_order {
            let mut prev = NIL;
            let mut at = self.free_list[order as usize];
            let mut steps = 0u64;
            while at != NIL {
                steps += 1;
                if steps > u64::from(self.npages) {
                    return Err(format!("free list {order} loops"));
                }
                let a = at as usize;
                if self.head[a] != FREE_HEAD | order as u8 {
                    return Err(format!(
                        "block {at} in list {order} has head {:#x}",
                        self.head[a]
                    ));
                }
                if self.prev[a] != prev {
                    return Err(format!("block {at}: bad back link"));
                }
                if !at.is_multiple_of(1 << order)
                    || u64::from(at) + (1 << order) > u64::from(self.npages)
                {
                    return Err(format!("block {at} of order {order} misplaced"));
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
                heads += 1;
                prev = at;
                at = self.next[a];
            }
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

    #[test]
    fn trimmed_excess_returns_to_the_allocator() {
        for (trim, n, kept) in [
            (1u32, 5u64, 5u64),
            (0, 5, 8),
            (4, 5, 8),
            (4, 9, 9),
            (4, 3, 4),
        ] {
            let mut a = PageAllocator::new(64, 10);
            let (first, k) = a.alloc_copy(n, trim).unwrap();
            assert_eq!(k, kept);
            assert_eq!(first % 8, 0);
            assert_eq!(a.free_pages(), 64 - kept);
            check(&a);
            a.free_range(first, k as u32);
            assert_eq!(a.free_pages(), 64);
            check(&a);
            assert!(a.has_block(6));
        }
    }

    #[test]
    fn freed_blocks_coalesce_back_to_the_largest_order() {
        let mut a = PageAllocator::new(1024, 10);
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

    #[test]
    fn partial_frees_of_a_block_merge() {
        let mut a = PageAllocator::new(16, 4);
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

    #[test]
    fn exhaustion_and_orders_above_max() {
        let mut a = PageAllocator::new(24, 3);
        assert!(a.alloc_copy(9, 1).is_none(), "order 4 > max 3");
        assert!(a.alloc_copy(8, 1).is_some());
        assert!(a.alloc_copy(8, 1).is_some());
        assert!(a.alloc_copy(8, 1).is_some());
        assert!(a.alloc_copy(1, 1).is_none());
        check(&a);
    }

    #[test]
    fn arena_not_a_multiple_of_the_largest_block() {
        let a = PageAllocator::new(13, 10);
        check(&a);
        assert_eq!(a.free_blocks().map(|(_, o)| 1u32 << o).sum::<u32>(), 13);
        assert!(a.has_block(3));
        assert!(!a.has_block(4));
    }
}
