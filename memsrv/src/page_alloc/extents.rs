//! The grouped placement (spec §4.1 with [`super::Placement::Grouped`]):
//! free memory as maximal runs of pages (extents) in segregated size
//! classes, TLSF-style, each class a list with one bit in a class bitmap.
//! A request takes the kept pages only (`pages_to_keep`, never the
//! power-of-two block first), from the class of the smallest extents that
//! surely fit (good fit, `O(1)`), so there is no trimmed tail to scatter;
//! a freed run merges with the free runs on both sides at once (boundary
//! marks on each extent's first and last page). Small requests are cut
//! from an extent's low end and large ones from its high end, so the two
//! do not interleave where they share an extent. No Linux counterpart.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::PageIndex;

const NIL: u32 = u32::MAX;
/// `mark[i]`: page `i` is the first page of a free extent.
const FIRST: u8 = 1;
/// `mark[i]`: page `i` is the last page of a free extent.
const LAST: u8 = 2;
/// Requests of this many pages and more are cut from an extent's high end.
pub const LARGE_PAGES: u32 = 3;
/// Size classes: 1..=7 pages exactly, then four per power of two up to
/// 2^32 (7 + 29·4 ≤ 128, one bit each in a `u128`).
const CLASSES: usize = 128;

/// The class of an extent of `len ≥ 1` pages.
fn class_of(len: u32) -> usize {
    if len < 8 {
        return len as usize - 1;
    }
    let fl = 31 - len.leading_zeros();
    let sl = (len >> (fl - 2)) & 3;
    7 + (fl as usize - 3) * 4 + sl as usize
}

/// The fewest pages an extent of class `c` has. Every power of two is one
/// class's least length, which makes [`Extents::has_run`] exact.
fn class_floor(c: usize) -> u64 {
    if c < 7 {
        return c as u64 + 1;
    }
    let fl = 3 + (c - 7) / 4;
    let sl = ((c - 7) % 4) as u64;
    (4 + sl) << (fl - 2)
}

/// One page's part in the free extents (meaningful at an extent's first
/// or last page).
#[derive(Clone, Copy)]
struct Boundary {
    /// `FIRST`/`LAST` marks.
    mark: u8,
    /// At an extent's first page: its length.
    len_at_first: u32,
    /// At an extent's last page: its first page.
    first_at_last: u32,
    /// Class list links, at each extent's first page.
    next: u32,
    prev: u32,
    /// At an extent's first page: its class, so that taking it out of its
    /// list costs no [`class_of`] (a count of leading zeros, some thirty
    /// instructions on a core without Zbb).
    class: u8,
}

impl Default for Boundary {
    fn default() -> Self {
        Self {
            mark: 0,
            len_at_first: 0,
            first_at_last: 0,
            next: NIL,
            prev: NIL,
            class: 0,
        }
    }
}

/// Free extents over `npages` pages.
pub struct Extents {
    npages: u32,
    max_order: u32,
    /// What each page holds when it begins or ends a free extent: one
    /// record a page, so a boundary costs one bounds check, not five.
    at: Vec<Boundary>,
    /// First extent of each class, or `NIL`.
    class_head: Vec<u32>,
    /// Bit `c` set while class `c` holds an extent.
    nonempty: u128,
    free_pages: u64,
}

impl Extents {
    /// All `npages` pages free, one extent.
    pub fn new(npages: u32, max_order: u32) -> Self {
        let n = npages as usize;
        let mut this = Self {
            npages,
            max_order,
            at: vec![Boundary::default(); n],
            class_head: vec![NIL; CLASSES],
            nonempty: 0,
            free_pages: 0,
        };
        if npages > 0 {
            this.insert(0, npages);
            this.free_pages = u64::from(npages);
        }
        this
    }

    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Take `pages` contiguous pages (`1 ≤ pages ≤ 2^max_order`).
    pub fn alloc(&mut self, pages: u32) -> Option<PageIndex> {
        if pages == 0 {
            return None;
        }
        let c = class_of(pages);
        // The extents of class `c` itself fit only if long enough: try its
        // first; past it every class fits (good fit, no list walk).
        let head = self.class_head[c];
        let at = if head != NIL && self.at[head as usize].len_at_first >= pages {
            head
        } else {
            let from = if class_floor(c) == u64::from(pages) {
                c
            } else {
                c + 1
            };
            let fits = self.nonempty & (!0u128).checked_shl(from as u32).unwrap_or(0);
            if fits == 0 {
                return None;
            }
            self.class_head[fits.trailing_zeros() as usize]
        };
        let len = self.at[at as usize].len_at_first;
        let class = self.remove(at);
        let rest = len - pages;
        let first = if pages >= LARGE_PAGES {
            // From the high end: the rest stays where it was, facing lower.
            if rest > 0 {
                self.insert_near(at, rest, class);
            }
            at + rest
        } else {
            if rest > 0 {
                self.insert_near(at + pages, rest, class);
            }
            at
        };
        self.free_pages -= u64::from(pages);
        Some(first)
    }

    /// Return `count` pages from `first`, merged with the free extents
    /// that end right before and start right after them.
    pub fn free_range(&mut self, first: PageIndex, count: u32) {
        if count == 0 {
            return;
        }
        let mut start = first;
        let mut end = first + count;
        // A merged extent is often of the class of the one it grew from.
        let mut class = None;
        if start > 0 && self.at[start as usize - 1].mark & LAST != 0 {
            let before = self.at[start as usize - 1].first_at_last;
            class = Some(self.remove(before));
            start = before;
        }
        if end < self.npages && self.at[end as usize].mark & FIRST != 0 {
            let after_len = self.at[end as usize].len_at_first;
            class = Some(self.remove(end));
            end += after_len;
        }
        match class {
            Some(class) => self.insert_near(start, end - start, class),
            None => self.insert(start, end - start),
        }
        self.free_pages += u64::from(count);
    }

    fn insert(&mut self, first: PageIndex, len: u32) {
        self.insert_in(first, len, class_of(len));
    }

    /// [`Self::insert`] of an extent likely of class `near` (one cut from
    /// or merged into an extent of that class): its class without
    /// [`class_of`] when it is.
    fn insert_near(&mut self, first: PageIndex, len: u32, near: usize) {
        let within = class_floor(near) <= u64::from(len)
            && (near + 1 == CLASSES || u64::from(len) < class_floor(near + 1));
        let c = if within { near } else { class_of(len) };
        self.insert_in(first, len, c);
    }

    /// [`Self::insert`] of an extent of class `c`.
    fn insert_in(&mut self, first: PageIndex, len: u32, c: usize) {
        let (f, l) = (first as usize, (first + len - 1) as usize);
        self.at[f].mark |= FIRST;
        self.at[l].mark |= LAST;
        self.at[f].len_at_first = len;
        self.at[l].first_at_last = first;
        self.at[f].class = c as u8;
        let old = self.class_head[c];
        self.at[f].next = old;
        self.at[f].prev = NIL;
        if old != NIL {
            self.at[old as usize].prev = first;
        }
        self.class_head[c] = first;
        self.nonempty |= 1 << c;
    }

    /// Take extent `first` out of its class list and marks; its class.
    fn remove(&mut self, first: PageIndex) -> usize {
        let f = first as usize;
        let len = self.at[f].len_at_first;
        let l = (first + len - 1) as usize;
        let c = usize::from(self.at[f].class);
        let (next, prev) = (self.at[f].next, self.at[f].prev);
        if prev == NIL {
            self.class_head[c] = next;
            if next == NIL {
                self.nonempty &= !(1 << c);
            }
        } else {
            self.at[prev as usize].next = next;
        }
        if next != NIL {
            self.at[next as usize].prev = prev;
        }
        self.at[f].next = NIL;
        self.at[f].prev = NIL;
        self.at[f].mark &= !FIRST;
        self.at[l].mark &= !LAST;
        self.at[f].len_at_first = 0;
        c
    }

    /// Whether a run of `pages` pages would be found: some class whose
    /// least length is at least `pages`, `pages` being a power of two.
    pub fn has_run(&self, pages: u64) -> bool {
        let Ok(pages) = u32::try_from(pages) else {
            return false;
        };
        if pages == 0 {
            return true;
        }
        let c = class_of(pages);
        debug_assert_eq!(class_floor(c), u64::from(pages));
        self.nonempty >> c != 0
    }

    /// Every extent as `(first page, length)`, class by class.
    fn extents(&self) -> impl Iterator<Item = (PageIndex, u32)> + '_ {
        (0..CLASSES).flat_map(move |c| {
            let mut at = self.class_head[c];
            let mut steps = 0u32;
            core::iter::from_fn(move || {
                // (A looping list is check()'s to report; stop after npages.)
                if at == NIL || steps >= self.npages {
                    return None;
                }
                steps += 1;
                let this = at;
                at = self.at[at as usize].next;
                Some((this, self.at[this as usize].len_at_first))
            })
        })
    }

    /// Every extent cut into the blocks a mapping could take, largest
    /// first, each at most `2^max_order`: `(first page, order)`.
    pub fn free_blocks(&self) -> Vec<(PageIndex, u32)> {
        let mut out = Vec::new();
        for (first, len) in self.extents() {
            let mut at = first;
            let mut left = len;
            while left > 0 {
                let order = (31 - left.leading_zeros()).min(self.max_order);
                out.push((at, order));
                at += 1 << order;
                left -= 1 << order;
            }
        }
        out
    }

    /// Free blocks per order, order 0 first, as [`Self::free_blocks`] cuts them.
    pub fn free_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.max_order as usize + 1];
        for (_, len) in self.extents() {
            let mut left = len;
            while left > 0 {
                let order = (31 - left.leading_zeros()).min(self.max_order);
                counts[order as usize] += 1;
                left -= 1 << order;
            }
        }
        counts
    }

    /// Class lists and bitmap, boundary marks, extents inside the arena,
    /// apart from each other (never two touching: they would have merged),
    /// and the free page count.
    pub fn check(&self) -> Result<(), String> {
        let mut counted = 0u64;
        let mut extents = 0usize;
        let mut seen: Vec<(u32, u32)> = Vec::new();
        for c in 0..CLASSES {
            let head = self.class_head[c];
            if (head != NIL) != (self.nonempty & (1 << c) != 0) {
                return Err(format!("class {c}: bitmap disagrees with its list"));
            }
            let mut back = NIL;
            let mut at = head;
            let mut steps = 0u32;
            while at != NIL {
                steps += 1;
                if steps > self.npages {
                    return Err(format!("class {c} loops"));
                }
                let a = at as usize;
                let len = self.at[a].len_at_first;
                if len == 0 || u64::from(at) + u64::from(len) > u64::from(self.npages) {
                    return Err(format!("extent {at}+{len} misplaced"));
                }
                if class_of(len) != c || usize::from(self.at[a].class) != c {
                    return Err(format!("extent {at}+{len} in class {c}"));
                }
                let last = (at + len - 1) as usize;
                if self.at[a].mark & FIRST == 0
                    || self.at[last].mark & LAST == 0
                    || self.at[last].first_at_last != at
                {
                    return Err(format!("extent {at}+{len}: boundary marks"));
                }
                if self.at[a].prev != back {
                    return Err(format!("extent {at}: bad back link"));
                }
                seen.push((at, len));
                counted += u64::from(len);
                extents += 1;
                back = at;
                at = self.at[a].next;
            }
        }
        seen.sort_unstable();
        for pair in seen.windows(2) {
            let ((a, alen), (b, _)) = (pair[0], pair[1]);
            if a + alen >= b {
                return Err(format!("extents {a}+{alen} and {b} touch or overlap"));
            }
        }
        let firsts = self.at.iter().filter(|p| p.mark & FIRST != 0).count();
        let lasts = self.at.iter().filter(|p| p.mark & LAST != 0).count();
        if firsts != extents || lasts != extents {
            return Err(format!(
                "{firsts} first and {lasts} last marks but {extents} extents"
            ));
        }
        if counted != self.free_pages {
            return Err(format!(
                "free count {} but extents hold {counted}",
                self.free_pages
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_ordered_and_powers_of_two_start_one() {
        let mut last = 0;
        for len in 1..5000u32 {
            let c = class_of(len);
            assert!(c >= last && c < CLASSES);
            assert!(class_floor(c) <= u64::from(len));
            assert!(class_floor(c + 1) > u64::from(len));
            last = c;
        }
        assert!(class_of(u32::MAX) < CLASSES);
        for k in 0..32 {
            assert_eq!(class_floor(class_of(1 << k)), 1 << k);
        }
    }

    #[test]
    fn neighbours_merge_on_both_sides() {
        let mut e = Extents::new(64, 10);
        let a = e.alloc(1).unwrap();
        let b = e.alloc(2).unwrap();
        let big = e.alloc(5).unwrap();
        assert_eq!((a, b, big), (0, 1, 59));
        e.check().unwrap();
        e.free_range(a, 1);
        e.free_range(big, 5);
        e.check().unwrap();
        e.free_range(b, 2);
        e.check().unwrap();
        assert_eq!(e.free_blocks(), [(0, 6)]);
        assert_eq!(e.free_pages(), 64);
    }

    #[test]
    fn a_run_in_the_requests_own_class_is_found() {
        // 5 pages free (class of 5) and a request of 5: no larger class.
        let mut e = Extents::new(10, 10);
        e.alloc(5).unwrap();
        assert!(!e.has_run(8));
        assert!(e.has_run(4));
        assert_eq!(e.alloc(5), Some(0));
        assert_eq!(e.alloc(1), None);
        e.check().unwrap();
    }
}
