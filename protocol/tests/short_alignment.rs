//! The short messages read and written at every alignment: a word-aligned
//! frame's header is read and written as two words, any other byte by
//! byte, and both must give the full codec's answer (a frame cut, lengthened
//! or with a wrong header refused alike).

use protocol::{
    decode_reply, decode_request, decode_short_reply, decode_short_request, encode_reply,
    encode_request, Errno, Reply, Request, ShortReply, ShortRequest, Sysctl, MAX_FRAME,
    SHORT_REPLY_FRAME, SHORT_REQUEST_FRAME,
};

/// A buffer whose start is word aligned, so `at(offset)` puts a frame at
/// a known alignment.
#[repr(C, align(8))]
struct Aligned([u8; MAX_FRAME + 8]);

impl Aligned {
    fn new() -> Box<Self> {
        Box::new(Self([0; MAX_FRAME + 8]))
    }

    /// `frame` copied to `offset` bytes past a word boundary.
    fn at(&mut self, offset: usize, frame: &[u8]) -> &[u8] {
        self.0[offset..offset + frame.len()].copy_from_slice(frame);
        &self.0[offset..offset + frame.len()]
    }
}

fn requests() -> Vec<Request> {
    vec![
        Request::ReadSysctl {
            name: Sysctl::NrTrimPages,
        },
        Request::Mmap {
            addr: 0,
            len: 4096,
            prot: 3,
            flags: 0x22,
            fd: -1,
            offset: 0,
            unit: protocol::OffsetUnit::Bytes,
        },
        Request::Munmap {
            addr: 0x8123_4000,
            len: u64::MAX,
        },
        Request::Clone { flags: 17 },
    ]
}

fn replies() -> Vec<Reply> {
    vec![
        Reply::Done,
        Reply::Value(-5),
        Reply::Mapped { addr: 0x8123_4000 },
        Reply::Error(Errno::ENOMEM),
        Reply::Cloned { pid: 9, ticket: 3 },
    ]
}

/// The frame `whole` and some broken forms of it: cut short, one byte
/// longer than its header says, each header byte changed.
fn forms(whole: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![whole.to_vec(), whole[..whole.len() - 1].to_vec()];
    let mut longer = whole.to_vec();
    longer.push(0);
    out.push(longer);
    for i in 0..16 {
        let mut f = whole.to_vec();
        f[i] ^= 0x41;
        out.push(f);
    }
    out
}

/// Every form of each of `frames` read by `fast` at each offset from a
/// word boundary as `full` reads it.
fn reads_alike<M: PartialEq + core::fmt::Debug>(
    frames: Vec<Vec<u8>>,
    full: impl Fn(&[u8]) -> Option<M>,
    fast: impl Fn(&[u8]) -> Option<M>,
) {
    let mut buf = Aligned::new();
    for whole in frames {
        for frame in forms(&whole) {
            let expected = full(&frame);
            for offset in 0..8 {
                let got = fast(buf.at(offset, &frame));
                assert_eq!(got, expected, "at +{offset}: {frame:02x?}");
            }
        }
    }
}

#[test]
fn short_requests_read_alike_at_every_alignment() {
    let frames = requests()
        .iter()
        .map(|request| {
            let mut bytes = [0u8; MAX_FRAME];
            let len = encode_request(7, request, &mut bytes);
            bytes[..len].to_vec()
        })
        .collect();
    reads_alike(
        frames,
        |f| decode_request(f).ok().map(|f| (f.tag, f.message)),
        |f| decode_short_request(f).map(|f| (f.tag, Request::from(f.message))),
    );
}

#[test]
fn short_replies_read_alike_at_every_alignment() {
    let frames = replies()
        .iter()
        .map(|reply| {
            let mut bytes = [0u8; MAX_FRAME];
            let len = encode_reply(8, reply, &mut bytes);
            bytes[..len].to_vec()
        })
        .collect();
    reads_alike(
        frames,
        |f| decode_reply(f).ok().map(|f| (f.tag, f.message)),
        |f| decode_short_reply(f).map(|f| (f.tag, f.message.to_reply())),
    );
}

#[test]
fn short_messages_are_written_alike_at_every_alignment() {
    let mut buf = Aligned::new();
    for request in requests() {
        let short = ShortRequest::of(&request).unwrap();
        let mut full = [0u8; MAX_FRAME];
        let full_len = encode_request(0x0102_0304, &request, &mut full);
        for offset in 0..8 {
            let out = &mut buf.0[offset..offset + SHORT_REQUEST_FRAME];
            let len = short.encode_frame(0x0102_0304, out).unwrap();
            assert_eq!(&out[..len], &full[..full_len], "{request:?} at +{offset}");
        }
    }
    for reply in replies() {
        let short = decode_short_reply(&{
            let mut b = [0u8; MAX_FRAME];
            let n = encode_reply(1, &reply, &mut b);
            b[..n].to_vec()
        })
        .map(|f| f.message)
        .unwrap();
        let mut full = [0u8; MAX_FRAME];
        let full_len = encode_reply(0xdead_beef, &reply, &mut full);
        for offset in 0..8 {
            let out = &mut buf.0[offset..offset + SHORT_REPLY_FRAME];
            let len = ShortReply::encode_frame(&short, 0xdead_beef, out).unwrap();
            assert_eq!(&out[..len], &full[..full_len], "{reply:?} at +{offset}");
        }
    }
}
