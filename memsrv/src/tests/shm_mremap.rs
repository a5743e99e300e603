//! Unit tests of the rules of spec §6 (`mremap`, strict and moving), §7.1–
//! §7.4 (SysV shm), §7.5 unlink, §10.4 exec and §10.5 peek/poke: the
//! vectors of §14.6, §14.7 and §14.11 (116, 117, 119).

use alloc::format;
use alloc::vec::Vec;

use super::files::{env, DATA, ROM};
use super::rig::*;
use super::sim::*;
use crate::{ClientId, MemoryServer};
use protocol::linux::*;
use protocol::{Errno, ProcView, Reply, Request, ShmStat};

type S = MemoryServer<SimMemory>;

fn ok(s: &S) {
    if let Err(e) = s.check_invariants() {
        panic!("invariant broken: {e}");
    }
}

fn call(s: &mut S, c: u64, req: Request) -> Result<Reply, Errno> {
    let r = s.handle_now(ClientId(c), req).into_result();
    ok(s);
    r
}

fn proc_as(s: &mut S, c: u64, uid: u32, gid: u32) -> u32 {
    s.connect(ClientId(c), user(uid, gid));
    match s.handle_now(ClientId(c), Request::Hello { ticket: None }) {
        Reply::Hello { pid, .. } => pid,
        other => panic!("{other:?}"),
    }
}

fn mremap(
    s: &mut S,
    c: u64,
    addr: u64,
    old: u64,
    new: u64,
    flags: u32,
    na: u64,
) -> Result<u64, Errno> {
    match call(
        s,
        c,
        Request::Mremap {
            addr,
            old_len: old,
            new_len: new,
            flags,
            new_addr: na,
        },
    )? {
        Reply::Mapped { addr } => Ok(addr),
        other => panic!("{other:?}"),
    }
}

fn shmget(s: &mut S, c: u64, key: i32, size: u64, flags: i32) -> Result<i32, Errno> {
    match call(s, c, Request::Shmget { key, size, flags })? {
        Reply::Value(v) => Ok(v as i32),
        other => panic!("{other:?}"),
    }
}

fn shmat(s: &mut S, c: u64, shmid: i32, addr: u64, flags: i32) -> Result<u64, Errno> {
    match call(s, c, Request::Shmat { shmid, addr, flags })? {
        Reply::Mapped { addr } => Ok(addr),
        other => panic!("{other:?}"),
    }
}

fn shmdt(s: &mut S, c: u64, addr: u64) -> Result<(), Errno> {
    call(s, c, Request::Shmdt { addr }).map(|_| ())
}

fn stat(s: &mut S, c: u64, shmid: i32) -> Result<ShmStat, Errno> {
    match call(s, c, Request::ShmStat { shmid })? {
        Reply::ShmStat(st) => Ok(st),
        other => panic!("{other:?}"),
    }
}

fn rmid(s: &mut S, c: u64, shmid: i32) -> Result<(), Errno> {
    call(s, c, Request::ShmRemove { shmid }).map(|_| ())
}

fn mc(s: &S) -> u64 {
    mmap_copy_kb(s)
}

// §14.6 mremap.

fn anon4(strict: bool) -> (S, u64) {
    let mut s = root_process_with(64, |c| c.strict_mremap = strict);
    let a = mmap(&mut s, 1, 4 * P, RW, ANON).unwrap();
    (s, a)
}

#[test]
fn vector_74_shrink_and_grow_back() {
    for strict in [true, false] {
        let (mut s, a) = anon4(strict);
        assert_eq!(mremap(&mut s, 1, a, 4 * P, 2 * P, 0, 0), Ok(a));
        // The region keeps its extent; the mapping is shorter.
        let global = read_proc(&mut s, 1, ProcView::GlobalMaps).unwrap();
        assert!(global.starts_with(&format!("{:08x}-{:08x}", a, a + 4 * P)));
        let own = read_proc(&mut s, 1, ProcView::SelfMaps).unwrap();
        assert!(own.starts_with(&format!("{:08x}-{:08x}", a, a + 2 * P)));
        assert_eq!(mc(&s), 16);
        assert_eq!(mremap(&mut s, 1, a, 2 * P, 4 * P, 0, 0), Ok(a));
        ok(&s);
    }
}

#[test]
fn vector_75_strict_growth_past_the_region_is_enomem() {
    let (mut s, a) = anon4(true);
    assert_eq!(
        mremap(&mut s, 1, a, 4 * P, 5 * P, MREMAP_MAYMOVE, 0),
        Err(Errno::ENOMEM)
    );
    assert_eq!(mc(&s), 16);
}

#[test]
fn vector_75_extension_moves_with_maymove() {
    let (mut s, a) = anon4(false);
    s.memory_mut().bytes_at(a, 4 * P).fill(0x77);
    // Without MAYMOVE the extension stays out of it.
    assert_eq!(mremap(&mut s, 1, a, 4 * P, 5 * P, 0, 0), Err(Errno::ENOMEM));
    // FIXED pins the address: no move either.
    assert_eq!(
        mremap(&mut s, 1, a, 4 * P, 5 * P, MREMAP_MAYMOVE | MREMAP_FIXED, a),
        Err(Errno::ENOMEM)
    );
    let b = mremap(&mut s, 1, a, 4 * P, 5 * P, MREMAP_MAYMOVE, 0).unwrap();
    assert_ne!(b, a);
    assert_eq!(s.memory().slice(b, 4 * P), &[0x77; 4 * 4096][..]);
    assert_eq!(s.memory().slice(b + 4 * P, P), &[0; 4096][..]);
    // Old block freed; the new one trimmed to 5 pages.
    assert_eq!(mc(&s), 20);
    let own = read_proc(&mut s, 1, ProcView::SelfMaps).unwrap();
    assert_eq!(
        own,
        format!("{:08x}-{:08x} rw-p 00000000 00:00 0 \n", b, b + 5 * P)
    );
    assert_eq!(munmap(&mut s, 1, b, 5 * P), Ok(()));
    assert_eq!(mc(&s), 0);
    ok(&s);
}

#[test]
fn extension_grows_into_the_slack_in_place() {
    let mut s = root_process_with(64, |c| c.nr_trim_pages = 0);
    let a = mmap(&mut s, 1, 5 * P, RW, ANON).unwrap();
    s.memory_mut().bytes_at(a, 5 * P).fill(1);
    // 76 (flags 0): ENOMEM even with slack.
    assert_eq!(mremap(&mut s, 1, a, 5 * P, 6 * P, 0, 0), Err(Errno::ENOMEM));
    assert_eq!(mremap(&mut s, 1, a, 5 * P, 7 * P, MREMAP_MAYMOVE, 0), Ok(a));
    assert_eq!(s.memory().slice(a + 5 * P, 2 * P), &[0; 8192][..]);
    assert_eq!(mc(&s), 32);
    assert_eq!(
        mremap(&mut s, 1, a, 7 * P, 9 * P, MREMAP_MAYMOVE, 0).map(|b| b != a),
        Ok(true)
    );
    // Moved into a 16-page block (no trimming).
    assert_eq!(mc(&s), 64);
    ok(&s);
}

#[test]
fn vector_76_slack_does_not_count() {
    let mut s = server_with(64, |c| {
        c.nr_trim_pages = 0;
        c.strict_mremap = true;
    });
    hello(&mut s, 1, 0, None).unwrap();
    let a = mmap(&mut s, 1, 5 * P, RW, ANON).unwrap();
    assert_eq!(mremap(&mut s, 1, a, 5 * P, 6 * P, 0, 0), Err(Errno::ENOMEM));
    assert_eq!(
        mremap(&mut s, 1, a, 5 * P, 6 * P, MREMAP_MAYMOVE, 0),
        Err(Errno::ENOMEM)
    );
}

#[test]
fn vectors_77_80_81_argument_checks() {
    let (mut s, a) = anon4(true);
    // 77: not the exact mapping.
    assert_eq!(mremap(&mut s, 1, a, 3 * P, 2 * P, 0, 0), Err(Errno::EINVAL));
    // 80.
    assert_eq!(
        mremap(
            &mut s,
            1,
            a,
            4 * P,
            2 * P,
            MREMAP_MAYMOVE | MREMAP_FIXED,
            a + 0x10_0000
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mremap(&mut s, 1, a, 4 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, a),
        Ok(a)
    );
    // 81.
    assert_eq!(mremap(&mut s, 1, a + 1, 2 * P, P, 0, 0), Err(Errno::EINVAL));
    assert_eq!(mremap(&mut s, 1, a, 2 * P, 0, 0, 0), Err(Errno::EINVAL));
    assert_eq!(mremap(&mut s, 1, a, 0, P, 0, 0), Err(Errno::EINVAL));
    assert_eq!(
        mremap(&mut s, 1, a, 2 * P, u64::MAX, 0, 0),
        Err(Errno::EINVAL)
    );
    // Unknown flag bits are not checked.
    assert_eq!(mremap(&mut s, 1, a, 2 * P, P, MREMAP_DONTUNMAP, 0), Ok(a));
}

#[test]
fn vector_82_munmap_uses_the_new_length() {
    let (mut s, a) = anon4(true);
    assert_eq!(mremap(&mut s, 1, a, 4 * P, 2 * P, 0, 0), Ok(a));
    assert_eq!(munmap(&mut s, 1, a, 4 * P), Err(Errno::EINVAL));
    assert_eq!(mc(&s), 16);
    assert_eq!(munmap(&mut s, 1, a, 2 * P), Ok(()));
    assert_eq!(mc(&s), 0);
    ok(&s);
}

#[test]
fn vectors_78_79_83_file_mappings() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let req = |addr, old, new| Request::Mremap {
        addr,
        old_len: old,
        new_len: new,
        flags: 0,
        new_addr: 0,
    };
    // 78: shareable.
    let a = r.mmap(1, 2 * P, PROT_READ, PR, f, 0).unwrap();
    assert_eq!(r.call(1, req(a, 2 * P, P)), Reply::Error(Errno::EPERM));
    // 79: private-writable copy.
    let b = r.mmap(1, 2 * P, PROT_READ | PROT_WRITE, PR, f, 0).unwrap();
    assert_eq!(r.call(1, req(b, 2 * P, P)), Reply::Mapped { addr: b });
    r.ok();
    assert_eq!(r.munmap(1, b, P), Ok(()));
    r.ok();
    r.ok();
}

#[test]
fn vector_83_traced_private_read_only_copy_resizes() {
    let mut r = env();
    let victim = r.process(3, 1000);
    assert_eq!(
        r.call(1, Request::PtraceAttach { pid: victim }),
        Reply::Done
    );
    let f = r.open(3, "/data/f", RDONLY).unwrap();
    let a = r.mmap(3, 2 * P, PROT_READ, PR, f, 0).unwrap();
    let reply = r.call(
        3,
        Request::Mremap {
            addr: a,
            old_len: 2 * P,
            new_len: P,
            flags: 0,
            new_addr: 0,
        },
    );
    assert_eq!(reply, Reply::Mapped { addr: a });
    r.ok();
    // Moving a file copy with the extension keeps the object's index.
    let reply = r.call(
        3,
        Request::Mremap {
            addr: a,
            old_len: P,
            new_len: 4 * P,
            flags: MREMAP_MAYMOVE,
            new_addr: 0,
        },
    );
    let Reply::Mapped { addr: b } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(r.bytes(b, P), super::fake_driver::pattern(4096));
    r.ok();
    assert_eq!(r.munmap(3, b, 4 * P), Ok(()));
    r.ok();
}

// §14.7 SysV shared memory.

const K: i32 = 0x1234;

#[test]
fn vectors_84_85_sizes() {
    let mut s = root_process(2048);
    assert_eq!(
        shmget(&mut s, 1, IPC_PRIVATE, 0, IPC_CREAT | 0o600),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        shmget(&mut s, 1, IPC_PRIVATE, (4 << 20) + 1, 0o600),
        Err(Errno::EFBIG)
    );
    assert_eq!(
        shmget(&mut s, 1, IPC_PRIVATE, u64::MAX, 0o600),
        Err(Errno::EINVAL)
    );
    // Exactly 4 MiB fits one maximal block.
    assert!(shmget(&mut s, 1, IPC_PRIVATE, 4 << 20, 0o600).is_ok());
    assert_eq!(shmget(&mut s, 1, K, 8192, 0o600), Err(Errno::ENOENT));
}

#[test]
fn vectors_86_to_90_and_95_attach_detach_remove() {
    let mut s = server(64);
    let a = hello(&mut s, 1, 1000, None).unwrap();
    hello(&mut s, 2, 1000, None).unwrap();
    let id = shmget(&mut s, 1, K, 8192, IPC_CREAT | 0o600).unwrap();
    assert_eq!(s.stats().mmap_copy_pages, 0);
    assert_eq!((s.stats().shm_pages, s.stats().shm_segments), (2, 1));
    let shmem = read_proc(&mut s, 1, ProcView::Meminfo).unwrap();
    assert!(
        shmem
            .lines()
            .any(|l| l.starts_with("Shmem:") && l.ends_with(" 8 kB")),
        "{shmem}"
    );
    // 86.
    let x = shmat(&mut s, 1, id, 0, 0).unwrap();
    assert_eq!(x % P, 0);
    assert_eq!(s.memory().slice(x, 8192), &[0; 8192][..]);
    assert_eq!(shmat(&mut s, 1, id, 0, 0), Ok(x));
    assert_eq!(stat(&mut s, 1, id).unwrap().nattch, 2);
    // 87.
    assert_eq!(shmget(&mut s, 2, K, 0, 0), Ok(id));
    assert_eq!(shmat(&mut s, 2, id, 0, 0), Ok(x));
    let st = stat(&mut s, 2, id).unwrap();
    assert_eq!((st.nattch, st.cpid, st.size, st.mode), (3, a, 8192, 0o600));
    // 88.
    assert_eq!(shmat(&mut s, 1, id, 0x10000, 0), Err(Errno::EINVAL));
    assert_eq!(shmat(&mut s, 1, id, 0, SHM_REMAP), Err(Errno::EINVAL));
    assert_eq!(shmat(&mut s, 1, id + 99, 0x10000, 0), Err(Errno::EINVAL));
    assert_eq!(shmat(&mut s, 1, -1, 0, 0), Err(Errno::EINVAL));
    // 95.
    let maps = read_proc(&mut s, 1, ProcView::SelfMaps).unwrap();
    let line = maps.lines().next().unwrap();
    assert!(
        line.starts_with(&format!(
            "{:08x}-{:08x} rw-S 00000000 00:00 {id} ",
            x,
            x + 8192
        )),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(" /SYSV{:08x} (deleted)", K)),
        "{line}"
    );
    // 89.
    s.memory_mut().bytes_at(x, 1)[0] = 9;
    assert_eq!(shmdt(&mut s, 1, x), Ok(()));
    assert_eq!(stat(&mut s, 1, id).unwrap().nattch, 2);
    assert_eq!(s.memory().slice(x, 1), [9]);
    assert_eq!(shmdt(&mut s, 1, x + P), Err(Errno::EINVAL));
    assert_eq!(shmdt(&mut s, 1, x + 1), Err(Errno::EINVAL));
    // 90.
    assert_eq!(rmid(&mut s, 1, id), Ok(()));
    assert_eq!(shmget(&mut s, 2, K, 0, 0), Err(Errno::ENOENT));
    let st = stat(&mut s, 1, id).unwrap();
    assert_eq!((st.key, st.mode), (IPC_PRIVATE, 0o600 | SHM_DEST));
    assert_eq!(shmat(&mut s, 2, id, 0, 0), Ok(x));
    // A new segment may take the key meanwhile.
    let other = shmget(&mut s, 2, K, P, IPC_CREAT | 0o600).unwrap();
    assert_ne!(other, id);
    let free_before = s.stats().free_pages;
    assert_eq!(shmdt(&mut s, 1, x), Ok(()));
    assert_eq!(shmdt(&mut s, 2, x), Ok(()));
    assert_eq!(shmdt(&mut s, 2, x), Ok(()));
    assert_eq!(shmdt(&mut s, 2, x), Err(Errno::EINVAL));
    assert_eq!(shmat(&mut s, 1, id, 0, 0), Err(Errno::EINVAL));
    assert_eq!(s.stats().free_pages, free_before + 2);
    assert_eq!(shmget(&mut s, 1, K, 0, 0), Ok(other));
    ok(&s);
}

#[test]
fn vectors_91_to_93_keys_and_permissions() {
    let mut s = server(64);
    let _ = proc_as(&mut s, 1, 1, 10);
    let _ = proc_as(&mut s, 2, 2, 20);
    let _ = proc_as(&mut s, 3, 3, 10);
    let id = shmget(&mut s, 1, K, 8192, IPC_CREAT | 0o600).unwrap();
    // 91.
    assert_eq!(shmget(&mut s, 1, K, 16384, 0), Err(Errno::EINVAL));
    assert_eq!(
        shmget(&mut s, 1, K, 8192, IPC_CREAT | IPC_EXCL | 0o600),
        Err(Errno::EEXIST)
    );
    // Size before permission.
    assert_eq!(shmget(&mut s, 2, K, 16384, 0o600), Err(Errno::EINVAL));
    // 92.
    assert_eq!(shmget(&mut s, 2, K, 0, 0), Ok(id));
    assert_eq!(shmget(&mut s, 2, K, 0, 0o400), Err(Errno::EACCES));
    assert_eq!(shmat(&mut s, 2, id, 0, 0), Err(Errno::EACCES));
    // An address is refused only after the permission check.
    assert_eq!(shmat(&mut s, 2, id, 0x10000, 0), Err(Errno::EACCES));
    assert_eq!(rmid(&mut s, 2, id), Err(Errno::EPERM));
    assert_eq!(stat(&mut s, 2, id), Err(Errno::EACCES));
    assert_eq!(
        call(
            &mut s,
            2,
            Request::ShmSet {
                shmid: id,
                uid: 2,
                gid: 2,
                mode: 0o666
            }
        ),
        Err(Errno::EPERM)
    );
    // 93.
    assert_eq!(shmat(&mut s, 1, id, 0, SHM_EXEC), Err(Errno::EACCES));
    let ro = shmget(&mut s, 1, IPC_PRIVATE, P, 0o400).unwrap();
    let a = shmat(&mut s, 1, ro, 0, SHM_RDONLY).unwrap();
    assert_eq!(shmat(&mut s, 1, ro, 0, 0), Err(Errno::EACCES));
    let maps = read_proc(&mut s, 1, ProcView::SelfMaps).unwrap();
    assert!(
        maps.contains(&format!("{:08x}-{:08x} r--S", a, a + P)),
        "{maps}"
    );
    // Group bits: uid 3 shares gid 10.
    assert_eq!(
        call(
            &mut s,
            1,
            Request::ShmSet {
                shmid: id,
                uid: 1,
                gid: 10,
                mode: 0o640
            }
        ),
        Ok(Reply::Done)
    );
    assert_eq!(stat(&mut s, 3, id).unwrap().mode, 0o640);
    assert!(shmat(&mut s, 3, id, 0, SHM_RDONLY).is_ok());
    assert_eq!(shmat(&mut s, 3, id, 0, 0), Err(Errno::EACCES));
    // Root may do anything.
    let _ = proc_as(&mut s, 4, 0, 0);
    assert!(shmat(&mut s, 4, id, 0, SHM_EXEC).is_ok());
    assert_eq!(rmid(&mut s, 4, id), Ok(()));
    ok(&s);
}

#[test]
fn vector_94_last_attacher_exit_destroys_a_removed_segment() {
    let mut s = root_process(64);
    hello(&mut s, 2, 0, None).unwrap();
    let free = s.stats().free_pages;
    let id = shmget(&mut s, 1, K, 3 * P, IPC_CREAT | 0o666).unwrap();
    shmat(&mut s, 2, id, 0, 0).unwrap();
    shmat(&mut s, 2, id, 0, 0).unwrap();
    assert_eq!(rmid(&mut s, 1, id), Ok(()));
    assert_eq!(stat(&mut s, 1, id).unwrap().nattch, 2);
    s.tick(3_000, &mut Vec::new());
    assert_eq!(call(&mut s, 2, Request::Exec), Ok(Reply::Done));
    assert_eq!(stat(&mut s, 1, id), Err(Errno::EINVAL));
    assert_eq!(s.stats().free_pages, free);
    // Without RMID the segment outlives its attachers; the exit is the
    // last detach (dtime, lpid).
    let id = shmget(&mut s, 1, K, P, IPC_CREAT | 0o666).unwrap();
    shmat(&mut s, 1, id, 0, 0).unwrap();
    s.tick(4_000, &mut Vec::new());
    let lpid = stat(&mut s, 1, id).unwrap().cpid;
    s.disconnect(ClientId(1));
    ok(&s);
    hello(&mut s, 3, 0, None).unwrap();
    let st = stat(&mut s, 3, id).unwrap();
    assert_eq!((st.nattch, st.dtime, st.lpid), (0, 4, lpid));
    // munmap of an attachment is a detach too.
    let x = shmat(&mut s, 3, id, 0, 0).unwrap();
    assert_eq!(munmap(&mut s, 3, x, P), Ok(()));
    assert_eq!(stat(&mut s, 3, id).unwrap().nattch, 0);
    // mremap refuses attachments (shareable).
    let x = shmat(&mut s, 3, id, 0, 0).unwrap();
    assert_eq!(mremap(&mut s, 3, x, P, P, 0, 0), Err(Errno::EPERM));
    ok(&s);
}

#[test]
fn shm_times_pids_and_proc_text() {
    let mut s = server(64);
    let pid = hello(&mut s, 1, 0, None).unwrap();
    s.tick(5_000, &mut Vec::new());
    let id = shmget(&mut s, 1, K, 100, IPC_CREAT | 0o644).unwrap();
    s.tick(7_500, &mut Vec::new());
    let x = shmat(&mut s, 1, id, 0, 0).unwrap();
    s.tick(9_000, &mut Vec::new());
    shmdt(&mut s, 1, x).unwrap();
    let st = stat(&mut s, 1, id).unwrap();
    assert_eq!((st.ctime, st.atime, st.dtime), (5, 7, 9));
    assert_eq!((st.cpid, st.lpid, st.size), (pid, pid, 100));
    let text = read_proc(&mut s, 1, ProcView::SysvShm).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap"
    );
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "{:>10} {:>10}  {:>4} {:>21} {:>5} {:>5}  {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}",
            K, id, "644", 100, pid, pid, 0, 0, 0, 0, 0, 7, 9, 5, 4096, 0
        )
    );
    assert!(lines.next().is_none());
}

#[test]
fn shm_limits() {
    let mut s = root_process(8);
    assert!(shmget(&mut s, 1, IPC_PRIVATE, 8 * P, 0o600).is_ok());
    assert_eq!(shmget(&mut s, 1, IPC_PRIVATE, P, 0o600), Err(Errno::ENOMEM));
    ok(&s);
}

// §7.5: unlink.

#[test]
fn unlink_keeps_a_mapped_memory_file_alive() {
    let mut r = env();
    let fd = r.open(1, "/tmp/a", RDWR | O_CREAT).unwrap();
    r.ftruncate(1, fd, 8192).unwrap();
    let x = r.mmap(1, 8192, PROT_READ | PROT_WRITE, SH, fd, 0).unwrap();
    r.s.memory_mut().bytes_at(x, 2).copy_from_slice(b"ok");
    let unlink = |p: &str| Request::Unlink {
        path: protocol::Path::try_from(p).unwrap(),
    };
    assert_eq!(r.call(1, unlink("/tmp/a")), Reply::Done);
    assert_eq!(r.open(2, "/tmp/a", RDWR), Err(Errno::ENOENT));
    assert_eq!(r.call(1, unlink("/tmp/a")), Reply::Error(Errno::ENOENT));
    r.close(1, fd).unwrap();
    assert_eq!(r.bytes(x, 2), b"ok");
    r.ok();
    assert_eq!(r.call(1, unlink("/data/f")), Reply::Error(Errno::EPERM));
    assert_eq!(r.call(1, unlink("/rom/t")), Reply::Error(Errno::EROFS));
    assert_eq!(r.call(1, unlink("/nowhere/x")), Reply::Error(Errno::ENOENT));
    assert_eq!(r.call(1, unlink("/dev/tst")), Reply::Error(Errno::EPERM));
    assert_eq!(r.munmap(1, x, 8192), Ok(()));
    r.ok();
    let _ = (DATA, ROM);
}

// §14.11 process model.

#[test]
fn vector_116_peek_across_the_end_and_outside() {
    let mut s = server(64);
    let t = hello(&mut s, 1, 1000, None).unwrap();
    hello(&mut s, 2, 1000, None).unwrap();
    hello(&mut s, 3, 2000, None).unwrap();
    let a = mmap(&mut s, 1, P, RW, ANON).unwrap();
    s.memory_mut()
        .bytes_at(a, 8)
        .copy_from_slice(&7u64.to_le_bytes());
    let peek = |s: &mut S, c, addr| call(s, c, Request::PtracePeek { pid: t, addr });
    // ptrace(2): only the tracer peeks; before the attach the target is
    // not there for the caller.
    assert_eq!(peek(&mut s, 2, a), Err(Errno::ESRCH));
    assert_eq!(
        call(&mut s, 2, Request::PtraceAttach { pid: t }),
        Ok(Reply::Done)
    );
    assert_eq!(peek(&mut s, 2, a), Ok(Reply::Value(7)));
    assert_eq!(peek(&mut s, 2, a + P - 2), Err(Errno::EIO));
    assert_eq!(peek(&mut s, 2, a + P - 8), Ok(Reply::Value(0)));
    assert_eq!(peek(&mut s, 2, a + 2 * P), Err(Errno::EIO));
    assert_eq!(peek(&mut s, 2, u64::MAX - 3), Err(Errno::EIO));
    // Another user may not attach, so never peeks.
    assert_eq!(
        call(&mut s, 3, Request::PtraceAttach { pid: t }),
        Err(Errno::EPERM)
    );
    assert_eq!(peek(&mut s, 3, a), Err(Errno::ESRCH));
    assert_eq!(
        call(&mut s, 2, Request::PtracePeek { pid: 9999, addr: a }),
        Err(Errno::ESRCH)
    );
    assert_eq!(
        call(
            &mut s,
            2,
            Request::PtracePoke {
                pid: t,
                addr: a + 8,
                word: 0x0102
            }
        ),
        Ok(Reply::Done)
    );
    assert_eq!(s.memory().slice(a + 8, 8), 0x0102u64.to_le_bytes());
    // Detached, the tracer is a stranger again.
    assert_eq!(
        call(&mut s, 2, Request::PtraceDetach { pid: t }),
        Ok(Reply::Done)
    );
    assert_eq!(peek(&mut s, 2, a), Err(Errno::ESRCH));
    let poke = Request::PtracePoke {
        pid: t,
        addr: a,
        word: 1,
    };
    assert_eq!(call(&mut s, 2, poke), Err(Errno::ESRCH));
}

#[test]
fn vector_117_poke_rules() {
    let mut r = env();
    let p3 = r.process(3, 1000);
    let rom = r.open(3, "/rom/t", RDONLY).unwrap();
    let x = r.mmap(3, 8192, PROT_READ, PR, rom, 0).unwrap();
    let poke = |addr| Request::PtracePoke {
        pid: p3,
        addr,
        word: 0x55,
    };
    // A shared /data/f copy, made before the attach (a traced process's
    // new private file mappings are never shared).
    let f3 = r.open(3, "/data/f", RDONLY).unwrap();
    let f2 = r.open(2, "/data/f", RDONLY).unwrap();
    let a = r.mmap(3, 8192, PROT_READ, PR, f3, 0).unwrap();
    assert_eq!(r.mmap(2, 8192, PROT_READ, PR, f2, 0), Ok(a));
    // Not attached: the target is not there for the caller.
    assert_eq!(r.call(1, poke(a + 16)), Reply::Error(Errno::ESRCH));
    assert_eq!(r.call(1, Request::PtraceAttach { pid: p3 }), Reply::Done);
    assert_eq!(r.call(1, poke(x)), Reply::Error(Errno::EIO));
    // Peeks of the direct mapping work.
    // The env's clients are 32-bit: a word is 4 bytes.
    let want = u32::from_le_bytes(super::fake_driver::pattern(4).try_into().unwrap());
    assert_eq!(
        r.call(1, Request::PtracePeek { pid: p3, addr: x }),
        Reply::Value(want as i64)
    );
    // The poke into the shared copy is seen by every sharer.
    assert_eq!(r.call(1, poke(a + 16)), Reply::Done);
    assert_eq!(r.bytes(a + 16, 4), 0x55u32.to_le_bytes());
    // A word crossing the end of the mapping is short.
    assert_eq!(r.call(1, poke(a + 8192 - 2)), Reply::Error(Errno::EIO));
    r.ok();
}

#[test]
fn vector_119_vfork_child_exec_leaves_the_parent_alone() {
    let mut s = server(64);
    let parent = hello(&mut s, 1, 0, None).unwrap();
    let a = mmap(&mut s, 1, P, RW, ANON).unwrap();
    let id = shmget(&mut s, 1, IPC_PRIVATE, P, 0o600).unwrap();
    let x = shmat(&mut s, 1, id, 0, 0).unwrap();
    let Reply::Cloned { ticket, .. } = s.handle_now(
        ClientId(1),
        Request::Clone {
            flags: 0x100 | 0x4000 | 17,
        },
    ) else {
        panic!()
    };
    hello(&mut s, 2, 0, Some(ticket)).unwrap();
    let before = read_proc(&mut s, 1, ProcView::SelfMaps).unwrap();
    assert_eq!(call(&mut s, 2, Request::Exec), Ok(Reply::Done));
    assert_eq!(read_proc(&mut s, 2, ProcView::SelfMaps).unwrap(), "");
    let b = mmap(&mut s, 2, P, RW, ANON).unwrap();
    assert_eq!(read_proc(&mut s, 1, ProcView::SelfMaps).unwrap(), before);
    assert_eq!(stat(&mut s, 1, id).unwrap().nattch, 1);
    // The parent's own exec drops its mappings and attachments.
    assert_eq!(call(&mut s, 1, Request::Exec), Ok(Reply::Done));
    assert_eq!(read_proc(&mut s, 1, ProcView::SelfMaps).unwrap(), "");
    assert_eq!(stat(&mut s, 1, id).unwrap().nattch, 0);
    assert_eq!(s.stats().mmap_copy_pages, 1);
    let text = read_proc(&mut s, 2, ProcView::ProcessMaps { pid: parent }).unwrap();
    assert_eq!(text, "");
    let _ = (a, x, b);
    ok(&s);
}

#[test]
fn memory_calls_are_enosys() {
    let mut s = root_process(16);
    let a = mmap(&mut s, 1, P, RW, ANON).unwrap();
    for call_kind in protocol::MemoryCall::ALL {
        assert_eq!(
            call(
                &mut s,
                1,
                Request::MemoryCall {
                    call: call_kind,
                    addr: a,
                    len: P,
                    arg: 0
                }
            ),
            Err(Errno::ENOSYS)
        );
    }
}

#[test]
fn shm_rnd_and_the_32_bit_proc_view() {
    let mut s = root_process_with(64, |c| c.word_size = 4);
    let id = shmget(&mut s, 1, IPC_PRIVATE, P, 0o600).unwrap();
    // Unaligned without SHM_RND: EINVAL before the lookup.
    assert_eq!(shmat(&mut s, 1, 9999, 0x10001, 0), Err(Errno::EINVAL));
    // Rounded to 0 with SHM_REMAP: EINVAL early too.
    assert_eq!(
        shmat(&mut s, 1, 9999, 0x123, SHM_RND | SHM_REMAP),
        Err(Errno::EINVAL)
    );
    // Rounded, acceptable: refused only as MAP_FIXED, after the lookup.
    assert_eq!(shmat(&mut s, 1, id, 0x10001, SHM_RND), Err(Errno::EINVAL));
    let text = read_proc(&mut s, 1, ProcView::SysvShm).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime        rss       swap"
    );
    assert_eq!(text.lines().count(), 2);
}

#[path = "shm_lock.rs"]
mod shm_lock;
