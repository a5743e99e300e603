//! The futex `EFAULT` rule (server decision in `futex.rs`, beside spec
//! §8.3): a word outside the caller's mappings is `EFAULT` for every
//! operation, with or without `FUTEX_PRIVATE_FLAG`, for `uaddr` and for a
//! requeue's or `FUTEX_WAKE_OP`'s `uaddr2`, and so is a word in a mapping
//! without read permission.

use super::*;

/// Every operation this server answers, as `(op, uaddr, uaddr2)` over the
/// bad word `bad` and the good word `good`: each form with `bad` as the
/// word it checks.
fn forms(bad: u64, good: u64) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    for flag in [0, PRIV] {
        for op in [
            FUTEX_WAIT,
            FUTEX_WAIT_BITSET,
            FUTEX_WAKE,
            FUTEX_WAKE_BITSET,
            FUTEX_REQUEUE,
            FUTEX_CMP_REQUEUE,
            FUTEX_WAKE_OP,
        ] {
            out.push((op | flag, bad, good));
        }
        out.push((FUTEX_REQUEUE | flag, good, bad));
        out.push((FUTEX_CMP_REQUEUE | flag, good, bad));
        out.push((FUTEX_WAKE_OP | flag, good, bad));
    }
    out
}

/// The form's request: `val` 0 (the good word's value), one requeue, a
/// full bitset for the bitset forms, `CMP_REQUEUE` expecting 0 and
/// `WAKE_OP` storing 0 over 0, so only the bad word can fail it.
fn form_req((op, uaddr, uaddr2): (u32, u64, u64)) -> Request {
    let val3 = match op & FUTEX_CMD_MASK {
        FUTEX_CMP_REQUEUE => 0,
        FUTEX_WAKE_OP => futex_op(FUTEX_OP_SET, 0, FUTEX_OP_CMP_EQ, 0),
        _ => FUTEX_BITSET_MATCH_ANY,
    };
    requeue(uaddr, op, 0, 1, uaddr2, val3)
}

fn call_form(r: &mut Rig, c: u64, form: (u32, u64, u64)) -> Result<i64, Errno> {
    call(r, c, form_req(form))
}

/// Every form with `bad` as the word it checks is `EFAULT` for client 1,
/// and none left anything waiting.
fn every_form_faults(r: &mut Rig, bad: u64, good: u64) {
    for form in forms(bad, good) {
        assert_eq!(call_form(r, 1, form), Err(Errno::EFAULT), "{form:x?}");
    }
    assert_eq!(r.s.futex.len(), 0);
}

#[test]
fn unmapped_word_is_efault_for_every_form() {
    let mut r = env();
    let good = anon(&mut r, 1);
    // A page the process mapped and unmapped again (LTP's unmapped
    // address), one the other process maps, and one past the arena.
    let gone = r.mmap(1, P, RW, ANON, -1, 0).unwrap();
    r.munmap(1, gone, P).unwrap();
    let others = anon(&mut r, 2);
    for bad in [gone, others, 4] {
        every_form_faults(&mut r, bad, good);
    }
}

#[test]
fn unreadable_word_is_efault_for_every_form() {
    let mut r = env();
    let good = anon(&mut r, 1);
    // LTP's bad address: a one-page PROT_NONE anonymous mapping.
    let none = r.mmap(1, P, PROT_NONE, ANON, -1, 0).unwrap();
    every_form_faults(&mut r, none, good);
}

#[test]
fn mapped_word_still_works_for_every_form() {
    let mut r = env();
    let good = anon(&mut r, 1);
    let other = anon(&mut r, 1);
    for form in forms(other, good) {
        let op = form.0 & FUTEX_CMD_MASK;
        if op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET {
            // The word holds 0 and 0 is expected: the wait is held.
            let tag = r.send(1, form_req(form));
            r.ok();
            assert!(held(&mut r, 1, tag), "{form:x?}");
            assert_eq!(
                wake(&mut r, 1, form.1, FUTEX_WAKE | (form.0 & PRIV), 1),
                Ok(1)
            );
            assert_eq!(r.reply(1, tag), Some(Reply::Value(0)));
        } else {
            assert_eq!(call_form(&mut r, 1, form), Ok(0), "{form:x?}");
        }
    }
}
