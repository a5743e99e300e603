//! Backing-device servers (drivers) for the nommu memory server.
//!
//! Each driver is a module that owns one kind of backing device and
//! implements [`BackingDevice`]: it declares where it is mounted
//! ([`BackingDevice::registration`]) and answers the memory server's
//! [`DriverRequest`]s one at a time ([`BackingDevice::serve`]). A home runs
//! each driver as a server of its own (a thread, a host process, a task):
//! it registers the driver over an ordinary connection, then feeds it the
//! frames the memory server sends, through [`serve_frame`].
//!
//! Drivers keep their storage in the arena (memory they get from the server
//! with [`DriverHost::alloc_backing`]), so a direct mapping is simply the
//! address where the bytes already live, the same in every process.
#![no_std]

extern crate alloc;

use protocol::{
    decode_driver_request, encode_driver_reply, DriverRegistration, DriverReply, DriverRequest,
    Errno, MAX_FRAME,
};

/// What a driver may ask of its home while serving: access to the arena
/// and the memory server's driver-side calls.
pub trait DriverHost {
    /// Copy `bytes` into the arena at `addr`.
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno>;
    /// Copy arena bytes at `addr` into `buf`.
    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// `pages` contiguous zeroed pages of the arena for the driver's own
    /// storage ([`protocol::Request::AllocBacking`]).
    fn alloc_backing(&mut self, pages: u64) -> Result<u64, Errno>;
    /// Give storage back ([`protocol::Request::FreeBacking`]).
    fn free_backing(&mut self, addr: u64, pages: u64) -> Result<(), Errno>;
    /// Ask to change mode ([`protocol::Request::BeginExclusive`]).
    fn begin_exclusive(&mut self, object: u64) -> Result<(), Errno>;
    /// Show data again ([`protocol::Request::EndExclusive`]).
    fn end_exclusive(&mut self, object: u64) -> Result<(), Errno>;
}

/// One backing device, served one request at a time.
pub trait BackingDevice {
    /// Name, mount point, device number and mount flags.
    fn registration(&self) -> DriverRegistration;
    /// Called once after registration, before any request: allocate
    /// storage, load images.
    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno>;
    /// Answer one request from the memory server.
    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply;
}

/// Decode one driver-request frame, serve it, and encode the reply (tag
/// echoed) into `out`; returns the reply's length. A frame that cannot be
/// decoded gets an error reply where its tag is known, else `None` (the
/// home drops the connection).
pub fn serve_frame(
    device: &mut dyn BackingDevice,
    frame: &[u8],
    host: &mut dyn DriverHost,
    out: &mut [u8; MAX_FRAME],
) -> Option<usize> {
    match decode_driver_request(frame) {
        Ok(request) => {
            let reply = device.serve(request.message, host);
            Some(encode_driver_reply(request.tag, &reply, out))
        }
        Err(e) => {
            let tag = e.tag()?;
            Some(encode_driver_reply(tag, &DriverReply::Error(e.errno()), out))
        }
    }
}
