//! Page reserves on the bare state machine: the test plays the home
//! (drain before every request, refill while the client waits) and the
//! client (taking pages and posting entries through the shared area).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::rig::Rig;
use super::sim::{BASE, P};
use crate::{ClientId, SharedReserve};
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE};
use protocol::reserve::{Posted, ReserveArea, RING_LEN};
use protocol::{Errno, ProcView};

struct Shared(Arc<ReserveArea>);

impl SharedReserve for Shared {
    fn area(&self) -> &ReserveArea {
        &self.0
    }
}

const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

/// A rig of `pages` pages granting `grant`-page reserves, and process
/// connections `clients` with an area each.
fn rig(pages: u64, grant: u32, clients: &[u64]) -> (Rig, Vec<Arc<ReserveArea>>) {
    rig_with(pages, clients, |c| c.reserve_pages = grant)
}

fn rig_with(
    pages: u64,
    clients: &[u64],
    tweak: impl FnOnce(&mut crate::Config),
) -> (Rig, Vec<Arc<ReserveArea>>) {
    let mut r = Rig::with(pages, tweak);
    let mut areas = Vec::new();
    for &c in clients {
        r.process(c, 1000);
        let area = Arc::new(ReserveArea::new());
        r.s.attach_reserve(ClientId(c), Box::new(Shared(area.clone())));
        areas.push(area);
    }
    (r, areas)
}

/// What the home does around every request: drain, refill the caller
/// (it waits for the reply), serve; the connections it must fail.
fn serve(r: &mut Rig, c: u64, req: protocol::Request) -> (protocol::Reply, Vec<ClientId>) {
    let mut refused = Vec::new();
    r.s.drain_reserves(&mut refused);
    r.s.refill_reserve(ClientId(c));
    let reply = r.call(c, req);
    r.s.drain_reserves(&mut refused);
    (reply, refused)
}

fn proc_text(r: &mut Rig, c: u64, view: ProcView) -> String {
    let mut refused = Vec::new();
    r.s.drain_reserves(&mut refused);
    assert!(refused.is_empty());
    r.maps(c, view)
}

fn mem_free_kb(text: &str) -> u64 {
    let line = text.lines().find(|l| l.starts_with("MemFree:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The client's local `mmap`: take pages, post the entry.
fn local_mmap(area: &ReserveArea, pages: u32) -> Option<u64> {
    if !area.has_room() {
        return None;
    }
    let first = area.take_pages(pages)?;
    assert!(area.post(Posted::Mmap {
        first,
        pages,
        prot: 3
    }));
    Some(BASE + u64::from(first) * P)
}

fn local_munmap(area: &ReserveArea, addr: u64, pages: u32) {
    let first = ((addr - BASE) / P) as u32;
    assert!(area.post(Posted::Munmap { first, pages }));
}

/// A request that changes nothing.
fn neutral() -> protocol::Request {
    protocol::Request::ReadSysctl {
        name: protocol::Sysctl::NrTrimPages,
    }
}

/// A first request grants the reserve; it counts as free.
fn granted(r: &mut Rig, c: u64) {
    let before = mem_free_kb(&proc_text(r, c, ProcView::Meminfo));
    let (_, refused) = serve(r, c, neutral());
    assert!(refused.is_empty());
    let after = mem_free_kb(&proc_text(r, c, ProcView::Meminfo));
    assert_eq!(before, after, "reserved pages count as free");
    // /proc/buddyinfo shows the allocator's free blocks alone, as Linux's
    // leaves out pages on per-CPU lists: MemFree less the reserve.
    let text = proc_text(r, c, ProcView::Buddyinfo);
    let counts = text
        .split_whitespace()
        .skip(4)
        .map(|n| n.parse::<u64>().unwrap());
    let pages: u64 = counts.enumerate().map(|(order, n)| n << order).sum();
    let reserved = r.s.nommu.reserves.held_pages();
    assert!(reserved > 0);
    assert_eq!((pages + reserved) * 4, after, "{text}");
    r.ok();
}

#[test]
fn a_local_mapping_is_seen_by_another_process_and_counted_as_used() {
    let (mut r, areas) = rig(256, 32, &[1, 2]);
    granted(&mut r, 1);
    let free = mem_free_kb(&proc_text(&mut r, 2, ProcView::Meminfo));
    let addr = local_mmap(&areas[0], 2).unwrap();
    // Another process reads the global maps right after the mmap returned.
    let text = proc_text(&mut r, 2, ProcView::GlobalMaps);
    assert!(
        text.contains(&alloc::format!("{addr:08x}-{:08x}", addr + 2 * P)),
        "{text}"
    );
    assert_eq!(
        mem_free_kb(&proc_text(&mut r, 2, ProcView::Meminfo)),
        free - 8
    );
    r.ok();
    // Its munmap, posted, gives the pages back to the reserve.
    local_munmap(&areas[0], addr, 2);
    let text = proc_text(&mut r, 2, ProcView::GlobalMaps);
    assert!(!text.contains(&alloc::format!("{addr:08x}")), "{text}");
    assert_eq!(mem_free_kb(&proc_text(&mut r, 2, ProcView::Meminfo)), free);
    r.ok();
    // The same pages are offered again.
    assert_eq!(local_mmap(&areas[0], 2), Some(addr));
    // A server munmap of a local mapping sees it too.
    let (reply, _) = serve(&mut r, 1, protocol::Request::Munmap { addr, len: 2 * P });
    assert_eq!(reply.into_result().map(|_| ()), Ok(()));
    r.ok();
}

#[test]
fn a_killed_process_loses_nothing_and_its_pages_are_reused() {
    let (mut r, areas) = rig(128, 64, &[1, 2]);
    let total = mem_free_kb(&proc_text(&mut r, 2, ProcView::Meminfo));
    granted(&mut r, 1);
    let a = local_mmap(&areas[0], 4).unwrap();
    let b = local_mmap(&areas[0], 1).unwrap();
    local_munmap(&areas[0], a, 4);
    // Taken but never posted: the client died between the two.
    areas[0].take_pages(8).unwrap();
    r.disconnect(1);
    r.ok();
    assert_eq!(mem_free_kb(&proc_text(&mut r, 2, ProcView::Meminfo)), total);
    // The whole arena is free again, in one piece: the reserve's pages
    // included.
    let big = r.mmap(2, 128 * P, 3, ANON, -1, 0).unwrap();
    assert!(big <= a && b < big + 128 * P);
    r.ok();
}

#[test]
fn garbage_in_the_ring_fails_that_connection_only() {
    let (mut r, areas) = rig(256, 32, &[1, 2]);
    granted(&mut r, 1);
    granted(&mut r, 2);
    let good = local_mmap(&areas[1], 1).unwrap();
    for garbage in [
        // Not an entry at all.
        u64::MAX,
        // Pages outside the window, or never offered.
        Posted::Mmap {
            first: 0,
            pages: 1,
            prot: 3,
        }
        .encode(),
        // A munmap of nothing mapped.
        Posted::Munmap { first: 3, pages: 1 }.encode(),
    ] {
        let (mut s, areas) = rig(256, 32, &[1, 2]);
        granted(&mut s, 1);
        let head = areas[0].client.head.load(Ordering::Relaxed);
        areas[0].ring[head as usize].store(garbage, Ordering::Relaxed);
        areas[0].client.head.store(head + 1, Ordering::Release);
        let (reply, refused) = serve(&mut s, 2, neutral());
        assert!(!matches!(reply, protocol::Reply::Error(_)), "{reply:?}");
        assert_eq!(refused, [ClientId(1)]);
        s.disconnect(1);
        s.ok();
    }
    // A head past anything the ring holds.
    areas[0].client.head.store(RING_LEN + 5, Ordering::Release);
    let mut refused = Vec::new();
    r.s.drain_reserves(&mut refused);
    assert_eq!(refused, [ClientId(1)]);
    // Refused once; the other connection's entries still apply.
    let mut again = Vec::new();
    r.s.drain_reserves(&mut again);
    assert!(again.is_empty());
    assert!(proc_text(&mut r, 2, ProcView::SelfMaps).contains(&alloc::format!("{good:08x}")));
    r.disconnect(1);
    r.ok();
}

#[test]
fn an_allocation_takes_unused_reserves_back_before_it_fails() {
    let (mut r, areas) = rig(128, 64, &[1, 2]);
    granted(&mut r, 1);
    let kept = local_mmap(&areas[0], 1).unwrap();
    let mut refused = Vec::new();
    r.s.drain_reserves(&mut refused);
    // 127 pages are free (63 of them reserved): all of them can be had.
    assert!(r.mmap(2, 64 * P, 3, ANON, -1, 0).is_ok());
    let offered = |a: &ReserveArea| a.free.words.iter().any(|w| w.load(Ordering::Relaxed) != 0);
    assert!(offered(&areas[0]), "not needed yet");
    let rest = r.mmap(2, 62 * P, 3, ANON, -1, 0);
    assert!(rest.is_ok(), "{rest:?}");
    assert_eq!(areas[0].take_pages(1), None, "revoked");
    r.ok();
    // The revoked window's mapping, freed, goes to the allocator.
    local_munmap(&areas[0], kept, 1);
    r.s.drain_reserves(&mut refused);
    let (reply, _) = serve(&mut r, 2, super::rig::Rig::mmap_req(2 * P, 3, ANON, -1, 0));
    assert!(matches!(reply, protocol::Reply::Mapped { .. }), "{reply:?}");
    // And nothing is left to grant.
    serve(&mut r, 1, neutral());
    assert_eq!(areas[0].take_pages(1), None);
    assert_eq!(r.mmap(1, P, 3, ANON, -1, 0), Err(Errno::ENOMEM));
    r.ok();
}

#[test]
fn a_window_never_lets_a_process_pass_max_map_count() {
    let (mut r, areas) = rig_with(256, &[1], |c| {
        c.reserve_pages = 16;
        c.max_map_count = 20;
    });
    // 16 offered pages and two more for the request: 18 ≤ 20.
    granted(&mut r, 1);
    assert!(local_mmap(&areas[0], 1).is_some());
    for _ in 0..3 {
        r.mmap(1, P, 3, ANON, -1, 0).unwrap();
    }
    // 4 mappings + 15 offered + 2 > 20: the drain before the next request
    // takes the window back.
    let mut refused = Vec::new();
    r.s.drain_reserves(&mut refused);
    assert_eq!(areas[0].take_pages(1), None);
    r.ok();
}

#[test]
fn linux_placement_grants_nothing() {
    let (mut r, areas) = rig_with(256, &[1], |c| {
        c.reserve_pages = 16;
        c.placement = crate::Placement::Linux;
    });
    serve(&mut r, 1, neutral());
    assert_eq!(areas[0].take_pages(1), None);
    assert_eq!(areas[0].server.window_pages.load(Ordering::Relaxed), 0);
    r.ok();
}
