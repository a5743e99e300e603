//! The interactive boot (`scripts/board.sh run`): the servers start (memsrv,
//! then a memory filesystem and, when flash bank 0 holds one, the romfs
//! image in place), a process maps anonymous memory, a file straight off
//! flash and a SysV segment, shows `/proc/self/maps` and `/proc/meminfo`,
//! and finally times mmap/munmap round trips in instructions (exact under
//! QEMU `-icount`).

use super::driver::{mount_rom_in_place, mount_tmp};
use crate::devices::romfs_in_bank0;
use crate::println;
use crate::sys::{self, IpcTransport};
use nommu::Client;
use protocol::linux::{
    IPC_CREAT, IPC_PRIVATE, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
};
use protocol::{Errno, ProcView};

/// mmap+munmap pairs timed at the end.
const ROUND_TRIPS: u64 = 1000;

fn show(client: &Client<IpcTransport>, view: ProcView, title: &str, max_lines: usize) {
    let mut text = alloc::vec![0u8; 4096];
    match client.read_proc(view, &mut text) {
        Ok(n) => {
            println!("demo: {title}:");
            for line in core::str::from_utf8(&text[..n.min(text.len())])
                .unwrap_or("?")
                .lines()
                .take(max_lines)
            {
                println!("  {line}");
            }
        }
        Err(e) => println!("demo: {title}: {e:?}"),
    }
}

fn start_servers(memsrv: usize) -> Result<(), Errno> {
    let m = mount_tmp(memsrv)?;
    println!(
        "demo: ramfs serves /tmp (task {}, driver {})",
        m.task, m.driver
    );
    match romfs_in_bank0() {
        Some(rom) => {
            let m = mount_rom_in_place(memsrv, rom.image, rom.addr)?;
            println!(
                "demo: romfs serves /rom in place from flash at {:#x} (task {}, driver {})",
                rom.addr, m.task, m.driver
            );
        }
        None => println!("demo: no romfs image in flash bank 0; /rom not mounted"),
    }
    Ok(())
}

fn map_things(client: &Client<IpcTransport>, started: u64) -> Result<(), Errno> {
    let rw = PROT_READ | PROT_WRITE;
    let a = client.mmap(0, 16 << 10, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
    println!(
        "demo: mmap(16 KiB, private anonymous) = {a:#x} ({} ms after reset, {} ms after init)",
        sys::now_ms(),
        sys::now_ms().saturating_sub(started)
    );
    let b = client.mmap(0, 3 << 12, rw, MAP_SHARED | MAP_ANONYMOUS, -1, 0)?;
    println!("demo: mmap(12 KiB, shared anonymous) = {b:#x}");
    let id = client.shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0o600)?;
    let c = client.shmat(id, 0, 0)?;
    println!("demo: shmget + shmat = segment {id} at {c:#x}");
    let rom = client.open("/rom/t", 0, 0).ok();
    let mut in_flash = None;
    if let Some(fd) = rom {
        let x = client.mmap(0, 8192, PROT_READ, MAP_PRIVATE, fd, 0)?;
        println!("demo: mmap(/rom/t, private read) = {x:#x}: the file's bytes in flash, no copy");
        in_flash = Some(x);
    }
    show(client, ProcView::SelfMaps, "/proc/self/maps", usize::MAX);
    show(client, ProcView::Meminfo, "/proc/meminfo (head)", 3);
    if let (Some(fd), Some(x)) = (rom, in_flash) {
        client.munmap(x, 8192)?;
        client.close(fd)?;
    }
    client.shmdt(c)?;
    client.shm_remove(id)?;
    client.munmap(b, 3 << 12)?;
    client.munmap(a, 16 << 10)?;
    println!("demo: unmapped everything");
    Ok(())
}

/// Instructions (all of them: the client, the kernel, memsrv) per
/// mmap+munmap pair of one anonymous page.
fn time_round_trips(client: &Client<IpcTransport>) -> Result<(), Errno> {
    let rw = PROT_READ | PROT_WRITE;
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let pair = || -> Result<(), Errno> {
        let a = client.mmap(0, 4096, rw, flags, -1, 0)?;
        client.munmap(a, 4096)
    };
    pair()?;
    let (i0, t0) = (sys::instructions(), sys::now_ms());
    for _ in 0..ROUND_TRIPS {
        pair()?;
    }
    let (i1, t1) = (sys::instructions(), sys::now_ms());
    // The same number of the cheapest request (a sysctl read): what the
    // IPC path and the frame handling cost without any memory work.
    for _ in 0..2 * ROUND_TRIPS {
        client.read_sysctl(protocol::Sysctl::NrTrimPages)?;
    }
    let i2 = sys::instructions();
    println!(
        "demo: {} sysctl reads: {} instructions per request/reply",
        2 * ROUND_TRIPS,
        (i2 - i1) / ROUND_TRIPS / 2
    );
    println!(
        "demo: {ROUND_TRIPS} mmap+munmap pairs (4 KiB anonymous): {} instructions per pair, {} instructions per request/reply, {} ms",
        (i1 - i0) / ROUND_TRIPS,
        (i1 - i0) / ROUND_TRIPS / 2,
        t1 - t0
    );
    Ok(())
}

fn demo(memsrv: usize, started: u64) -> Result<(), Errno> {
    start_servers(memsrv)?;
    let client = Client::new(IpcTransport::new(sys::connect(memsrv, 0, 0)?));
    let me = client.hello(None)?;
    println!("demo: process {} connected", me.pid);
    map_things(&client, started)?;
    time_round_trips(&client)
}

pub fn run(memsrv: usize, started: u64) -> u64 {
    match demo(memsrv, started) {
        Ok(()) => 0,
        Err(e) => {
            println!("demo: failed: {e:?}");
            1
        }
    }
}
