//! State-machine tests next to the spec's conformance vectors (§14): what
//! the tables (crate `conformance`, run on this state machine by
//! `tables.rs`) cannot check. The tables speak only through the protocol,
//! in whatever arena and word size a home has, and see `/proc`; these
//! tests also see the free pages and the invariants after each step, run
//! a 32-bit client and the spec's own arena address, dirty memory before
//! a mapping is made, use configurations the §14.0 environment does not
//! have (`allow_uninitialized`, `max_order`, `max_map_count`), and check
//! the session and frame rules of this server. Vectors the tables hold
//! are not encoded again here.

use alloc::vec::Vec;

use super::sim::*;
use crate::{ClientId, Credentials, Effect, PhysicalMemory};
use protocol::linux::*;
use protocol::{
    decode_reply, encode_request, Errno, OffsetUnit, ProcView, Reply, Request, Sysctl, MAX_FRAME,
};

fn ok(s: &crate::MemoryServer<SimMemory>) {
    s.check_invariants().unwrap();
}

// §14.1 argument validation.

#[test]
fn vectors_6_and_7_for_a_32_bit_client() {
    let mut s = root_process_with(64, |c| c.word_size = 4);
    assert_eq!(
        mmap(&mut s, 1, u64::from(u32::MAX) - 100, RW, ANON),
        Err(Errno::ENOMEM)
    );
    let v7 = mmap_call(
        &mut s,
        1,
        mmap_request(0, P, RW, ANON, -1, u64::from(u32::MAX), OffsetUnit::Pages),
    );
    assert_eq!(v7, Err(Errno::EOVERFLOW));
}

/// Beyond vectors 8 and 9: `mmap2` has no alignment check, `EBADF` comes
/// before the §2.2 checks, and an anonymous mapping ignores its fd but
/// not its byte offset.
#[test]
fn offset_checks_of_mmap2_and_anonymous_mappings_and_the_ebadf_order() {
    let mut s = root_process(64);
    let file = |s: &mut _, off, unit| {
        mmap_call(
            s,
            1,
            mmap_request(0, P, PROT_READ, MAP_PRIVATE, 3, off, unit),
        )
    };
    assert_eq!(file(&mut s, 100, OffsetUnit::Bytes), Err(Errno::EINVAL)); // 8
    assert_eq!(file(&mut s, 0, OffsetUnit::Bytes), Err(Errno::EBADF));
    // mmap2 has no alignment check.
    assert_eq!(file(&mut s, 100, OffsetUnit::Pages), Err(Errno::EBADF));
    // EBADF comes before the §2.2 checks.
    let fixed = mmap_call(
        &mut s,
        1,
        mmap_request(0, 0, RW, MAP_FIXED, 1234, 0, OffsetUnit::Bytes),
    );
    assert_eq!(fixed, Err(Errno::EBADF)); // 9
                                          // With MAP_ANONYMOUS the fd is ignored, but the byte offset is not.
    let anon = mmap_call(
        &mut s,
        1,
        mmap_request(0, P, RW, ANON, 1234, 100, OffsetUnit::Bytes),
    );
    assert_eq!(anon, Err(Errno::EINVAL));
    assert!(mmap_call(
        &mut s,
        1,
        mmap_request(0, P, RW, ANON, 1234, 8192, OffsetUnit::Bytes)
    )
    .is_ok());
    ok(&s);
}

// §14.4 allocation and trimming.

/// Vector 57 as the allocator sees it: the 3 pages trimmed from the
/// 8-page block are free again.
#[test]
fn trimming_returns_the_excess_to_the_free_pages() {
    let mut s = root_process(256);
    mmap(&mut s, 1, 5 * P, RW, ANON).unwrap();
    assert_eq!(mmap_copy_kb(&s), 20);
    assert_eq!(s.stats().free_pages, 256 - 5);
    ok(&s);
}

/// Vector 60 made certain: the new mapping is the very pages the other
/// process dirtied (the tables can only expect it).
#[test]
fn recycled_pages_are_reused_and_read_zero() {
    let mut s = root_process(16);
    hello(&mut s, 2, 0, None).unwrap();
    let a = mmap(&mut s, 1, 16 * P, RW, ANON).unwrap();
    s.memory_mut().fill(a, 16 * P, 0x5a);
    munmap(&mut s, 1, a, 16 * P).unwrap();
    let b = mmap(&mut s, 2, 16 * P, RW, ANON).unwrap();
    assert_eq!(a, b);
    assert!(s.memory().slice(b, 16 * P).iter().all(|&x| x == 0));
}

/// Vector 61 on memory that starts dirty (0xEE): the page is zeroed.
#[test]
fn an_unaligned_length_maps_one_zeroed_page_and_frees_it() {
    let mut s = root_process(16);
    let a = mmap(&mut s, 1, 100, RW, ANON).unwrap();
    assert_eq!(a % P, 0);
    assert!(s.memory().slice(a, P).iter().all(|&x| x == 0));
    munmap(&mut s, 1, a, 100).unwrap();
    assert_eq!(s.stats().free_pages, 16);
    ok(&s);
}

/// Beyond vector 62: the upper bound, a valid write, and the file's
/// 0644 mode.
#[test]
fn nr_trim_pages_writes_are_range_and_permission_checked() {
    let mut s = root_process(16);
    let write = |s: &mut crate::MemoryServer<SimMemory>, c, value| {
        s.handle(
            ClientId(c),
            Request::WriteSysctl {
                name: Sysctl::NrTrimPages,
                value,
            },
        )
    };
    let read = |s: &mut crate::MemoryServer<SimMemory>| {
        s.handle(
            ClientId(1),
            Request::ReadSysctl {
                name: Sysctl::NrTrimPages,
            },
        )
    };
    assert_eq!(write(&mut s, 1, -1), Reply::Error(Errno::EINVAL));
    assert_eq!(read(&mut s), Reply::Value(1));
    assert_eq!(write(&mut s, 1, 1 << 31), Reply::Error(Errno::EINVAL));
    assert_eq!(write(&mut s, 1, 0), Reply::Done);
    assert_eq!(read(&mut s), Reply::Value(0));
    // The file is 0644: only root may write it.
    hello(&mut s, 2, 1000, None).unwrap();
    assert_eq!(write(&mut s, 2, 3), Reply::Error(Errno::EACCES));
    assert_eq!(read(&mut s), Reply::Value(0));
}

/// Vector 63 and the configuration the environment does not have:
/// with `allow_uninitialized` the page keeps what was there.
#[test]
fn map_uninitialized_skips_the_zero_fill_only_when_permitted() {
    for allow in [false, true] {
        let mut s = root_process_with(16, |c| c.allow_uninitialized = allow);
        let a = mmap(&mut s, 1, P, RW, ANON | MAP_UNINITIALIZED).unwrap();
        let first = s.memory().slice(a, 1)[0];
        assert_eq!(first, if allow { 0xEE } else { 0 });
        // Without the flag, zeroed even when permitted.
        let b = mmap(&mut s, 1, P, RW, ANON).unwrap();
        assert_eq!(s.memory().slice(b, 1)[0], 0);
    }
}

#[test]
fn requests_above_the_maximum_order_fail_enomem() {
    let mut s = root_process_with(4096, |c| c.max_order = 10);
    assert!(mmap(&mut s, 1, 1024 * P, RW, ANON).is_ok());
    assert_eq!(mmap(&mut s, 1, 1025 * P, RW, ANON), Err(Errno::ENOMEM));
    ok(&s);
}

#[test]
fn exhaustion_fails_enomem_and_recovers() {
    let mut s = root_process(8);
    let a = mmap(&mut s, 1, 8 * P, RW, ANON).unwrap();
    assert_eq!(mmap(&mut s, 1, P, RW, ANON), Err(Errno::ENOMEM));
    munmap(&mut s, 1, a + 4 * P, 4 * P).unwrap();
    assert!(mmap(&mut s, 1, 4 * P, RW, ANON).is_ok());
    ok(&s);
}

// §14.5 munmap.

fn four_pages() -> (crate::MemoryServer<SimMemory>, u64) {
    let mut s = root_process(64);
    let a = mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    (s, a)
}

/// Beyond vectors 65, 66, 70 and 71: ranges whose end wraps.
#[test]
fn munmap_refuses_ranges_that_wrap() {
    let (mut s, a) = four_pages();
    assert_eq!(munmap(&mut s, 1, a, u64::MAX), Err(Errno::EINVAL));
    assert_eq!(
        munmap(&mut s, 1, u64::MAX - P + 1, 2 * P),
        Err(Errno::EINVAL)
    );
    assert_eq!(mmap_copy_kb(&s), 16);
    ok(&s);
}

#[test]
fn spanning_two_adjacent_mappings_is_refused() {
    let mut s = root_process(64);
    let a = mmap(&mut s, 1, 2 * P, RW, ANON).unwrap();
    let b = mmap(&mut s, 1, 2 * P, RW, ANON).unwrap();
    let (lo, _) = if a < b { (a, b) } else { (b, a) };
    assert_eq!(munmap(&mut s, 1, lo, 4 * P), Err(Errno::EINVAL));
    ok(&s);
}

#[test]
fn split_needs_room_under_max_map_count() {
    let mut s = root_process_with(64, |c| c.max_map_count = 2);
    let a = mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    let b = mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    assert_eq!(mmap(&mut s, 1, P, RW, ANON), Err(Errno::ENOMEM));
    assert_eq!(munmap(&mut s, 1, a + P, P), Err(Errno::ENOMEM));
    // Trims need no new record.
    munmap(&mut s, 1, a, P).unwrap();
    munmap(&mut s, 1, b + 3 * P, P).unwrap();
    ok(&s);
}

#[test]
fn global_maps_show_regions_after_a_split() {
    let (mut s, a) = four_pages();
    munmap(&mut s, 1, a + P, P).unwrap();
    let text = read_proc(&mut s, 1, ProcView::GlobalMaps).unwrap();
    // As in Linux, the upper region's page offset moves with the split at
    // A+P (one page) but not with the cut of the freed head page after it.
    let expect = alloc::format!(
        "{:08x}-{:08x} rw-p 00000000 00:00 0 \n{:08x}-{:08x} rw-p 00001000 00:00 0 \n",
        a,
        a + P,
        a + 2 * P,
        a + 4 * P
    );
    assert_eq!(text, expect);
}

#[test]
fn global_maps_show_end_not_top() {
    let mut s = root_process_with(64, |c| c.nr_trim_pages = 0);
    let a = mmap(&mut s, 1, 5 * P, RW | PROT_EXEC, ANON).unwrap();
    let text = read_proc(&mut s, 1, ProcView::GlobalMaps).unwrap();
    assert_eq!(
        text,
        alloc::format!("{:08x}-{:08x} rwxp 00000000 00:00 0 \n", a, a + 5 * P)
    );
}

// §14.10 /proc.

/// Vector 108 with the spec's own arena address and word size (the
/// tables run wherever a home's arena is, with 64-bit words).
#[test]
fn vector_108_at_the_spec_address_for_a_32_bit_client() {
    let mut s = server_with(64, |c| {
        c.arena_base = 0x00a4_0000;
        c.word_size = 4;
    });
    hello(&mut s, 1, 0, None).unwrap();
    let a = mmap(&mut s, 1, 8192, RW, ANON).unwrap();
    assert_eq!(a, 0x00a4_0000);
    let text = read_proc(&mut s, 1, ProcView::SelfMaps).unwrap();
    assert_eq!(text, "00a40000-00a42000 rw-p 00000000 00:00 0 \n");
}

/// Vector 111's `MmapCopy` with the totals only a known arena gives.
#[test]
fn meminfo_totals_through_the_server() {
    let mut s = root_process(256);
    mmap(&mut s, 1, 5 * P, RW, ANON).unwrap();
    let text = read_proc(&mut s, 1, ProcView::Meminfo).unwrap();
    assert!(text.contains("\nMmapCopy:             20 kB\n"));
    assert!(text.starts_with("MemTotal:           1024 kB\nMemFree:            1004 kB\n"));
}

#[test]
fn proc_text_is_read_in_chunks() {
    let mut s = root_process(256);
    for _ in 0..60 {
        mmap(&mut s, 1, P, RW, ANON).unwrap();
    }
    let text = read_proc(&mut s, 1, ProcView::SelfMaps).unwrap();
    assert_eq!(text.lines().count(), 60);
    assert!(text.len() > protocol::PROC_CHUNK);
    let lines: Vec<&str> = text.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    // Past the end: empty data, the total still told.
    let r = s.handle_now(
        ClientId(1),
        Request::ReadProc {
            view: ProcView::SelfMaps,
            offset: u32::MAX,
        },
    );
    match r {
        Reply::ProcText { total, data } => {
            assert_eq!(total as usize, text.len());
            assert!(data.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn process_maps_need_ptrace_read_access() {
    let mut s = server(64);
    let alice = hello(&mut s, 1, 1000, None).unwrap();
    let bob = hello(&mut s, 2, 1001, None).unwrap();
    hello(&mut s, 3, 0, None).unwrap();
    hello(&mut s, 4, 1000, None).unwrap();
    mmap(&mut s, 1, P, RW, ANON).unwrap();
    let view = ProcView::ProcessMaps { pid: alice };
    assert_eq!(read_proc(&mut s, 2, view), Err(Errno::EACCES));
    assert_eq!(read_proc(&mut s, 3, view).unwrap().lines().count(), 1);
    assert_eq!(read_proc(&mut s, 4, view).unwrap().lines().count(), 1);
    assert_eq!(
        read_proc(&mut s, 1, ProcView::ProcessMaps { pid: bob }),
        Err(Errno::EACCES)
    );
    assert_eq!(
        read_proc(&mut s, 3, ProcView::ProcessMaps { pid: 999 }),
        Err(Errno::ESRCH)
    );
    // /proc/maps is world-readable.
    assert_eq!(
        read_proc(&mut s, 2, ProcView::GlobalMaps)
            .unwrap()
            .lines()
            .count(),
        1
    );
}

// §14.11 process model.

fn clone(s: &mut crate::MemoryServer<SimMemory>, c: u64, flags: u64) -> Result<(u32, u64), Errno> {
    match s
        .handle_now(ClientId(c), Request::Clone { flags })
        .into_result()?
    {
        Reply::Cloned { pid, ticket } => Ok((pid, ticket)),
        other => panic!("{other:?}"),
    }
}

/// Beyond vector 115: the child is visible (empty) before it connects,
/// and its mappings do not show in the parent.
#[test]
fn a_clone_child_without_clone_vm_starts_empty_and_stays_apart() {
    let mut s = root_process(64);
    mmap(&mut s, 1, P, RW, ANON).unwrap();
    let (child, ticket) = clone(&mut s, 1, SIGCHLD).unwrap();
    // Visible (empty) before and after the child connects.
    let text = read_proc(&mut s, 1, ProcView::ProcessMaps { pid: child }).unwrap();
    assert_eq!(text, "");
    hello(&mut s, 2, 0, Some(ticket)).unwrap();
    assert_eq!(read_proc(&mut s, 2, ProcView::SelfMaps).unwrap(), "");
    // The child's mappings are its own.
    mmap(&mut s, 2, P, RW, ANON).unwrap();
    assert_eq!(
        read_proc(&mut s, 1, ProcView::SelfMaps)
            .unwrap()
            .lines()
            .count(),
        1
    );
    ok(&s);
}

#[test]
fn shared_address_space_survives_until_its_last_user() {
    let mut s = root_process(64);
    let (_, t) = clone(&mut s, 1, CLONE_VM).unwrap();
    hello(&mut s, 2, 0, Some(t)).unwrap();
    let a = mmap(&mut s, 1, 3 * P, RW, ANON).unwrap();
    s.disconnect(ClientId(1));
    ok(&s);
    assert_eq!(s.stats().mmap_copy_pages, 3);
    munmap(&mut s, 2, a, P).unwrap();
    s.disconnect(ClientId(2));
    assert_eq!(s.stats().mmap_copy_pages, 0);
    assert_eq!(s.stats().free_pages, 64);
    assert_eq!(s.stats().processes, 0);
    ok(&s);
}

#[test]
fn tickets_are_single_use_and_die_with_the_parent() {
    let mut s = root_process(64);
    let (_, t1) = clone(&mut s, 1, CLONE_VM).unwrap();
    let (_, t2) = clone(&mut s, 1, 0).unwrap();
    assert_ne!(t1, t2);
    hello(&mut s, 2, 0, Some(t1)).unwrap();
    assert_eq!(hello(&mut s, 3, 0, Some(t1)), Err(Errno::ESRCH));
    assert_eq!(hello(&mut s, 3, 0, Some(t1 ^ 1)), Err(Errno::ESRCH));
    assert_eq!(s.stats().processes, 3);
    s.handle(ClientId(1), Request::Exit);
    ok(&s);
    // The unclaimed child went with its parent; the claimed one lives on.
    assert_eq!(s.stats().processes, 1);
    assert_eq!(hello(&mut s, 3, 0, Some(t2)), Err(Errno::ESRCH));
    ok(&s);
}

#[test]
fn pending_children_are_bounded() {
    let mut s = root_process_with(16, |c| c.max_pending_children = 2);
    clone(&mut s, 1, 0).unwrap();
    clone(&mut s, 1, CLONE_VM).unwrap();
    assert_eq!(clone(&mut s, 1, 0), Err(Errno::EAGAIN));
    ok(&s);
}

#[test]
fn clone_children_inherit_credentials() {
    let mut s = server(16);
    hello(&mut s, 1, 1000, None).unwrap();
    let (child, t) = clone(&mut s, 1, 0).unwrap();
    // The ticket is the capability: the claimer's own uid does not matter.
    hello(&mut s, 2, 0, Some(t)).unwrap();
    hello(&mut s, 3, 1001, None).unwrap();
    assert_eq!(
        read_proc(&mut s, 3, ProcView::ProcessMaps { pid: child }),
        Err(Errno::EACCES)
    );
    assert!(read_proc(&mut s, 1, ProcView::ProcessMaps { pid: child }).is_ok());
}

#[test]
fn session_rules() {
    let mut s = server(16);
    // Unknown connection.
    assert_eq!(
        s.handle(ClientId(9), Request::Hello { ticket: None }),
        Reply::Error(Errno::ENOTCONN)
    );
    s.connect(ClientId(1), user(0, 0));
    // Anything but Hello before Hello.
    assert_eq!(
        s.handle(ClientId(1), Request::Fork),
        Reply::Error(Errno::ESRCH)
    );
    assert_eq!(mmap(&mut s, 1, P, RW, ANON), Err(Errno::ESRCH));
    let first = match s.handle_now(ClientId(1), Request::Hello { ticket: None }) {
        Reply::Hello {
            pid,
            arena_base,
            arena_size,
        } => {
            assert_eq!((arena_base, arena_size), (BASE, 16 * P));
            pid
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(first, 1);
    // A second Hello on a bound connection.
    assert_eq!(
        s.handle(ClientId(1), Request::Hello { ticket: None }),
        Reply::Error(Errno::EINVAL)
    );
    // After Exit the connection is unbound and may say Hello again.
    mmap(&mut s, 1, P, RW, ANON).unwrap();
    assert_eq!(s.handle(ClientId(1), Request::Exit), Reply::Done);
    assert_eq!(s.stats().free_pages, 16);
    assert_eq!(mmap(&mut s, 1, P, RW, ANON), Err(Errno::ESRCH));
    let second = match s.handle_now(ClientId(1), Request::Hello { ticket: None }) {
        Reply::Hello { pid, .. } => pid,
        other => panic!("{other:?}"),
    };
    assert_eq!(second, 2);
    ok(&s);
}

#[test]
fn host_pids_join_their_process() {
    let mut s = server_with(16, |c| c.first_pid = 100_000);
    let creds = |uid| Credentials {
        pid: Some(4242),
        uid,
        gid: uid,
    };
    s.connect(ClientId(1), creds(5));
    s.connect(ClientId(2), creds(5));
    s.connect(ClientId(3), creds(6));
    let h = Request::Hello { ticket: None };
    assert!(matches!(
        s.handle_now(ClientId(1), h.clone()),
        Reply::Hello { pid: 4242, .. }
    ));
    assert!(matches!(
        s.handle_now(ClientId(2), h.clone()),
        Reply::Hello { pid: 4242, .. }
    ));
    assert_eq!(
        s.handle(ClientId(3), h.clone()),
        Reply::Error(Errno::EACCES)
    );
    let a = mmap(&mut s, 1, P, RW, ANON).unwrap();
    // Both connections see one address space.
    munmap(&mut s, 2, a, P).unwrap();
    s.disconnect(ClientId(1));
    assert_eq!(s.stats().processes, 1);
    s.disconnect(ClientId(2));
    assert_eq!(s.stats().processes, 0);
    // Server-numbered clone children start at first_pid.
    s.connect(ClientId(4), creds(5));
    s.handle(ClientId(4), h);
    let (child, _) = clone(&mut s, 4, 0).unwrap();
    assert_eq!(child, 100_000);
    ok(&s);
}

// Frames.

#[test]
fn frames_echo_tags_and_bad_frames_get_errors() {
    let mut s = root_process(16);
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_request(0xdead_beef, &Request::Fork, &mut buf);
    let mut effects = Vec::new();
    s.handle_frame(ClientId(1), &buf[..len], &mut effects);
    // Truncated: the header is intact, so the tag is echoed.
    s.handle_frame(ClientId(1), &buf[..len - 1], &mut effects);
    // Too short to carry a tag: the connection is dropped.
    s.handle_frame(ClientId(1), &buf[..3], &mut effects);
    assert_eq!(effects.len(), 3);
    let reply = |e: &Effect| match e {
        Effect::Send { to, frame } => {
            assert_eq!(*to, ClientId(1));
            decode_reply(frame.as_slice()).unwrap()
        }
        Effect::Drop { .. } => panic!("dropped"),
    };
    let r0 = reply(&effects[0]);
    assert_eq!(
        (r0.tag, r0.message),
        (0xdead_beef, Reply::Error(Errno::EINVAL))
    );
    let r1 = reply(&effects[1]);
    assert_eq!(
        (r1.tag, r1.message),
        (0xdead_beef, Reply::Error(Errno::EBADMSG))
    );
    assert!(matches!(
        effects[2],
        Effect::Drop {
            client: ClientId(1)
        }
    ));
}

#[test]
fn random_frames_never_panic() {
    let mut s = root_process(64);
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        rng = crate::process::splitmix64(rng);
        rng
    };
    let mut buf = [0u8; MAX_FRAME];
    let mut effects = Vec::new();
    for round in 0..3000 {
        // Start from a valid frame and corrupt the body.
        let req = Request::Mmap {
            addr: next(),
            len: next() % (1 << 20),
            prot: next() as u32,
            flags: next() as u32,
            fd: next() as i32,
            offset: next(),
            unit: OffsetUnit::Pages,
        };
        let len = encode_request(round, &req, &mut buf);
        let mut frame = buf[..len].to_vec();
        for _ in 0..(next() % 4) {
            let i = 16 + (next() as usize) % (len - 16);
            frame[i] = next() as u8;
        }
        effects.clear();
        s.handle_frame(ClientId(1), &frame, &mut effects);
        assert_eq!(effects.len(), 1);
        ok(&s);
    }
}
