//! Refusals: every malformed frame is refused with a reason that names the
//! errno to answer with and, where the header was readable, the tag.

use protocol::{
    decode_reply, decode_request, encode_reply, encode_request, mmap_request, DecodeError, Errno,
    OffsetUnit, ProcView, Reply, Request, HEADER_LEN, MAX_BODY, MAX_FRAME, PROC_CHUNK,
};

fn mmap_frame() -> ([u8; MAX_FRAME], usize) {
    let mut buf = [0u8; MAX_FRAME];
    let request = mmap_request(0, 4096, 3, 0x22, -1, 0, OffsetUnit::Bytes);
    let len = encode_request(77, &request, &mut buf);
    (buf, len)
}

#[test]
fn short_and_foreign_frames_cannot_be_addressed() {
    let (buf, len) = mmap_frame();
    for cut in 0..HEADER_LEN {
        let err = decode_request(&buf[..cut]).unwrap_err();
        assert_eq!(err, DecodeError::TooShort);
        assert_eq!(err.tag(), None);
    }
    let mut bad = buf;
    bad[0] = b'X';
    let err = decode_request(&bad[..len]).unwrap_err();
    assert_eq!(
        (err, err.tag(), err.errno()),
        (DecodeError::BadMagic, None, Errno::EPROTO)
    );
}

#[test]
fn header_faults_keep_the_tag() {
    let (buf, len) = mmap_frame();
    let mut v3 = buf;
    v3[4] = 3;
    let err = decode_request(&v3[..len]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadVersion {
            tag: 77,
            version: 3
        }
    );
    assert_eq!(err.errno(), Errno::EPROTONOSUPPORT);

    // A reply where a request is expected.
    let err = decode_reply(&buf[..len]).unwrap_err();
    assert_eq!(err, DecodeError::WrongKind { tag: 77, kind: 1 });
    assert_eq!(err.errno(), Errno::EPROTO);

    let mut long = buf;
    long[12..16].copy_from_slice(&((MAX_BODY as u32) + 1).to_le_bytes());
    let err = decode_request(&long[..len]).unwrap_err();
    assert_eq!((err.tag(), err.errno()), (Some(77), Errno::EMSGSIZE));
}

#[test]
fn truncated_and_trailing_bodies_are_refused() {
    let (buf, len) = mmap_frame();
    for cut in HEADER_LEN..len {
        let err = decode_request(&buf[..cut]).unwrap_err();
        assert_eq!(err, DecodeError::Truncated { tag: 77 });
        assert_eq!(err.errno(), Errno::EBADMSG);
    }
    let mut extra = buf;
    extra[len] = 0xff;
    let err = decode_request(&extra[..len + 1]).unwrap_err();
    assert_eq!(err, DecodeError::TrailingBytes { tag: 77 });
}

#[test]
fn bodies_that_are_not_messages_are_refused() {
    let (mut buf, _) = mmap_frame();
    // Unknown variant.
    buf[12..16].copy_from_slice(&1u32.to_le_bytes());
    buf[HEADER_LEN] = 0x7f;
    let err = decode_request(&buf[..HEADER_LEN + 1]).unwrap_err();
    assert_eq!(
        (err, err.errno()),
        (DecodeError::BadBody { tag: 77 }, Errno::EBADMSG)
    );
    // A body that announces more than it is: valid variant, bytes left over
    // inside body_len.
    buf[12..16].copy_from_slice(&2u32.to_le_bytes());
    buf[HEADER_LEN] = 0x02; // Fork
    buf[HEADER_LEN + 1] = 0x00;
    let err = decode_request(&buf[..HEADER_LEN + 2]).unwrap_err();
    assert_eq!(err, DecodeError::BadBody { tag: 77 });
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut buf = [0u8; MAX_FRAME + 64];
    for round in 0..20_000 {
        let len = (next() as usize) % buf.len();
        for b in buf[..len].iter_mut() {
            *b = next() as u8;
        }
        if round % 2 == 0 && len >= HEADER_LEN {
            // Make the header plausible so the body decoder is exercised.
            buf[..4].copy_from_slice(b"NMMU");
            buf[4..6].copy_from_slice(&1u16.to_le_bytes());
            buf[6..8].copy_from_slice(&1u16.to_le_bytes());
            buf[12..16].copy_from_slice(&((len - HEADER_LEN) as u32).to_le_bytes());
        }
        let _ = decode_request(&buf[..len]);
        let _ = decode_reply(&buf[..len]);
    }
}

#[test]
fn message_sizes_stay_bounded() {
    let mut buf = [0u8; MAX_FRAME];
    let largest_request = Request::Mmap {
        addr: u64::MAX,
        len: u64::MAX,
        prot: u32::MAX,
        flags: u32::MAX,
        fd: i32::MIN,
        offset: u64::MAX,
        unit: OffsetUnit::Pages,
    };
    let len = encode_request(u32::MAX, &largest_request, &mut buf);
    assert!(len <= MAX_FRAME);
    let read = Request::ReadProc {
        view: ProcView::ProcessMaps { pid: u32::MAX },
        offset: u32::MAX,
    };
    assert!(encode_request(1, &read, &mut buf) <= MAX_FRAME);

    let full = heapless::Vec::from_slice(&[0xffu8; PROC_CHUNK]).unwrap();
    let len = encode_reply(
        u32::MAX,
        &Reply::ProcText {
            total: u32::MAX,
            data: full,
        },
        &mut buf,
    );
    assert!(len <= MAX_FRAME, "largest reply is {len} bytes");
    let path = protocol::Path::try_from(&[0xffu8; protocol::PATH_MAX][..]).unwrap();
    let open = Request::Open {
        path,
        flags: u32::MAX,
        mode: u32::MAX,
    };
    assert!(encode_request(1, &open, &mut buf) <= MAX_FRAME);
    let data = heapless::Vec::from_slice(&[0xffu8; protocol::DATA_CHUNK]).unwrap();
    let write = Request::Write {
        fd: i32::MIN,
        data,
        offset: Some(u64::MAX),
    };
    assert!(encode_request(1, &write, &mut buf) <= MAX_FRAME);
    let name: protocol::MountName = heapless::String::try_from("/".repeat(64).as_str()).unwrap();
    let mounts = (0..protocol::MAX_MOUNTS).map(|_| name.clone()).collect();
    assert!(encode_reply(1, &Reply::Mounts(mounts), &mut buf) <= MAX_FRAME);
    let hello = Reply::Hello {
        pid: u32::MAX,
        arena_base: u64::MAX,
        arena_size: u64::MAX,
    };
    assert!(encode_reply(1, &hello, &mut buf) <= MAX_FRAME);
}
