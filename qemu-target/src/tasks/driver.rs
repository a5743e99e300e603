//! A backing device as a task in a region of its own: build the device
//! there, connect to memsrv, register, `start`, report through the task's
//! mailbox, then serve driver requests until the connection ends.
//!
//! The connection is the shared [`DriverLink`] over kernel IPC
//! ([`DriverIpc`]): it keeps the driver requests that arrive while one of
//! the driver's own calls (`AllocBacking` while it starts or serves) waits
//! for its reply, and serves them afterwards.

use crate::handover;
use crate::kernel::Sys;
use crate::memory;
use crate::sys::{self, FOREVER};
use core::cell::Cell;
use drivers::ramfs::Ramfs;
use drivers::romfs::Romfs;
use drivers::{BackingDevice, MountPoint};
use nommu::driver_link::{start_driver, ArenaAccess, DriverLink, DriverTransport, LinkHost};
use nommu::Client;
use protocol::{Errno, MAX_FRAME};

/// Stack of a driver task (romfs indexing and copies use a few KiB).
const DRIVER_STACK: usize = 64 << 10;

/// How a driver task's frames move: kernel IPC on its connection to
/// memsrv. Dropping it closes the connection.
pub struct DriverIpc {
    conn: u64,
}

impl DriverTransport for DriverIpc {
    /// Milliseconds since boot ([`sys::now_ms`]).
    type Deadline = u64;

    fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        sys::send(self.conn, frame)
    }

    fn receive(
        &self,
        buf: &mut [u8; MAX_FRAME],
        deadline: Option<u64>,
    ) -> Result<Option<usize>, Errno> {
        match sys::recv(self.conn, buf, deadline.unwrap_or(FOREVER)) {
            Ok(len) => Ok(Some(len)),
            Err(Errno::ETIMEDOUT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for DriverIpc {
    fn drop(&mut self) {
        let _ = sys::close(self.conn);
    }
}

/// The board's RAM as a driver reaches it: by address, bounds-checked.
struct BoardMemory;

fn checked(ok: bool) -> Result<(), Errno> {
    ok.then_some(()).ok_or(Errno::EFAULT)
}

impl ArenaAccess for BoardMemory {
    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        checked(memory::write(addr, bytes))
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        checked(memory::read(addr, buf))
    }

    fn copy(&self, src: u64, dest: u64, len: u64) -> Result<(), Errno> {
        checked(memory::copy(src, dest, len))
    }

    fn fill(&self, addr: u64, value: u8, len: u64) -> Result<(), Errno> {
        checked(memory::fill(addr, value, len))
    }
}

/// A running driver task.
pub struct Mount {
    pub task: usize,
    pub driver: u32,
}

/// Heap of a driver task, at least: the device is built there (a romfs
/// index, a copy-only store's files, an MTD's 64 KiB image and the
/// pattern it is made from), with what it allocates while it serves.
/// With the stack and the header, a 256 KiB region.
const DRIVER_HEAP: usize = 184 << 10;

/// The task's name: the mount point's last component.
fn task_name(point: &MountPoint) -> heapless::String<16> {
    let path = point.path();
    let last = path.rsplit('/').next().unwrap_or(path);
    last.chars().take(16).collect()
}

/// Start a driver task talking to memsrv (task `memsrv`): in its own
/// region it builds the device at `point` with `make`, registers it,
/// `start`s it, runs `look` on the started device, then serves. Returns
/// once `look` ran, with what it returned, handed over through the
/// task's mailbox ([`handover`]): nothing in the spawner's heap is the
/// driver's to touch.
///
/// What `look` returns is moved out of the driver's heap as it lies, so
/// it must not own memory the spawner would free (`/dev/tst`'s handle
/// shares the counters in the driver's heap, which lives as long as the
/// driver).
pub fn mount<D, F, R>(
    memsrv: usize,
    point: MountPoint,
    make: F,
    look: fn(&D) -> R,
) -> Result<(Mount, R), Errno>
where
    D: BackingDevice + 'static,
    F: FnOnce(MountPoint) -> Result<D, Errno> + Send + Clone + 'static,
    R: Send + 'static,
{
    let name = task_name(&point);
    let task = sys::spawn_driver(&name, DRIVER_STACK, DRIVER_HEAP, move || {
        let fail = |e| {
            handover::hand_over::<(u32, R)>(sys::mailbox(), Err(e));
            1
        };
        let mut device = match make(point) {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let conn = match sys::connect(memsrv, 0, 0) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let client = Client::new(DriverLink::new(DriverIpc { conn }));
        let mut host = LinkHost::new(&client, BoardMemory);
        let driver = match start_driver(&client, &mut device, &mut host) {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        handover::hand_over(sys::mailbox(), Ok((driver, look(&device))));
        // Ends when the connection does; an unanswerable request ends it
        // too.
        let _ = client.transport().serve(&mut device, &mut host);
        0
    })?;
    let mailbox = task.mailbox().ok_or(Errno::EINVAL)?;
    // Whether it ended (and the kernel let it go) before it reported.
    let reaped = Cell::new(false);
    let ended = || {
        let gone = sys::raw_call(Sys::Join, &[task.id as u64, 0]).is_ok();
        reaped.set(gone);
        gone
    };
    match handover::take_over::<(u32, R)>(mailbox, ended) {
        Ok((driver, seen)) => {
            // Driver tasks serve until memsrv goes: their regions stay.
            let task = task.detach();
            Ok((Mount { task, driver }, seen))
        }
        Err(e) => {
            // It ends after reporting, or has ended: its region goes back.
            if reaped.get() {
                drop(task);
            } else {
                let _ = task.join();
            }
            Err(e)
        }
    }
}

/// `/tmp` (device 00:10): a memory filesystem, as the demo and a user's
/// C program have it.
pub fn mount_tmp(memsrv: usize) -> Result<Mount, Errno> {
    let point = MountPoint::new("/tmp", (0, 0x10))?;
    Ok(mount(memsrv, point, |point| Ok(Ramfs::new(point)), |_| ())?.0)
}

/// `/rom` (device 1f:00): the romfs `image`, read in place at `addr`
/// (flash bank 0).
pub fn mount_rom_in_place(memsrv: usize, image: &'static [u8], addr: u64) -> Result<Mount, Errno> {
    let point = MountPoint::new("/rom", (0x1f, 0))?;
    let index = move |at| Romfs::in_place(image, addr, at).map_err(|_| Errno::EINVAL);
    Ok(mount(memsrv, point, index, |_| ())?.0)
}
