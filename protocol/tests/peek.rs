//! `peek`: the kind and tag a home routes a frame by, read from the header
//! alone, and `None` exactly when no answer could be addressed.

use protocol::{
    decode_request, encode_driver_reply, encode_driver_request, encode_reply, encode_request, peek,
    DriverReply, DriverRequest, MessageKind, Reply, Request, HEADER_LEN, MAX_FRAME,
};

fn request_frame(tag: u32) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_request(
        tag,
        &Request::Munmap {
            addr: 0x1000,
            len: 4096,
        },
        &mut buf,
    );
    buf[..len].to_vec()
}

#[test]
fn a_valid_frame_shows_its_kind_and_tag() {
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_request(7, &Request::Fork, &mut buf);
    assert_eq!(peek(&buf[..len]), Some((MessageKind::Request, 7)));
    let len = encode_reply(0xdead_beef, &Reply::Done, &mut buf);
    assert_eq!(peek(&buf[..len]), Some((MessageKind::Reply, 0xdead_beef)));
    let len = encode_driver_request(3, &DriverRequest::Release { object: 9 }, &mut buf);
    assert_eq!(peek(&buf[..len]), Some((MessageKind::DriverRequest, 3)));
    let len = encode_driver_reply(u32::MAX, &DriverReply::Done, &mut buf);
    assert_eq!(
        peek(&buf[..len]),
        Some((MessageKind::DriverReply, u32::MAX))
    );
}

#[test]
fn a_frame_shorter_than_a_header_has_nothing_to_show() {
    let frame = request_frame(42);
    for cut in 0..HEADER_LEN {
        assert_eq!(peek(&frame[..cut]), None, "cut at {cut}");
    }
    // A whole header with its body cut off still names kind and tag: the
    // decoder refuses it, and the refusal is addressed by that tag.
    assert_eq!(peek(&frame[..HEADER_LEN]), Some((MessageKind::Request, 42)));
    let refused = decode_request(&frame[..HEADER_LEN]).unwrap_err();
    assert_eq!(refused.tag(), Some(42));
}

#[test]
fn a_wrong_magic_or_an_unknown_kind_has_nothing_to_show() {
    for at in 0..4 {
        let mut frame = request_frame(42);
        frame[at] ^= 0x20;
        assert_eq!(peek(&frame), None, "magic byte {at} changed");
    }
    for kind in [0u16, 5, 0x0100, u16::MAX] {
        let mut frame = request_frame(42);
        frame[6..8].copy_from_slice(&kind.to_le_bytes());
        assert_eq!(peek(&frame), None, "kind {kind}");
    }
}

#[test]
fn another_version_still_shows_the_tag_its_refusal_echoes() {
    let mut frame = request_frame(42);
    frame[4..6].copy_from_slice(&3u16.to_le_bytes());
    assert_eq!(peek(&frame), Some((MessageKind::Request, 42)));
    assert_eq!(decode_request(&frame).unwrap_err().tag(), Some(42));
}
