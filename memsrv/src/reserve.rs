//! Page reserves: free pages the server grants a connection ahead of time,
//! so its client answers the common anonymous `mmap` and `munmap` without a
//! round trip and posts what it did (layout and entry format:
//! [`protocol::reserve`]).
//!
//! Spec §4.1 fixes what a private anonymous mapping holds; an applied entry
//! does what `do_mmap_private` and `do_munmap` of mm/nommu.c do for the call
//! it stands for. The reserve itself is Linux's per-CPU page lists
//! (`rmqueue_pcplist` / `free_unref_page` in mm/page_alloc.c): reserved
//! pages count as free, and an allocation that would fail first takes every
//! unused reserve back (`drain_all_pages`) and tries again.
//!
//! Every observable stays exact because the home calls
//! [`MemoryServer::drain_reserves`] before it hands memsrv any request (all
//! connections' entries, in order), and [`MemoryServer::refill_reserve`]
//! only while the connection's client waits for a reply, so never while it
//! takes pages. An entry is validated like a request; a refused one fails
//! the connection (the home cuts it) and nothing more of its ring is read.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Bound::{Excluded, Unbounded};
use core::sync::atomic::Ordering;

use protocol::reserve::{Posted, ReserveArea, LOCAL_FLAGS, MASK_WORDS, RING_LEN, WINDOW_PAGES};
use protocol::PAGE_SIZE;

use crate::nommu::Nommu;
use crate::page_alloc::PageIndex;
use crate::vm_flags::{determine_vm_flags, is_copy, MappingKind, NOMMU_MAP_COPY};
use crate::{ClientId, MemoryServer, PhysicalMemory};

/// The shared reserve area of one connection, as the home maps it; it
/// stays mapped as long as memsrv holds this value.
pub trait SharedReserve: Send {
    fn area(&self) -> &ReserveArea;
}

/// Bits of the pages `[from, from + count)` of a window.
fn range_bits(from: u32, count: u32) -> [u64; MASK_WORDS] {
    let mut bits = [0u64; MASK_WORDS];
    for page in from..from + count {
        bits[(page / 64) as usize] |= 1 << (page % 64);
    }
    bits
}

fn popcount(bits: &[u64; MASK_WORDS]) -> u32 {
    bits.iter().map(|w| w.count_ones()).sum()
}

/// The runs of set bits, as `(first page, pages)` relative to the window.
fn runs(bits: &[u64; MASK_WORDS]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let set = move |page: u32| bits[(page / 64) as usize] & (1 << (page % 64)) != 0;
    let mut page = 0;
    core::iter::from_fn(move || {
        while page < WINDOW_PAGES && !set(page) {
            page += 1;
        }
        let start = page;
        while page < WINDOW_PAGES && set(page) {
            page += 1;
        }
        (page > start).then_some((start, page - start))
    })
}

/// The pages granted to one connection.
struct Window {
    first: PageIndex,
    pages: u32,
    /// Pages of the window the reserve holds: offered in the free mask, or
    /// taken by the client and not applied yet.
    held: [u64; MASK_WORDS],
    /// Whether pages freed inside the window return to it (until revoked).
    live: bool,
}

struct Reserve {
    area: Box<dyn SharedReserve>,
    /// Entries applied (the shared `tail` is only a copy for the client).
    tail: u32,
    window: Option<Window>,
    /// An entry was refused: nothing more of the ring is read.
    failed: bool,
}

/// Every connection's reserve.
#[derive(Default)]
pub struct Reserves {
    by_client: BTreeMap<ClientId, Reserve>,
    /// Live windows by first page.
    live: BTreeMap<PageIndex, ClientId>,
    held_pages: u64,
}

impl Reserves {
    /// Pages held by reserves (they count as free).
    pub fn held_pages(&self) -> u64 {
        self.held_pages
    }

    /// Every held page, as `(first page, pages)` runs.
    pub fn held_runs(&self) -> Vec<(PageIndex, u32)> {
        let windows = self.by_client.values().filter_map(|r| r.window.as_ref());
        windows
            .flat_map(|w| runs(&w.held).map(move |(from, n)| (w.first + from, n)))
            .collect()
    }

    /// Pages `[page, to)` for a run starting at `page` below `end`, and the
    /// connection whose live window holds them (`None`: the allocator's).
    fn owner_run(&self, page: PageIndex, end: PageIndex) -> (PageIndex, Option<ClientId>) {
        if let Some((&first, &client)) = self.live.range(..=page).next_back() {
            let pages = self.window(client).map_or(0, |w| w.pages);
            if page < first + pages {
                return (end.min(first + pages), Some(client));
            }
        }
        let next = self.live.range(page + 1..).next().map(|(&f, _)| f);
        (next.map_or(end, |n| end.min(n)), None)
    }

    fn window(&self, client: ClientId) -> Option<&Window> {
        self.by_client.get(&client)?.window.as_ref()
    }

    /// Pages `[from, to)` of `client`'s live window come back: offered
    /// to the client again.
    fn give(&mut self, client: ClientId, from: PageIndex, to: PageIndex) {
        let Some(r) = self.by_client.get_mut(&client) else {
            return;
        };
        let Some(w) = r.window.as_mut() else {
            return;
        };
        let bits = range_bits(from - w.first, to - from);
        let area = r.area.area();
        for (i, word) in bits.iter().enumerate() {
            w.held[i] |= word;
            area.free.words[i].fetch_or(*word, Ordering::Release);
        }
        self.held_pages += u64::from(to - from);
    }

    /// Pages of `client`'s window still offered to it.
    fn offered(&self, client: ClientId) -> u32 {
        let Some(r) = self.by_client.get(&client) else {
            return 0;
        };
        match &r.window {
            Some(w) if w.live => {
                let free = &r.area.area().free.words;
                let mut bits = w.held;
                for (i, b) in bits.iter_mut().enumerate() {
                    *b &= free[i].load(Ordering::Acquire);
                }
                popcount(&bits)
            }
            _ => 0,
        }
    }
}

impl Nommu {
    /// Free pages, reserved ones included (as Linux counts its per-CPU
    /// lists): `MemFree` and every other view of free memory.
    pub fn free_pages(&self) -> u64 {
        self.pages.free_pages() + self.reserves.held_pages
    }

    /// Free blocks as every view shows them, `(first page, order)`: the
    /// allocator's, then the reserved ones.
    pub fn free_blocks(&self) -> Vec<(PageIndex, u32)> {
        let mut out = self.pages.free_blocks();
        out.extend(self.reserved_blocks());
        out
    }

    /// Each reserved run cut into the largest blocks it holds (its pages
    /// are free pages, as a per-CPU list's are).
    fn reserved_blocks(&self) -> Vec<(PageIndex, u32)> {
        let mut out = Vec::new();
        for (mut at, mut left) in self.reserves.held_runs() {
            while left > 0 {
                let order = (31 - left.leading_zeros()).min(self.pages.max_order());
                out.push((at, order));
                at += 1 << order;
                left -= 1 << order;
            }
        }
        out
    }

    /// [`crate::page_alloc::PageAllocator::alloc_copy`], taking every
    /// unused reserve back before it gives up.
    pub fn alloc_pages(&mut self, pages: u64, nr_trim_pages: u32) -> Option<(PageIndex, u64)> {
        if let Some(got) = self.pages.alloc_copy(pages, nr_trim_pages) {
            return Some(got);
        }
        let &client = self.reserves.live.values().next()?;
        self.revoke(client);
        self.alloc_pages(pages, nr_trim_pages)
    }

    /// Pages `[first, first + count)` of a copy are free: those inside a
    /// live window return to its reserve, the rest to the allocator.
    pub fn release_pages(&mut self, first: PageIndex, count: u32) {
        if self.reserves.live.is_empty() {
            // No window anywhere: all of it is the allocator's.
            return self.pages.free_range(first, count);
        }
        let end = first + count;
        let mut page = first;
        while page < end {
            let (to, owner) = self.reserves.owner_run(page, end);
            match owner {
                Some(client) => self.reserves.give(client, page, to),
                None => self.pages.free_range(page, to - page),
            }
            page = to;
        }
    }

    /// Take back every page of `client`'s window still offered (each bit
    /// swapped to 0 is the server's again; a page the client took first
    /// stays held until its entry is applied). Freed pages inside the
    /// window go to the allocator from now on.
    fn revoke(&mut self, client: ClientId) {
        let Nommu {
            reserves, pages, ..
        } = self;
        let Some(r) = reserves.by_client.get_mut(&client) else {
            return;
        };
        let Some(w) = r.window.as_mut().filter(|w| w.live) else {
            return;
        };
        let area = r.area.area();
        let mut back = [0u64; MASK_WORDS];
        for (i, word) in area.free.words.iter().enumerate() {
            back[i] = word.swap(0, Ordering::AcqRel) & w.held[i];
            w.held[i] &= !back[i];
        }
        w.live = false;
        reserves.live.remove(&w.first);
        for (from, n) in runs(&back) {
            pages.free_range(w.first + from, n);
        }
        reserves.held_pages -= u64::from(popcount(&back));
    }

    /// Revoke `client`'s window and free what it still holds: its client
    /// waits for a reply (or is gone), so a page it took and did not post
    /// is one it will never post honestly.
    fn retire(&mut self, client: ClientId) {
        self.revoke(client);
        let Some(w) = self
            .reserves
            .by_client
            .get_mut(&client)
            .and_then(|r| r.window.take())
        else {
            return;
        };
        for (from, n) in runs(&w.held) {
            self.pages.free_range(w.first + from, n);
        }
        self.reserves.held_pages -= u64::from(popcount(&w.held));
    }

    /// Take the pages an `Mmap` entry names off `client`'s window: they
    /// must lie in it, be held, and no longer be offered (the client took
    /// them).
    fn take_held(&mut self, client: ClientId, first: u32, pages: u32) -> Result<(), ()> {
        let r = self.reserves.by_client.get_mut(&client).ok_or(())?;
        let w = r.window.as_mut().ok_or(())?;
        let from = first.checked_sub(w.first).ok_or(())?;
        if from.checked_add(pages).is_none_or(|end| end > w.pages) {
            return Err(());
        }
        let bits = range_bits(from, pages);
        let free = &r.area.area().free.words;
        for (i, b) in bits.iter().enumerate() {
            if w.held[i] & b != *b || free[i].load(Ordering::Acquire) & b != 0 {
                return Err(());
            }
        }
        for (i, b) in bits.iter().enumerate() {
            w.held[i] &= !b;
        }
        self.reserves.held_pages -= u64::from(pages);
        Ok(())
    }
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `client`'s connection has a shared reserve area: from now on its
    /// posted entries are applied, and it may be granted pages.
    pub fn attach_reserve(&mut self, client: ClientId, area: Box<dyn SharedReserve>) {
        self.nommu.retire(client);
        let a = area.area();
        for word in &a.free.words {
            word.store(0, Ordering::Relaxed);
        }
        a.server.window_pages.store(0, Ordering::Relaxed);
        a.server.tail.store(0, Ordering::Release);
        let reserve = Reserve {
            area,
            tail: 0,
            window: None,
            failed: false,
        };
        self.nommu.reserves.by_client.insert(client, reserve);
    }

    /// Apply every connection's posted entries, in order, and take back
    /// windows whose offered pages could let a process pass
    /// `max_map_count`. Connections whose entry was refused are pushed to
    /// `refused` once: the home fails them.
    pub fn drain_reserves(&mut self, refused: &mut Vec<ClientId>) {
        let mut next = self.nommu.reserves.by_client.keys().next().copied();
        while let Some(client) = next {
            if self.drain_reserve(client).is_err() {
                refused.push(client);
            }
            self.keep_headroom(client);
            let after = (Excluded(client), Unbounded);
            next = self
                .nommu
                .reserves
                .by_client
                .range(after)
                .next()
                .map(|(&c, _)| c);
        }
    }

    /// Apply `client`'s posted entries; `Err` the first time one is
    /// refused.
    pub(crate) fn drain_reserve(&mut self, client: ClientId) -> Result<(), ()> {
        loop {
            let Some(r) = self.nommu.reserves.by_client.get_mut(&client) else {
                return Ok(());
            };
            if r.failed {
                return Ok(());
            }
            let area = r.area.area();
            let head = area.client.head.load(Ordering::Acquire);
            if head == r.tail {
                return Ok(());
            }
            let word = (head.wrapping_sub(r.tail) <= RING_LEN)
                .then(|| area.ring[(r.tail % RING_LEN) as usize].load(Ordering::Relaxed));
            let applied = match word {
                Some(word) => self.apply(client, word),
                None => Err(()),
            };
            let Some(r) = self.nommu.reserves.by_client.get_mut(&client) else {
                return Ok(());
            };
            if applied.is_err() {
                r.failed = true;
                return Err(());
            }
            r.tail = r.tail.wrapping_add(1);
            r.area.area().server.tail.store(r.tail, Ordering::Release);
        }
    }

    /// Carry out one posted entry, validated as the call it stands for.
    fn apply(&mut self, client: ClientId, word: u64) -> Result<(), ()> {
        let entry = Posted::decode(word).ok_or(())?;
        let mm = self.procs.caller(client).map_err(|_| ())?.1.mm;
        match entry {
            Posted::Mmap { first, pages, prot } => {
                let count = self.nommu.mms.get(&mm).ok_or(())?.map_count();
                if count >= self.nommu.tunables.max_map_count || !self.memory.may_add_mapping(mm.0)
                {
                    return Err(());
                }
                self.nommu.take_held(client, first, pages)?;
                let flags = determine_vm_flags(
                    MappingKind::Anonymous,
                    prot,
                    LOCAL_FLAGS,
                    NOMMU_MAP_COPY,
                    false,
                );
                let (start, len) = (self.nommu.addr_of(first), u64::from(pages) * PAGE_SIZE);
                self.nommu
                    .insert_private_copy(mm, start, len, u64::from(pages), 0, flags);
                Ok(())
            }
            Posted::Munmap { first, pages } => {
                let start = self.nommu.base + u64::from(first) * PAGE_SIZE;
                let end = start + u64::from(pages) * PAGE_SIZE;
                let m = self.nommu.mms.get(&mm).ok_or(())?;
                let key = m.find_vma(start).ok_or(())?;
                let vma = m.get(&key).ok_or(())?;
                if key.start != start
                    || key.end != end
                    || vma.backing.is_some()
                    || !is_copy(vma.flags)
                {
                    return Err(());
                }
                self.nommu.do_munmap(mm, start, end - start).map_err(|_| ())
            }
        }
    }

    /// Revoke `client`'s window if the pages it offers, each a possible
    /// mapping, and two more (the most one request adds) could pass
    /// `max_map_count`.
    fn keep_headroom(&mut self, client: ClientId) {
        let offered = self.nommu.reserves.offered(client);
        if offered == 0 {
            return;
        }
        let count = self
            .procs
            .caller(client)
            .ok()
            .and_then(|(_, p)| self.nommu.mms.get(&p.mm));
        let count = count.map_or(usize::MAX, |m| m.map_count());
        if count.saturating_add(offered as usize + 2) > self.nommu.tunables.max_map_count {
            self.nommu.revoke(client);
        }
    }

    /// Pages one grant to `client` holds: the configured reserve (a power
    /// of two, so a window is one allocation). None under
    /// [`crate::Placement::Linux`], which promises Linux's buddy placement
    /// of every mapping exactly, and none while a memory limit is set:
    /// every mapping is then judged by the server against the limit before
    /// it exists (`ENOMEM`), which a mapping made locally could not be.
    fn grant_pages(&self, _client: ClientId) -> u32 {
        let pages = self.config.reserve_pages.min(WINDOW_PAGES);
        let limited =
            self.config.max_process_memory.is_some() || self.config.max_user_memory.is_some();
        if pages == 0 || limited || self.config.placement == crate::Placement::Linux {
            0
        } else {
            1 << (31 - pages.leading_zeros())
        }
    }

    /// Grant `client` a new window if it has none with pages to offer.
    /// Only while its client waits for a reply (it takes no pages then),
    /// and after [`Self::drain_reserves`].
    pub fn refill_reserve(&mut self, client: ClientId) {
        let pages = self.grant_pages(client);
        let failed = self
            .nommu
            .reserves
            .by_client
            .get(&client)
            .is_none_or(|r| r.failed);
        if pages == 0 || failed || self.nommu.reserves.offered(client) > 0 {
            return;
        }
        self.nommu.retire(client);
        let Ok((_, p)) = self.procs.caller(client) else {
            return;
        };
        let count = self
            .nommu
            .mms
            .get(&p.mm)
            .map_or(usize::MAX, |m| m.map_count());
        let room = count.saturating_add(pages as usize + 2) <= self.nommu.tunables.max_map_count;
        // A grant never takes the last free memory.
        if !room || self.nommu.pages.free_pages() < 2 * u64::from(pages) {
            return;
        }
        let Some((first, _)) = self.nommu.pages.alloc_copy(u64::from(pages), 1) else {
            return;
        };
        let reserves = &mut self.nommu.reserves;
        let Some(r) = reserves.by_client.get_mut(&client) else {
            self.nommu.pages.free_range(first, pages);
            return;
        };
        let held = range_bits(0, pages);
        let area = r.area.area();
        area.server.window.store(first, Ordering::Relaxed);
        area.server.window_pages.store(pages, Ordering::Relaxed);
        for (word, bits) in area.free.words.iter().zip(held) {
            word.store(bits, Ordering::Release);
        }
        r.window = Some(Window {
            first,
            pages,
            held,
            live: true,
        });
        reserves.live.insert(first, client);
        reserves.held_pages += u64::from(pages);
    }

    /// The connection is gone: its window's pages all go back to the
    /// allocator (after [`Self::drain_reserve`] and the process's exit,
    /// which returned its local mappings' pages to the window).
    pub(crate) fn drop_reserve(&mut self, client: ClientId) {
        self.nommu.retire(client);
        self.nommu.reserves.by_client.remove(&client);
    }
}
