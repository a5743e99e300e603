//! Page reserves through memsrvd: mappings a process makes locally are in
//! every `/proc` view the moment its call returned, reserved pages count
//! as free, a connection that vanishes with entries posted and pages
//! reserved loses nothing, and garbage in a ring fails that connection
//! alone.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{meminfo_field, proc_text, Daemon, ARENA_SIZE};
use nommu::sys::socket::{Datagram, SeqPacket, MAX_FDS};
use nommu::transport::channel_page::{ChannelPage, Spin};
use nommu::transport::reserve::ReserveMapping;
use protocol::reserve::Posted;
use protocol::{decode_reply, encode_request, ProcView, Reply, Request, Sysctl, MAX_FRAME};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const ANON: u32 = 0x22;
const PAGE: u64 = 4096;

/// A client made by hand: the socket, its channel page and doorbell, and
/// its reserve area (written here as a client could, honestly or not).
struct Hand {
    socket: SeqPacket,
    channel: ChannelPage,
    doorbell: OwnedFd,
    reserve: ReserveMapping,
    arena_base: u64,
}

impl Hand {
    fn connect(d: &Daemon) -> Self {
        let socket = SeqPacket::connect(d.socket.as_os_str().as_bytes()).unwrap();
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_request(0, &Request::Hello { ticket: None }, &mut buf);
        socket.send(&buf[..len]).unwrap();
        let mut fds: [Option<OwnedFd>; MAX_FDS] = Default::default();
        let (got, _) = socket.recv_with_fds(&mut buf, &mut fds).unwrap();
        let Datagram::Frame { copied, .. } = got else {
            panic!("no welcome");
        };
        let Reply::Hello { arena_base, .. } = decode_reply(&buf[..copied]).unwrap().message else {
            panic!("not a welcome");
        };
        let file = fds[1].take().expect("the channel file");
        Hand {
            socket,
            channel: ChannelPage::open(file.as_fd()).unwrap(),
            doorbell: fds[2].take().expect("the doorbell"),
            reserve: ReserveMapping::open(file.as_fd()).unwrap(),
            arena_base,
        }
    }

    /// A request that changes nothing, on the channel (so the daemon may
    /// grant a reserve meanwhile); `None` once the daemon cut us.
    fn call(&self) -> Option<Reply> {
        let mut buf = [0u8; MAX_FRAME];
        let read = Request::ReadSysctl {
            name: Sysctl::NrTrimPages,
        };
        let len = encode_request(1, &read, &mut buf);
        let (seq, wake) = self.channel.post_request(&buf[..len]);
        if wake {
            nommu::sys::eventfd_ring(self.doorbell.as_fd());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.channel.spin_for_reply(seq) == Spin::Ready
                || self.channel.park_for_reply(seq, Duration::from_millis(5))
            {
                let len = self.channel.take_reply(&mut buf).unwrap();
                return Some(decode_reply(&buf[..len]).unwrap().message);
            }
            if self.socket.hung_up() {
                return None;
            }
        }
        panic!("no answer on the channel");
    }

    /// Take `pages` offered pages and post their mmap; the address.
    fn local_mmap(&self, pages: u32) -> u64 {
        let area = self.reserve.area();
        let first = area.take_pages(pages).expect("pages offered");
        assert!(area.post(Posted::Mmap {
            first,
            pages,
            prot: 3
        }));
        self.arena_base + u64::from(first) * PAGE
    }

    fn post_word(&self, word: u64) {
        let area = self.reserve.area();
        let head = area.client.head.load(Ordering::Relaxed);
        area.ring[(head % protocol::reserve::RING_LEN) as usize].store(word, Ordering::Relaxed);
        area.client.head.store(head + 1, Ordering::Release);
    }
}

fn mem_free(client: &nommu::Client<nommu::transport::DaemonConnection>) -> (u64, u64) {
    let text = proc_text(client, ProcView::Meminfo);
    (
        meminfo_field(&text, "MemTotal").unwrap(),
        meminfo_field(&text, "MemFree").unwrap(),
    )
}

#[test]
fn a_local_mapping_is_in_proc_at_once_and_reserved_pages_count_as_free() {
    let d = Daemon::start();
    let hand = Hand::connect(&d);
    let other = d.socket_client();
    assert!(hand.call().is_some(), "the first call grants a reserve");
    let (total, free) = mem_free(&other);
    assert_eq!(free, total, "the reserve counts as free");
    for round in 0..20 {
        let addr = hand.local_mmap(1 << (round % 3));
        // Read by another connection right after the mmap "returned".
        let maps = proc_text(&other, ProcView::GlobalMaps);
        assert!(maps.contains(&format!("{addr:08x}-")), "{maps}");
        let (_, now) = mem_free(&other);
        assert_eq!(now, free - (4 << (round % 3)), "round {round}");
        hand.reserve.area().post(Posted::Munmap {
            first: ((addr - hand.arena_base) / PAGE) as u32,
            pages: 1 << (round % 3),
        });
        let maps = proc_text(&other, ProcView::GlobalMaps);
        assert!(!maps.contains(&format!("{addr:08x}-")), "{maps}");
    }
    // The shim's own path: map, see, unmap, many times over.
    let client = d.client();
    for _ in 0..300 {
        let addr = client.mmap(0, PAGE, 3, ANON, -1, 0).unwrap();
        // SAFETY: the mapping is PAGE bytes, mapped here, ours alone.
        unsafe { assert_eq!(*(addr as *const u8), 0, "zeroed") };
        unsafe { (addr as *mut u8).write(7) };
        assert!(proc_text(&other, ProcView::GlobalMaps).contains(&format!("{addr:08x}-")));
        client.munmap(addr, PAGE).unwrap();
    }
    drop((hand, client, other));
    d.assert_all_free();
}

#[test]
fn a_connection_gone_with_entries_posted_and_a_reserve_held_loses_nothing() {
    let d = Daemon::start();
    let hand = Hand::connect(&d);
    assert!(hand.call().is_some());
    let a = hand.local_mmap(4);
    hand.local_mmap(1);
    hand.local_mmap(16);
    hand.reserve.area().post(Posted::Munmap {
        first: ((a - hand.arena_base) / PAGE) as u32,
        pages: 4,
    });
    // Taken, never posted: the process died in between.
    hand.reserve.area().take_pages(2).unwrap();
    drop(hand);
    d.assert_all_free();
    // Every page can be mapped again, the reserve's included.
    let client = d.socket_client();
    let chunk = 4 << 20;
    let mut mapped = Vec::new();
    for _ in 0..ARENA_SIZE / chunk {
        mapped.push(client.mmap(0, chunk, 3, ANON, -1, 0).expect("a free chunk"));
    }
    assert!(mapped.iter().any(|&m| m <= a && a < m + chunk));
    drop(client);
    d.assert_all_free();
}

#[test]
fn garbage_in_a_ring_cuts_that_connection_and_the_others_are_served() {
    let d = Daemon::start();
    let good = d.client();
    let kept = good.mmap(0, PAGE, 3, ANON, -1, 0).unwrap();
    for kind in 0..3 {
        let hand = Hand::connect(&d);
        assert!(hand.call().is_some());
        hand.local_mmap(1);
        // A page still offered: never taken, so never mapped either.
        let area = hand.reserve.area();
        let window = area.server.window.load(Ordering::Relaxed);
        let first = window + area.free.words[0].load(Ordering::Relaxed).trailing_zeros();
        hand.post_word(match kind {
            0 => u64::MAX,
            1 => Posted::Mmap {
                first,
                pages: 1,
                prot: 3,
            }
            .encode(),
            _ => Posted::Munmap { first, pages: 1 }.encode(),
        });
        assert_eq!(hand.call(), None, "cut");
        // The well-behaved client keeps being served.
        let addr = good.mmap(0, PAGE, 3, ANON, -1, 0).unwrap();
        assert!(proc_text(&good, ProcView::SelfMaps).contains(&format!("{kept:08x}-")));
        good.munmap(addr, PAGE).unwrap();
    }
    good.munmap(kept, PAGE).unwrap();
    drop(good);
    d.assert_all_free();
}

#[test]
fn the_shim_maps_and_unmaps_locally_while_the_daemon_is_stopped() {
    let d = Daemon::start();
    let client = std::sync::Arc::new(d.client());
    // The first call is a round trip; it grants the reserve.
    let first = client.mmap(0, PAGE, 3, ANON, -1, 0).unwrap();
    client.munmap(first, PAGE).unwrap();
    let pid = d.pid as libc::pid_t;
    // SAFETY: signals to the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let (tx, rx) = std::sync::mpsc::channel();
    let c = std::sync::Arc::clone(&client);
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for i in 0..100u64 {
            let len = PAGE << (i % 3);
            let addr = c.mmap(0, len, 3, ANON, -1, 0).unwrap();
            // SAFETY: the mapping is `len` bytes, mapped here, ours alone.
            unsafe { (addr as *mut u8).write(1) };
            if i % 2 == 0 {
                c.munmap(addr, len).unwrap();
            } else {
                kept.push(addr);
            }
        }
        let _ = tx.send(kept);
    });
    let kept = rx.recv_timeout(Duration::from_secs(10));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let kept = kept.expect("local calls never wait for the daemon");
    let maps = proc_text(&client, ProcView::SelfMaps);
    for addr in &kept {
        assert!(maps.contains(&format!("{addr:08x}-")), "{maps}");
    }
    assert_eq!(maps.lines().count(), kept.len(), "{maps}");
    drop(client);
    d.assert_all_free();
}
