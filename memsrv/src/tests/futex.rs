//! Futex tests (spec §8.3, vectors 102–107): keys, errors, held replies,
//! timeouts through `tick`, requeue, bitsets, waiter removal on exit, and
//! a random walk against a model.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::tests::fake_driver::*;
use crate::tests::rig::*;
use crate::tests::sim::{hello, ANON, P};
use crate::Answer;
use crate::{ClientId, PhysicalMemory};
use protocol::linux::*;
use protocol::{DriverOps, Errno, ObjectKind, Reply, Request};

const RW: u32 = PROT_READ | PROT_WRITE;
const TMP: u64 = 100;
const TST: u64 = 101;
const TST_BASE: u64 = 0x5000_0000;
const ETIMEDOUT: Errno = Errno(110);
const PRIV: u32 = FUTEX_PRIVATE_FLAG;

fn env() -> Rig {
    let mut r = Rig::with(256, |c| c.word_size = 4);
    r.driver(TMP, "/tmp", (0, 0x10), false, false);
    r.driver(TST, "/dev/tst", (0xa, 1), false, false);
    r.add(TST, "", |_, _| {
        let mut o = FakeObject::new(
            0,
            ObjectKind::CharDevice,
            Some(0x01 | 0x08 | 0x10 | 0x20),
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA,
            Store::Window { base: TST_BASE },
        );
        o.info.size = 1 << 20;
        o.info.io_memory = true;
        o
    });
    r.process(1, 1000);
    r.process(2, 1000);
    r.ok();
    r
}

fn req(uaddr: u64, op: u32, val: u32, timeout_ns: Option<u64>) -> Request {
    Request::Futex {
        uaddr,
        op,
        val,
        timeout_ns,
        val2: 0,
        uaddr2: 0,
        val3: FUTEX_BITSET_MATCH_ANY,
    }
}

fn requeue(uaddr: u64, op: u32, val: u32, val2: u32, uaddr2: u64, val3: u32) -> Request {
    Request::Futex {
        uaddr,
        op,
        val,
        timeout_ns: None,
        val2,
        uaddr2,
        val3,
    }
}

/// Send a wait; its tag (the reply is held when it waits).
fn wait(r: &mut Rig, c: u64, uaddr: u64, op: u32, val: u32, timeout_ns: Option<u64>) -> u32 {
    let tag = r.send(c, req(uaddr, op, val, timeout_ns));
    r.ok();
    tag
}

fn call(r: &mut Rig, c: u64, request: Request) -> Result<i64, Errno> {
    let out = match r.call(c, request) {
        Reply::Value(v) => Ok(v),
        Reply::Error(e) => Err(e),
        other => panic!("futex: {other:?}"),
    };
    r.ok();
    out
}

fn wake(r: &mut Rig, c: u64, uaddr: u64, op: u32, n: u32) -> Result<i64, Errno> {
    call(r, c, req(uaddr, op, n, None))
}

fn store(r: &mut Rig, addr: u64, v: u32) {
    r.s.memory_mut().write(addr, &v.to_ne_bytes());
}

fn anon(r: &mut Rig, c: u64) -> u64 {
    let a = r.mmap(c, P, RW, ANON, -1, 0).unwrap();
    store(r, a, 0);
    a
}

/// A one-page `/tmp` file mapped `MAP_SHARED` by `c`.
fn shared(r: &mut Rig, c: u64, name: &str) -> u64 {
    let fd = r.open(c, name, RDWR | O_CREAT).unwrap();
    r.ftruncate(c, fd, P).unwrap();
    r.mmap(c, P, RW, SH, fd, 0).unwrap()
}

/// Connection 3: a `CLONE_VM` child of process 1 (its thread).
fn clone_vm_thread(r: &mut Rig) {
    let ticket = match r.call(1, Request::Clone { flags: CLONE_VM }) {
        Reply::Cloned { ticket, .. } => ticket,
        other => panic!("{other:?}"),
    };
    hello(&mut r.s, 3, 1000, Some(ticket)).unwrap();
}

fn held(r: &mut Rig, c: u64, tag: u32) -> bool {
    r.reply(c, tag).is_none()
}

#[test]
fn vector_102_unaligned_is_einval() {
    let mut r = env();
    let a = anon(&mut r, 1);
    for op in [FUTEX_WAIT, FUTEX_WAIT | PRIV, FUTEX_WAKE] {
        assert_eq!(call(&mut r, 1, req(a + 2, op, 0, None)), Err(Errno::EINVAL));
    }
}

#[test]
fn vector_103_no_mapping_is_efault() {
    let mut r = env();
    let a = anon(&mut r, 1);
    // Process 2 has no mapping there; process 1 has none past its page.
    assert_eq!(
        call(&mut r, 2, req(a, FUTEX_WAIT, 0, None)),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        call(&mut r, 1, req(a + P, FUTEX_WAIT, 0, None)),
        Err(Errno::EFAULT)
    );
    assert_eq!(wake(&mut r, 2, a, FUTEX_WAKE, 1), Err(Errno::EFAULT));
    // The private key needs a mapping too (server decision, futex.rs).
    assert_eq!(
        call(&mut r, 2, req(a, FUTEX_WAIT | PRIV, 1, None)),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        call(&mut r, 1, req(4, FUTEX_WAIT | PRIV, 0, None)),
        Err(Errno::EFAULT)
    );
}

#[test]
fn vector_104_io_mapping_is_eperm() {
    let mut r = env();
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    let a = r.mmap(1, P, RW, SH, t, 0).unwrap();
    assert_eq!(a, TST_BASE);
    assert_eq!(
        call(&mut r, 1, req(a, FUTEX_WAIT, 0, None)),
        Err(Errno::EPERM)
    );
    assert_eq!(wake(&mut r, 1, a + 8, FUTEX_WAKE, 1), Err(Errno::EPERM));
}

#[test]
fn unreadable_mapping_is_efault() {
    let mut r = env();
    let a = r.mmap(1, P, PROT_NONE, ANON, -1, 0).unwrap();
    // Server decision (futex.rs): MMU Linux's EFAULT, not §8.2's EACCES.
    assert_eq!(
        call(&mut r, 1, req(a, FUTEX_WAIT, 0, None)),
        Err(Errno::EFAULT)
    );
}

#[test]
fn vector_105_two_processes_meet_on_a_shared_object() {
    let mut r = env();
    let a = shared(&mut r, 1, "/tmp/seg");
    let b = shared(&mut r, 2, "/tmp/seg");
    store(&mut r, a, 0);
    let tag = wait(&mut r, 1, a, FUTEX_WAIT, 0, None);
    assert!(held(&mut r, 1, tag));
    store(&mut r, b, 1);
    assert_eq!(wake(&mut r, 2, b, FUTEX_WAKE, 1), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
    // Private keys of two processes never meet.
    store(&mut r, a, 0);
    let tag = wait(&mut r, 1, a, FUTEX_WAIT | PRIV, 0, None);
    assert_eq!(wake(&mut r, 2, b, FUTEX_WAKE | PRIV, 1), Ok(0));
    assert!(held(&mut r, 1, tag));
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE | PRIV, 1), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
}

#[test]
fn vector_106_clone_vm_threads_private() {
    let mut r = env();
    let a = anon(&mut r, 1);
    clone_vm_thread(&mut r);
    let tag = wait(&mut r, 1, a, FUTEX_WAIT | PRIV, 0, None);
    assert!(held(&mut r, 1, tag));
    assert_eq!(wake(&mut r, 3, a, FUTEX_WAKE | PRIV, 1), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
    // Non-private too: the same address space, a private mapping.
    let tag = wait(&mut r, 3, a, FUTEX_WAIT, 0, None);
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE, 5), Ok(1));
    assert_eq!(r.reply(3, tag), Some(Reply::Value(0)));
}

#[test]
fn vector_107_changed_value_is_eagain() {
    let mut r = env();
    let a = anon(&mut r, 1);
    store(&mut r, a, 7);
    assert_eq!(
        call(&mut r, 1, req(a, FUTEX_WAIT, 6, None)),
        Err(Errno::EAGAIN)
    );
    assert_eq!(
        call(&mut r, 1, req(a, FUTEX_WAIT | PRIV, 0, None)),
        Err(Errno::EAGAIN)
    );
}

#[test]
fn ops_and_flags() {
    let mut r = env();
    let a = anon(&mut r, 1);
    // FUTEX_LOCK_PI: the PI operations are not served.
    assert_eq!(call(&mut r, 1, req(a, 6, 0, None)), Err(Errno::ENOSYS));
    assert_eq!(call(&mut r, 1, req(a, 99, 0, None)), Err(Errno::ENOSYS));
    assert_eq!(
        call(
            &mut r,
            1,
            req(a, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, None)
        ),
        Err(Errno::ENOSYS)
    );
    assert_eq!(
        call(
            &mut r,
            1,
            req(a, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 0, None)
        ),
        Err(Errno::ENOSYS)
    );
    // Bitset 0 → EINVAL.
    let mut zero = req(a, FUTEX_WAIT_BITSET, 0, None);
    if let Request::Futex { val3, .. } = &mut zero {
        *val3 = 0;
    }
    assert_eq!(call(&mut r, 1, zero), Err(Errno::EINVAL));
    let zero = requeue(a, FUTEX_WAKE_BITSET, 1, 0, 0, 0);
    assert_eq!(call(&mut r, 1, zero), Err(Errno::EINVAL));
    // Nobody waits: wake returns 0.
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE, 1), Ok(0));
    // A realtime bitset wait is accepted.
    let tag = wait(
        &mut r,
        1,
        a,
        FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME | PRIV,
        0,
        None,
    );
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE | PRIV, 1), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
}

#[test]
fn wake_is_fifo_and_counted() {
    let mut r = env();
    let a = shared(&mut r, 1, "/tmp/q");
    assert_eq!(shared(&mut r, 2, "/tmp/q"), a);
    store(&mut r, a, 0);
    for c in 3..6 {
        r.process(c, 1000);
        assert_eq!(shared(&mut r, c, "/tmp/q"), a);
    }
    let tags: Vec<(u64, u32)> = (1..6)
        .map(|c| (c, wait(&mut r, c, a, FUTEX_WAIT, 0, None)))
        .collect();
    assert_eq!(wake(&mut r, 2, a, FUTEX_WAKE, 2), Ok(2));
    assert_eq!(r.reply(1, tags[0].1), Some(Reply::Value(0)));
    assert_eq!(r.reply(2, tags[1].1), Some(Reply::Value(0)));
    assert!(held(&mut r, 3, tags[2].1));
    // As Linux's futex_wake: a count of 0 (or C's -1) still wakes one;
    // INT_MAX wakes all.
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE, 0), Ok(1));
    assert_eq!(r.reply(3, tags[2].1), Some(Reply::Value(0)));
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE, u32::MAX), Ok(1));
    assert_eq!(r.reply(4, tags[3].1), Some(Reply::Value(0)));
    assert!(held(&mut r, 5, tags[4].1));
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE, i32::MAX as u32), Ok(1));
    assert_eq!(r.reply(5, tags[4].1), Some(Reply::Value(0)));
}

#[test]
fn relative_timeout_counts_from_next_tick() {
    let mut r = env();
    let a = anon(&mut r, 1);
    r.tick(1000);
    let tag = wait(&mut r, 1, a, FUTEX_WAIT, 0, Some(50_000_000));
    r.tick(1010); // starts: deadline 1060
    r.tick(1059);
    assert!(held(&mut r, 1, tag));
    r.tick(1060);
    assert_eq!(r.reply(1, tag), Some(Reply::Error(ETIMEDOUT)));
    r.ok();
    // Sub-millisecond rounds up; a wake before the deadline wins.
    let tag = wait(&mut r, 1, a, FUTEX_WAIT, 0, Some(1));
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE, 1), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
    r.tick(2000);
    assert_eq!(r.reply(1, tag), None);
    // No timeout: waits across ticks.
    let tag = wait(&mut r, 1, a, FUTEX_WAIT, 0, None);
    r.tick(1_000_000);
    assert!(held(&mut r, 1, tag));
}

#[test]
fn bitset_absolute_timeout_and_matching() {
    let mut r = env();
    let a = anon(&mut r, 1);
    r.tick(500);
    let ms = 1_000_000u64;
    // Already past: ETIMEDOUT at once (after the value check).
    let mut past = req(a, FUTEX_WAIT_BITSET, 0, Some(400 * ms));
    assert_eq!(call(&mut r, 1, past.clone()), Err(ETIMEDOUT));
    if let Request::Futex { val, .. } = &mut past {
        *val = 3;
    }
    assert_eq!(call(&mut r, 1, past), Err(Errno::EAGAIN));
    let mut w1 = req(a, FUTEX_WAIT_BITSET, 0, Some(700 * ms));
    if let Request::Futex { val3, .. } = &mut w1 {
        *val3 = 0b01;
    }
    let t1 = r.send(1, w1);
    let mut w2 = req(a, FUTEX_WAIT_BITSET, 0, None);
    if let Request::Futex { val3, .. } = &mut w2 {
        *val3 = 0b10;
    }
    let t2 = r.send(1, w2);
    r.ok();
    // Wake bitset 0b10 skips the older waiter.
    assert_eq!(
        call(&mut r, 1, requeue(a, FUTEX_WAKE_BITSET, 1, 0, 0, 0b10)),
        Ok(1)
    );
    assert_eq!(r.reply(1, t2), Some(Reply::Value(0)));
    assert!(held(&mut r, 1, t1));
    r.tick(699);
    assert!(held(&mut r, 1, t1));
    r.tick(700);
    assert_eq!(r.reply(1, t1), Some(Reply::Error(ETIMEDOUT)));
    r.ok();
}

#[test]
fn requeue_and_cmp_requeue() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let b = a + 64;
    store(&mut r, b, 0);
    let tags: Vec<u32> = (0..4)
        .map(|_| wait(&mut r, 1, a, FUTEX_WAIT | PRIV, 0, None))
        .collect();
    // CMP_REQUEUE with a stale value → EAGAIN, nothing moves.
    let op = FUTEX_CMP_REQUEUE | PRIV;
    assert_eq!(
        call(&mut r, 1, requeue(a, op, 1, 2, b, 9)),
        Err(Errno::EAGAIN)
    );
    assert_eq!(
        call(&mut r, 1, requeue(a, op, 1, 2, b + 1, 0)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        call(&mut r, 1, requeue(a, op, u32::MAX, 2, b, 0)),
        Err(Errno::EINVAL)
    );
    // Wake one, move two: returns 3.
    assert_eq!(call(&mut r, 1, requeue(a, op, 1, 2, b, 0)), Ok(3));
    assert_eq!(r.reply(1, tags[0]), Some(Reply::Value(0)));
    for &t in &tags[1..] {
        assert!(held(&mut r, 1, t));
    }
    // The requeued two are on b now; the last one is still on a.
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE | PRIV, 10), Ok(1));
    assert_eq!(r.reply(1, tags[3]), Some(Reply::Value(0)));
    // Plain requeue ignores val3: wake none, move all back to a.
    let op = FUTEX_REQUEUE | PRIV;
    assert_eq!(call(&mut r, 1, requeue(b, op, 0, 10, a, 12345)), Ok(2));
    assert_eq!(wake(&mut r, 1, b, FUTEX_WAKE | PRIV, 10), Ok(0));
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE | PRIV, 1), Ok(1));
    assert_eq!(r.reply(1, tags[1]), Some(Reply::Value(0)));
    assert_eq!(wake(&mut r, 1, a, FUTEX_WAKE | PRIV, 1), Ok(1));
    assert_eq!(r.reply(1, tags[2]), Some(Reply::Value(0)));
}

#[test]
fn requeued_waiter_joins_the_tail() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let b = a + 4;
    store(&mut r, b, 0);
    let on_b = wait(&mut r, 1, b, FUTEX_WAIT | PRIV, 0, None);
    let on_a = wait(&mut r, 1, a, FUTEX_WAIT | PRIV, 0, None);
    let op = FUTEX_REQUEUE | PRIV;
    assert_eq!(call(&mut r, 1, requeue(a, op, 0, 1, b, 0)), Ok(1));
    assert_eq!(wake(&mut r, 1, b, FUTEX_WAKE | PRIV, 1), Ok(1));
    assert_eq!(r.reply(1, on_b), Some(Reply::Value(0)));
    assert!(held(&mut r, 1, on_a));
}

#[test]
fn waiters_go_with_their_process_or_connection() {
    let mut r = env();
    let a = shared(&mut r, 1, "/tmp/e");
    shared(&mut r, 2, "/tmp/e");
    store(&mut r, a, 0);
    let t1 = wait(&mut r, 1, a, FUTEX_WAIT, 0, Some(1_000_000));
    // Exit: the wait is gone without a reply.
    assert_eq!(r.call(1, Request::Exit), Reply::Done);
    r.ok();
    assert_eq!(r.reply(1, t1), None);
    assert_eq!(wake(&mut r, 2, a, FUTEX_WAKE, 1), Ok(0));
    r.tick(10_000);
    assert_eq!(r.reply(1, t1), None);
    // A host process with two thread connections: only the dead
    // connection's wait goes.
    use crate::Credentials;
    for c in [10, 11] {
        r.s.connect(
            ClientId(c),
            Credentials {
                pid: Some(777),
                uid: 1000,
                gid: 1000,
            },
        );
        let out = r.s.handle_now(ClientId(c), Request::Hello { ticket: None });
        assert!(matches!(out, Reply::Hello { pid: 777, .. }), "{out:?}");
    }
    let b = shared(&mut r, 10, "/tmp/e");
    assert_eq!(b, a);
    let t10 = wait(&mut r, 10, a, FUTEX_WAIT, 0, None);
    let t11 = wait(&mut r, 11, a, FUTEX_WAIT, 0, None);
    r.disconnect(10);
    r.ok();
    assert_eq!(wake(&mut r, 2, a, FUTEX_WAKE, 10), Ok(1));
    assert_eq!(r.reply(11, t11), Some(Reply::Value(0)));
    assert_eq!(r.reply(10, t10), None);
    // The last connection's disconnect ends the process and its wait.
    let t11 = wait(&mut r, 11, a, FUTEX_WAIT, 0, None);
    r.disconnect(11);
    r.ok();
    assert_eq!(r.reply(11, t11), None);
    assert_eq!(wake(&mut r, 2, a, FUTEX_WAKE, 10), Ok(0));
}

#[test]
fn waits_per_connection_are_bounded() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let max = r.s.config().max_pending_ops;
    for _ in 0..max {
        wait(&mut r, 1, a, FUTEX_WAIT | PRIV, 0, None);
    }
    assert_eq!(
        call(&mut r, 1, req(a, FUTEX_WAIT | PRIV, 0, None)),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        wake(&mut r, 1, a, FUTEX_WAKE | PRIV, i32::MAX as u32),
        Ok(max as i64)
    );
    r.replies.clear();
}

#[test]
fn handle_answers_later_then_the_reply_follows() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let out = r.s.handle(ClientId(1), req(a, FUTEX_WAIT, 0, None));
    assert_eq!(out, Answer::Later);
    assert_eq!(
        r.s.handle_now(ClientId(1), req(a, FUTEX_WAKE, 1, None)),
        Reply::Value(1)
    );
    let fx = r.s.take_effects();
    assert_eq!(fx.len(), 1);
}

/// splitmix64 stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::process::splitmix64(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A model key: a private word of an address-space group, or a word of
/// the shared file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum MKey {
    Private(u64, u64),
    Shared(u64),
}

struct MWaiter {
    client: u64,
    tag: u32,
    key: MKey,
    /// `None`: forever; `Some((ms, started_at))`.
    timeout: Option<(u64, Option<u64>)>,
}

#[test]
fn random_walk_matches_the_model() {
    let mut seen = [0u64; 5];
    for seed in 0..12u64 {
        let s = random_walk(seed);
        for (t, x) in seen.iter_mut().zip(s) {
            *t += x;
        }
    }
    // Every outcome happened: woken, timed out, EAGAIN, dropped by exit,
    // requeued.
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
}

/// Counts of waits woken, timed out, refused EAGAIN, dropped by exits,
/// requeued.
fn random_walk(seed: u64) -> [u64; 5] {
    let mut seen = [0u64; 5];
    let mut rng = Rng(seed.wrapping_mul(0x1234_5678_9abc_def1));
    let mut r = env();
    // Clients 1, 2: separate processes; 3: a CLONE_VM thread of 1; 4: another process.
    clone_vm_thread(&mut r);
    r.process(4, 1000);
    let group = |c: u64| if c == 3 { 1 } else { c };
    let mut anon_of = BTreeMap::new();
    let mut shared_at = 0;
    for c in [1u64, 2, 4] {
        let a = r.mmap(c, P, RW, ANON, -1, 0).unwrap();
        r.s.memory_mut().fill(a, P, 0);
        anon_of.insert(c, a);
        let at = shared(&mut r, c, "/tmp/walk");
        assert!(shared_at == 0 || shared_at == at);
        shared_at = at;
    }
    anon_of.insert(3, anon_of[&1]);
    r.s.memory_mut().fill(shared_at, P, 0);
    r.ok();
    let mut live: Vec<u64> = vec![1, 2, 3, 4];
    let mut waiting: Vec<MWaiter> = Vec::new();
    let mut now = 0u64;
    let mut expect: BTreeMap<(ClientId, u32), Reply> = BTreeMap::new();
    for _step in 0..300 {
        let c = live[rng.below(live.len() as u64) as usize];
        let word = rng.below(3);
        let word2 = rng.below(3);
        let private = rng.below(2) == 0;
        let in_file = rng.below(2) == 1;
        let flag = if private { PRIV } else { 0 };
        let locate = |w: u64| -> (u64, MKey) {
            if !in_file {
                (anon_of[&c] + 4 * w, MKey::Private(group(c), w))
            } else if private {
                // A private-flag wait on the shared file keys by address space.
                (shared_at + 4 * w, MKey::Private(100 + group(c), w))
            } else {
                (shared_at + 4 * w, MKey::Shared(w))
            }
        };
        let (addr, key) = locate(word);
        let (addr2, key2) = locate(word2);
        match rng.below(10) {
            0..=3 => {
                if waiting.iter().any(|w| w.client == c) {
                    continue;
                }
                let cur = r.s.memory().load_u32(addr);
                let val = if rng.below(5) == 0 { cur ^ 1 } else { cur };
                let timeout = match rng.below(3) {
                    0 => Some(rng.below(50)),
                    _ => None,
                };
                let tag = r.send(
                    c,
                    req(
                        addr,
                        FUTEX_WAIT | flag,
                        val,
                        timeout.map(|ms| ms * 1_000_000),
                    ),
                );
                if val != cur {
                    expect.insert((ClientId(c), tag), Reply::Error(Errno::EAGAIN));
                    seen[2] += 1;
                } else {
                    waiting.push(MWaiter {
                        client: c,
                        tag,
                        key,
                        timeout: timeout.map(|ms| (ms, None)),
                    });
                }
            }
            4..=6 => {
                let n = 1 + rng.below(3) as u32;
                let mut woken = 0;
                let mut i = 0;
                while i < waiting.len() && woken < n {
                    if waiting[i].key == key {
                        let w = waiting.remove(i);
                        expect.insert((ClientId(w.client), w.tag), Reply::Value(0));
                        woken += 1;
                        seen[0] += 1;
                    } else {
                        i += 1;
                    }
                }
                let tag = r.send(c, req(addr, FUTEX_WAKE | flag, n, None));
                expect.insert((ClientId(c), tag), Reply::Value(i64::from(woken)));
            }
            7 if rng.below(2) == 0 => {
                // CMP_REQUEUE: wake n, move m to word2 (joining its tail).
                let (n, m) = (rng.below(3) as u32, rng.below(3) as u32);
                let cur = r.s.memory().load_u32(addr);
                let val3 = if rng.below(4) == 0 { cur ^ 1 } else { cur };
                let tag = r.send(
                    c,
                    requeue(addr, FUTEX_CMP_REQUEUE | flag, n, m, addr2, val3),
                );
                if val3 != cur {
                    expect.insert((ClientId(c), tag), Reply::Error(Errno::EAGAIN));
                } else {
                    let mut done = 0u32;
                    let mut i = 0;
                    let mut moved = Vec::new();
                    while i < waiting.len() && done < n + m {
                        if waiting[i].key != key {
                            i += 1;
                            continue;
                        }
                        if done < n {
                            let w = waiting.remove(i);
                            expect.insert((ClientId(w.client), w.tag), Reply::Value(0));
                            seen[0] += 1;
                        } else if key != key2 {
                            let mut w = waiting.remove(i);
                            w.key = key2;
                            moved.push(w);
                            seen[4] += 1;
                        } else {
                            i += 1;
                        }
                        done += 1;
                    }
                    waiting.extend(moved);
                    expect.insert((ClientId(c), tag), Reply::Value(i64::from(done)));
                }
            }
            7 => {
                store(&mut r, addr, rng.below(2) as u32);
            }
            8 => {
                now += rng.below(30);
                for w in &mut waiting {
                    if let Some((_, start @ None)) = &mut w.timeout {
                        *start = Some(now);
                    }
                }
                waiting.retain(|w| match w.timeout {
                    Some((ms, Some(start))) if start + ms <= now => {
                        expect.insert((ClientId(w.client), w.tag), Reply::Error(ETIMEDOUT));
                        seen[1] += 1;
                        false
                    }
                    _ => true,
                });
                r.tick(now);
            }
            _ => {
                if rng.below(8) == 0 && live.len() > 2 {
                    // The process (not its thread sibling) exits.
                    let before = waiting.len();
                    waiting.retain(|w| w.client != c);
                    seen[3] += (before - waiting.len()) as u64;
                    live.retain(|&x| x != c);
                    r.disconnect(c);
                }
            }
        }
        r.ok();
        let got = core::mem::take(&mut r.replies);
        assert_eq!(got, expect, "seed {seed}");
        expect.clear();
    }
    // What is still waiting is answered by a wake of everything.
    seen
}

#[test]
fn vector_105_sysv_segment() {
    let mut r = env();
    let flags = IPC_CREAT | 0o600;
    let shmid = match r.call(
        1,
        Request::Shmget {
            key: 0x105,
            size: P,
            flags,
        },
    ) {
        Reply::Value(v) => i32::try_from(v).unwrap(),
        other => panic!("shmget: {other:?}"),
    };
    let attach = |r: &mut Rig, c: u64| match r.call(
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
    let a = attach(&mut r, 1);
    let b = attach(&mut r, 2);
    r.ok();
    // A waits on the first word (0); B stores 1 and wakes: 1, A returns 0.
    let tag = wait(&mut r, 1, a, FUTEX_WAIT, 0, None);
    assert!(held(&mut r, 1, tag));
    store(&mut r, b, 1);
    assert_eq!(wake(&mut r, 2, b, FUTEX_WAKE, 1), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
    // A second word of the segment is another futex.
    store(&mut r, a + 8, 0);
    let tag = wait(&mut r, 2, b + 8, FUTEX_WAIT, 0, None);
    assert_eq!(wake(&mut r, 1, a + 4, FUTEX_WAKE, 1), Ok(0));
    assert_eq!(wake(&mut r, 1, a + 8, FUTEX_WAKE, 1), Ok(1));
    assert_eq!(r.reply(2, tag), Some(Reply::Value(0)));
}

#[path = "futex_efault.rs"]
mod efault;

#[cfg(test)]
#[path = "futex_wake_op.rs"]
mod wake_op;

#[path = "futex_private.rs"]
mod private;
