//! `shmctl(SHM_LOCK)` / `SHM_UNLOCK` (`shmctl_do_lock`): who may, what
//! `IPC_STAT` shows, and which errors as Linux answers them.

use super::*;

fn lock(s: &mut S, c: u64, shmid: i32, lock: bool) -> Result<(), Errno> {
    call(s, c, Request::ShmLock { shmid, lock }).map(|_| ())
}

fn set(s: &mut S, c: u64, shmid: i32, uid: u32, gid: u32, mode: u32) -> Result<(), Errno> {
    call(
        s,
        c,
        Request::ShmSet {
            shmid,
            uid,
            gid,
            mode,
        },
    )
    .map(|_| ())
}

#[test]
fn lock_sets_and_unlock_clears_shm_locked() {
    let mut s = server_with(64, |_| {});
    let _ = proc_as(&mut s, 1, 1, 10);
    let id = shmget(&mut s, 1, IPC_PRIVATE, 2048, IPC_CREAT | 0o600).unwrap();
    let ctime = stat(&mut s, 1, id).unwrap().ctime;
    assert_eq!(lock(&mut s, 1, id, true), Ok(()));
    assert_eq!(stat(&mut s, 1, id).unwrap().mode, 0o600 | SHM_LOCKED);
    // Locking twice and unlocking twice are no errors.
    assert_eq!(lock(&mut s, 1, id, true), Ok(()));
    assert_eq!(stat(&mut s, 1, id).unwrap().mode, 0o600 | SHM_LOCKED);
    assert_eq!(lock(&mut s, 1, id, false), Ok(()));
    assert_eq!(stat(&mut s, 1, id).unwrap().mode, 0o600);
    assert_eq!(lock(&mut s, 1, id, false), Ok(()));
    assert_eq!(stat(&mut s, 1, id).unwrap().mode, 0o600);
    assert_eq!(stat(&mut s, 1, id).unwrap().ctime, ctime);
}

#[test]
fn owner_creator_or_root_else_eperm() {
    let mut s = server_with(64, |_| {});
    let _ = proc_as(&mut s, 1, 1, 10);
    let _ = proc_as(&mut s, 2, 2, 10);
    let _ = proc_as(&mut s, 3, 3, 10);
    let _ = proc_as(&mut s, 4, 0, 0);
    // Everyone may read and write it: permission bits do not grant a lock.
    let id = shmget(&mut s, 1, IPC_PRIVATE, P, IPC_CREAT | 0o666).unwrap();
    assert_eq!(lock(&mut s, 2, id, true), Err(Errno::EPERM));
    assert_eq!(lock(&mut s, 2, id, false), Err(Errno::EPERM));
    // Root.
    assert_eq!(lock(&mut s, 4, id, true), Ok(()));
    assert_eq!(lock(&mut s, 2, id, false), Err(Errno::EPERM));
    assert_ne!(stat(&mut s, 2, id).unwrap().mode & SHM_LOCKED, 0);
    // Ownership passes to uid 2; uid 1 stays the creator.
    assert_eq!(set(&mut s, 1, id, 2, 10, 0o666), Ok(()));
    assert_eq!(lock(&mut s, 2, id, false), Ok(()));
    assert_eq!(lock(&mut s, 1, id, true), Ok(()));
    assert_eq!(lock(&mut s, 3, id, false), Err(Errno::EPERM));
    // IPC_SET changes the permission bits, never the lock.
    assert_eq!(set(&mut s, 2, id, 2, 10, 0o600), Ok(()));
    assert_eq!(stat(&mut s, 2, id).unwrap().mode, 0o600 | SHM_LOCKED);
}

#[test]
fn unknown_or_removed_segment_is_einval() {
    let mut s = server_with(64, |_| {});
    let _ = proc_as(&mut s, 1, 1, 10);
    assert_eq!(lock(&mut s, 1, 7, true), Err(Errno::EINVAL));
    assert_eq!(lock(&mut s, 1, -1, false), Err(Errno::EINVAL));
    let id = shmget(&mut s, 1, IPC_PRIVATE, P, IPC_CREAT | 0o600).unwrap();
    rmid(&mut s, 1, id).unwrap();
    assert_eq!(lock(&mut s, 1, id, true), Err(Errno::EINVAL));
}

#[test]
fn a_locked_segment_marked_for_removal_keeps_both_bits_until_its_last_detach() {
    let mut s = server_with(64, |_| {});
    let _ = proc_as(&mut s, 1, 1, 10);
    let id = shmget(&mut s, 1, IPC_PRIVATE, P, IPC_CREAT | 0o600).unwrap();
    let a = shmat(&mut s, 1, id, 0, 0).unwrap();
    assert_eq!(lock(&mut s, 1, id, true), Ok(()));
    rmid(&mut s, 1, id).unwrap();
    assert_eq!(
        stat(&mut s, 1, id).unwrap().mode,
        0o600 | SHM_LOCKED | SHM_DEST
    );
    // Still the owner's to unlock while attached (Linux's shm_obtain_object_check
    // finds it until it is destroyed).
    assert_eq!(lock(&mut s, 1, id, false), Ok(()));
    shmdt(&mut s, 1, a).unwrap();
    assert_eq!(lock(&mut s, 1, id, true), Err(Errno::EINVAL));
}
