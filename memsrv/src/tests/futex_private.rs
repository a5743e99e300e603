//! `FUTEX_PRIVATE_FLAG` keys on (address space, address) whatever the
//! mapping (spec §8.2; Linux's `get_futex_key` without `FLAGS_SHARED`):
//! two processes attaching one SysV segment never meet on a private
//! wait — by a wake, a `FUTEX_WAKE_OP` or a requeue — while their
//! non-private calls on it do, and a `CLONE_VM` child meets its parent.

use super::*;

/// A one-page SysV segment attached by processes 1 and 2, word 0 and 1
/// holding 0: its two addresses.
fn segment(r: &mut Rig) -> (u64, u64) {
    let shmid = match r.call(
        1,
        Request::Shmget {
            key: 0x108,
            size: P,
            flags: IPC_CREAT | 0o600,
        },
    ) {
        Reply::Value(v) => i32::try_from(v).unwrap(),
        other => panic!("shmget: {other:?}"),
    };
    let mut attach = |c| match r.call(
        c,
        Request::Shmat {
            shmid,
            addr: 0,
            flags: 0,
        },
    ) {
        Reply::Mapped { addr } => addr,
        other => panic!("shmat: {other:?}"),
    };
    let (a, b) = (attach(1), attach(2));
    store(r, a, 0);
    store(r, a + 4, 0);
    r.ok();
    (a, b)
}

/// The private ways to wake a word: a wake, a `FUTEX_WAKE_OP` (setting
/// the next word to 0) and a compared requeue to the next word.
const WAYS: [u32; 3] = [FUTEX_WAKE, FUTEX_WAKE_OP, FUTEX_CMP_REQUEUE];

/// Wake the word at `addr` from `c` the private way `cmd`; how many woke
/// (or moved).
fn private_wake(r: &mut Rig, c: u64, addr: u64, cmd: u32) -> Result<i64, Errno> {
    let val3 = match cmd {
        FUTEX_WAKE_OP => futex_op(FUTEX_OP_SET, 0, FUTEX_OP_CMP_EQ, 0),
        FUTEX_CMP_REQUEUE => 0,
        _ => FUTEX_BITSET_MATCH_ANY,
    };
    call(r, c, requeue(addr, cmd | PRIV, 1, 1, addr + 4, val3))
}

#[test]
fn private_waits_of_two_processes_on_one_segment_never_meet() {
    let mut r = env();
    let (a, b) = segment(&mut r);
    let tag = wait(&mut r, 1, a, FUTEX_WAIT | PRIV, 0, None);
    assert!(held(&mut r, 1, tag));
    for cmd in WAYS {
        assert_eq!(private_wake(&mut r, 2, b, cmd), Ok(0), "op {cmd}");
    }
    assert!(held(&mut r, 1, tag));
    // A non-private wake is another key: it finds nobody either.
    assert_eq!(wake(&mut r, 2, b, FUTEX_WAKE, 1), Ok(0));
    assert!(held(&mut r, 1, tag));
    // The waiter's own process wakes it.
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE | PRIV, 1), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
    // Non-private calls on the segment meet across the processes.
    let tag = wait(&mut r, 1, a, FUTEX_WAIT, 0, None);
    assert_eq!(wake(&mut r, 2, b, FUTEX_WAKE, 1), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
}

#[test]
fn a_clone_vm_child_meets_its_parent_on_a_private_segment_word() {
    let mut r = env();
    let (a, _) = segment(&mut r);
    clone_vm_thread(&mut r);
    for cmd in WAYS {
        let tag = wait(&mut r, 1, a, FUTEX_WAIT | PRIV, 0, None);
        assert!(held(&mut r, 1, tag));
        assert_eq!(private_wake(&mut r, 3, a, cmd), Ok(1), "op {cmd}");
        assert_eq!(r.reply(1, tag), Some(Reply::Value(0)), "op {cmd}");
    }
}
