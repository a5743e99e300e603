//! Golden byte vectors of the lease messages (`ReadLease`, `WriteLease`,
//! `BulkWindow`, the driver's `Pages` and its answer): appended variants, so every older
//! vector (`golden.rs`) is unchanged.

use protocol::{
    decode_driver_reply, decode_driver_request, encode_driver_reply, encode_driver_request,
    DriverReply, DriverRequest, PageList, Request, LEASE_PAGES, LEASE_STEP, MAX_FRAME, PAGE_SIZE,
};

#[path = "common/golden_frames.rs"]
mod golden_frames;

use golden_frames::{assert_descriptor_requests, assert_driver_requests, framed};

#[test]
fn lease_requests() {
    let cases = [
        (
            Request::ReadLease {
                fd: 3,
                buf: 0x4000_0000,
                len: 65536,
                offset: None,
            },
            "28 06 80 80 80 80 04 80 80 04 00",
        ),
        (
            Request::WriteLease {
                fd: 3,
                buf: 0x4000_1000,
                len: 5000,
                offset: Some(4097),
            },
            "29 06 80 a0 80 80 04 88 27 01 81 20",
        ),
        (Request::BulkWindow, "2a"),
    ];
    assert_descriptor_requests(cases);
}

#[test]
fn pages_request_and_answer() {
    let request = DriverRequest::Pages {
        object: 7,
        offset: 4097,
        len: 8192,
        write: true,
    };
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_driver_request(0x2a, &request, &mut buf);
    assert_eq!(buf[..len], framed(3, "0c 07 81 20 80 40 01"));
    assert_eq!(decode_driver_request(&buf[..len]).unwrap().message, request);

    let reply = DriverReply::Pages(PageList {
        len: 100,
        pages: heapless::Vec::from_slice(&[0x4000_1000, 0]).unwrap(),
    });
    let len = encode_driver_reply(0x2a, &reply, &mut buf);
    assert_eq!(buf[..len], framed(4, "07 64 02 80 a0 80 80 04 00"));
    assert_eq!(decode_driver_reply(&buf[..len]).unwrap().message, reply);
}

#[test]
fn the_largest_page_list_fits_a_frame() {
    // Every page at the top of a 48-bit address space: the longest varints.
    let top = (1u64 << 48) - PAGE_SIZE;
    let reply = DriverReply::Pages(PageList {
        len: LEASE_STEP,
        pages: heapless::Vec::from_slice(&[top; LEASE_PAGES]).unwrap(),
    });
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_driver_reply(0x2a, &reply, &mut buf);
    assert_eq!(decode_driver_reply(&buf[..len]).unwrap().message, reply);
}

// `Transfer` (a lease step the driver moves itself, appended after
// `Pages`) and the `TRANSFER` method bit.

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
    assert_driver_requests(cases);
    let mut buf = [0u8; MAX_FRAME];
    // The answer is the existing `Count`.
    let reply = DriverReply::Count(4096);
    let len = encode_driver_reply(0x2a, &reply, &mut buf);
    assert_eq!(buf[..len], framed(4, "03 80 20"));
    assert_eq!(decode_driver_reply(&buf[..len]).unwrap().message, reply);
}

#[test]
fn the_transfer_bit_is_new() {
    let older = [
        protocol::DriverOps::MMAP,
        protocol::DriverOps::READ,
        protocol::DriverOps::WRITE,
        protocol::DriverOps::GET_UNMAPPED_AREA,
        protocol::DriverOps::CLOSE_VMA,
        protocol::DriverOps::TRUNCATE,
    ];
    assert_eq!(protocol::DriverOps::TRANSFER, 0x40);
    assert!(older
        .iter()
        .all(|&bit| bit & protocol::DriverOps::TRANSFER == 0));
    assert!(
        protocol::DriverOps(protocol::DriverOps::READ | protocol::DriverOps::TRANSFER)
            .has(protocol::DriverOps::TRANSFER)
    );
}
