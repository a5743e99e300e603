//! The daemon's side of the connections' page reserves: each
//! connection's reserve area, mapped from its channel memory file, handed
//! to memsrv (which grants pages and applies posted entries; see memsrv's
//! `reserve` and `nommu::transport::reserve`).

use memsrv::SharedReserve;
use nommu::transport::reserve::ReserveMapping;
use protocol::reserve::ReserveArea;
use std::os::fd::BorrowedFd;

/// Pages granted to a connection at a time (1 MiB): enough that a
/// process answering most of its mappings locally goes back to the
/// daemon only every few hundred calls.
pub const RESERVE_PAGES: u32 = 256;

/// One connection's reserve area, as memsrv holds it.
pub struct DaemonReserve(ReserveMapping);

impl DaemonReserve {
    pub fn open(channel_file: BorrowedFd<'_>) -> Result<Self, protocol::Errno> {
        ReserveMapping::open(channel_file).map(Self)
    }
}

impl SharedReserve for DaemonReserve {
    fn area(&self) -> &ReserveArea {
        self.0.area()
    }
}
