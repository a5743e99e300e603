//! Linux's placement (spec §4.1 with [`super::Placement::Linux`]): the
//! buddy allocator of mm/page_alloc.c (`__rmqueue_smallest`, `expand`,
//! `__free_one_page`), power-of-two blocks in LIFO free lists per order.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::PageIndex;

const NIL: u32 = u32::MAX;
/// Marks `head[i]` as the first page of a free block; the low bits hold the order.
const FREE_HEAD: u8 = 0x80;

/// Buddy allocator over `npages` pages.
pub struct Buddy {
    npages: u32,
    max_order: u32,
    /// `FREE_HEAD | order` for the first page of a free block, else 0.
    head: Vec<u8>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// First free block of each order, or `NIL` (`free_area[order]`).
    free_list: Vec<u32>,
    /// Free blocks of each order (`free_area[order].nr_free`).
    nr_free: Vec<u32>,
    free_pages: u64,
}

impl Buddy {
    /// All `npages` pages free, carved into the largest aligned blocks.
    pub fn new(npages: u32, max_order: u32) -> Self {
        let n = npages as usize;
        let mut this = Self {
            npages,
            max_order,
            head: vec![0; n],
            next: vec![NIL; n],
            prev: vec![NIL; n],
            free_list: vec![NIL; max_order as usize + 1],
            nr_free: vec![0; max_order as usize + 1],
            free_pages: 0,
        };
        this.free_range(0, npages);
        this
    }

    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Take one block of `2^order` pages from the smallest order that has
    /// one, the block freed last first; split, keeping the lower half.
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
        self.nr_free[order as usize] += 1;
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
        self.nr_free[order as usize] -= 1;
    }

    /// Whether a free block of at least `2^order` pages exists.
    pub fn has_block(&self, order: u32) -> bool {
        order <= self.max_order && (order..=self.max_order).any(|o| self.nr_free[o as usize] != 0)
    }

    /// Free blocks per order, order 0 first.
    pub fn free_counts(&self) -> Vec<u32> {
        self.nr_free.clone()
    }

    /// Every free block as `(first page, order)`.
    pub fn free_blocks(&self) -> Vec<(PageIndex, u32)> {
        let mut out = Vec::new();
        for order in 0..=self.max_order {
            let mut at = self.free_list[order as usize];
            let mut steps = 0u32;
            // (A looping list is check()'s to report; stop after npages.)
            while at != NIL && steps < self.npages {
                out.push((at, order));
                at = self.next[at as usize];
                steps += 1;
            }
        }
        out
    }

    /// List links, head markers, alignment, no two free buddies left
    /// unmerged, and the free block and page counts.
    pub fn check(&self) -> Result<(), String> {
        let mut counted = 0u64;
        let mut heads = 0usize;
        for order in 0..=self.max_order {
            let mut prev = NIL;
            let mut at = self.free_list[order as usize];
            let mut blocks = 0u64;
            while at != NIL {
                blocks += 1;
                if blocks > u64::from(self.npages) {
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
            if blocks != u64::from(self.nr_free[order as usize]) {
                return Err(format!(
                    "order {order}: count {} but {blocks} listed",
                    self.nr_free[order as usize]
                ));
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
