//! The golden tests' way of writing a frame — a hex listing of its body
//! behind the header every vector shares (version 2, tag 0x2a) — and the
//! checks of appended requests' vectors.

use protocol::{
    decode_driver_request, decode_request, encode_driver_request, encode_request,
    frame_checks_identity, DriverRequest, Request, MAX_FRAME,
};

/// The bytes a hex listing names (`"4e 4d"` → `[0x4e, 0x4d]`).
pub fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// The frame: header (kind, tag 0x2a, body length), then `body`.
pub fn framed(kind: u8, body: &str) -> Vec<u8> {
    let body = unhex(body);
    let mut frame = unhex("4e 4d 4d 55 02 00");
    frame.extend([kind, 0, 0x2a, 0, 0, 0, body.len() as u8, 0, 0, 0]);
    frame.extend(body);
    frame
}

/// Each request encodes as its body listing and decodes back; none is
/// judged by identity, by its frame either (the calls on a descriptor).
pub fn assert_descriptor_requests<const N: usize>(cases: [(Request, &str); N]) {
    let mut buf = [0u8; MAX_FRAME];
    for (request, body) in cases {
        let len = encode_request(0x2a, &request, &mut buf);
        assert_eq!(buf[..len], framed(1, body), "{request:?}");
        assert_eq!(decode_request(&buf[..len]).unwrap().message, request);
        // Judged by the descriptor, not by identity.
        assert!(!request.checks_identity());
        assert!(!frame_checks_identity(&buf[..len]));
    }
}

/// Each driver request encodes as its body listing and decodes back.
pub fn assert_driver_requests<const N: usize>(cases: [(DriverRequest, &str); N]) {
    let mut buf = [0u8; MAX_FRAME];
    for (request, body) in cases {
        let len = encode_driver_request(0x2a, &request, &mut buf);
        assert_eq!(buf[..len], framed(3, body), "{request:?}");
        assert_eq!(decode_driver_request(&buf[..len]).unwrap().message, request);
    }
}
