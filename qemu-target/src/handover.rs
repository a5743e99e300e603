//! How a task started in a region of its own (a driver) hands a value to
//! the task that spawned it: the value stays in the child's heap, its
//! address goes through the child's mailbox ([`sys::mailbox`],
//! [`Task::mailbox`](sys::Task::mailbox)), and the spawner, which may read
//! the child's region, moves it out. Nothing is left in the spawner's
//! heap for the child to reach, nor in the child's for the spawner to
//! free.

use crate::heap::MAILBOX_WORDS;
use crate::sys;
use alloc::boxed::Box;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU64, Ordering};
use protocol::Errno;

type Mailbox = [AtomicU64; MAILBOX_WORDS];

/// The mailbox words used: the state, then the errno or where the value is.
const STATE: usize = 0;
const PAYLOAD: usize = 1;
/// States (0 until the child reports): the value is at the payload's
/// address; the child failed with the payload's errno; the spawner moved
/// the value out, so the child frees its memory.
const POSTED: u64 = 1;
const FAILED: u64 = 2;
const TAKEN: u64 = 3;

/// In the child: hand `result` to the spawner through `mailbox` (its own,
/// [`sys::mailbox`]), and return once the spawner has taken a value.
pub fn hand_over<T: Send>(mailbox: &Mailbox, result: Result<T, Errno>) {
    match result {
        Ok(value) => {
            // MaybeUninit: once the value is moved out only the memory is
            // freed.
            let slot = Box::into_raw(Box::new(MaybeUninit::new(value)));
            mailbox[PAYLOAD].store(slot as u64, Ordering::Relaxed);
            mailbox[STATE].store(POSTED, Ordering::Release);
            while mailbox[STATE].load(Ordering::Acquire) != TAKEN {
                sys::yield_now();
            }
            // SAFETY: made by Box::into_raw above, in this task's heap;
            // the spawner has moved the value out and touches it no more.
            drop(unsafe { Box::from_raw(slot) });
        }
        Err(e) => {
            mailbox[PAYLOAD].store(u64::from(e.0), Ordering::Relaxed);
            mailbox[STATE].store(FAILED, Ordering::Release);
        }
    }
}

/// In the spawner: wait for the child that owns `mailbox` to
/// [`hand_over`] a `T`, and move it out. The child must hand over the same
/// `T` (the one caller pairs them), and what `T` owns must not need the
/// spawner's heap to free: it lies in the child's. `ended()` says whether
/// the child has ended (a stray access stops it): then, with nothing
/// handed over, `EIO`.
pub fn take_over<T: Send>(mailbox: &Mailbox, mut ended: impl FnMut() -> bool) -> Result<T, Errno> {
    loop {
        let state = mailbox[STATE].load(Ordering::Acquire);
        if state != POSTED && state != FAILED && ended() {
            // It may have said FAILED just before it ended.
            return match mailbox[STATE].load(Ordering::Acquire) {
                FAILED => Err(Errno(mailbox[PAYLOAD].load(Ordering::Relaxed) as u16)),
                _ => Err(Errno::EIO),
            };
        }
        match state {
            POSTED => {
                let slot = mailbox[PAYLOAD].load(Ordering::Relaxed) as *const T;
                // SAFETY: the child wrote a `T` there (in its region, which
                // the privileged spawner may read) before it said POSTED,
                // and frees it only after TAKEN: it is moved out once.
                let value = unsafe { slot.read() };
                mailbox[STATE].store(TAKEN, Ordering::Release);
                return Ok(value);
            }
            FAILED => return Err(Errno(mailbox[PAYLOAD].load(Ordering::Relaxed) as u16)),
            _ => sys::yield_now(),
        }
    }
}
