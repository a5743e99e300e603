//! Golden byte vectors of `fsync`/`fdatasync`: the client's `Fsync`
//! request, the driver's `Sync` request and the `SYNC` method bit —
//! appended variants and a new bit, so every older vector (`golden.rs`,
//! `golden_lease.rs`) is unchanged.

use protocol::{DriverOps, DriverRequest, Request};

#[path = "common/golden_frames.rs"]
mod golden_frames;

use golden_frames::{assert_descriptor_requests, assert_driver_requests};

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
    assert_descriptor_requests(cases);
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
    assert_driver_requests(cases);
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
