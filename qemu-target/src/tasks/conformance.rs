//! The spec's conformance tables (the `conformance` crate) on the board:
//! the same vectors the hosted homes run, through kernel IPC to the memsrv
//! task, with the §14.0 environment built from driver tasks. Where the
//! board has real hardware the environment uses it: `/rom` is a romfs image
//! in place in flash bank 0, and `/dev/mtd1` (NOR) is flash bank 1 with its
//! real program and erase commands.

use super::driver::{mount, Mount};
use super::memsrv::{settle, INSPECTOR_UID};
use crate::devices::{romfs_in_bank0, CfiFlash};
use crate::memory;
use crate::println;
use crate::sys::{self, IpcTransport, FOREVER};
use alloc::alloc::{alloc_zeroed, Layout};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use conformance::env::{self, Environment, Mounter, NorFlash, RomImage, Setup};
use conformance::{Harness, Landmark, ProcessConnection, TestDevControl, Vector, VECTORS};
use drivers::flash::FlashChip;
use drivers::{BackingDevice, MountPoint};
use nommu::{Client, Transport};
use protocol::Errno;

/// The name the board's conformance lines carry.
const HOME: &str = "board";

/// A process: one connection to memsrv.
struct Process {
    pid: u32,
    client: Client<IpcTransport>,
}

impl ProcessConnection for Process {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn transport(&self) -> &dyn Transport {
        self.client.transport()
    }

    fn begin(&self, request: &[u8]) -> Result<(), Errno> {
        sys::send(self.client.transport().conn, request)
    }

    fn finish(&self, reply: &mut [u8; protocol::MAX_FRAME]) -> Result<usize, Errno> {
        sys::recv(self.client.transport().conn, reply, FOREVER)
    }
}

/// The board as the tables see it.
pub struct Board {
    memsrv: usize,
    env: Environment<Mount>,
}

impl Board {
    fn connect(&self, uid: u32, gid: u32, ticket: Option<u64>) -> Result<Process, Errno> {
        let channel = IpcTransport::new(sys::connect(self.memsrv, uid, gid)?);
        let client = Client::new(channel);
        let pid = client.hello(ticket)?.pid;
        Ok(Process { pid, client })
    }
}

impl Harness for Board {
    fn spawn(&self) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        Ok(Box::new(self.connect(0, 0, None)?))
    }

    fn spawn_as(&self, uid: u32, gid: u32) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        Ok(Box::new(self.connect(uid, gid, None)?))
    }

    fn attach(&self, ticket: u64) -> Result<Box<dyn ProcessConnection + '_>, Errno> {
        Ok(Box::new(self.connect(0, 0, Some(ticket))?))
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        memory::read(addr, buf).then_some(()).ok_or(Errno::EFAULT)
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        memory::write(addr, bytes)
            .then_some(())
            .ok_or(Errno::EFAULT)
    }

    fn test_device(&self) -> Option<&TestDevControl> {
        Some(&self.env.tst)
    }

    fn landmark(&self, which: Landmark) -> Option<u64> {
        Some(self.env.landmark(which))
    }
}

/// The board runs each driver as a task of its own, which builds its
/// device in its own region.
struct TaskMounter {
    memsrv: usize,
}

impl Mounter for TaskMounter {
    type Mount = Mount;

    fn mount<D, F, R>(
        &mut self,
        point: MountPoint,
        make: F,
        look: fn(&D) -> R,
    ) -> Result<(Mount, R), Errno>
    where
        D: BackingDevice + Send + 'static,
        F: FnOnce(MountPoint) -> Result<D, Errno> + Send + Clone + 'static,
        R: Send + 'static,
    {
        mount(self.memsrv, point, make, look)
    }
}

/// Pages of RAM outside the arena standing for device memory (`/dev/mem`'s
/// window): memsrv lets a driver hand out arena addresses only from its
/// own storage.
fn device_memory(pages: usize) -> Result<u64, String> {
    let layout = Layout::from_size_align(pages * 4096, 4096).map_err(|e| format!("{e}"))?;
    // SAFETY: the layout has a non-zero size; the memory is never freed,
    // standing for device memory for the rest of the run.
    let p = unsafe { alloc_zeroed(layout) };
    if p.is_null() {
        return Err("no memory for the /dev/mem window".into());
    }
    Ok(p as u64)
}

/// Mount every device of §14.0 (`conformance::env::build`), on the
/// board's hardware where it has some: `/rom` in place in flash bank 0,
/// `/dev/mtd1` the CFI flash of bank 1.
pub fn build(memsrv: usize) -> Result<Board, String> {
    let rom = romfs_in_bank0().ok_or("no romfs image in flash bank 0 (pflash0)")?;
    let window = device_memory(16)?;
    let setup = Setup {
        rom: RomImage::InPlace {
            image: rom.image,
            addr: rom.addr,
        },
        // Taken in `/dev/mtd1`'s driver task (no chip in bank 1:
        // ENODEV).
        nor: NorFlash::Chip(|| {
            CfiFlash::take_bank1().map(|chip| Box::new(chip) as Box<dyn FlashChip + Send>)
        }),
        device_memory: window..window + 16 * 4096,
    };
    let env = env::build(&mut TaskMounter { memsrv }, setup)?;
    Ok(Board { memsrv, env })
}

/// Nothing of the vector's is left: no copies, every page free but the
/// drivers' storage, no open file, object, waiting call or segment.
/// Drivers answer releases after the processes are gone, so memsrv is
/// given a moment.
fn leftovers(inspector: u64) -> Option<String> {
    settle(inspector, |stats| stats.left_nothing())
}

fn run_one(board: &mut Board, inspector: u64, vector: &Vector) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(failure) = (vector.run)(board) {
        failures.push(format!("{vector:?}: {failure}"));
    }
    if let Some(left) = leftovers(inspector) {
        failures.push(format!("{vector:?}: left behind: {left}"));
    }
    failures
}

/// Run every vector in sequence on one memsrv, printing one line per
/// vector; the number of failures.
pub fn run(memsrv: usize) -> usize {
    let mut board = match build(memsrv) {
        Ok(board) => board,
        Err(e) => {
            println!("conformance: {HOME}: the test environment: {e}");
            return 1;
        }
    };
    let inspector = match sys::connect(memsrv, INSPECTOR_UID, 0) {
        Ok(c) => c,
        Err(e) => {
            println!("conformance: {HOME}: no inspector connection: {e:?}");
            return 1;
        }
    };
    println!("conformance: home {HOME}");
    let mut failed = 0;
    for vector in VECTORS {
        let failures = run_one(&mut board, inspector, vector);
        if failures.is_empty() {
            println!("conformance: ok {}", vector.id);
        } else {
            failed += 1;
            for f in failures {
                println!("conformance: {HOME}: FAILED {f}");
            }
        }
    }
    let _ = sys::close(inspector);
    println!(
        "conformance: {HOME}: {} of {} vectors passed",
        VECTORS.len() - failed,
        VECTORS.len()
    );
    failed
}
