//! Futex calls that reach the daemon as frames (spec §8.3; Linux
//! `do_futex`): carried on the host kernel's futex of the arena word, by
//! the same code a client runs on its side (`nommu::transport::futex`), so
//! a waiter here meets a waker there and the other way round. memsrv
//! judges every call (which words may hold a futex, a requeue's counts and
//! compare) and, in memsrvd, never holds a waiter: its queues would be
//! invisible to the host's wakes.
//!
//! A wait blocks the connection's thread, as a held server-side wait
//! blocks the connection; it looks every [`SLICE`] whether its client is
//! still there, and a client gone ends it. A wake that found the thread of
//! a client already gone is passed on to the next waiter.

use super::server::Server;
use memsrv::ClientId;
use nommu::transport::futex::{
    check_request, host_request, requeue, wait, wake, wake_op, HostFutex,
};
use protocol::linux::{
    futex_op, FUTEX_CMD_MASK, FUTEX_CMP_REQUEUE, FUTEX_OP_ADD, FUTEX_OP_CMP_EQ, FUTEX_REQUEUE,
    FUTEX_WAKE_OP,
};
use protocol::{decode_request, encode_request, peek, Errno, MessageKind, Request, HEADER_LEN};
use std::sync::OnceLock;
use std::time::Duration;

/// How often a waiting thread looks whether its client is still there.
/// Between two slices the thread is in no wait queue, so a wake that lands
/// in that gap of a few microseconds is not counted for it (it then reads
/// the word changed, a wake-up); a long slice keeps that rare, and a gone
/// client's thread still ends within it.
const SLICE: Duration = Duration::from_millis(500);

/// The first body byte of every `Request::Futex` frame (its variant), so
/// other frames are told apart without decoding them.
fn futex_variant() -> u8 {
    static VARIANT: OnceLock<u8> = OnceLock::new();
    *VARIANT.get_or_init(|| {
        let mut frame = [0u8; protocol::MAX_FRAME];
        encode_request(0, &check_request(0, 0), &mut frame);
        frame[HEADER_LEN]
    })
}

/// The tag and request of a `Request::Futex` frame; `None` for any other
/// frame (memsrv answers it, a malformed futex frame included).
pub fn request(frame: &[u8]) -> Option<(u32, Request)> {
    let (MessageKind::Request, _) = peek(frame)? else {
        return None;
    };
    if frame.get(HEADER_LEN) != Some(&futex_variant()) {
        return None;
    }
    let decoded = decode_request(frame).ok()?;
    matches!(decoded.message, Request::Futex { .. }).then_some((decoded.tag, decoded.message))
}

/// Carry a futex `request` from `client` on the host kernel; `None` for
/// what memsrv answers itself (an operation it does not know). `stay`
/// says whether the client is still connected.
pub fn carry(
    server: &Server,
    client: ClientId,
    request: &Request,
    mut stay: impl FnMut() -> bool,
) -> Option<Result<i64, Errno>> {
    if let Request::Futex {
        uaddr,
        op,
        val,
        val2,
        uaddr2,
        val3,
        ..
    } = *request
    {
        let cmd = op & FUTEX_CMD_MASK;
        if cmd == FUTEX_REQUEUE || cmd == FUTEX_CMP_REQUEUE {
            // memsrv checks both words, the counts and the compare; it
            // holds no waiter to move, the host moves its own.
            if let Err(e) = server.ask(client, request.clone()) {
                return Some(Err(e));
            }
            let compare = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
            return Some(requeue(uaddr, val as i32, val2 as i32, uaddr2, compare));
        }
        if cmd == FUTEX_WAKE_OP {
            // memsrv checks both words (`uaddr2` writable) with an
            // operation that leaves the word as it is (add 0), so the
            // host applies the real one exactly once, with Linux's own
            // answer for an unknown operation or comparison.
            let mut check = request.clone();
            if let Request::Futex { val3, .. } = &mut check {
                *val3 = futex_op(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 0);
            }
            if let Err(e) = server.ask(client, check) {
                return Some(Err(e));
            }
            return Some(wake_op(uaddr, val as i32, val2 as i32, uaddr2, val3));
        }
    }
    let (uaddr, op, call) = host_request(request)?;
    let call = match call {
        Ok(call) => call,
        Err(e) => return Some(Err(e)),
    };
    if let Err(e) = server.ask(client, check_request(uaddr, op)) {
        return Some(Err(e));
    }
    Some(match call {
        HostFutex::Wait {
            val,
            bitset,
            deadline,
        } => {
            let woken = wait(uaddr, val, bitset, deadline, Some(SLICE), &mut stay);
            if woken.is_ok() && !stay() {
                // Woken for a client that is gone: the wake belongs to
                // a waiter still there.
                wake(uaddr, 1, bitset);
            }
            woken
        }
        HostFutex::Wake { n, bitset } => Ok(wake(uaddr, n, bitset)),
    })
}
