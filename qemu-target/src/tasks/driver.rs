//! A backing device as a task: connect to memsrv, register, `start`, then
//! serve driver requests until the connection ends.
//!
//! Everything memsrv sends a driver arrives on its one connection, in
//! order: replies to the driver's own calls (`AllocBacking` while it
//! starts or serves) and memsrv's driver requests. A driver request that
//! arrives while a call waits for its reply is kept and served afterwards
//! ([`DriverLink`]).

use crate::memory;
use crate::sys::{self, FOREVER};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::RefCell;
use drivers::{serve_frame, BackingDevice, DriverHost};
use nommu::{Client, Transport};
use protocol::{Errno, MessageKind, MAX_FRAME};
use spinning_top::Spinlock;

/// Stack of a driver task (romfs indexing and copies use a few KiB).
const DRIVER_STACK: usize = 64 << 10;

fn is_driver_request(frame: &[u8]) -> bool {
    frame
        .get(6..8)
        .is_some_and(|k| u16::from_le_bytes([k[0], k[1]]) == MessageKind::DriverRequest as u16)
}

/// A driver's connection to memsrv.
pub struct DriverLink {
    conn: u64,
    /// Driver requests that arrived while a call waited for its reply.
    backlog: RefCell<VecDeque<Vec<u8>>>,
}

impl Transport for DriverLink {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        sys::send(self.conn, request)?;
        loop {
            let n = sys::recv(self.conn, reply, FOREVER)?;
            if !is_driver_request(&reply[..n]) {
                return Ok(n);
            }
            self.backlog.borrow_mut().push_back(reply[..n].to_vec());
        }
    }
}

impl DriverLink {
    /// The next driver request, kept or new.
    fn next_request(&self, buf: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        if let Some(frame) = self.backlog.borrow_mut().pop_front() {
            buf[..frame.len()].copy_from_slice(&frame);
            return Ok(frame.len());
        }
        sys::recv(self.conn, buf, FOREVER)
    }
}

impl Drop for DriverLink {
    fn drop(&mut self) {
        let _ = sys::close(self.conn);
    }
}

/// The driver's view of the board: RAM by address, memsrv by call.
struct BoardHost<'a> {
    client: &'a Client<DriverLink>,
}

fn checked(ok: bool) -> Result<(), Errno> {
    ok.then_some(()).ok_or(Errno::EFAULT)
}

impl DriverHost for BoardHost<'_> {
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        checked(memory::write(addr, bytes))
    }

    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        checked(memory::read(addr, buf))
    }

    fn copy_arena(&mut self, src: u64, dest: u64, len: u64) -> Result<(), Errno> {
        checked(memory::copy(src, dest, len))
    }

    fn fill_arena(&mut self, addr: u64, value: u8, len: u64) -> Result<(), Errno> {
        checked(memory::fill(addr, value, len))
    }

    fn alloc_backing(&mut self, pages: u64) -> Result<u64, Errno> {
        self.client.alloc_backing(pages)
    }

    fn free_backing(&mut self, addr: u64, pages: u64) -> Result<(), Errno> {
        self.client.free_backing(addr, pages)
    }

    fn begin_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.client.begin_exclusive(object)
    }

    fn end_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        self.client.end_exclusive(object)
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
    let registration = device.registration();
    let mut name = heapless::String::<16>::new();
    for c in registration
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
    let task = sys::spawn(&name, DRIVER_STACK, move || {
        let conn = match sys::connect(memsrv, 0, 0) {
            Ok(c) => c,
            Err(e) => {
                *report.lock() = Some(Err(e));
                return 1;
            }
        };
        let client = Client::new(DriverLink {
            conn,
            backlog: RefCell::new(VecDeque::new()),
        });
        let mut host = BoardHost { client: &client };
        let driver = match client.register_driver_process(registration) {
            Ok(d) => d,
            Err(e) => {
                *report.lock() = Some(Err(e));
                return 1;
            }
        };
        if let Err(e) = device.start(&mut host) {
            *report.lock() = Some(Err(e));
            return 1;
        }
        *report.lock() = Some(Ok((driver, look(&device))));
        drop(report);
        serve(&mut device, &client, &mut host);
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

/// Serve driver requests in order until the connection ends or a frame
/// cannot be answered.
fn serve(device: &mut dyn BackingDevice, client: &Client<DriverLink>, host: &mut BoardHost) {
    let link = client.transport();
    let mut frame = Box::new([0u8; MAX_FRAME]);
    let mut out = Box::new([0u8; MAX_FRAME]);
    while let Ok(n) = link.next_request(&mut frame) {
        let Some(len) = serve_frame(device, &frame[..n], host, &mut out) else {
            return;
        };
        if sys::send(link.conn, &out[..len]).is_err() {
            return;
        }
    }
}
