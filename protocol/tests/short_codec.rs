//! The hand-written reading and writing of the short messages
//! (`protocol::short`) against postcard's: the same bytes out, and every
//! frame — mutated, cut, lengthened, with over-long varints — read the same
//! as the full decoder reads it.

use protocol::{
    decode_reply, decode_request, decode_short_reply, decode_short_request, encode_reply,
    encode_request, Errno, OffsetUnit, Reply, Request, ShortReply, ShortRequest, Sysctl, MAX_FRAME,
    SHORT_REPLY_FRAME, SHORT_REQUEST_FRAME,
};

/// Values at every varint width's edges.
const U64S: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0x3fff,
    0x4000,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 56,
    (1 << 63) - 1,
    1 << 63,
    u64::MAX,
];

fn short_replies() -> Vec<ShortReply> {
    let mut replies = vec![ShortReply::Done];
    for &v in &U64S {
        replies.push(ShortReply::Mapped { addr: v });
        replies.push(ShortReply::Value(v as i64));
        replies.push(ShortReply::Value((v as i64).wrapping_neg()));
        replies.push(ShortReply::Error(Errno(v as u16)));
        replies.push(ShortReply::Hello {
            pid: v as u32,
            arena_base: v,
            arena_size: !v,
        });
        replies.push(ShortReply::Cloned {
            pid: !(v as u32),
            ticket: v,
        });
    }
    replies
}

fn short_requests() -> Vec<Request> {
    let mut requests = vec![Request::ReadSysctl {
        name: Sysctl::NrTrimPages,
    }];
    for &v in &U64S {
        requests.push(Request::Mmap {
            addr: v,
            len: !v,
            prot: v as u32,
            flags: !(v as u32),
            fd: v as i32,
            offset: v.rotate_left(7),
            unit: if v & 1 == 0 {
                OffsetUnit::Bytes
            } else {
                OffsetUnit::Pages
            },
        });
        requests.push(Request::Munmap { addr: v, len: !v });
        requests.push(Request::Hello { ticket: Some(v) });
        requests.push(Request::Clone { flags: v });
    }
    requests
}

#[test]
fn short_replies_are_written_as_postcard_writes_them() {
    for reply in short_replies() {
        let tag = 0xdead_beef;
        let mut fast = [0u8; SHORT_REPLY_FRAME];
        let len = reply.encode_frame(tag, &mut fast).unwrap();
        let mut full = [0u8; MAX_FRAME];
        let full_len = encode_reply(tag, &reply.to_reply(), &mut full);
        assert_eq!(&fast[..len], &full[..full_len], "{reply:?}");
        // A buffer too short for the widest short reply is refused.
        let short_buf = &mut fast[..SHORT_REPLY_FRAME - 1];
        assert!(reply.encode_frame(tag, short_buf).is_none());
    }
}

#[test]
fn short_requests_are_written_as_postcard_writes_them() {
    let mut requests = short_requests();
    requests.extend([
        Request::Hello { ticket: None },
        Request::Fork,
        Request::Exit,
    ]);
    for request in requests {
        let short = ShortRequest::of(&request).unwrap();
        let tag = 0x0102_0304;
        let mut fast = [0u8; SHORT_REQUEST_FRAME];
        let len = short.encode_frame(tag, &mut fast).unwrap();
        let mut full = [0u8; MAX_FRAME];
        let full_len = encode_request(tag, &request, &mut full);
        assert_eq!(&fast[..len], &full[..full_len], "{request:?}");
        assert!(short
            .encode_frame(tag, &mut fast[..SHORT_REQUEST_FRAME - 1])
            .is_none());
    }
    // A /proc view goes through serde.
    let read_proc = ShortRequest::ReadProc {
        view: protocol::ProcView::Meminfo,
        offset: 0,
    };
    assert!(read_proc.encode_frame(1, &mut [0u8; MAX_FRAME]).is_none());
}

/// A small deterministic generator for the mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Variations of one frame: a byte changed, a byte dropped or added (the
/// header's length following or not), a varint byte stretched into an
/// over-long form (`b` → `b|0x80, 0`).
fn variations(frame: &[u8], rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..200 {
        let mut f = frame.to_vec();
        let at = rng.below(f.len());
        match rng.below(4) {
            0 => f[at] = rng.next() as u8,
            1 if at >= 16 => {
                f.remove(at);
            }
            2 if at >= 16 => f.insert(at, rng.next() as u8),
            3 if at >= 16 => {
                f[at] |= 0x80;
                f.insert(at + 1, 0);
            }
            _ => {}
        }
        if rng.below(2) == 0 && f.len() >= 16 {
            let body = (f.len() - 16) as u32;
            f[12..16].copy_from_slice(&body.to_le_bytes());
        }
        out.push(f);
    }
    out
}

#[test]
fn every_variation_of_a_short_request_reads_as_the_full_decoder_reads_it() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for request in short_requests() {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_request(11, &request, &mut buf);
        for frame in std::iter::once(buf[..len].to_vec()).chain(variations(&buf[..len], &mut rng)) {
            let full = decode_request(&frame)
                .ok()
                .filter(|f| ShortRequest::of(&f.message).is_some())
                .map(|f| (f.tag, f.message));
            let fast = decode_short_request(&frame).map(|f| (f.tag, Request::from(f.message)));
            assert_eq!(fast, full, "{request:?} as {frame:02x?}");
        }
    }
}

#[test]
fn every_variation_of_a_short_reply_reads_as_the_full_decoder_reads_it() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for reply in short_replies() {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_reply(12, &reply.to_reply(), &mut buf);
        for frame in std::iter::once(buf[..len].to_vec()).chain(variations(&buf[..len], &mut rng)) {
            let full = decode_reply(&frame)
                .ok()
                .filter(|f| short_variant(&f.message))
                .map(|f| (f.tag, f.message));
            let fast = decode_short_reply(&frame).map(|f| (f.tag, f.message.to_reply()));
            assert_eq!(fast, full, "{reply:?} as {frame:02x?}");
        }
    }
}

/// Whether a reply is one of [`ShortReply`]'s variants.
fn short_variant(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::Error(_)
            | Reply::Done
            | Reply::Hello { .. }
            | Reply::Cloned { .. }
            | Reply::Mapped { .. }
            | Reply::Value(_)
    )
}
