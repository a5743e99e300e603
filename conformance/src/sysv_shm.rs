//! §14.7 SysV shared memory (§7.1–§7.4): segments allocated at `shmget`
//! as one contiguous run, every attach at the same address, removal
//! deferred while attached.
//!
//! Segments outlive their processes, so every vector removes what it made
//! (a `Segment` guard does `IPC_RMID` when dropped). Keys are distinct
//! per vector so that a vector failing half-way does not disturb the next
//! one on the same server. The permission vectors run as ordinary users
//! ([`Harness::spawn_as`]): root would pass every check (`CAP_IPC_OWNER`).

use super::support::{expect_filled, fill, Process, P};
use super::{Failure, Harness};
use alloc::format;
use alloc::vec::Vec;
use protocol::linux::{
    IPC_CREAT, IPC_EXCL, IPC_PRIVATE, SHM_DEST, SHM_EXEC, SHM_RDONLY, SHM_REMAP,
};
use protocol::{Errno, ShmStat};

/// The spec's key `K` (`/SYSV0000002a`), and neighbours for the other
/// vectors.
pub const K: i32 = 0x2a;

/// A segment that is removed (`IPC_RMID`) when the guard drops, by the
/// process that made it.
struct Segment<'p, 'h> {
    owner: &'p Process<'h>,
    id: i32,
}

impl<'p, 'h> Segment<'p, 'h> {
    fn get(owner: &'p Process<'h>, key: i32, size: u64, flags: i32) -> Result<Self, Failure> {
        let id = ok!(
            owner.client().shmget(key, size, flags),
            "shmget({key:#x}, {size}, {flags:#o})"
        );
        Ok(Self { owner, id })
    }
}

impl Drop for Segment<'_, '_> {
    fn drop(&mut self) {
        // Already removed by the vector, or the vector failed: either way
        // there is nothing to report from here.
        let _ = self.owner.client().shm_remove(self.id);
    }
}

fn stat(p: &Process<'_>, id: i32) -> Result<ShmStat, Failure> {
    Ok(ok!(p.client().shm_stat(id), "shmctl({id}, IPC_STAT)"))
}

pub(super) fn v84_size_zero(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    ensure_errno!(
        p.client().shmget(IPC_PRIVATE, 0, IPC_CREAT | 0o600),
        Errno::EINVAL,
        "shmget(IPC_PRIVATE, 0, IPC_CREAT|0600)"
    );
    Ok(())
}

pub(super) fn v85_too_big(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let result = p.client().shmget(IPC_PRIVATE, (4 << 20) + 1, 0o600);
    if let Ok(id) = result {
        let _ = p.client().shm_remove(id);
    }
    ensure_errno!(result, Errno::EFBIG, "shmget(IPC_PRIVATE, 4 MiB + 1, 0600)");
    Ok(())
}

pub(super) fn v86_same_address(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let seg = Segment::get(&p, K, 8192, IPC_CREAT | 0o600)?;
    let x = ok!(p.client().shmat(seg.id, 0, 0), "first shmat");
    let y = ok!(p.client().shmat(seg.id, 0, 0), "second shmat");
    ensure_eq!(y, x, "address of the second attach");
    ensure_eq!(x % P, 0, "the attach address is page aligned");
    let s = stat(&p, seg.id)?;
    ensure_eq!(s.nattch, 2, "nattch");
    ensure_eq!(s.size, 8192, "shm_segsz");
    ensure_eq!(s.key, K, "key");
    expect_filled(harness, x, 8192, 0, "a new segment")?;
    Ok(())
}

pub(super) fn v87_other_process(harness: &dyn Harness) -> Result<(), Failure> {
    let (a, b) = Process::two(harness)?;
    let seg = Segment::get(&a, K + 1, 8192, IPC_CREAT | 0o600)?;
    let x = ok!(a.client().shmat(seg.id, 0, 0), "A: shmat");
    ok!(a.client().shmat(seg.id, 0, 0), "A: second shmat");
    let id = ok!(b.client().shmget(K + 1, 0, 0), "B: shmget(K, 0, 0)");
    ensure_eq!(id, seg.id, "B's id");
    ensure_eq!(
        ok!(b.client().shmat(id, 0, 0), "B: shmat"),
        x,
        "B's address"
    );
    ensure_eq!(stat(&b, id)?.nattch, 3, "nattch");
    fill(harness, x, 8192, 0x5a)?;
    drop(b);
    ensure_eq!(stat(&a, id)?.nattch, 2, "nattch once B is gone");
    expect_filled(harness, x, 8192, 0x5a, "the segment after B left")?;
    Ok(())
}

pub(super) fn v88_no_address(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let seg = Segment::get(&p, K + 2, 8192, IPC_CREAT | 0o600)?;
    let c = p.client();
    ensure_errno!(
        c.shmat(seg.id, 0x10000, 0),
        Errno::EINVAL,
        "shmat(id, 0x10000, 0)"
    );
    ensure_errno!(
        c.shmat(seg.id, 0, SHM_REMAP),
        Errno::EINVAL,
        "shmat(id, 0, SHM_REMAP)"
    );
    ensure_errno!(c.shmat(-1, 0, 0), Errno::EINVAL, "shmat(-1, 0, 0)");
    ensure_eq!(stat(&p, seg.id)?.nattch, 0, "nattch after the refusals");
    Ok(())
}

pub(super) fn v89_shmdt(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let seg = Segment::get(&p, K + 3, 8192, IPC_CREAT | 0o600)?;
    let c = p.client();
    let x = ok!(c.shmat(seg.id, 0, 0), "first shmat");
    ok!(c.shmat(seg.id, 0, 0), "second shmat");
    fill(harness, x, 8192, 0x33)?;
    ok!(c.shmdt(x), "shmdt(X)");
    ensure_eq!(stat(&p, seg.id)?.nattch, 1, "nattch after one shmdt");
    expect_filled(harness, x, 8192, 0x33, "X through the other attachment")?;
    let maps = p.maps()?;
    ensure_eq!(
        super::support::lines_for(&maps, x, x + 8192).len(),
        1,
        "maps lines of the segment after one shmdt: {maps:?}"
    );
    ensure_errno!(c.shmdt(x + P), Errno::EINVAL, "shmdt(X+P)");
    ensure_errno!(c.shmdt(x + 1), Errno::EINVAL, "shmdt(X+1)");
    ok!(c.shmdt(x), "shmdt(X) of the last attachment");
    ensure_eq!(stat(&p, seg.id)?.nattch, 0, "nattch after both");
    ensure_errno!(c.shmdt(x), Errno::EINVAL, "shmdt(X) with nothing attached");
    Ok(())
}

pub(super) fn v90_rmid_attached(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let seg = Segment::get(&p, K + 4, 8192, IPC_CREAT | 0o600)?;
    let c = p.client();
    let x = ok!(c.shmat(seg.id, 0, 0), "shmat");
    ok!(c.shm_remove(seg.id), "IPC_RMID while attached");
    let s = stat(&p, seg.id)?;
    ensure!(s.mode & SHM_DEST != 0, "mode {:#o} lacks SHM_DEST", s.mode);
    ensure_errno!(
        c.shmget(K + 4, 0, 0),
        Errno::ENOENT,
        "shmget(K, 0, 0) after IPC_RMID"
    );
    ensure_eq!(
        ok!(c.shmat(seg.id, 0, 0), "shmat by id after IPC_RMID"),
        x,
        "address"
    );
    ensure_eq!(stat(&p, seg.id)?.nattch, 2, "nattch");
    ok!(c.shmdt(x), "first shmdt");
    ok!(c.shmdt(x), "second shmdt");
    ensure_errno!(
        c.shmat(seg.id, 0, 0),
        Errno::EINVAL,
        "shmat once the segment is gone"
    );
    ensure_errno!(
        c.shm_stat(seg.id),
        Errno::EINVAL,
        "IPC_STAT once the segment is gone"
    );
    Ok(())
}

pub(super) fn v91_existing_key(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let seg = Segment::get(&p, K + 5, 8192, IPC_CREAT | 0o600)?;
    let c = p.client();
    ensure_errno!(
        c.shmget(K + 5, 16384, 0),
        Errno::EINVAL,
        "shmget(K, 16384, 0)"
    );
    ensure_errno!(
        c.shmget(K + 5, 8192, IPC_CREAT | IPC_EXCL | 0o600),
        Errno::EEXIST,
        "shmget(K, 8192, IPC_CREAT|IPC_EXCL|0600)"
    );
    ensure_eq!(
        ok!(c.shmget(K + 5, 4096, 0), "shmget(K, 4096, 0)"),
        seg.id,
        "id"
    );
    Ok(())
}

pub(super) fn v92_other_user(harness: &dyn Harness) -> Result<(), Failure> {
    let owner = Process::spawn_as(harness, 1, 1)?;
    let other = Process::spawn_as(harness, 2, 2)?;
    let seg = Segment::get(&owner, K + 6, 8192, IPC_CREAT | 0o600)?;
    let c = other.client();
    let id = ok!(c.shmget(K + 6, 0, 0), "uid 2: shmget(K, 0, 0)");
    ensure_eq!(id, seg.id, "uid 2's id");
    ensure_errno!(c.shmat(id, 0, 0), Errno::EACCES, "uid 2: shmat");
    ensure_errno!(
        c.shmat(id, 0, SHM_RDONLY),
        Errno::EACCES,
        "uid 2: shmat SHM_RDONLY"
    );
    ensure_errno!(c.shm_remove(id), Errno::EPERM, "uid 2: IPC_RMID");
    ensure_errno!(c.shm_set(id, 2, 2, 0o666), Errno::EPERM, "uid 2: IPC_SET");
    let s = stat(&owner, id)?;
    ensure_eq!(
        (s.uid, s.cuid, s.mode & 0o777),
        (1, 1, 0o600),
        "owner and mode"
    );
    Ok(())
}

pub(super) fn v93_modes(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn_as(harness, 1, 1)?;
    let rw = Segment::get(&p, K + 7, 8192, IPC_CREAT | 0o600)?;
    let c = p.client();
    ensure_errno!(
        c.shmat(rw.id, 0, SHM_EXEC),
        Errno::EACCES,
        "shmat SHM_EXEC of a 0600 segment"
    );
    let ro = Segment::get(&p, K + 8, 8192, IPC_CREAT | 0o400)?;
    let x = ok!(
        c.shmat(ro.id, 0, SHM_RDONLY),
        "shmat SHM_RDONLY of a 0400 segment"
    );
    let maps = p.maps()?;
    let lines = super::support::lines_for(&maps, x, x + 8192);
    ensure!(
        lines.len() == 1 && lines[0].split(' ').nth(1) == Some("r--S"),
        "maps line of the read-only attach: {lines:?}"
    );
    ensure_errno!(
        c.shmat(ro.id, 0, 0),
        Errno::EACCES,
        "read-write shmat of a 0400 segment"
    );
    Ok(())
}

pub(super) fn v94_last_attacher_exits(harness: &dyn Harness) -> Result<(), Failure> {
    let (watcher, a) = Process::two(harness)?;
    let id = ok!(a.client().shmget(K + 9, 8192, IPC_CREAT | 0o600), "shmget");
    ok!(a.client().shmat(id, 0, 0), "shmat");
    ok!(a.client().shm_remove(id), "IPC_RMID while attached");
    ensure_eq!(stat(&watcher, id)?.nattch, 1, "nattch before the exit");
    ok!(a.client().exit(), "the last attacher exits");
    drop(a);
    ensure_errno!(
        watcher.client().shm_stat(id),
        Errno::EINVAL,
        "IPC_STAT after the exit"
    );
    Ok(())
}

pub(super) fn v95_maps_line(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    let seg = Segment::get(&p, K, 8192, IPC_CREAT | 0o600)?;
    let x = ok!(p.client().shmat(seg.id, 0, 0), "shmat");
    let maps = p.maps()?;
    let lines = super::support::lines_for(&maps, x, x + 8192);
    ensure_eq!(lines.len(), 1, "maps lines of the attachment in {maps:?}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    ensure!(fields.len() >= 7, "maps line {:?}", lines[0]);
    ensure_eq!(fields[1], "rw-S", "perms");
    ensure_eq!(fields[2], "00000000", "offset");
    ensure_eq!(fields[4], format!("{}", seg.id), "inode field");
    ensure_eq!(
        fields[5..].join(" "),
        format!("/SYSV{K:08x} (deleted)"),
        "path"
    );
    Ok(())
}
