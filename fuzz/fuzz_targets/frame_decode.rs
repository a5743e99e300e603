//! Every frame decoder of `protocol` on arbitrary bytes: none may panic,
//! and a frame that decodes re-encodes to the same bytes — or, where the
//! input spelled a postcard varint with more bytes than needed (the one
//! place the format is not canonical), to a shorter frame that decodes to
//! the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{
    decode_driver_reply, decode_driver_request, decode_incoming, decode_reply, decode_request,
    encode_driver_reply, encode_driver_request, encode_reply, encode_request, DecodeError, Frame,
    Incoming, HEADER_LEN, MAX_FRAME,
};

/// Check the round trip of one decoded frame.
fn round_trip<T: PartialEq + core::fmt::Debug>(
    input: &[u8],
    decoded: Result<Frame<T>, DecodeError>,
    encode: fn(u32, &T, &mut [u8; MAX_FRAME]) -> usize,
    decode: fn(&[u8]) -> Result<Frame<T>, DecodeError>,
) {
    let Ok(frame) = decoded else { return };
    let mut buf = [0u8; MAX_FRAME];
    let len = encode(frame.tag, &frame.message, &mut buf);
    let out = &buf[..len];
    if out == input {
        return;
    }
    // Only the body may differ (body_len follows it), and only by being
    // shorter: a canonical varint is never longer than another spelling.
    assert_eq!(out[..12], input[..12], "header changed in re-encoding");
    assert!(
        out.len() < input.len(),
        "re-encoding of {:?} is not shorter: {:?} vs {:?}",
        frame.message,
        out,
        input
    );
    let again = decode(out).expect("a re-encoded frame must decode");
    assert_eq!(again, frame, "re-encoded frame decodes differently");
    assert!(out.len() >= HEADER_LEN);
}

fuzz_target!(|data: &[u8]| {
    round_trip(data, decode_request(data), encode_request, decode_request);
    round_trip(data, decode_reply(data), encode_reply, decode_reply);
    round_trip(
        data,
        decode_driver_request(data),
        encode_driver_request,
        decode_driver_request,
    );
    round_trip(
        data,
        decode_driver_reply(data),
        encode_driver_reply,
        decode_driver_reply,
    );
    // The server's entry point agrees with the two decoders it chooses from.
    match decode_incoming(data) {
        Ok(Incoming::Request(f)) => assert_eq!(decode_request(data), Ok(f)),
        Ok(Incoming::DriverReply(f)) => assert_eq!(decode_driver_reply(data), Ok(f)),
        Err(e) => {
            assert!(decode_request(data).is_err() && decode_driver_reply(data).is_err());
            // The errno of a refusal is always one an error reply can carry.
            let _ = (e.tag(), e.errno());
        }
    }
});
