//! File mappings between host processes: C programs linked with
//! `libnommu.a` open files with plain `open()` — under the daemon's
//! `--mount`s (romfs, ramfs, a host directory as a copy-only filesystem)
//! or outside them (host files) — and map them with plain `mmap()`.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{
    c_command, create_and_join, meminfo_field, parse_addr, pattern, proc_text, romfs_image,
    run_expecting, Daemon, Interactive, Scratch,
};
use protocol::linux::{MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};
use protocol::{Errno, ProcView};
use std::time::{Duration, Instant};

/// FNV-1a, as `mapfile` prints it.
fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

/// No copy memory held and no region left, as the daemon says.
fn assert_no_copies(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let meminfo = d.ctl(&["meminfo"]);
        let copy = meminfo_field(&meminfo, "MmapCopy").unwrap();
        if copy == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "copies left:\n{meminfo}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `mapfile` holding a mapping: returns the program and the address.
fn hold(d: &Daemon, args: &[&str]) -> (Interactive, u64, String) {
    let mut cmd = c_command(d, "mapfile");
    cmd.args(args).arg("hold");
    let mut prog = Interactive::spawn(cmd);
    let addr = parse_addr(&prog.expect("addr "));
    let sum = prog.expect("sum ");
    prog.expect("read ok");
    prog.expect("ready");
    (prog, addr, sum)
}

#[test]
fn two_c_programs_map_one_romfs_file_at_one_address() {
    let scratch = Scratch::new("romfs");
    let t = pattern(20000, 0x5a);
    let image = romfs_image(&scratch, &[("t", &t), ("lib/u", b"a small file")]);
    let mount = format!("/rom=romfs:{}", image.display());
    let d = Daemon::start_with(&["--mount", &mount]);

    let (a, addr_a, sum_a) = hold(&d, &["/rom/t", "8192", "r", "private"]);
    // The shim's path test is lexical: this is /rom/t too.
    let (b, addr_b, sum_b) = hold(&d, &["//rom/./lib/../t", "8192", "r", "private"]);
    assert_eq!(
        addr_a, addr_b,
        "two read-only private mappings of a romfs file"
    );
    assert_eq!(sum_a, fnv(&t[..8192]));
    assert_eq!(sum_b, sum_a);
    // Direct (execute in place): the address of the data inside the
    // image, not page aligned, and no copy made.
    assert_ne!(addr_a % 4096, 0, "romfs data sits after its header");
    assert_eq!(
        meminfo_field(&d.ctl(&["meminfo"]), "MmapCopy"),
        Some(0),
        "a direct mapping copies nothing"
    );

    // This process (arena at the same address) sees the same bytes, and
    // its own mapping lands there too.
    let client = d.client();
    let fd = client.open("/rom/t", 0, 0).unwrap();
    let addr = client.mmap(0, 8192, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(addr, addr_a);
    // SAFETY: [addr, addr+8192) is a live mapping inside the arena, which
    // this process maps for as long as `client` lives.
    let bytes = unsafe { std::slice::from_raw_parts(addr as usize as *const u8, 8192) };
    assert_eq!(bytes, &t[..8192]);
    // romfs is read-only: a writable shared mapping needs write access.
    assert_eq!(
        client.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
        Err(Errno::EACCES)
    );
    assert_eq!(client.open("/rom/t", 2, 0), Err(Errno::EROFS));
    client.munmap(addr, 8192).unwrap();
    client.close(fd).unwrap();

    a.finish();
    b.finish();
    // Read-execute at a page offset: direct too, the same bytes as read().
    let out = run_expecting(
        c_command(&d, "mapfile").args(["/rom/t", "4096", "rx", "private", "1"]),
        "mapfile /rom/t rx",
        &["size 20000"],
    );
    assert!(
        out.contains(&format!("sum {}", fnv(&t[4096..8192]))),
        "{out}"
    );
    assert!(out.contains("read ok"), "{out}");
    // A file in a directory, read through the server.
    let fd = client.open("/rom/lib/u", 0, 0).unwrap();
    assert_eq!(client.fstat(fd).unwrap().size, 12);
    let mut buf = [0u8; 64];
    assert_eq!(client.read(fd, &mut buf), Ok(12));
    assert_eq!(&buf[..12], b"a small file");
    client.close(fd).unwrap();
    drop(client);
    assert_no_copies(&d);
}

#[test]
fn a_copy_only_file_refuses_shared_and_private_is_a_snapshot() {
    let dir = Scratch::new("hostdir");
    let f = pattern(10000, 0x33);
    std::fs::write(dir.join("f"), &f).unwrap();
    std::fs::write(dir.join("g"), pattern(5000, 0x44)).unwrap();
    let mount = format!("/data=hostdir:{}", dir.path().display());
    let d = Daemon::start_with(&["--mount", &mount]);

    // A mapping held across the changes below: a snapshot of the file.
    let (mut held, held_addr, held_sum) = hold(&d, &["/data/g", "8192", "r", "private"]);
    let mut g = pattern(5000, 0x44);
    g.resize(8192, 0);
    assert_eq!(held_sum, fnv(&g), "the copy is the file, zero past its end");
    assert_eq!(held_addr % 4096, 0, "a copy is page aligned");

    run_expecting(
        c_command(&d, "copyonly").args(["/data/f", "/data/new"]),
        "copyonly",
        &["copyonly: ok"],
    );
    // The server's writes went to the host files.
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), vec![b'Z'; 10000]);
    assert_eq!(std::fs::read(dir.join("new")).unwrap(), b"new file\n");

    // Writes to the file behind the copy, from the host and through the
    // server, do not reach it.
    std::fs::write(dir.join("g"), vec![0xee; 5000]).unwrap();
    let client = d.client();
    let fd = client.open("/data/g", 2, 0).unwrap();
    assert_eq!(client.pwrite(fd, b"through the server", 0), Ok(18));
    // Another private mapping of the range shares the snapshot (spec
    // §3.3): same address, old bytes.
    let again = client.mmap(0, 8192, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(again, held_addr);
    assert_eq!(
        client.mmap(0, 8192, PROT_READ, MAP_SHARED, fd, 0),
        Err(Errno::ENODEV)
    );
    held.say("again");
    assert_eq!(held.expect("sum "), held_sum);
    held.finish();
    client.munmap(again, 8192).unwrap();
    client.close(fd).unwrap();
    drop(client);
    assert_no_copies(&d);

    // With every copy gone, a new mapping reads the file as it is now.
    let mut now = b"through the server".to_vec();
    now.extend(vec![0xee; 5000 - 18]);
    now.resize(4096, 0);
    run_expecting(
        c_command(&d, "mapfile").args(["/data/g", "4096", "r", "private"]),
        "mapfile /data/g",
        &[&format!("sum {}", fnv(&now))],
    );
}

#[test]
fn host_files_map_as_copies_through_the_daemon() {
    let dir = Scratch::new("hostfiles");
    let d = Daemon::start();
    let file = dir.join("host-file");
    run_expecting(
        c_command(&d, "hostfds").arg(&file),
        "hostfds",
        &["hostfds: ok"],
    );
    // The host file is what the program wrote, through the host.
    let on_disk = std::fs::read(&file).unwrap();
    assert_eq!(on_disk.len(), 6000);
    assert_eq!(&on_disk[..4], b"XXXX");
    assert_no_copies(&d);

    // mapfile with a host path: plain open() by the host, mmap through
    // the daemon.
    let data = pattern(9000, 0x77);
    std::fs::write(&file, &data).unwrap();
    let path = file.to_str().unwrap();
    let mut want = data.clone();
    want.resize(12288, 0);
    run_expecting(
        c_command(&d, "mapfile").args([path, "12288", "r", "private"]),
        "mapfile host file",
        &[&format!("sum {}", fnv(&want))],
    );
    // MAP_SHARED of a host file: ENODEV.
    run_expecting(
        c_command(&d, "mapfile").args([path, "4096", "r", "shared"]),
        "mapfile host file shared",
        &["errno 19"],
    );
}

#[test]
fn posix_shm_on_a_memory_filesystem_is_shared_between_processes() {
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs", "--mount", "/tmp=tmpfs"]);
    for dir in ["/dev/shm", "/tmp"] {
        let path = format!("{dir}/segment");
        // Both processes map the file's pages in place.
        create_and_join(&d, "shm", &path, &path, "check");
        // The global /proc/maps names no region of it any more, and this
        // process still finds the file with its bytes.
        let client = d.client();
        assert!(!proc_text(&client, ProcView::GlobalMaps).contains("segment"));
        let fd = client.open(&path, 0, 0).unwrap();
        let mut buf = [0u8; 11];
        assert_eq!(client.pread(fd, &mut buf, 0), Ok(11));
        assert_eq!(&buf, b"from create");
        assert_eq!(client.fstat(fd).unwrap().size, 8192);
        client.close(fd).unwrap();
    }
}
