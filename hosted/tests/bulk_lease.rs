//! `read`/`write` by lease through memsrvd: a buffer in the arena is lent
//! to the server by address and the whole request moves in one round trip;
//! one outside it goes through the connection's bulk window.
//! Bytes round-trip exactly through ramfs (the server copies to and from
//! the file's own pages) and a host directory (server-side framed steps),
//! at odd offsets and lengths and across several lease steps; a lease that
//! names memory not the caller's (another process's mapping or window) is
//! `EFAULT` and the daemon keeps serving; reads and writes larger than the
//! window come back whole;
//! a process killed while its leases are in flight loses nothing.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{Daemon, Scratch};
use nommu::transport::DaemonConnection;
use nommu::Client;
use protocol::linux::{O_CREAT, O_RDWR, O_TRUNC};
use protocol::{lease_request, Errno, Reply, Request, BULK_WINDOW, LEASE_STEP};
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const PAGE: u64 = 4096;
const RW: u32 = 3;
const ANON: u32 = 0x22;
/// Set in the re-executed test binary that plays the killed process.
const CHILD: &str = "NOMMU_BULK_LEASE_CHILD";

/// An arena buffer of `len` bytes (a private anonymous mapping).
fn arena_buffer(client: &Client<DaemonConnection>, len: usize) -> (u64, &'static mut [u8]) {
    let addr = client.mmap(0, len as u64, RW, ANON, -1, 0).unwrap();
    // SAFETY: a fresh private mapping of `len` bytes, used only through
    // this slice until the test ends.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(std::ptr::with_exposed_provenance_mut(addr as usize), len)
    };
    (addr, bytes)
}

/// A pattern that differs in every byte position and page.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i / 4096) as u8) ^ seed)
        .collect()
}

fn lease(
    client: &Client<DaemonConnection>,
    write: bool,
    fd: i32,
    buf: u64,
    len: u64,
) -> Result<Reply, Errno> {
    client.call(&lease_request(write, fd, buf, len, Some(0)))
}

/// Write `len` bytes at `offset` with `pwrite` from an arena buffer, read
/// them back (and past the end: short) with `pread`, then the same again
/// at the file position with `write`/`read` in uneven pieces; both ways
/// through the lease and, for comparison, from a buffer outside the arena.
fn round_trip(client: &Client<DaemonConnection>, path: &str, offset: u64, len: usize) {
    // Each round its own files (the host directory's files are not
    // emptied by O_TRUNC): `<path>-<offset>-p` and `-w`.
    let base = format!("{path}-{offset}-{len}");
    let path = format!("{base}-p");
    let path = path.as_str();
    let fd = client
        .open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        .unwrap();
    let data = pattern(len, offset as u8);
    let (_, out) = arena_buffer(client, len);
    out.copy_from_slice(&data);
    assert_eq!(client.pwrite(fd, out, offset).unwrap(), len, "{path}");
    let (_, back) = arena_buffer(client, len + 5000);
    back.fill(0xee);
    // Past the end: short, the bytes exact.
    assert_eq!(client.pread(fd, back, offset).unwrap(), len, "{path}");
    assert!(back[..len] == data[..], "{path}: bytes differ");
    assert!(
        back[len..].iter().all(|&b| b == 0xee),
        "{path}: wrote past the count"
    );
    // The hole before `offset` reads as zeros.
    back.fill(0xee);
    let head = offset as usize;
    let some = len.min(1500);
    assert_eq!(
        client.pread(fd, &mut back[..head + some], 0).unwrap(),
        head + some
    );
    assert!(
        back[..head].iter().all(|&b| b == 0),
        "{path}: hole not zero"
    );
    assert_eq!(back[head..head + some], data[..some]);
    // A buffer outside the arena (through the bulk window) sees what the
    // lease wrote, and writes the same; so does a read of one frame.
    let mut heap = vec![0u8; len + 3000];
    assert_eq!(client.pread(fd, &mut heap, offset).unwrap(), len);
    assert!(
        heap[..len] == data[..],
        "{path}: read through the window differs"
    );
    assert_eq!(client.pwrite(fd, &heap[..len], offset).unwrap(), len);
    let mut small = [0u8; 1000];
    let n = client.pread(fd, &mut small, offset).unwrap();
    assert_eq!(small[..n], data[..n.min(len)]);
    assert_eq!(client.pread(fd, back, offset).unwrap(), len);
    assert!(
        back[..len] == data[..],
        "{path}: bytes differ after the window's write"
    );

    // At the file position, in uneven pieces.
    let fd2 = client
        .open(&format!("{base}-w"), O_CREAT | O_RDWR | O_TRUNC, 0o600)
        .unwrap();
    let mut cuts = vec![0, 1025, 1033, len / 2 + 3, len];
    cuts.retain(|&c| c <= len);
    cuts.sort_unstable();
    cuts.dedup();
    for w in cuts.windows(2) {
        assert_eq!(client.write(fd2, &out[w[0]..w[1]]).unwrap(), w[1] - w[0]);
    }
    assert_eq!(client.lseek(fd2, 0, 0).unwrap(), 0);
    back.fill(0);
    for w in cuts.windows(2) {
        assert_eq!(
            client.read(fd2, &mut back[w[0]..w[1]]).unwrap(),
            w[1] - w[0]
        );
    }
    assert!(back[..len] == data[..], "{path}: positioned bytes differ");
    assert_eq!(
        client.read(fd2, &mut back[..2048]).unwrap(),
        0,
        "{path}: end of file"
    );
    client.close(fd).unwrap();
    client.close(fd2).unwrap();
}

#[test]
fn bytes_round_trip_exactly_through_ramfs_and_hostdir() {
    let scratch = Scratch::new("bulk-lease");
    let data = format!("/data=hostdir:{}", scratch.path().display());
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs", "--mount", &data]);
    let client = d.client();
    // One step, several steps (a read larger than one lease step), odd
    // offsets and lengths.
    // Larger than the bulk window and than one lease step.
    let big = 2 * BULK_WINDOW.max(LEASE_STEP) as usize + 12_345;
    for (offset, len) in [
        (0, 1025),
        (4097, 70_001),
        (3, big),
        (PAGE, 3 * PAGE as usize),
    ] {
        round_trip(&client, "/dev/shm/lease", offset, len);
        round_trip(&client, "/data/lease", offset, len);
        // The host directory holds exactly the bytes written.
        let name = format!("lease-{offset}-{len}");
        let host = std::fs::read(scratch.path().join(format!("{name}-w"))).unwrap();
        assert!(host == pattern(len, offset as u8), "hostdir file differs");
        let host = std::fs::read(scratch.path().join(format!("{name}-p"))).unwrap();
        assert_eq!(host.len(), offset as usize + len);
        assert!(host[offset as usize..] == pattern(len, offset as u8)[..]);
        for end in ["p", "w"] {
            client.unlink(&format!("/dev/shm/{name}-{end}")).unwrap();
        }
    }
}

#[test]
fn a_lease_naming_memory_not_the_callers_is_efault() {
    if child_mode() {
        return;
    }
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]);
    // Another process holding a mapping, at an address it tells.
    let (mut holder, mut lines) = spawn_child(
        &d,
        "hold",
        "a_lease_naming_memory_not_the_callers_is_efault",
    );
    let line = lines.find_map(|l| {
        l.ok()
            .and_then(|l| l.strip_prefix("buffer ").map(str::to_owned))
    });
    let line = line.expect("the holder's buffer and window");
    let (buffer, window) = line.trim().split_once(' ').unwrap();
    let theirs = u64::from_str_radix(buffer, 16).unwrap();
    let their_window = u64::from_str_radix(window, 16).unwrap();
    let client = d.client();
    let fd = client.open("/dev/shm/f", O_CREAT | O_RDWR, 0o600).unwrap();
    assert_eq!(client.pwrite(fd, &[7u8; 3000], 0).unwrap(), 3000);
    let (mine, _) = arena_buffer(&client, 2 * PAGE as usize);
    let ro = client.mmap(0, PAGE, 1, ANON, -1, 0).unwrap();
    let efault = Err(Errno::EFAULT);
    for write in [false, true] {
        // Another process's mapping, and its window.
        assert_eq!(lease(&client, write, fd, theirs, 2048), efault);
        assert_eq!(lease(&client, write, fd, their_window, 2048), efault);
        // Past the end of the caller's own mapping.
        assert_eq!(lease(&client, write, fd, mine + PAGE, 2 * PAGE), efault);
        // Outside the arena, and wrapping around.
        assert_eq!(lease(&client, write, fd, 0x1000, 2048), efault);
        assert_eq!(lease(&client, write, fd, u64::MAX - 100, 2048), efault);
    }
    // A read-only mapping is no destination, but is a source.
    assert_eq!(lease(&client, false, fd, ro, 2048), efault);
    assert_eq!(lease(&client, true, fd, ro, 2048), Ok(Reply::Count(2048)));
    // The caller's own mapping works, and the daemon still serves.
    assert_eq!(
        lease(&client, false, fd, mine, 5000),
        Ok(Reply::Count(3000))
    );
    client.close(fd).unwrap();
    client.unlink("/dev/shm/f").unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
}

/// Start this test binary again as the process `mode` names (`test` is
/// the test that plays it); its output lines.
fn spawn_child(d: &Daemon, mode: &str, test: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(CHILD, format!("{mode}:{}", d.socket.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// In a re-executed test binary: play the process [`CHILD`] names and
/// never return (`false` in the test process itself).
fn child_mode() -> bool {
    let Ok(spec) = std::env::var(CHILD) else {
        return false;
    };
    let (mode, socket) = spec.split_once(':').unwrap();
    let client = DaemonConnection::connect(socket).unwrap();
    match mode {
        // Hold a mapping and say where it is, until killed.
        "hold" => {
            let (addr, _) = arena_buffer(&client, 2 * PAGE as usize);
            let Ok(Reply::Mapped { addr: window }) = client.call(&Request::BulkWindow) else {
                panic!("no bulk window")
            };
            println!("buffer {addr:x} {window:x}");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        _ => lease_loop(&client),
    }
}

/// The killed process: a client reading and writing a ramfs file by lease,
/// from arena memory and through its bulk window, until it is killed.
fn lease_loop(client: &Client<DaemonConnection>) -> ! {
    let fd = client
        .open("/dev/shm/victim", O_CREAT | O_RDWR, 0o600)
        .unwrap();
    let len = 3 * LEASE_STEP as usize;
    let (_, buf) = arena_buffer(client, len);
    let mut heap = vec![0u8; len];
    println!("ready");
    loop {
        assert_eq!(client.pwrite(fd, buf, 1).unwrap(), len);
        assert_eq!(client.pread(fd, &mut heap, 1).unwrap(), len);
        assert_eq!(client.pwrite(fd, &heap, 1).unwrap(), len);
        assert_eq!(client.pread(fd, buf, 1).unwrap(), len);
    }
}

#[test]
fn a_process_killed_with_leases_in_flight_loses_nothing() {
    if child_mode() {
        return;
    }
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]);
    let watcher = d.client();
    let before = daemon::proc_text(&watcher, protocol::ProcView::Meminfo);
    for round in 0..3 {
        let test = "a_process_killed_with_leases_in_flight_loses_nothing";
        let (mut child, mut lines) = spawn_child(&d, "loop", test);
        assert!(
            lines.any(|l| l.is_ok_and(|l| l.trim() == "ready")),
            "round {round}: the child did not start"
        );
        // Let it have leases in flight, then kill it mid-call.
        std::thread::sleep(Duration::from_millis(30 + 20 * round));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // The file is the only thing left; once it is gone, meminfo is as it
    // was before (releases happen on connection threads: give them time).
    let deadline = Instant::now() + Duration::from_secs(10);
    while watcher.unlink("/dev/shm/victim").is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    loop {
        let now = daemon::proc_text(&watcher, protocol::ProcView::Meminfo);
        if now == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "meminfo before:\n{before}\nafter:\n{now}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
