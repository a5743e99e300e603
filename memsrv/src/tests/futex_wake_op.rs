//! `FUTEX_WAKE_OP` (Linux's `futex_wake_op`): the operation on the second
//! word, the comparison of its old value, who wakes on each word, and the
//! errors (`EFAULT` for a second word that cannot be written, `ENOSYS` for
//! an unknown operation or comparison, `EPERM` for an I/O mapping).

use super::*;

/// `FUTEX_WAKE_OP(uaddr, val, val2, uaddr2, val3)`.
fn wake_op(
    r: &mut Rig,
    c: u64,
    uaddr: u64,
    val: u32,
    val2: u32,
    uaddr2: u64,
    val3: u32,
) -> Result<i64, Errno> {
    call(r, c, requeue(uaddr, FUTEX_WAKE_OP, val, val2, uaddr2, val3))
}

fn load(r: &Rig, addr: u64) -> u32 {
    r.s.memory().load_u32(addr)
}

/// `cmparg`/`oparg` as the 12-bit field `FUTEX_OP` takes.
fn field(v: i32) -> u32 {
    u32::from_ne_bytes(v.to_ne_bytes()) & 0xfff
}

#[test]
fn each_operation_changes_the_second_word_atomically() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let b = anon(&mut r, 1);
    // (op, oparg, old, new)
    let cases: [(u32, i32, u32, u32); 9] = [
        (FUTEX_OP_SET, 5, 9, 5),
        (FUTEX_OP_SET, -1, 9, u32::MAX),
        (FUTEX_OP_ADD, 3, 9, 12),
        (FUTEX_OP_ADD, -2, 1, u32::MAX),
        (FUTEX_OP_OR, 6, 9, 15),
        (FUTEX_OP_ANDN, 1, 9, 8),
        (FUTEX_OP_XOR, 0xff, 0x0f, 0xf0),
        // The operand is 1 << oparg with the shift flag.
        (FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, 4, 1, 0x11),
        // Linux masks a shift past 31 (after a warning).
        (FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT, 33, 0, 2),
    ];
    for (op, oparg, old, new) in cases {
        store(&mut r, b, old);
        let val3 = futex_op(op, field(oparg), FUTEX_OP_CMP_EQ, 0);
        assert_eq!(wake_op(&mut r, 1, a, 1, 1, b, val3), Ok(0), "{op} {oparg}");
        assert_eq!(load(&r, b), new, "op {op} oparg {oparg} on {old}");
        assert_eq!(load(&r, a), 0, "the first word is left alone");
    }
}

#[test]
fn the_comparison_of_the_old_value_decides_the_second_wake() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let b = anon(&mut r, 1);
    // (cmp, cmparg, old, holds): signed, as Linux compares an `int`.
    let cases: [(u32, i32, u32, bool); 14] = [
        (FUTEX_OP_CMP_EQ, 3, 3, true),
        (FUTEX_OP_CMP_EQ, 3, 4, false),
        (FUTEX_OP_CMP_EQ, -1, u32::MAX, true),
        (FUTEX_OP_CMP_NE, 3, 4, true),
        (FUTEX_OP_CMP_NE, 3, 3, false),
        (FUTEX_OP_CMP_LT, 3, 2, true),
        (FUTEX_OP_CMP_LT, 3, 3, false),
        (FUTEX_OP_CMP_LT, 0, u32::MAX, true),
        (FUTEX_OP_CMP_LE, 3, 3, true),
        (FUTEX_OP_CMP_LE, 3, 4, false),
        (FUTEX_OP_CMP_GT, 1, 2, true),
        (FUTEX_OP_CMP_GT, 1, u32::MAX, false),
        (FUTEX_OP_CMP_GE, 2, 2, true),
        (FUTEX_OP_CMP_GE, 2, 1, false),
    ];
    for (cmp, cmparg, old, holds) in cases {
        store(&mut r, b, old);
        let tag = wait(&mut r, 1, b, FUTEX_WAIT, old, None);
        assert!(held(&mut r, 1, tag));
        // ADD 0: the word keeps its value, only the comparison matters.
        let val3 = futex_op(FUTEX_OP_ADD, 0, cmp, field(cmparg));
        let woke = wake_op(&mut r, 1, a, 1, 1, b, val3);
        assert_eq!(woke, Ok(i64::from(holds)), "cmp {cmp} {cmparg} old {old}");
        assert_eq!(held(&mut r, 1, tag), !holds, "cmp {cmp} {cmparg} old {old}");
        if !holds {
            assert_eq!(wake(&mut r, 1, b, FUTEX_WAKE, 1), Ok(1));
            assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
        }
        assert_eq!(load(&r, b), old);
    }
}

#[test]
fn wakes_up_to_val_on_the_first_word_and_val2_on_the_second() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let b = anon(&mut r, 1);
    let on_a: Vec<u32> = (0..3)
        .map(|_| wait(&mut r, 1, a, FUTEX_WAIT | PRIV, 0, None))
        .collect();
    let on_b: Vec<u32> = (0..3)
        .map(|_| wait(&mut r, 1, b, FUTEX_WAIT | PRIV, 0, None))
        .collect();
    // Set the second word to 1; its old value 0 equals 0: both wake.
    let val3 = futex_op(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0);
    assert_eq!(wake_op(&mut r, 1, a, 2, 1, b, val3), Ok(3));
    assert_eq!(load(&r, b), 1);
    // Oldest first on each word. (`woke` takes the replies that came
    // since the last look.)
    let woke =
        |r: &mut Rig, tags: &[u32]| -> Vec<bool> { tags.iter().map(|t| !held(r, 1, *t)).collect() };
    assert_eq!(woke(&mut r, &on_a), vec![true, true, false]);
    assert_eq!(woke(&mut r, &on_b), vec![true, false, false]);
    // Now the old value is 1: the comparison fails, only the first word
    // wakes; a count of 0 still wakes one, as Linux's `++woken >= nr`.
    assert_eq!(wake_op(&mut r, 1, a, 0, 5, b, val3), Ok(1));
    assert_eq!(woke(&mut r, &on_a), vec![false, false, true]);
    assert_eq!(woke(&mut r, &on_b), vec![false, false, false]);
    // A negative count too, on the second word (the comparison holds
    // with NE 0); nobody is left on the first.
    let ne = futex_op(FUTEX_OP_SET, 1, FUTEX_OP_CMP_NE, 0);
    assert_eq!(wake_op(&mut r, 1, a, 1, u32::MAX, b, ne), Ok(1));
    assert_eq!(woke(&mut r, &on_b), vec![false, true, false]);
    assert_eq!(wake_op(&mut r, 1, a, 1, i32::MAX as u32, b, ne), Ok(1));
    assert_eq!(woke(&mut r, &on_b), vec![false, false, true]);
    assert_eq!(r.s.futex.len(), 0);
}

#[test]
fn one_word_as_both_wakes_twice_from_one_queue() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let tags: Vec<u32> = (0..4)
        .map(|_| wait(&mut r, 1, a, FUTEX_WAIT, 0, None))
        .collect();
    let val3 = futex_op(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0);
    assert_eq!(wake_op(&mut r, 1, a, 1, 2, a, val3), Ok(3));
    assert_eq!(load(&r, a), 1);
    assert!(held(&mut r, 1, tags[3]));
}

#[test]
fn processes_on_a_shared_object_meet_on_the_second_word() {
    let mut r = env();
    let a1 = shared(&mut r, 1, "/tmp/w");
    let a2 = shared(&mut r, 2, "/tmp/w");
    let mine = anon(&mut r, 2);
    store(&mut r, a1, 0);
    let tag = wait(&mut r, 1, a1, FUTEX_WAIT, 0, None);
    let val3 = futex_op(FUTEX_OP_SET, 7, FUTEX_OP_CMP_EQ, 0);
    assert_eq!(wake_op(&mut r, 2, mine, 1, 1, a2, val3), Ok(1));
    assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
    assert_eq!(load(&r, a1), 7);
}

#[test]
fn an_unknown_operation_or_comparison_is_enosys() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let b = anon(&mut r, 1);
    store(&mut r, b, 9);
    for op in 5..8 {
        let val3 = futex_op(op, 1, FUTEX_OP_CMP_EQ, 0);
        assert_eq!(wake_op(&mut r, 1, a, 1, 1, b, val3), Err(Errno::ENOSYS));
        assert_eq!(load(&r, b), 9, "an unknown operation leaves the word");
    }
    // As Linux: the operation is done before the comparison is looked at.
    for cmp in 6..16 {
        store(&mut r, b, 9);
        let val3 = futex_op(FUTEX_OP_ADD, 1, cmp, 0);
        assert_eq!(wake_op(&mut r, 1, a, 1, 1, b, val3), Err(Errno::ENOSYS));
        assert_eq!(load(&r, b), 10);
    }
    // FUTEX_CLOCK_REALTIME only goes with FUTEX_WAIT_BITSET.
    let val3 = futex_op(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0);
    let op = FUTEX_WAKE_OP | FUTEX_CLOCK_REALTIME;
    assert_eq!(
        call(&mut r, 1, requeue(a, op, 1, 1, b, val3)),
        Err(Errno::ENOSYS)
    );
}

#[test]
fn the_second_word_must_be_writable() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let ro = r.mmap(1, P, PROT_READ, ANON, -1, 0).unwrap();
    let val3 = futex_op(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0);
    for flag in [0, PRIV] {
        let op = FUTEX_WAKE_OP | flag;
        assert_eq!(
            call(&mut r, 1, requeue(a, op, 1, 1, ro, val3)),
            Err(Errno::EFAULT)
        );
        assert_eq!(load(&r, ro), 0, "a read-only word is never written");
        // Read only is enough for the first word.
        assert_eq!(call(&mut r, 1, requeue(ro, op, 1, 1, a, val3)), Ok(0));
        store(&mut r, a, 0);
    }
    // Misaligned words: EINVAL, either one.
    assert_eq!(wake_op(&mut r, 1, a + 2, 1, 1, a, val3), Err(Errno::EINVAL));
    assert_eq!(wake_op(&mut r, 1, a, 1, 1, a + 2, val3), Err(Errno::EINVAL));
}

#[test]
fn an_io_mapping_is_eperm_without_the_private_flag() {
    let mut r = env();
    let a = anon(&mut r, 1);
    let t = r.open(1, "/dev/tst", RDWR).unwrap();
    let io = r.mmap(1, P, RW, SH, t, 0).unwrap();
    let val3 = futex_op(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0);
    assert_eq!(wake_op(&mut r, 1, a, 1, 1, io, val3), Err(Errno::EPERM));
    assert_eq!(wake_op(&mut r, 1, io, 1, 1, a, val3), Err(Errno::EPERM));
    assert_eq!(load(&r, a), 0);
}
