//! The interactive boot (`scripts/board.sh run`): a process maps
//! anonymous memory, shares a SysV segment, and shows `/proc/maps` and
//! `/proc/meminfo` as memsrv sees them.

use crate::println;
use crate::sys::{self, Channel};
use nommu::Client;
use protocol::linux::{
    IPC_CREAT, IPC_PRIVATE, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE,
};
use protocol::{Errno, ProcView};

fn show(client: &Client<Channel>, view: ProcView, title: &str) {
    let mut text = alloc::vec![0u8; 4096];
    match client.read_proc(view, &mut text) {
        Ok(n) => {
            println!("demo: {title}:");
            for line in core::str::from_utf8(&text[..n.min(text.len())])
                .unwrap_or("?")
                .lines()
            {
                println!("  {line}");
            }
        }
        Err(e) => println!("demo: {title}: {e:?}"),
    }
}

fn demo(memsrv: usize, booted: u64) -> Result<(), Errno> {
    let client = Client::new(Channel {
        conn: sys::connect(memsrv, 0, 0)?,
    });
    let me = client.hello(None)?;
    println!("demo: process {} connected", me.pid);
    let first = sys::now_ms();
    let rw = PROT_READ | PROT_WRITE;
    let a = client.mmap(0, 16 << 10, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
    println!(
        "demo: mmap(16 KiB, private anonymous) = {a:#x} ({} ms after init started)",
        first.saturating_sub(booted)
    );
    let b = client.mmap(0, 3 << 12, rw, MAP_SHARED | MAP_ANONYMOUS, -1, 0)?;
    println!("demo: mmap(12 KiB, shared anonymous) = {b:#x}");
    let id = client.shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0o600)?;
    let c = client.shmat(id, 0, 0)?;
    println!("demo: shmget + shmat = segment {id} at {c:#x}");
    show(&client, ProcView::SelfMaps, "/proc/self/maps");
    show(&client, ProcView::Meminfo, "/proc/meminfo");
    client.shmdt(c)?;
    client.shm_remove(id)?;
    client.munmap(b, 3 << 12)?;
    client.munmap(a, 16 << 10)?;
    println!("demo: unmapped everything");
    Ok(())
}

pub fn run(memsrv: usize, booted: u64) -> u64 {
    match demo(memsrv, booted) {
        Ok(()) => 0,
        Err(e) => {
            println!("demo: failed: {e:?}");
            1
        }
    }
}
