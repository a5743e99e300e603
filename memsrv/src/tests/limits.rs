//! The limits on what one process and one uid hold ([`crate::charge`]):
//! `mmap`/`mremap` beyond them `ENOMEM`, `shmget` `ENOSPC`, connection
//! slots `EAGAIN`; every charge goes back when what it paid for does, a
//! killed process's included; `/proc/<pid>/status` shows the sizes.

use super::sim::{hello, mmap, munmap, read_proc, server_with, SimMemory, P};
use crate::{ClientId, Config, MemoryServer};
use protocol::linux::{
    IPC_CREAT, IPC_PRIVATE, MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_MAYMOVE, PROT_READ, PROT_WRITE,
};
use protocol::{Errno, ProcView, Reply, Request};

type S = MemoryServer<SimMemory>;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
const RW: u32 = PROT_READ | PROT_WRITE;

fn limited(process_pages: Option<u64>, user_pages: Option<u64>) -> S {
    server_with(256, |c: &mut Config| {
        c.max_process_memory = process_pages.map(|n| n * P);
        c.max_user_memory = user_pages.map(|n| n * P);
    })
}

fn shmget(s: &mut S, c: u64, pages: u64) -> Result<i32, Errno> {
    let request = Request::Shmget {
        key: IPC_PRIVATE,
        size: pages * P,
        flags: IPC_CREAT | 0o600,
    };
    match s.handle_now(ClientId(c), request).into_result()? {
        Reply::Value(id) => Ok(id as i32),
        other => panic!("unexpected {other:?}"),
    }
}

fn mremap(s: &mut S, c: u64, addr: u64, old: u64, new: u64) -> Result<u64, Errno> {
    let request = Request::Mremap {
        addr,
        old_len: old,
        new_len: new,
        flags: MREMAP_MAYMOVE,
        new_addr: 0,
    };
    match s.handle_now(ClientId(c), request).into_result()? {
        Reply::Mapped { addr } => Ok(addr),
        other => panic!("unexpected {other:?}"),
    }
}

/// Pages charged to `uid`: (mapped, segments).
fn charged(s: &S, uid: u32) -> (u64, u64) {
    s.nommu
        .charges
        .users()
        .find(|&(u, _, _)| u == uid)
        .map_or((0, 0), |(_, c, _)| (c.mapped, c.shm))
}

#[test]
fn a_process_beyond_its_limit_gets_enomem_and_another_process_does_not() {
    let mut s = limited(Some(8), None);
    hello(&mut s, 1, 1000, None).unwrap();
    hello(&mut s, 2, 1000, None).unwrap();
    let a = mmap(&mut s, 1, 6 * P, RW, ANON).unwrap();
    assert_eq!(mmap(&mut s, 1, 3 * P, RW, ANON), Err(Errno::ENOMEM));
    mmap(&mut s, 1, 2 * P, RW, ANON).unwrap();
    // The same uid's other process holds its own 8 pages.
    mmap(&mut s, 2, 8 * P, RW, ANON).unwrap();
    assert_eq!(mmap(&mut s, 2, P, RW, ANON), Err(Errno::ENOMEM));
    // Unmapping gives the room back.
    munmap(&mut s, 1, a, 6 * P).unwrap();
    mmap(&mut s, 1, 6 * P, RW, ANON).unwrap();
    assert_eq!(charged(&s, 1000), (16, 0));
    s.check_invariants().unwrap();
}

#[test]
fn mremap_beyond_the_process_limit_gets_enomem() {
    let mut s = limited(Some(8), None);
    hello(&mut s, 1, 1000, None).unwrap();
    let a = mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    mmap(&mut s, 1, 2 * P, RW, ANON).unwrap();
    assert_eq!(mremap(&mut s, 1, a, 4 * P, 7 * P), Err(Errno::ENOMEM));
    // Growing to the limit moves it (the old pages go back).
    let b = mremap(&mut s, 1, a, 4 * P, 6 * P).unwrap();
    assert_eq!(charged(&s, 1000), (8, 0));
    munmap(&mut s, 1, b, 6 * P).unwrap();
    s.check_invariants().unwrap();
}

#[test]
fn the_user_limit_spans_a_uids_processes_and_no_other_uid() {
    let mut s = limited(None, Some(8));
    hello(&mut s, 1, 1000, None).unwrap();
    hello(&mut s, 2, 1000, None).unwrap();
    hello(&mut s, 3, 1001, None).unwrap();
    mmap(&mut s, 1, 5 * P, RW, ANON).unwrap();
    assert_eq!(mmap(&mut s, 2, 4 * P, RW, ANON), Err(Errno::ENOMEM));
    mmap(&mut s, 2, 3 * P, RW, ANON).unwrap();
    mmap(&mut s, 3, 8 * P, RW, ANON).unwrap();
    // Root too, when a limit is set.
    hello(&mut s, 4, 0, None).unwrap();
    assert_eq!(mmap(&mut s, 4, 9 * P, RW, ANON), Err(Errno::ENOMEM));
    assert_eq!((charged(&s, 1000), charged(&s, 1001)), ((8, 0), (8, 0)));
    s.check_invariants().unwrap();
}

#[test]
fn segments_count_against_their_creator_and_beyond_get_enospc() {
    let mut s = limited(None, Some(8));
    hello(&mut s, 1, 1000, None).unwrap();
    mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    let id = shmget(&mut s, 1, 3).unwrap();
    assert_eq!(shmget(&mut s, 1, 2), Err(Errno::ENOSPC));
    assert_eq!(charged(&s, 1000), (4, 3));
    // The creator's ids change: the segment still uncharges its creator.
    s.set_identity(ClientId(1), 1001, 1001).unwrap();
    shmget(&mut s, 1, 8).unwrap();
    s.set_identity(ClientId(1), 1000, 1000).unwrap();
    s.handle_now(ClientId(1), Request::ShmRemove { shmid: id })
        .into_result()
        .unwrap();
    assert_eq!((charged(&s, 1000), charged(&s, 1001)), ((4, 0), (0, 8)));
    s.check_invariants().unwrap();
}

#[test]
fn killing_a_limited_process_uncharges_everything() {
    let mut s = limited(Some(16), Some(32));
    hello(&mut s, 1, 1000, None).unwrap();
    for _ in 0..4 {
        mmap(&mut s, 1, 3 * P, RW, ANON).unwrap();
    }
    let a = mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    // A partial unmap splits the charged run.
    munmap(&mut s, 1, a + P, P).unwrap();
    assert_eq!(charged(&s, 1000), (15, 0));
    s.disconnect(ClientId(1));
    assert_eq!(charged(&s, 1000), (0, 0));
    assert_eq!(s.nommu.charges.users().count(), 0);
    assert_eq!(s.stats().free_pages, 256);
    s.check_invariants().unwrap();
    // The uid's whole allowance is back.
    hello(&mut s, 2, 1000, None).unwrap();
    mmap(&mut s, 2, 16 * P, RW, ANON).unwrap();
}

#[test]
fn connections_beyond_the_per_user_slots_are_refused_eagain() {
    let mut s = server_with(64, |c| c.max_clients_per_user = Some(2));
    hello(&mut s, 1, 1000, None).unwrap();
    hello(&mut s, 2, 1000, None).unwrap();
    assert_eq!(s.may_connect(1000), Err(Errno::EAGAIN));
    assert_eq!(s.may_connect(1001), Ok(()));
    // A slot comes back when its connection goes.
    s.disconnect(ClientId(1));
    assert_eq!(s.may_connect(1000), Ok(()));
    let unlimited = server_with(64, |_| {});
    assert_eq!(unlimited.may_connect(1000), Ok(()));
}

#[test]
fn proc_status_shows_the_process_in_linux_format() {
    let mut s = limited(None, None);
    let pid = hello(&mut s, 1, 1000, None).unwrap();
    s.name_connection(ClientId(1), "a-very-long-program-name");
    hello(&mut s, 2, 1001, None).unwrap();
    let a = mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    mmap(&mut s, 1, 2 * P, RW, ANON).unwrap();
    munmap(&mut s, 1, a, 4 * P).unwrap();
    let own = read_proc(&mut s, 1, ProcView::SelfStatus).unwrap();
    let expected = alloc::format!(
        "Name:\ta-very-long-pro\nUmask:\t0000\nState:\tR (running)\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t0\n\
         TracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n\
         VmPeak:\t      24 kB\nVmSize:\t       8 kB\nVmHWM:\t      24 kB\nVmRSS:\t       8 kB\n\
         RssAnon:\t       8 kB\nRssFile:\t       0 kB\nRssShmem:\t       0 kB\n"
    );
    assert_eq!(own, expected);
    // Another process reads it (0444, as Linux): sleeping, same sizes.
    let other = read_proc(&mut s, 2, ProcView::ProcessStatus { pid }).unwrap();
    assert_eq!(other, expected.replace("R (running)", "S (sleeping)"));
    assert_eq!(
        read_proc(&mut s, 2, ProcView::ProcessStatus { pid: 999 }),
        Err(Errno::ESRCH)
    );
}

#[test]
fn a_private_copy_of_a_file_counts_against_the_process_limit() {
    use super::rig::{PR, RDONLY};
    let mut r = super::files::env_with(|c| c.max_process_memory = Some(4 * P));
    let fd = r.open(1, "/data/f", RDONLY).unwrap();
    r.mmap(1, 2 * P, RW, ANON, -1, 0).unwrap();
    // The file's 3 pages would make 5.
    assert_eq!(r.mmap(1, 3 * P, PROT_READ, PR, fd, 0), Err(Errno::ENOMEM));
    let copy = r.mmap(1, 2 * P, PROT_READ, PR, fd, 0).unwrap();
    assert_eq!(charged(&r.s, 1000).0, 4);
    r.munmap(1, copy, 2 * P).unwrap();
    assert_eq!(charged(&r.s, 1000).0, 2);
    r.ok();
}
