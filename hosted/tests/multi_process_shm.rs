//! Shared memory, futexes and mremap between C programs linked with
//! `libnommu.a`, each a host process of its own, against a private
//! `memsrvd`: the seed's futex demonstration across two processes, a
//! process killed while holding a segment, a POSIX shm object and a futex
//! wait, POSIX shm between two processes, and mremap with and without the
//! move extension.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{
    c_command, c_program_alone, check, create_and_join, parse_addr, run_expecting, ChildGuard,
    Daemon, Interactive,
};
use protocol::linux::FUTEX_WAKE;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The `nommu-ctl ipcs` row of segment `shmid`, split into its columns
/// (key shmid owner perms bytes nattch [status]).
fn ipcs_row(d: &Daemon, shmid: i32) -> Option<Vec<String>> {
    let text = d.ctl(&["ipcs"]);
    text.lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|cols| cols.len() >= 6 && cols[0].starts_with("0x") && cols[1] == shmid.to_string())
}

#[test]
fn seed_futex_demonstration_across_two_processes() {
    let d = Daemon::start();
    let mut waiter = Interactive::spawn(c_command(&d, "futex_wait"));
    let wait = waiter.expect("WAIT:");
    let (addr, value) = wait.split_once('{').expect("WAIT: addr{value}");
    assert_eq!(value, "0}");
    let woke = check(c_command(&d, "futex_wake").output().unwrap(), "futex_wake");
    let wake_line = woke
        .lines()
        .find_map(|l| l.strip_prefix("WAKE: "))
        .unwrap_or_else(|| panic!("no WAKE line: {woke}"));
    let (wake_addr, wake_value) = wake_line.split_once('{').unwrap();
    assert_eq!(parse_addr(wake_addr), parse_addr(addr), "{woke}");
    assert_eq!(wake_value, "1}");
    assert!(woke.contains("WOKE: 1"), "{woke}");
    assert_eq!(waiter.expect("WAITED:"), "0");
    waiter.finish();
    // Segment 23 is left over (nobody removed it): remove it and every page
    // is free again.
    let c = d.client();
    let id = c.shmget(23, 0, 0).expect("segment 23 exists");
    let row = ipcs_row(&d, id).expect("ipcs lists segment 23");
    assert_eq!(row[0], "0x00000017");
    assert_eq!(row[3], "666");
    assert_eq!(row[4], "4");
    assert_eq!(row[5], "0");
    c.shm_remove(id).unwrap();
    assert!(ipcs_row(&d, id).is_none());
    drop(c);
    d.assert_all_free();
}

#[test]
fn killed_process_leaves_no_attachment_waiter_or_page_behind() {
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]);
    let key = 0x5eed;
    let mut child = c_command(&d, "shm_victim")
        .args([key.to_string().as_str(), "/victim"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn shm_victim");
    let stdout = child.stdout.take().unwrap();
    let mut guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"READY"), "{line:?}");
    let id: i32 = words[1].parse().unwrap();
    let seg = parse_addr(words[2]);

    // This process attaches too: the same address, two attachments.
    let c = d.client();
    assert_eq!(c.shmget(key, 0, 0).unwrap(), id);
    let at = c.shmat(id, 0, 0).unwrap();
    assert_eq!(at, seg);
    assert_eq!(c.shm_stat(id).unwrap().nattch, 2);
    assert_eq!(ipcs_row(&d, id).unwrap()[5], "2");
    // Let the victim reach its futex wait.
    std::thread::sleep(Duration::from_millis(200));

    guard.0.kill().unwrap();
    guard.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.shm_stat(id).unwrap().nattch != 1 {
        assert!(Instant::now() < deadline, "the victim's attachment stayed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ipcs_row(&d, id).unwrap()[5], "1");
    // Its futex waiter went with it: nobody left to wake.
    assert_eq!(c.futex(seg, FUTEX_WAKE, 1, None, 0, 0, 0).unwrap(), 0);
    // The POSIX object outlives it (still named) until unlinked.
    c.unlink("/dev/shm/victim").unwrap();
    c.shmdt(at).unwrap();
    c.shm_remove(id).unwrap();
    drop(c);
    d.assert_all_free();
}

#[test]
fn posix_shm_between_two_processes_survives_close_and_unlink() {
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]);
    create_and_join(&d, "posix_shm", "/pshm", "pshm", "go");
    run_expecting(
        c_command(&d, "posix_shm").arg("names"),
        "posix_shm names",
        &["posix_shm: ok"],
    );
    d.assert_all_free();
}

#[test]
fn mremap_moves_by_default() {
    c_program_alone(&[], "mremap", &["move"], &["moved: 1", "mremap: ok"]);
}

#[test]
fn mremap_strict_refuses_to_move() {
    c_program_alone(
        &["--strict-mremap"],
        "mremap",
        &["strict"],
        &["moved: 0", "mremap: ok"],
    );
}

#[test]
fn futex_timeouts_and_a_waiting_thread_blocks_no_other() {
    c_program_alone(&[], "futex_threads", &[], &["futex_threads: ok"]);
}

#[test]
fn shmctl_from_c_fills_a_real_shmid_ds() {
    c_program_alone(&[], "shmctl", &["4242"], &["shmctl: ok"]);
}

#[test]
fn small_memory_calls_are_enosys_on_server_memory_and_the_hosts_elsewhere() {
    c_program_alone(&[], "memcalls", &[], &["memcalls: ok"]);
}

#[test]
fn futex_requeue_takes_val2_from_the_timeout_argument() {
    c_program_alone(&[], "futex_requeue", &[], &["futex_requeue: ok"]);
}
