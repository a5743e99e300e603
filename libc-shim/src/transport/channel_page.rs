//! The per-connection shared page: the fast request/reply path between one
//! client connection and its `memsrvd` thread.
//!
//! A SEQPACKET round trip costs about 8 µs because each side sleeps in the
//! kernel and must be woken; a word polled in shared memory costs well under
//! 1 µs. So each connection gets a small memory file holding one request
//! slot and one reply slot, each guarded by a sequence number:
//!
//! * client: write the frame and its length, publish `request_seq + 1`
//!   (release), then — after a full fence — ring the daemon's eventfd only if
//!   the daemon flagged itself asleep;
//! * daemon: spin briefly on `request_seq`; before sleeping set
//!   `daemon_asleep`, fence, and look at `request_seq` once more (so either
//!   it sees the request or the client sees the flag: no lost wake-up), then
//!   `poll` on the socket and the eventfd, bounded;
//! * daemon: write the reply and its length, publish `reply_seq = request
//!   sequence` (release), fence, and `FUTEX_WAKE` only if `client_waiting`;
//! * client: spin briefly on `reply_seq` (after ringing a sleeping daemon,
//!   about as long as the daemon has been taking to wake and answer, so
//!   its wake-up is the only one), then set `client_waiting`, fence,
//!   recheck and `FUTEX_WAIT` on `reply_seq` with a bound, checking the
//!   socket for a hang-up after each timeout.
//!
//! Spinning only pays while the two sides run on different CPUs: on the
//! same CPU the peer cannot run until the spinner gives up, and on a
//! 2-core machine two spinners sharing a CPU would hand it back and forth
//! forever. So each side publishes the CPU it runs on, and a spinner that
//! finds the peer on its own CPU stops at once and sleeps, which lets the
//! scheduler place the peer elsewhere. The spin and the sleeper's half of
//! the handshake are [`crate::spin`]'s, shared with the threads home.
//!
//! A frame is its header and `body_len` bytes, and only those travel: the
//! length word says how many bytes of a slot are the frame, and nothing
//! past it is copied or read.
//!
//! The daemon does not trust its client: the page holds little-endian
//! words in atomics (valid for any bit pattern), and the daemon copies a
//! request out before decoding it and trusts nothing but what it copied.
//! The client trusts its daemon (which already manages its arena), so it
//! encodes its request straight into the request slot and decodes the
//! reply straight from the reply slot, each while that slot is its own.

use super::mapping::SharedMapping;
use crate::spin::{current_cpu, park_unless, spin_beside};
use core::cell::Cell;
use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use protocol::{Errno, MAX_FRAME};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

pub use crate::spin::Spin;

/// Size of the channel memory file: this page's slots, then the page
/// reserve ([`super::reserve::RESERVE_OFFSET`]).
pub const CHANNEL_LEN: usize = 16384;
/// How long the client spins on the reply before parking on the futex.
/// A request is served in 1-2 µs once the daemon thread runs; waking a
/// sleeping thread on another (idle) CPU costs 25-30 µs on the 2-core
/// virtual machines this was measured on.
pub const CLIENT_SPIN: Duration = Duration::from_micros(20);
/// The longest a client spins for the reply after ringing a sleeping
/// daemon: waking a thread costs 25-170 µs on these machines, and a
/// client that parks before the answer costs a second wake-up.
pub const RING_SPIN: Duration = Duration::from_micros(200);
/// Bytes a daemon thread copies per µs, at least, for a lease (its page
/// by page copy runs at several GB/s): a client waiting for a lease's
/// answer spins `bytes / COPY_BYTES_PER_US` µs longer (up to
/// [`RING_SPIN`] in all) rather than park while the daemon copies and pay
/// a wake-up after it.
pub const COPY_BYTES_PER_US: u64 = 4096;
/// How long a daemon thread spins for the next request before sleeping.
/// A client in a loop sends its next request within a few µs; 5 µs
/// proved too short to keep such a loop hot (every tenth call fell
/// asleep), 20 µs keeps it hot while an idle client costs 20 µs of CPU
/// per request at most.
pub const DAEMON_SPIN: Duration = Duration::from_micros(20);

const FRAME_WORDS: usize = MAX_FRAME / 8;
const _: () = assert!(MAX_FRAME.is_multiple_of(8));

/// Words the client writes (its own cache line).
#[repr(C, align(64))]
struct ClientLine {
    request_seq: AtomicU32,
    request_len: AtomicU32,
    client_waiting: AtomicU32,
    client_cpu: AtomicU32,
}

/// Words the daemon writes (its own cache line).
#[repr(C, align(64))]
struct DaemonLine {
    reply_seq: AtomicU32,
    reply_len: AtomicU32,
    daemon_asleep: AtomicU32,
    daemon_cpu: AtomicU32,
}

/// The layout of the channel memory file. Every field is an atomic, valid
/// for any bit pattern, so whatever a peer writes it stays a valid value.
#[repr(C)]
struct PageLayout {
    client: ClientLine,
    daemon: DaemonLine,
    request: [AtomicU64; FRAME_WORDS],
    reply: [AtomicU64; FRAME_WORDS],
}

const _: () = assert!(core::mem::size_of::<PageLayout>() <= super::reserve::RESERVE_OFFSET);

fn store_frame(slot: &[AtomicU64; FRAME_WORDS], frame: &[u8]) {
    for (word, chunk) in slot.iter().zip(frame.chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
    }
}

fn load_frame(slot: &[AtomicU64; FRAME_WORDS], len: usize, out: &mut [u8; MAX_FRAME]) {
    for (word, chunk) in slot.iter().zip(out[..len].chunks_mut(8)) {
        let bytes = word.load(Ordering::Relaxed).to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// A request the daemon found in the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posted {
    /// A frame of this length was copied out; answer with this sequence.
    Frame { seq: u32, len: usize },
    /// The client wrote a length no frame can have.
    Oversized { seq: u32 },
}

/// One mapped channel page (either side).
#[derive(Debug)]
pub struct ChannelPage {
    map: SharedMapping,
}

impl ChannelPage {
    /// A new channel memory file, sealed against resizing, and this side's
    /// mapping of it (the daemon's side).
    pub fn create() -> Result<(Self, OwnedFd), Errno> {
        let (map, fd) = SharedMapping::new_file(c"nommu-channel", CHANNEL_LEN)?;
        Ok((Self { map }, fd))
    }

    /// Map a channel memory file received from the daemon.
    pub fn open(fd: BorrowedFd<'_>) -> Result<Self, Errno> {
        Ok(Self {
            map: SharedMapping::received(fd, CHANNEL_LEN)?,
        })
    }

    fn page(&self) -> &PageLayout {
        // SAFETY: the mapping is page aligned, CHANNEL_LEN bytes long (at
        // least size_of::<PageLayout>, asserted above), backed by a memory
        // file sealed against shrinking, and lives as long as `self`. Every
        // field is an atomic integer, valid for any bytes and meant for
        // concurrent access, so a shared reference is sound even while the
        // other process writes.
        unsafe { &*(self.map.addr() as *const PageLayout) }
    }

    // ---- client side ----

    /// Publish `frame` as the next request; returns its sequence number and
    /// whether the daemon must be woken (it flagged itself asleep).
    pub fn post_request(&self, frame: &[u8]) -> (u32, bool) {
        let page = self.page();
        let len = frame.len().min(MAX_FRAME);
        store_frame(&page.request, &frame[..len]);
        self.publish_request(len)
    }

    /// Write the next request straight into the request slot (`encode`
    /// returns the length to publish) and publish it as [`post_request`]
    /// does. Only the tests use it, to play a client that leaves bytes in
    /// the slot past what it posts; the connection encodes into its own
    /// frame first, since a call the server judges by identity must be
    /// preceded by the caller's ids before the request is published.
    ///
    /// [`post_request`]: ChannelPage::post_request
    #[cfg(test)]
    pub fn post_request_with(
        &self,
        encode: impl FnOnce(&mut [u8; MAX_FRAME]) -> usize,
    ) -> (u32, bool) {
        let page = self.page();
        let slot = page.request.as_ptr() as *mut [u8; MAX_FRAME];
        // SAFETY: the slot is MAX_FRAME bytes (FRAME_WORDS words) inside
        // the mapping, which lives as long as `self`; atomics are
        // `UnsafeCell`s, so writing through a pointer derived from a shared
        // reference to them is allowed, and any bytes are valid `u8`s. The
        // slot is the client's until it publishes the request below: the
        // caller holds the connection's lock (no other thread of this
        // process touches the page) and the daemon reads the slot only
        // after seeing the new sequence number.
        let len = encode(unsafe { &mut *slot }).min(MAX_FRAME);
        self.publish_request(len)
    }

    fn publish_request(&self, len: usize) -> (u32, bool) {
        let page = self.page();
        page.client.request_len.store(len as u32, Ordering::Relaxed);
        page.client
            .client_cpu
            .store(current_cpu(), Ordering::Relaxed);
        let seq = page
            .client
            .request_seq
            .load(Ordering::Relaxed)
            .wrapping_add(1);
        page.client.request_seq.store(seq, Ordering::Release);
        // Dekker: our seq store is ordered before our read of the flag; the
        // daemon's flag store before its read of seq.
        fence(Ordering::SeqCst);
        (seq, page.daemon.daemon_asleep.load(Ordering::Relaxed) != 0)
    }

    /// Spin up to [`CLIENT_SPIN`] for the reply to `seq`.
    pub fn spin_for_reply(&self, seq: u32) -> Spin {
        self.spin_for_reply_within(seq, CLIENT_SPIN)
    }

    /// Spin up to `budget` for the reply to `seq` (longer than
    /// [`CLIENT_SPIN`] after ringing a sleeping daemon: see
    /// [`crate::spin::WakeEstimate`]).
    pub fn spin_for_reply_within(&self, seq: u32, budget: Duration) -> Spin {
        let page = self.page();
        spin_beside(
            budget,
            &page.client.client_cpu,
            &page.daemon.daemon_cpu,
            || page.daemon.reply_seq.load(Ordering::Acquire) == seq,
        )
    }

    /// Sleep (at most `timeout`) until the reply to `seq` may be there;
    /// `true` once it is. Sets `client_waiting` first so the daemon wakes
    /// us, and rechecks after the fence so a reply published in between is
    /// not slept through.
    pub fn park_for_reply(&self, seq: u32, timeout: Duration) -> bool {
        let page = self.page();
        let seen = Cell::new(seq);
        park_unless(
            || page.client.client_waiting.store(1, Ordering::Relaxed),
            || {
                seen.set(page.daemon.reply_seq.load(Ordering::Acquire));
                seen.get() == seq
            },
            || crate::sys::futex_wait(&page.daemon.reply_seq, seen.get(), timeout),
        );
        let done = page.daemon.reply_seq.load(Ordering::Acquire) == seq;
        if done {
            page.client.client_waiting.store(0, Ordering::Relaxed);
        }
        // Woken, perhaps on another CPU than the one published: the
        // daemon's next spin judges by this one.
        page.client
            .client_cpu
            .store(current_cpu(), Ordering::Relaxed);
        done
    }

    /// Copy the reply out; `EPROTO` if the daemon wrote an impossible
    /// length.
    pub fn take_reply(&self, out: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        let page = self.page();
        page.client.client_waiting.store(0, Ordering::Relaxed);
        let len = page.daemon.reply_len.load(Ordering::Relaxed) as usize;
        if len > MAX_FRAME {
            return Err(Errno::EPROTO);
        }
        load_frame(&page.reply, len, out);
        Ok(len)
    }

    /// Decode the reply where it lies: `decode` gets exactly the reply
    /// frame's bytes (its length word's worth, nothing past it);
    /// `EPROTO` if the daemon wrote an impossible length.
    pub fn read_reply(&self, decode: impl FnOnce(&[u8])) -> Result<(), Errno> {
        let page = self.page();
        page.client.client_waiting.store(0, Ordering::Relaxed);
        let len = page.daemon.reply_len.load(Ordering::Relaxed) as usize;
        if len > MAX_FRAME {
            return Err(Errno::EPROTO);
        }
        let slot = page.reply.as_ptr() as *const u8;
        // SAFETY: `len` ≤ MAX_FRAME, the slot's size, inside the mapping
        // that lives as long as `self`; any bytes are valid `u8`s. The
        // caller saw the reply published (acquire on `reply_seq`) and holds
        // the connection's lock until it has decoded, and the daemon writes
        // the slot again only after the next request is posted.
        decode(unsafe { core::slice::from_raw_parts(slot, len) });
        Ok(())
    }

    // ---- daemon side ----

    /// The request published after `last_seen`, copied into `out`.
    pub fn take_request(&self, last_seen: u32, out: &mut [u8; MAX_FRAME]) -> Option<Posted> {
        let page = self.page();
        let seq = page.client.request_seq.load(Ordering::Acquire);
        if seq == last_seen {
            return None;
        }
        let len = page.client.request_len.load(Ordering::Relaxed) as usize;
        if len > MAX_FRAME {
            return Some(Posted::Oversized { seq });
        }
        load_frame(&page.request, len, out);
        Some(Posted::Frame { seq, len })
    }

    /// Spin up to [`DAEMON_SPIN`] for a request after `last_seen`.
    pub fn spin_for_request(&self, last_seen: u32) -> Spin {
        let page = self.page();
        spin_beside(
            DAEMON_SPIN,
            &page.daemon.daemon_cpu,
            &page.client.client_cpu,
            || page.client.request_seq.load(Ordering::Relaxed) != last_seen,
        )
    }

    /// Flag the daemon side asleep; returns `false` (and clears the flag)
    /// if a request after `last_seen` arrived meanwhile, so the caller must
    /// not sleep.
    pub fn announce_sleep(&self, last_seen: u32) -> bool {
        let page = self.page();
        let arrived = park_unless(
            || page.daemon.daemon_asleep.store(1, Ordering::Relaxed),
            || page.client.request_seq.load(Ordering::Relaxed) != last_seen,
            // The daemon sleeps in its own poll, after this returns.
            || {},
        );
        if arrived {
            page.daemon.daemon_asleep.store(0, Ordering::Relaxed);
        }
        !arrived
    }

    /// The daemon side is awake again.
    pub fn announce_awake(&self) {
        let page = self.page();
        page.daemon.daemon_asleep.store(0, Ordering::Relaxed);
        // Woken, perhaps on another CPU than the one published: a client
        // that rang judges by this one whether to spin for the reply.
        page.daemon
            .daemon_cpu
            .store(current_cpu(), Ordering::Relaxed);
    }

    /// Publish `frame` as the answer to request `seq`, waking the client if
    /// it parked.
    pub fn post_reply(&self, seq: u32, frame: &[u8]) {
        let page = self.page();
        let len = frame.len().min(MAX_FRAME);
        store_frame(&page.reply, &frame[..len]);
        page.daemon.reply_len.store(len as u32, Ordering::Relaxed);
        page.daemon
            .daemon_cpu
            .store(current_cpu(), Ordering::Relaxed);
        page.daemon.reply_seq.store(seq, Ordering::Release);
        fence(Ordering::SeqCst);
        if page.client.client_waiting.load(Ordering::Relaxed) != 0 {
            crate::sys::futex_wake(&page.daemon.reply_seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{decode_reply, decode_request, encode_reply, encode_request, DecodeError};
    use protocol::{Reply, Request};
    use std::os::fd::AsFd;

    /// The daemon's mapping and a client's mapping of one page.
    fn pair() -> (ChannelPage, ChannelPage) {
        let (daemon, fd) = ChannelPage::create().unwrap();
        let client = ChannelPage::open(fd.as_fd()).unwrap();
        (daemon, client)
    }

    fn munmap_frame(tag: u32) -> ([u8; MAX_FRAME], usize) {
        let mut frame = [0u8; MAX_FRAME];
        let len = encode_request(
            tag,
            &Request::Munmap {
                addr: 0x1000,
                len: 4096,
            },
            &mut frame,
        );
        (frame, len)
    }

    /// What the daemon copies out: the posted length's bytes, the rest of
    /// its buffer (here a marker) untouched.
    fn take(daemon: &ChannelPage, last_seen: u32) -> (usize, [u8; MAX_FRAME]) {
        let mut out = [0xa5u8; MAX_FRAME];
        match daemon.take_request(last_seen, &mut out) {
            Some(Posted::Frame { seq, len }) => {
                assert_eq!(seq, last_seen + 1);
                (len, out)
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn a_request_encoded_in_the_slot_is_copied_out_by_its_length_alone() {
        let (daemon, client) = pair();
        let (frame, len) = munmap_frame(7);
        // A long frame first leaves bytes in the slot past the next one.
        client.post_request_with(|slot| {
            slot.fill(0xee);
            MAX_FRAME
        });
        let _ = take(&daemon, 0);
        let (seq, _) = client.post_request_with(|slot| {
            encode_request(
                7,
                &Request::Munmap {
                    addr: 0x1000,
                    len: 4096,
                },
                slot,
            )
        });
        assert_eq!(seq, 2);
        let (got, out) = take(&daemon, 1);
        assert_eq!(got, len);
        assert_eq!(&out[..len], &frame[..len]);
        assert!(out[len..].iter().all(|&b| b == 0xa5), "read past the frame");
        assert_eq!(decode_request(&out[..got]).unwrap().tag, 7);
    }

    #[test]
    fn a_body_longer_than_its_header_says_is_refused() {
        let (daemon, client) = pair();
        let (_, len) = munmap_frame(9);
        // Three bytes more than the header announces.
        client.post_request_with(|slot| {
            let len = encode_request(
                9,
                &Request::Munmap {
                    addr: 0x1000,
                    len: 4096,
                },
                slot,
            );
            slot[len..len + 3].copy_from_slice(&[1, 2, 3]);
            len + 3
        });
        let (got, out) = take(&daemon, 0);
        assert_eq!(got, len + 3);
        assert_eq!(
            decode_request(&out[..got]),
            Err(DecodeError::TrailingBytes { tag: 9 })
        );
    }

    #[test]
    fn a_receive_never_reads_past_the_bytes_posted() {
        let (daemon, client) = pair();
        let (frame, len) = munmap_frame(11);
        // The whole frame lies in the slot, but only part of it is posted:
        // the header announces more than arrived.
        client.post_request_with(|slot| {
            slot[..len].copy_from_slice(&frame[..len]);
            len - 2
        });
        let (got, out) = take(&daemon, 0);
        assert_eq!(got, len - 2);
        assert!(
            out[got..].iter().all(|&b| b == 0xa5),
            "read past the posted bytes"
        );
        assert_eq!(
            decode_request(&out[..got]),
            Err(DecodeError::Truncated { tag: 11 })
        );
        // A length past the slot is refused without copying anything.
        client.post_request_with(|_| MAX_FRAME);
        let page = client.page();
        page.client
            .request_len
            .store(MAX_FRAME as u32 + 1, Ordering::Relaxed);
        assert_eq!(
            daemon.take_request(1, &mut [0u8; MAX_FRAME]),
            Some(Posted::Oversized { seq: 2 })
        );
    }

    #[test]
    fn the_client_decodes_exactly_the_reply_bytes_where_they_lie() {
        let (daemon, client) = pair();
        let mut long = [0u8; MAX_FRAME];
        long.fill(0xee);
        daemon.post_reply(1, &long);
        let mut reply = [0u8; MAX_FRAME];
        let len = encode_reply(3, &Reply::Done, &mut reply);
        daemon.post_reply(2, &reply[..len]);
        let mut seen = None;
        client
            .read_reply(|frame| seen = Some((frame.len(), decode_reply(frame))))
            .unwrap();
        let (seen_len, decoded) = seen.unwrap();
        assert_eq!(seen_len, len);
        assert_eq!(decoded.unwrap().message, Reply::Done);
        // An impossible length from the daemon is refused, nothing read.
        daemon
            .page()
            .daemon
            .reply_len
            .store(MAX_FRAME as u32 + 1, Ordering::Relaxed);
        let mut called = false;
        assert_eq!(client.read_reply(|_| called = true), Err(Errno::EPROTO));
        assert!(!called);
    }
}
