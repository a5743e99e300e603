//! The short messages are the full ones' first variants, byte for byte:
//! a frame decodes as a short message exactly when the full decoder takes
//! it and the message is short, and to the same message.

use protocol::{
    decode_reply, decode_request, decode_short_reply, decode_short_request, encode_reply,
    encode_request, Errno, OffsetUnit, ProcView, Reply, Request, ShortRequest, Sysctl, MAX_FRAME,
};

fn requests() -> Vec<Request> {
    vec![
        Request::Hello { ticket: None },
        Request::Hello {
            ticket: Some(u64::MAX),
        },
        Request::Clone { flags: 0x100 },
        Request::Fork,
        Request::Exit,
        Request::Mmap {
            addr: 0,
            len: 4096,
            prot: 3,
            flags: 0x22,
            fd: -1,
            offset: u64::MAX,
            unit: OffsetUnit::Pages,
        },
        Request::Munmap {
            addr: 0x8000_1000,
            len: 4096,
        },
        Request::ReadProc {
            view: ProcView::ProcessMaps { pid: 7 },
            offset: 300,
        },
        Request::ReadSysctl {
            name: Sysctl::NrTrimPages,
        },
        // Not short.
        Request::WriteSysctl {
            name: Sysctl::NrTrimPages,
            value: -1,
        },
        Request::Open {
            path: "/rom/t".try_into().unwrap(),
            flags: 0,
            mode: 0,
        },
        Request::Close { fd: 3 },
    ]
}

fn replies() -> Vec<Reply> {
    vec![
        Reply::Error(Errno::ENOMEM),
        Reply::Done,
        Reply::Hello {
            pid: 9,
            arena_base: 1 << 31,
            arena_size: 1 << 24,
        },
        Reply::Cloned { pid: 2, ticket: 77 },
        Reply::Mapped { addr: u64::MAX },
        Reply::Value(i64::MIN),
        // Not short.
        Reply::ProcText {
            total: 3,
            data: heapless::Vec::from_slice(b"abc").unwrap(),
        },
        Reply::Fd(4),
        Reply::Count(5),
    ]
}

#[test]
fn every_request_frame_and_every_cut_of_it_decodes_short_only_as_the_full_decoder_says() {
    let mut short = 0;
    for request in requests() {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_request(5, &request, &mut buf);
        if let Some(s) = ShortRequest::of(&request) {
            short += 1;
            assert_eq!(Request::from(s), request);
            let mut body = [0u8; 64];
            let used = postcard::to_slice(&s, &mut body).unwrap();
            assert_eq!(used, &buf[16..len], "{request:?}: the same bytes");
        }
        for cut in 0..=len + 1 {
            let frame = &buf[..cut];
            let full = decode_request(frame)
                .ok()
                .filter(|f| ShortRequest::of(&f.message).is_some());
            let fast = decode_short_request(frame);
            assert_eq!(
                fast.map(|f| (f.tag, Request::from(f.message))),
                full.map(|f| (f.tag, f.message)),
                "{request:?} cut at {cut}"
            );
        }
    }
    assert_eq!(short, 9);
}

#[test]
fn every_reply_frame_and_every_cut_of_it_decodes_short_only_as_the_full_decoder_says() {
    let mut short = 0;
    for reply in replies() {
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_reply(6, &reply, &mut buf);
        for cut in 0..=len + 1 {
            let frame = &buf[..cut];
            let fast = decode_short_reply(frame);
            let full = decode_reply(frame).ok();
            match (fast, full) {
                (Some(fast), Some(full)) => {
                    assert_eq!(
                        (fast.tag, fast.message.to_reply()),
                        (full.tag, full.message)
                    );
                    short += usize::from(cut == len);
                }
                (None, Some(full)) => assert!(
                    matches!(
                        full.message,
                        Reply::ProcText { .. } | Reply::Fd(_) | Reply::Count(_)
                    ),
                    "{reply:?} is short"
                ),
                (Some(_), None) => panic!("{reply:?} cut at {cut}: short took a refused frame"),
                (None, None) => {}
            }
        }
    }
    assert_eq!(short, 6);
}
