//! Golden byte vectors of the driver's `Transfer` request (a lease's
//! bytes moved by the driver itself in one step) and of the `TRANSFER`
//! method bit: an appended variant, so every older vector is unchanged.

use protocol::{
    decode_driver_reply, decode_driver_request, encode_driver_reply, encode_driver_request,
    DriverOps, DriverReply, DriverRequest, MAX_FRAME,
};

/// The bytes a hex listing names (`"4e 4d"` → `[0x4e, 0x4d]`).
fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// The frame: header (kind, tag 0x2a, body length), then `body`.
fn framed(kind: u8, body: &str) -> Vec<u8> {
    let body = unhex(body);
    let mut frame = unhex("4e 4d 4d 55 02 00");
    frame.extend([kind, 0, 0x2a, 0, 0, 0, body.len() as u8, 0, 0, 0]);
    frame.extend(body);
    frame
}

#[test]
fn transfer_request_and_answer() {
    let cases = [
        (
            DriverRequest::Transfer {
                object: 7,
                offset: 4097,
                len: 8192,
                at: 0x4000_1000,
                write: true,
            },
            "0d 07 81 20 80 40 80 a0 80 80 04 01",
        ),
        (
            DriverRequest::Transfer {
                object: 1,
                offset: 0,
                len: 100,
                at: 0x4000_0000,
                write: false,
            },
            "0d 01 00 64 80 80 80 80 04 00",
        ),
    ];
    let mut buf = [0u8; MAX_FRAME];
    for (request, body) in cases {
        let len = encode_driver_request(0x2a, &request, &mut buf);
        assert_eq!(buf[..len], framed(3, body), "{request:?}");
        assert_eq!(decode_driver_request(&buf[..len]).unwrap().message, request);
    }
    // The answer is the existing `Count`.
    let reply = DriverReply::Count(4096);
    let len = encode_driver_reply(0x2a, &reply, &mut buf);
    assert_eq!(buf[..len], framed(4, "03 80 20"));
    assert_eq!(decode_driver_reply(&buf[..len]).unwrap().message, reply);
}

#[test]
fn the_transfer_bit_is_new() {
    let older = [
        DriverOps::MMAP,
        DriverOps::READ,
        DriverOps::WRITE,
        DriverOps::GET_UNMAPPED_AREA,
        DriverOps::CLOSE_VMA,
        DriverOps::TRUNCATE,
    ];
    assert_eq!(DriverOps::TRANSFER, 0x40);
    assert!(older.iter().all(|&bit| bit & DriverOps::TRANSFER == 0));
    assert!(DriverOps(DriverOps::READ | DriverOps::TRANSFER).has(DriverOps::TRANSFER));
}
