//! Futex calls that reach the daemon as frames (spec §8.3; Linux
//! `do_futex`): carried on the host kernel's futex of the arena word, by
//! the same code a client runs on its side (`nommu::transport::futex`), so
//! a waiter here meets a waker there and the other way round. memsrv
//! judges every call (which words may hold a futex, a requeue's counts and
//! compare) and never holds a non-private waiter: its queues would be
//! invisible to the host's wakes. A `FUTEX_PRIVATE_FLAG` call is keyed by
//! the caller's address space (spec §8.2): a client carries its own on
//! the host's private futex, and one sent as a frame is memsrv's to answer
//! from its own queues, which hold it under that key (this thread's host
//! address space is the daemon's, which every process would share).
//!
//! A wait blocks the connection's thread, as a held server-side wait
//! blocks the connection; it looks every [`SLICE`] whether its client is
//! still there, and a client gone ends it. A wake that found the thread of
//! a client already gone is passed on to the next waiter.

use super::server::Server;
use memsrv::ClientId;
use nommu::transport::futex::{carry_pair, check_request, host_request, wait, wake, HostFutex};
use protocol::linux::FUTEX_PRIVATE_FLAG;
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
/// what memsrv answers itself (an operation it does not know, and every
/// private call). `stay` says whether the client is still connected.
pub fn carry(
    server: &Server,
    client: ClientId,
    request: &Request,
    mut stay: impl FnMut() -> bool,
) -> Option<Result<i64, Errno>> {
    let Request::Futex { op, .. } = *request else {
        return None;
    };
    if op & FUTEX_PRIVATE_FLAG != 0 {
        // Keyed by the caller's address space: memsrv holds the waiter
        // (the daemon's host address space would join every process's).
        return None;
    }
    let mut check = |r: &Request| server.ask(client, r.clone()).map(drop);
    if let Some(result) = carry_pair(request, &mut check) {
        return Some(result);
    }
    let (uaddr, op, call) = host_request(request)?;
    let call = match call {
        Ok(call) => call,
        Err(e) => return Some(Err(e)),
    };
    if let Err(e) = check(&check_request(uaddr, op)) {
        return Some(Err(e));
    }
    Some(match call {
        HostFutex::Wait {
            val,
            bitset,
            deadline,
        } => {
            let woken = wait(uaddr, val, bitset, false, deadline, Some(SLICE), &mut stay);
            if woken.is_ok() && !stay() {
                // Woken for a client that is gone: the wake belongs to
                // a waiter still there.
                wake(uaddr, 1, bitset, false);
            }
            woken
        }
        HostFutex::Wake { n, bitset } => Ok(wake(uaddr, n, bitset, false)),
    })
}
