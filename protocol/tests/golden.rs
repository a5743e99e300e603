//! Golden byte vectors: one per message variant. A change here is a wire
//! format change and must bump `protocol::VERSION` and `docs/protocol.md`.

use protocol::{
    decode_reply, decode_request, encode_reply, encode_request, Errno, OffsetUnit, ProcView, Reply,
    Request, Sysctl, MAX_FRAME,
};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Header for a request (kind 1) or reply (kind 2) with tag 0x2a and the
/// given body length.
fn header(kind: u8, body_len: u8) -> String {
    format!("4e 4d 4d 55 01 00 {kind:02x} 00 2a 00 00 00 {body_len:02x} 00 00 00")
}

fn request_frame(request: &Request) -> String {
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_request(0x2a, request, &mut buf);
    let decoded = decode_request(&buf[..len]).expect("golden request decodes");
    assert_eq!(decoded.tag, 0x2a);
    assert_eq!(&decoded.message, request);
    hex(&buf[..len])
}

fn reply_frame(reply: &Reply) -> String {
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_reply(0x2a, reply, &mut buf);
    let decoded = decode_reply(&buf[..len]).expect("golden reply decodes");
    assert_eq!(decoded.tag, 0x2a);
    assert_eq!(&decoded.message, reply);
    hex(&buf[..len])
}

fn expect(frame: String, kind: u8, body: &str) {
    let body_len = body.split_whitespace().count() as u8;
    assert_eq!(
        frame,
        format!("{} {body}", header(kind, body_len)).trim_end()
    );
}

#[test]
fn requests() {
    let cases: &[(Request, &str)] = &[
        (Request::Hello { ticket: None }, "00 00"),
        (
            Request::Hello {
                ticket: Some(0x1234),
            },
            "00 01 b4 24",
        ),
        (Request::Clone { flags: 0x4111 }, "01 91 82 01"),
        (Request::Fork, "02"),
        (Request::Exit, "03"),
        (
            Request::Mmap {
                addr: 0,
                len: 8192,
                prot: 3,
                flags: 0x22,
                fd: -1,
                offset: 0,
                unit: OffsetUnit::Bytes,
            },
            "04 00 80 40 03 22 01 00 00",
        ),
        (
            Request::Mmap {
                addr: 0x1000,
                len: 1,
                prot: 1,
                flags: 2,
                fd: 3,
                offset: 5,
                unit: OffsetUnit::Pages,
            },
            "04 80 20 01 01 02 06 05 01",
        ),
        (
            Request::Munmap {
                addr: 0x2000_0000_0000,
                len: 4096,
            },
            "05 80 80 80 80 80 80 08 80 20",
        ),
        (
            Request::ReadProc {
                view: ProcView::GlobalMaps,
                offset: 0,
            },
            "06 00 00",
        ),
        (
            Request::ReadProc {
                view: ProcView::ProcessMaps { pid: 300 },
                offset: 1024,
            },
            "06 01 ac 02 80 08",
        ),
        (
            Request::ReadProc {
                view: ProcView::SelfMaps,
                offset: 0,
            },
            "06 02 00",
        ),
        (
            Request::ReadProc {
                view: ProcView::Meminfo,
                offset: 0,
            },
            "06 03 00",
        ),
        (
            Request::ReadSysctl {
                name: Sysctl::NrTrimPages,
            },
            "07 00",
        ),
        (
            Request::WriteSysctl {
                name: Sysctl::NrTrimPages,
                value: -1,
            },
            "08 00 01",
        ),
    ];
    for (request, body) in cases {
        expect(request_frame(request), 1, body);
    }
}

#[test]
fn replies() {
    let text: heapless::Vec<u8, { protocol::PROC_CHUNK }> =
        heapless::Vec::from_slice(b"ab\n").unwrap();
    let cases: &[(Reply, &str)] = &[
        (Reply::Error(Errno::EINVAL), "00 16"),
        (Reply::Done, "01"),
        (
            Reply::Hello {
                pid: 7,
                arena_base: 0x8000_0000,
                arena_size: 0x10_0000,
            },
            "02 07 80 80 80 80 08 80 80 40",
        ),
        (Reply::Cloned { pid: 8, ticket: 1 }, "03 08 01"),
        (Reply::Mapped { addr: 0x8000_1000 }, "04 80 a0 80 80 08"),
        (
            Reply::ProcText {
                total: 3,
                data: text,
            },
            "05 03 03 61 62 0a",
        ),
        (Reply::Value(1), "06 02"),
    ];
    for (reply, body) in cases {
        expect(reply_frame(reply), 2, body);
    }
}
