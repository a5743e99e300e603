//! The allocator over a fake page source that checks every request (whole
//! pages, no overlap, only mapped ranges unmapped) and fills new pages
//! with garbage, as a server honouring `MAP_UNINITIALIZED` may.

extern crate std;

use super::*;
use drivers::testing::Rng;
use std::alloc::{alloc, dealloc, Layout};
use std::boxed::Box;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::vec::Vec;

/// One mapping: its storage (`cap` bytes from `alloc`) and mapped length.
struct Region {
    base: usize,
    cap: usize,
    len: usize,
}

#[derive(Default)]
struct Fake {
    stats: Stats,
    /// Live mappings by start address.
    maps: Mutex<BTreeMap<usize, Region>>,
    /// Refuse to grow a mapping (a `--strict-mremap` server).
    strict: bool,
    /// Refuse to map beyond this many bytes in all.
    limit: Option<usize>,
}

#[derive(Clone, Copy)]
struct Src(&'static Fake);

fn fake(strict: bool, limit: Option<usize>) -> Src {
    Src(Box::leak(Box::new(Fake {
        strict,
        limit,
        ..Fake::default()
    })))
}

fn layout(cap: usize) -> Layout {
    Layout::from_size_align(cap, PAGE).unwrap()
}

impl Src {
    fn mapped(&self) -> usize {
        self.0.maps.lock().unwrap().values().map(|r| r.len).sum()
    }

    fn count(&self) -> usize {
        self.0.maps.lock().unwrap().len()
    }
}

impl PageSource for Src {
    fn map(&self, len: usize) -> Option<*mut u8> {
        assert!(len > 0 && len.is_multiple_of(PAGE), "map of {len}");
        if let Some(limit) = self.0.limit {
            if self.mapped() + len > limit {
                return None;
            }
        }
        // SAFETY: a non-zero size.
        let p = unsafe { alloc(layout(len)) };
        assert!(!p.is_null());
        // SAFETY: fresh storage of `len` bytes.
        unsafe { p.write_bytes(0xa5, len) };
        let base = p as usize;
        let mut maps = self.0.maps.lock().unwrap();
        assert!(maps
            .range(..base + len)
            .next_back()
            .is_none_or(|(_, r)| r.base + r.len <= base));
        maps.insert(
            base,
            Region {
                base,
                cap: len,
                len,
            },
        );
        Some(p)
    }

    fn unmap(&self, addr: *mut u8, len: usize) -> bool {
        let addr = addr as usize;
        assert!(addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE) && len > 0);
        let mut maps = self.0.maps.lock().unwrap();
        let (&start, region) = maps
            .range_mut(..=addr)
            .next_back()
            .expect("unmap of an unmapped address");
        assert_eq!(
            addr + len,
            region.base + region.len,
            "only whole mappings or tails are unmapped"
        );
        if addr == start {
            let region = maps.remove(&start).unwrap();
            // SAFETY: storage allocated in `map` with this capacity.
            unsafe { dealloc(region.base as *mut u8, layout(region.cap)) };
        } else {
            region.len -= len;
        }
        true
    }

    fn remap(&self, addr: *mut u8, old: usize, new: usize, may_move: bool) -> Option<*mut u8> {
        let start = addr as usize;
        assert!(new.is_multiple_of(PAGE) && new > 0);
        let mut maps = self.0.maps.lock().unwrap();
        let region = maps.get_mut(&start).expect("remap of an unmapped address");
        assert_eq!(region.len, old, "remap with the mapping's length");
        if new <= region.cap {
            region.len = new;
            return Some(addr);
        }
        if self.0.strict || !may_move {
            return None;
        }
        drop(maps);
        let to = self.map(new)?;
        // SAFETY: both mappings are live and `old` bytes long at least.
        unsafe { ptr::copy_nonoverlapping(addr, to, old) };
        self.unmap(addr, old);
        Some(to)
    }

    fn stats(&self) -> &Stats {
        &self.0.stats
    }
}

/// A value in `0..n` from `rng`, as an index or a size.
fn below(rng: &mut Rng, n: u64) -> usize {
    rng.below(n) as usize
}

/// A request size: mostly small, some medium, a few past the mmap threshold.
fn request_size(rng: &mut Rng) -> usize {
    match below(rng, 100) {
        0..=69 => below(rng, 256),
        70..=89 => 256 + below(rng, 16 << 10),
        90..=95 => 16 << 10 | below(rng, MMAP_THRESHOLD as u64),
        _ => MMAP_THRESHOLD / 2 + below(rng, 1 << 20),
    }
}

struct Block {
    p: *mut u8,
    size: usize,
    align: usize,
    seed: u8,
}

fn fill(b: &Block) {
    for i in 0..b.size {
        // SAFETY: `b.p` holds `b.size` bytes.
        unsafe { *b.p.add(i) = b.seed.wrapping_add((i / 7) as u8) };
    }
}

fn check(b: &Block, len: usize) {
    for i in 0..len.min(b.size) {
        // SAFETY: `b.p` holds at least `len.min(b.size)` bytes.
        let got = unsafe { *b.p.add(i) };
        assert_eq!(
            got,
            b.seed.wrapping_add((i / 7) as u8),
            "byte {i} of {} bytes",
            b.size
        );
    }
}

fn check_block<P: PageSource>(heap: &Heap<P>, b: &Block) {
    assert!(!b.p.is_null());
    assert_eq!(b.p as usize % b.align.max(MALLOC_ALIGNMENT), 0);
    // SAFETY: a live block.
    assert!(unsafe { heap.usable_size(b.p) } >= b.size);
}

/// Check a new block `(p, size, align)`, fill it with the pattern of
/// `seed` and keep it among the `live` ones.
fn keep<P: PageSource>(
    heap: &Heap<P>,
    live: &mut Vec<Block>,
    new: (*mut u8, usize, usize),
    seed: u8,
) {
    let (p, size, align) = new;
    let b = Block {
        p,
        size,
        align,
        seed,
    };
    check_block(heap, &b);
    fill(&b);
    live.push(b);
}

#[test]
fn random_walk_keeps_contents_and_gives_everything_back() {
    let src = fake(false, None);
    let mut heap = Heap::new(src);
    let mut rng = Rng::from_state(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<Block> = Vec::new();
    for step in 0..8_000u32 {
        let seed = step as u8;
        match below(&mut rng, 10) {
            0..=3 if live.len() < 400 => {
                let size = request_size(&mut rng);
                let p = heap.malloc(size);
                keep(&heap, &mut live, (p, size, MALLOC_ALIGNMENT), seed);
            }
            4 if live.len() < 400 => {
                let size = request_size(&mut rng);
                let p = heap.calloc(1, size);
                // SAFETY: `p` holds `size` bytes.
                assert!(unsafe { core::slice::from_raw_parts(p, size) }
                    .iter()
                    .all(|&x| x == 0));
                keep(&heap, &mut live, (p, size, MALLOC_ALIGNMENT), seed);
            }
            5 if live.len() < 400 => {
                let span = if below(&mut rng, 10) == 0 { 12 } else { 8 };
                let align = 1 << (5 + below(&mut rng, span));
                let size = request_size(&mut rng);
                let p = heap.memalign(align, size);
                keep(&heap, &mut live, (p, size, align), seed);
            }
            6..=7 if !live.is_empty() => {
                let i = below(&mut rng, live.len() as u64);
                let size = request_size(&mut rng);
                let b = &mut live[i];
                check(b, b.size);
                // SAFETY: a live block.
                let q = unsafe { heap.realloc(b.p, size.max(1)) };
                b.p = q;
                b.align = MALLOC_ALIGNMENT;
                let old = b.size;
                b.size = size.max(1);
                check(b, old);
                check_block(&heap, b);
                b.seed = seed;
                fill(b);
            }
            _ if !live.is_empty() => {
                let b = live.swap_remove(below(&mut rng, live.len() as u64));
                check(&b, b.size);
                // SAFETY: a live block.
                unsafe { heap.free(b.p) };
            }
            _ => {}
        }
        let stats = heap.stats();
        assert_eq!(stats.mapped_bytes as usize, src.mapped(), "step {step}");
    }
    for b in live.drain(..) {
        check(&b, b.size);
        // SAFETY: a live block.
        unsafe { heap.free(b.p) };
    }
    let stats = heap.stats();
    assert!(stats.mremap_calls > 0, "{stats:?}");
    assert!(stats.munmap_calls > 0, "{stats:?}");
    heap.trim(0);
    let stats = heap.stats();
    assert_eq!(stats.mapped_bytes, 0, "{stats:?}");
    assert_eq!(src.count(), 0);
}

#[test]
fn small_blocks_share_segments() {
    let src = fake(false, None);
    let mut heap = Heap::new(src);
    let blocks: Vec<_> = (0..1000).map(|i| heap.malloc(16 + i % 100)).collect();
    let stats = heap.stats();
    assert!(stats.mmap_calls <= 3, "{stats:?}");
    assert!(stats.mapped_bytes >= 1000 * 16);
    for p in blocks {
        // SAFETY: live blocks.
        unsafe { heap.free(p) };
    }
    assert!(heap.trim(0));
    assert_eq!(heap.stats().mapped_bytes, 0);
    assert_eq!(heap.stats().munmap_calls, stats.mmap_calls);
}

#[test]
fn large_blocks_are_mapped_alone_and_grow_by_mremap() {
    let src = fake(false, None);
    let mut heap = Heap::new(src);
    let size = 200 << 10;
    let p = heap.malloc(size);
    let len = (size + 16).next_multiple_of(PAGE) as u64;
    assert_eq!(heap.stats().mmap_calls, 1);
    assert_eq!(heap.stats().mapped_bytes, len);
    let b = Block {
        p,
        size,
        align: MALLOC_ALIGNMENT,
        seed: 7,
    };
    fill(&b);
    // SAFETY: live blocks throughout.
    unsafe {
        let q = heap.realloc(p, 1 << 20);
        assert_eq!(heap.stats().mremap_calls, 1);
        assert_eq!(heap.stats().mmap_calls, 1, "the server moved it");
        assert_eq!(heap.stats().mapped_bytes, (1u64 << 20) + PAGE as u64);
        check(&Block { p: q, ..b }, size);
        assert!(heap.usable_size(q) >= 1 << 20);
        // Shrinking unmaps the tail.
        let unmaps = heap.stats().munmap_calls;
        let r = heap.realloc(q, 100 << 10);
        assert_eq!(r, q);
        assert_eq!(heap.stats().munmap_calls, unmaps + 1);
        assert_eq!(
            heap.stats().mapped_bytes,
            (100usize << 10).next_multiple_of(PAGE) as u64 + PAGE as u64
        );
        check(&Block { p: r, ..b }, 100 << 10);
        // Below the threshold it moves into a segment.
        let s = heap.realloc(r, 1000);
        check(&Block { p: s, ..b }, 1000);
        heap.free(s);
    }
    heap.trim(0);
    assert_eq!(heap.stats().mapped_bytes, 0);
    assert_eq!(src.count(), 0);
}

#[test]
fn a_refused_mremap_falls_back_to_copying() {
    let src = fake(true, None);
    let mut heap = Heap::new(src);
    let size = 100 << 10;
    let b = Block {
        p: heap.malloc(size),
        size,
        align: MALLOC_ALIGNMENT,
        seed: 3,
    };
    fill(&b);
    // SAFETY: live blocks.
    unsafe {
        let q = heap.realloc(b.p, 3 * size);
        assert_ne!(q, b.p);
        assert_eq!(heap.stats().mremap_calls, 1);
        check(&Block { p: q, ..b }, size);
        heap.free(q);
    }
    assert_eq!(heap.stats().mapped_bytes, 0);
}

#[test]
fn calloc_clears_uninitialized_pages() {
    let src = fake(false, None);
    let mut heap = Heap::new(src);
    for size in [1, 24, 1000, 40_000, MMAP_THRESHOLD, 300_000] {
        let p = heap.calloc(size, 1);
        // SAFETY: `p` holds `size` bytes.
        let bytes = unsafe { core::slice::from_raw_parts_mut(p, size) };
        assert!(bytes.iter().all(|&x| x == 0), "calloc({size})");
        bytes.fill(0xff);
        // SAFETY: a live block.
        unsafe { heap.free(p) };
    }
    assert!(heap.calloc(usize::MAX / 2, 3).is_null());
}

#[test]
fn out_of_memory_is_null_and_harmless() {
    let src = fake(false, Some(256 << 10));
    let mut heap = Heap::new(src);
    assert!(heap.malloc(1 << 20).is_null());
    assert!(heap.malloc(usize::MAX - 10).is_null());
    assert!(heap.memalign(1 << 12, usize::MAX - 10).is_null());
    let p = heap.malloc(100 << 10);
    assert!(!p.is_null());
    // SAFETY: a live block; a failed realloc keeps it.
    unsafe {
        assert!(heap.realloc(p, 1 << 20).is_null());
        assert!(heap.usable_size(p) >= 100 << 10);
        heap.free(p);
    }
    assert_eq!(heap.stats().mapped_bytes, 0);
}

#[test]
fn aligned_blocks_of_every_kind() {
    let src = fake(false, None);
    let mut heap = Heap::new(src);
    let mut blocks = Vec::new();
    for shift in 4..=17 {
        let align = 1usize << shift;
        for size in [1, 100, 5000, 70_000] {
            let p = heap.memalign(align, size);
            assert_eq!(p as usize % align, 0, "align {align} size {size}");
            // SAFETY: a live block.
            assert!(unsafe { heap.usable_size(p) } >= size);
            // SAFETY: `p` holds `size` bytes.
            unsafe { p.write_bytes(0x5a, size) };
            blocks.push(p);
        }
    }
    for p in blocks {
        // SAFETY: live blocks.
        unsafe { heap.free(p) };
    }
    heap.trim(0);
    assert_eq!(heap.stats().mapped_bytes, 0);
}

#[test]
fn realloc_edges() {
    let src = fake(false, None);
    let mut heap = Heap::new(src);
    // SAFETY: live blocks throughout.
    unsafe {
        let p = heap.realloc(ptr::null_mut(), 10);
        assert!(!p.is_null());
        assert!(heap.realloc(p, 0).is_null());
        heap.free(ptr::null_mut());
        assert_eq!(heap.usable_size(ptr::null_mut()), 0);
        let z = heap.malloc(0);
        assert!(!z.is_null());
        heap.free(z);
    }
    heap.trim(0);
    assert_eq!(heap.stats().mapped_bytes, 0);
}
