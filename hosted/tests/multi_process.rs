//! C programs linked with `libnommu.a`, running as separate host processes
//! against a private `memsrvd`: plain `mmap`/`munmap` go to the server, the
//! arena is at the same address in every process, and a client that dies
//! holding memory gives all of it back.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{
    c_command, c_program_alone, check, meminfo_field, proc_text, run_expecting, ChildGuard, Daemon,
};
use protocol::ProcView;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Start C program `hold` and wait for its "ready"; returns the guard and
/// the mappings it reported.
fn start_holder(d: &Daemon, mappings: u32, pages: u32, byte: u8) -> (ChildGuard, Vec<(u64, u64)>) {
    let mut child = c_command(d, "hold")
        .args([mappings.to_string(), pages.to_string(), byte.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hold");
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(child);
    let mut held = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read hold output");
        if line == "ready" {
            return (guard, held);
        }
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("hold"), "unexpected line {line:?}");
        let addr = u64::from_str_radix(words.next().unwrap().trim_start_matches("0x"), 16).unwrap();
        let len = words.next().unwrap().parse().unwrap();
        held.push((addr, len));
    }
    panic!("hold exited before it was ready");
}

#[test]
fn c_program_maps_writes_reads_back_and_unmaps() {
    c_program_alone(
        &[],
        "basic",
        &["16"],
        &["basic: ok", "--- self/maps", "MemTotal:"],
    );
}

#[test]
fn several_c_programs_at_once() {
    let d = Daemon::start();
    let children: Vec<_> = (0..6)
        .map(|_| {
            c_command(&d, "basic")
                .arg("40")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn basic")
        })
        .collect();
    for child in children {
        let out = check(child.wait_with_output().unwrap(), "basic");
        assert!(out.contains("basic: ok"));
    }
    d.assert_all_free();
}

#[test]
fn multi_threaded_c_client() {
    c_program_alone(&[], "threads", &["8", "200"], &["threads: ok"]);
}

#[test]
fn multi_threaded_c_client_over_the_socket_path() {
    let d = Daemon::start();
    run_expecting(
        c_command(&d, "threads")
            .env("NOMMU_TRANSPORT", "socket")
            .args(["4", "100"]),
        "threads (socket)",
        &["threads: ok"],
    );
    d.assert_all_free();
}

#[test]
fn killed_client_releases_everything_and_others_are_still_served() {
    let d = Daemon::start();
    let (mut holder, held) = start_holder(&d, 5, 3, 0x5a);
    assert_eq!(held.len(), 5);
    let pid = holder.0.id();
    let meminfo = d.ctl(&["meminfo"]);
    let free = meminfo_field(&meminfo, "MemFree").unwrap();
    let total = meminfo_field(&meminfo, "MemTotal").unwrap();
    assert!(free < total, "the holder holds nothing?\n{meminfo}");
    let maps = d.ctl(&["maps", &pid.to_string()]);
    for (addr, _) in &held {
        assert!(maps.contains(&format!("{addr:08x}")), "{maps}");
    }

    holder.0.kill().expect("SIGKILL the holder");
    holder.0.wait().unwrap();
    d.assert_all_free();
    let maps = d.ctl(&["maps"]);
    for (addr, _) in &held {
        assert!(
            !maps.contains(&format!("{addr:08x}")),
            "still listed:\n{maps}"
        );
    }

    // Another client is still served, in this process and as a C program.
    let client = d.client();
    let addr = client.mmap(0, 4096, 3, 0x22, -1, 0).unwrap();
    client.munmap(addr, 4096).unwrap();
    run_expecting(c_command(&d, "basic").arg("4"), "basic", &["basic: ok"]);
    drop(client);
    d.assert_all_free();
}

#[test]
fn one_address_means_the_same_bytes_in_every_process() {
    let d = Daemon::start();
    let (holder, held) = start_holder(&d, 2, 2, 0xa7);
    let pid = holder.0.id();
    // The global /proc/maps lists the holder's regions at those addresses.
    let client = d.client();
    let maps = proc_text(&client, ProcView::GlobalMaps);
    for (addr, _) in &held {
        assert!(maps.contains(&format!("{addr:08x}")), "{maps}");
    }
    let own = proc_text(&client, ProcView::ProcessMaps { pid });
    assert!(own.contains(&format!("{:08x}", held[0].0)), "{own}");
    // Another process reads the holder's bytes at the holder's address.
    for (addr, len) in &held {
        let out = c_command(&d, "peek")
            .args([format!("{addr:#x}"), len.to_string(), "0xa7".into()])
            .output()
            .unwrap();
        check(out, "peek");
    }
    // And so does this process, whose arena mapping is at the same place.
    let (base, size) = client.transport().arena();
    for (addr, len) in &held {
        assert!(*addr >= base && addr + len <= base + size);
        // SAFETY: [addr, addr+len) lies inside the arena, which this
        // process maps (shared, read-write) for as long as `client` lives.
        let bytes =
            unsafe { std::slice::from_raw_parts(*addr as usize as *const u8, *len as usize) };
        assert!(bytes.iter().all(|b| *b == 0xa7));
    }
    drop(holder);
    drop(client);
    d.assert_all_free();
}

#[test]
fn rust_clients_on_threads_share_one_process() {
    let d = Daemon::start();
    let a = d.client();
    let b = d.socket_client();
    assert_eq!(
        a.transport().welcome().pid,
        b.transport().welcome().pid,
        "two connections of one host process speak for it"
    );
    std::thread::scope(|s| {
        for client in [&a, &b] {
            s.spawn(move || {
                for i in 0..200u64 {
                    let len = (i % 4 + 1) * 4096;
                    let addr = client.mmap(0, len, 3, 0x22, -1, 0).unwrap();
                    client.munmap(addr, len).unwrap();
                }
            });
        }
    });
    drop((a, b));
    d.assert_all_free();
}

#[test]
fn calls_to_a_dead_daemon_fail_instead_of_hanging() {
    let mut d = Daemon::start();
    let fast = d.client();
    let slow = d.socket_client();
    assert!(fast.transport().uses_fast_path());
    assert!(!slow.transport().uses_fast_path());
    let addr = fast.mmap(0, 4096, 3, 0x22, -1, 0).unwrap();
    d.child().kill().unwrap();
    d.child().wait().unwrap();
    let start = Instant::now();
    assert_eq!(fast.munmap(addr, 4096), Err(protocol::Errno::ENOTCONN));
    assert_eq!(
        slow.mmap(0, 4096, 3, 0x22, -1, 0),
        Err(protocol::Errno::ENOTCONN)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn no_wake_up_is_lost_across_sleeps() {
    // Calls separated by pauses of every length around the spin budgets
    // land on both sides of each sleep/wake boundary; any lost wake-up
    // would stall a call until the bounded wait expires (50 ms), so the
    // whole run is timed against a generous ceiling.
    let d = Daemon::start();
    let clients = [d.client(), d.client(), d.client()];
    let start = Instant::now();
    std::thread::scope(|s| {
        for (i, client) in clients.iter().enumerate() {
            s.spawn(move || {
                let mut seed = 0x9e37_79b9_u64 + i as u64;
                for _ in 0..600 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let pause = Duration::from_micros(seed % 120);
                    let addr = client.mmap(0, 4096, 3, 0x22, -1, 0).unwrap();
                    std::thread::sleep(pause);
                    client.munmap(addr, 4096).unwrap();
                    if seed.is_multiple_of(7) {
                        std::thread::sleep(pause * 5);
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    drop(clients);
    d.assert_all_free();
}
