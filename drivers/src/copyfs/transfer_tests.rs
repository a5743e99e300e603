//! copyfs's `Transfer`: a lease step moved between a file and the
//! server's staging buffer in one request, at odd offsets and lengths,
//! short at end of file, growing the file on a write, refused beyond one
//! step or for a handle never given out.

use super::tests::{data_fs, f_bytes};
use super::*;
use crate::flags::open::{RDONLY, RDWR};
use crate::testing::*;
use alloc::vec::Vec;
use protocol::LEASE_STEP;

fn transfer(object: u64, offset: u64, len: u64, at: u64, write: bool) -> DriverRequest {
    DriverRequest::Transfer {
        object,
        offset,
        len,
        at,
        write,
    }
}

#[test]
fn reads_at_odd_offsets_and_short_at_the_end() {
    let (mut fs, mut host) = data_fs();
    let f = opened(fs.serve(lookup("f", RDONLY, 0), &mut host)).object;
    let at = host.alloc_backing(3).unwrap();
    assert_eq!(
        count(fs.serve(transfer(f, 4097, 5003, at, false), &mut host)),
        5003
    );
    assert_eq!(host.read(at, 5003), f_bytes()[4097..9100]);
    // Past the end: what the file holds, then nothing.
    assert_eq!(
        count(fs.serve(transfer(f, 9990, 100, at, false), &mut host)),
        10
    );
    assert_eq!(host.read(at, 10), f_bytes()[9990..]);
    assert_eq!(
        count(fs.serve(transfer(f, 20000, 100, at, false), &mut host)),
        0
    );
}

#[test]
fn a_write_grows_the_file() {
    let (mut fs, mut host) = data_fs();
    let f = opened(fs.serve(lookup("f", RDWR, 0), &mut host)).object;
    let at = host.alloc_backing(2).unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8).collect();
    host.store(at, &data);
    assert_eq!(
        count(fs.serve(transfer(f, 9999, 5000, at, true), &mut host)),
        5000
    );
    let info = opened(fs.serve(DriverRequest::Stat { object: f }, &mut host));
    assert_eq!(info.size, 14999);
    let mut back = [0u8; 5000];
    assert_eq!(fs.store_mut().read(f, 9999, &mut back), Ok(5000));
    assert_eq!(back[..], data[..]);
}

#[test]
fn more_than_a_step_or_a_foreign_handle_is_refused() {
    let (mut fs, mut host) = data_fs();
    let f = opened(fs.serve(lookup("f", RDONLY, 0), &mut host)).object;
    let at = host.alloc_backing(1).unwrap();
    assert_eq!(
        error(fs.serve(transfer(f, 0, LEASE_STEP + 1, at, false), &mut host)),
        Errno::EINVAL
    );
    assert_eq!(
        error(fs.serve(transfer(f + 100, 0, 10, at, false), &mut host)),
        Errno::EBADF
    );
    // A staging address outside the arena is refused by the host.
    assert_eq!(
        error(fs.serve(transfer(f, 0, 10, 0x10, false), &mut host)),
        Errno::EFAULT
    );
}
