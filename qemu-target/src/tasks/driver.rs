//! A backing device as a task: connect to memsrv, register, `start`, then
//! serve driver requests until the connection ends.
//!
//! The connection is the shared [`DriverLink`] over kernel IPC
//! ([`DriverIpc`]): it keeps the driver requests that arrive while one of
//! the driver's own calls (`AllocBacking` while it starts or serves) waits
//! for its reply, and serves them afterwards.

use crate::memory;
use crate::sys::{self, FOREVER};
use alloc::sync::Arc;
use drivers::BackingDevice;
use nommu::driver_link::{start_driver, ArenaAccess, DriverLink, DriverTransport, LinkHost};
use nommu::Client;
use protocol::{Errno, MAX_FRAME};
use spinning_top::Spinlock;

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

/// Start `device` as a task talking to memsrv (task `memsrv`): register,
/// `start`, run `look` on the started device, then serve. Returns once
/// `look` ran, with what it returned.
pub fn mount<D, R, F>(memsrv: usize, mut device: D, look: F) -> Result<(Mount, R), Errno>
where
    D: BackingDevice + Send + 'static,
    R: Send + 'static,
    F: FnOnce(&D) -> R + Send + 'static,
{
    let mut name = heapless::String::<16>::new();
    for c in device
        .registration()
        .mount
        .as_str()
        .chars()
        .rev()
        .take_while(|c| *c != '/')
    {
        let _ = name.push(c);
    }
    let name: heapless::String<16> = name.chars().rev().collect();
    let started: Arc<Spinlock<Option<Result<(u32, R), Errno>>>> = Arc::new(Spinlock::new(None));
    let report = Arc::clone(&started);
    let task = sys::spawn_driver(&name, DRIVER_STACK, move || {
        let conn = match sys::connect(memsrv, 0, 0) {
            Ok(c) => c,
            Err(e) => {
                *report.lock() = Some(Err(e));
                return 1;
            }
        };
        let client = Client::new(DriverLink::new(DriverIpc { conn }));
        let mut host = LinkHost::new(&client, BoardMemory);
        let driver = match start_driver(&client, &mut device, &mut host) {
            Ok(d) => d,
            Err(e) => {
                *report.lock() = Some(Err(e));
                return 1;
            }
        };
        *report.lock() = Some(Ok((driver, look(&device))));
        drop(report);
        // Ends when the connection does; an unanswerable request ends it
        // too.
        let _ = client.transport().serve(&mut device, &mut host);
        0
    })?;
    // Driver tasks serve until memsrv goes: their stacks stay.
    let task_id = task.detach();
    loop {
        if let Some(result) = started.lock().take() {
            return result.map(|(driver, seen)| {
                (
                    Mount {
                        task: task_id,
                        driver,
                    },
                    seen,
                )
            });
        }
        sys::yield_now();
    }
}
