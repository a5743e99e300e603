//! Leases to a host directory through memsrvd, which the directory's
//! driver moves itself in one `Transfer` per step through a staging buffer
//! of the server's: the host file holds exactly the bytes written at odd
//! offsets and lengths, reads past the end are short, a write past it
//! grows the host file, a change made on the host is read as it is (no
//! copy kept anywhere), a lease naming memory not the caller's is `EFAULT`,
//! and clients killed while their leases are in flight leave every page
//! free.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{c_command, ChildGuard, Daemon, Scratch};
use protocol::linux::{O_CREAT, O_RDWR};
use protocol::{lease_request, Errno, Reply, LEASE_STEP};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

const PAGE: u64 = 4096;

fn hostdir_daemon(scratch: &Scratch) -> Daemon {
    let data = format!("/data=hostdir:{}", scratch.path().display());
    Daemon::start_with(&["--mount", &data])
}

/// The byte at file position `i` in these tests.
fn byte_at(i: usize, seed: u8) -> u8 {
    (i as u8).wrapping_mul(13).wrapping_add((i >> 12) as u8) ^ seed
}

#[test]
fn host_files_hold_exactly_what_leases_move() {
    let scratch = Scratch::new("hostdir-transfer");
    let d = hostdir_daemon(&scratch);
    let c = d.client();
    let fd = c.open("/data/f", O_CREAT | O_RDWR, 0o600).unwrap();
    let len = 2 * LEASE_STEP as usize + 4097;
    let buf = c.mmap(0, len as u64 + PAGE, 3, 0x22, -1, 0).unwrap();
    // SAFETY: a fresh private mapping of this process's, used only
    // through this slice while the test runs.
    let mem = unsafe {
        std::slice::from_raw_parts_mut(
            std::ptr::with_exposed_provenance_mut::<u8>(buf as usize),
            len + PAGE as usize,
        )
    };
    for (offset, n, seed) in [(3u64, len, 1u8), (4095, 1, 2), (70_001, 5003, 3)] {
        let data: Vec<u8> = (0..n).map(|i| byte_at(i, seed)).collect();
        mem[7..7 + n].copy_from_slice(&data);
        let write = lease_request(true, fd, buf + 7, n as u64, Some(offset));
        assert_eq!(c.call(&write), Ok(Reply::Count(n as u64)));
        let host = std::fs::read(scratch.path().join("f")).unwrap();
        assert_eq!(host[offset as usize..offset as usize + n], data[..]);
        mem.fill(0xee);
        let read = lease_request(false, fd, buf + 1, n as u64, Some(offset));
        assert_eq!(c.call(&read), Ok(Reply::Count(n as u64)));
        assert_eq!(mem[1..1 + n], data[..]);
        assert_eq!(mem[0], 0xee);
        assert_eq!(mem[1 + n], 0xee, "nothing past the count");
    }
    // Past the end: short, then nothing.
    let size = std::fs::metadata(scratch.path().join("f")).unwrap().len();
    let read = lease_request(false, fd, buf, 5000, Some(size - 10));
    assert_eq!(c.call(&read), Ok(Reply::Count(10)));
    let read = lease_request(false, fd, buf, 5000, Some(size + 1));
    assert_eq!(c.call(&read), Ok(Reply::Count(0)));
    // A write past the end grows the host file.
    let write = lease_request(true, fd, buf, 3000, Some(size + 1000));
    assert_eq!(c.call(&write), Ok(Reply::Count(3000)));
    let host = std::fs::metadata(scratch.path().join("f")).unwrap().len();
    assert_eq!(host, size + 4000);
    // A change made on the host is what the next lease reads.
    std::fs::write(scratch.path().join("f"), b"changed on the host").unwrap();
    let read = lease_request(false, fd, buf, 100, Some(0));
    assert_eq!(c.call(&read), Ok(Reply::Count(19)));
    assert_eq!(&mem[..19], b"changed on the host");
    // Not the caller's memory: a read-only mapping as a destination,
    // outside the arena, past the end of the mapping.
    let ro = c.mmap(0, PAGE, 1, 0x22, -1, 0).unwrap();
    for (at, n, write) in [
        (ro, 100, false),
        (0x1000, 100, true),
        (buf + len as u64, 2 * PAGE, false),
    ] {
        let call = lease_request(write, fd, at, n, Some(0));
        assert_eq!(c.call(&call), Err(Errno::EFAULT), "{at:#x} {n} {write}");
    }
    c.close(fd).unwrap();
    drop(c);
    d.assert_all_free();
}

#[test]
fn clients_killed_mid_transfer_leave_every_page_free() {
    let scratch = Scratch::new("hostdir-victim");
    let d = hostdir_daemon(&scratch);
    for round in 0..3u64 {
        let mut child = c_command(&d, "lease_victim")
            .arg("/data/victim")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn lease_victim");
        let stdout = child.stdout.take().unwrap();
        let mut guard = ChildGuard(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "READY", "round {round}");
        // Leases in flight, then killed mid-call.
        std::thread::sleep(Duration::from_millis(20 + 15 * round));
        guard.0.kill().unwrap();
        guard.0.wait().unwrap();
    }
    // The daemon still serves, the file is whole, and once the victims'
    // connections are gone no page is held (staging buffers included).
    let c = d.client();
    let fd = c.open("/data/victim", O_RDWR, 0).unwrap();
    let len = 3 * LEASE_STEP as usize;
    let mut back = vec![0u8; len];
    assert_eq!(c.pread(fd, &mut back, 1).unwrap(), len);
    let host = std::fs::read(scratch.path().join("victim")).unwrap();
    assert_eq!(host.len(), len + 1);
    assert_eq!(host[1..], back[..]);
    c.close(fd).unwrap();
    drop(c);
    d.assert_all_free();
}
