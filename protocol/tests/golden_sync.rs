//! Golden byte vectors of `fsync`/`fdatasync`: the client's `Fsync`
//! request, the driver's `Sync` request and the `SYNC` method bit —
//! appended variants and a new bit, so every older vector (`golden.rs`,
//! `golden_lease.rs`) is unchanged.

use protocol::{
    decode_driver_request, decode_request, encode_driver_request, encode_request,
    frame_checks_identity, DriverOps, DriverRequest, Request, MAX_FRAME,
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
fn fsync_requests() {
    let cases = [
        (
            Request::Fsync {
                fd: 3,
                data_only: false,
            },
            "2b 06 00",
        ),
        (
            Request::Fsync {
                fd: 200,
                data_only: true,
            },
            "2b 90 03 01",
        ),
    ];
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

#[test]
fn sync_driver_requests() {
    let cases = [
        (
            DriverRequest::Sync {
                object: 7,
                data_only: false,
            },
            "0e 07 00",
        ),
        (
            DriverRequest::Sync {
                object: 300,
                data_only: true,
            },
            "0e ac 02 01",
        ),
    ];
    let mut buf = [0u8; MAX_FRAME];
    for (request, body) in cases {
        let len = encode_driver_request(0x2a, &request, &mut buf);
        assert_eq!(buf[..len], framed(3, body), "{request:?}");
        assert_eq!(decode_driver_request(&buf[..len]).unwrap().message, request);
    }
}

#[test]
fn the_sync_bit_is_new() {
    let older = [
        DriverOps::MMAP,
        DriverOps::READ,
        DriverOps::WRITE,
        DriverOps::GET_UNMAPPED_AREA,
        DriverOps::CLOSE_VMA,
        DriverOps::TRUNCATE,
        DriverOps::TRANSFER,
    ];
    assert_eq!(DriverOps::SYNC, 0x80);
    assert!(older.iter().all(|&bit| bit & DriverOps::SYNC == 0));
    let copy_file = DriverOps(DriverOps::READ | DriverOps::TRANSFER | DriverOps::SYNC);
    assert!(copy_file.has(DriverOps::SYNC));
    assert!(!DriverOps(DriverOps::READ).has(DriverOps::SYNC));
}
