//! The spec's conformance tables (`nommu::conformance`) on the board:
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
use drivers::copyfs::{CopyFs, MemStore};
use drivers::devmem::DevMem;
use drivers::devzero::DevZero;
use drivers::fbdev::Framebuffer;
use drivers::mtd::{Mtd, MtdType};
use drivers::pipe::Pipe;
use drivers::ramdisk::{Ramdisk, RamdiskMapping};
use drivers::ramfs::Ramfs;
use drivers::romfs::Romfs;
use drivers::socket::Socket;
use drivers::testdev::{TestDev, TestDevConfig};
use drivers::MountPoint;
use nommu::conformance::env::{self, data_f_byte, DATA_DEV, DATA_F_INO, DATA_F_LEN};
use nommu::conformance::{
    Connection, Home, Landmark, TestDevice, TestDeviceConfig, TestDeviceCounters, Vector, VECTORS,
};
use nommu::{Client, Transport};
use protocol::Errno;

/// A process: one connection to memsrv.
struct Process {
    pid: u32,
    client: Client<IpcTransport>,
}

impl Connection for Process {
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

struct TstHandle(TestDevConfig);

impl TestDevice for TstHandle {
    fn configure(&self, wanted: TestDeviceConfig) {
        self.0.configure(
            wanted.caps,
            wanted.get_unmapped_area,
            wanted.mmap,
            wanted.read,
            wanted.close,
        );
    }

    fn base(&self) -> u64 {
        self.0.base()
    }

    fn counters(&self) -> TestDeviceCounters {
        TestDeviceCounters {
            mmap_calls: self.0.mmap_calls(),
            close_calls: self.0.close_calls(),
        }
    }
}

/// The board as the tables see it.
pub struct Board {
    memsrv: usize,
    tst: TstHandle,
    rom_t: u64,
    screen: u64,
    ramdisk: u64,
    device_memory: u64,
    _mounts: Vec<Mount>,
}

impl Board {
    fn connect(&self, uid: u32, gid: u32, ticket: Option<u64>) -> Result<Process, Errno> {
        let channel = IpcTransport {
            conn: sys::connect(self.memsrv, uid, gid)?,
        };
        let client = Client::new(channel);
        let pid = client.hello(ticket)?.pid;
        Ok(Process { pid, client })
    }
}

impl Home for Board {
    fn spawn(&self) -> Result<Box<dyn Connection + '_>, Errno> {
        Ok(Box::new(self.connect(0, 0, None)?))
    }

    fn spawn_as(&self, uid: u32, gid: u32) -> Result<Box<dyn Connection + '_>, Errno> {
        Ok(Box::new(self.connect(uid, gid, None)?))
    }

    fn attach(&self, ticket: u64) -> Result<Box<dyn Connection + '_>, Errno> {
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

    fn test_device(&self) -> Option<&dyn TestDevice> {
        Some(&self.tst)
    }

    fn landmark(&self, which: Landmark) -> Option<u64> {
        Some(match which {
            Landmark::RomTData => self.rom_t,
            Landmark::FrameBuffer => self.screen,
            Landmark::DevMemWindow => self.device_memory,
            Landmark::RamdiskArray => self.ramdisk,
        })
    }
}

fn at(path: &str, dev: (u8, u8)) -> Result<MountPoint, String> {
    MountPoint::new(path, dev).map_err(|e| format!("mount point {path}: {e:?}"))
}

/// Bytes that are not a multiple of anything the vectors use.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 8) as u8)
        .collect()
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

/// Mount every device of §14.0 (see `nommu::conformance::env`).
pub fn build(memsrv: usize) -> Result<Board, String> {
    let fail = |what: &'static str| move |e: Errno| format!("mounting {what}: {e:?}");
    let mut mounts = Vec::new();
    let data: Vec<u8> = (0..DATA_F_LEN).map(data_f_byte).collect();
    for (path, minor, noexec) in [("/data", DATA_DEV.1, false), ("/data-noexec", 0x03, true)] {
        let mut point = at(path, (DATA_DEV.0, minor))?;
        if noexec {
            point = point.noexec();
        }
        let store = MemStore::new().with_file("f", DATA_F_INO, &data);
        let (m, ()) = mount(memsrv, CopyFs::new(point, store), |_| ()).map_err(fail("/data"))?;
        mounts.push(m);
    }
    for (path, minor) in [("/tmp", 0x10), ("/dev/shm", 0x11)] {
        let fs = Ramfs::new(at(path, (0, minor))?).scatter_written_pages(true);
        mounts.push(mount(memsrv, fs, |_| ()).map_err(fail("ramfs"))?.0);
    }
    let rom = romfs_in_bank0().ok_or("no romfs image in flash bank 0 (pflash0)")?;
    let rom = Romfs::in_place(rom.image, rom.addr, at("/rom", (0x1f, 0x00))?)
        .map_err(|e| format!("indexing the romfs image in flash: {e:?}"))?;
    let (m, rom_t) = mount(memsrv, rom, |rom| {
        Some(rom.image_base()? + u64::from(rom.data_offset("t")?))
    })
    .map_err(fail("/rom"))?;
    mounts.push(m);
    let rom_t = rom_t.ok_or("romfs: no address for t")?;
    let fb = Framebuffer::new(at(env::FB0, (29, 0))?, 512, 512);
    let (m, screen) = mount(memsrv, fb, |fb| fb.screen_base()).map_err(fail("/dev/fb0"))?;
    mounts.push(m);
    let screen = screen.ok_or("fbdev: no screen")?;
    let mtd0 = Mtd::new(
        at(env::MTD0, (90, 0))?,
        MtdType::Rom,
        &pattern(64 << 10, 7),
        16 << 10,
    );
    mounts.push(mount(memsrv, mtd0, |_| ()).map_err(fail("/dev/mtd0"))?.0);
    let chip = CfiFlash::take_bank1().ok_or("no CFI flash in bank 1 (pflash1)")?;
    let mtd1 = Mtd::on_chip(at(env::MTD1, (90, 2))?, MtdType::Nor, Box::new(chip));
    mounts.push(mount(memsrv, mtd1, |_| ()).map_err(fail("/dev/mtd1"))?.0);
    let (tst, config) = TestDev::new(at(env::TST, (240, 0))?);
    mounts.push(
        mount(memsrv, tst.with_window(16), |_| ())
            .map_err(fail("/dev/tst"))?
            .0,
    );
    let window = device_memory(16)?;
    let mem = DevMem::new(at(env::MEM, (1, 1))?, window..window + 16 * 4096);
    mounts.push(mount(memsrv, mem, |_| ()).map_err(fail("/dev/mem"))?.0);
    let zero = DevZero::new(at(env::ZERO, (1, 5))?);
    mounts.push(mount(memsrv, zero, |_| ()).map_err(fail("/dev/zero"))?.0);
    let pipe = Pipe::new(at(env::PIPE, (0, 0x12))?);
    mounts.push(mount(memsrv, pipe, |_| ()).map_err(fail("pipe"))?.0);
    let socket = Socket::new(at(env::SOCKET, (0, 0x13))?);
    mounts.push(mount(memsrv, socket, |_| ()).map_err(fail("socket"))?.0);
    let ram0 = Ramdisk::new(at(env::RAMDISK, (1, 0))?, 64 << 10, RamdiskMapping::Copy);
    mounts.push(mount(memsrv, ram0, |_| ()).map_err(fail("/dev/ram0"))?.0);
    let ram1 = Ramdisk::new(
        at(env::RAMDISK_DIRECT, (1, 1))?,
        64 << 10,
        RamdiskMapping::Direct,
    );
    let (m, ramdisk) = mount(memsrv, ram1, |d| d.base()).map_err(fail("/dev/ram1"))?;
    mounts.push(m);
    Ok(Board {
        memsrv,
        tst: TstHandle(config),
        rom_t,
        screen,
        ramdisk: ramdisk.ok_or("ramdisk: no array")?,
        device_memory: window,
        _mounts: mounts,
    })
}

/// Nothing of the vector's is left: no copies, every page free but the
/// drivers' storage, no open file, object, waiting call or segment.
/// Drivers answer releases after the processes are gone, so memsrv is
/// given a moment.
fn leftovers(inspector: u64) -> Option<String> {
    settle(inspector, |c| {
        c.mmap_copy_pages == 0
            && c.free_pages + c.backing_pages == c.total_pages
            && c.open_files == 0
            && c.objects == 0
            && c.pending_ops == 0
            && c.shm_segments == 0
            && c.shm_pages == 0
    })
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
            println!("conformance: the test environment: {e}");
            return 1;
        }
    };
    let inspector = match sys::connect(memsrv, INSPECTOR_UID, 0) {
        Ok(c) => c,
        Err(e) => {
            println!("conformance: no inspector connection: {e:?}");
            return 1;
        }
    };
    let mut failed = 0;
    for vector in VECTORS {
        let failures = run_one(&mut board, inspector, vector);
        if failures.is_empty() {
            println!("conformance: ok {}", vector.id);
        } else {
            failed += 1;
            for f in failures {
                println!("conformance: FAILED {f}");
            }
        }
    }
    let _ = sys::close(inspector);
    println!(
        "conformance: {} of {} vectors passed",
        VECTORS.len() - failed,
        VECTORS.len()
    );
    failed
}
