//! `memsrvd`'s limits on what one process and one user hold
//! (`--max-process-memory`, `--max-user-memory`, `--max-clients-per-user`,
//! `--max-map-count`): `mmap` beyond them fails `ENOMEM`, `shmget`,
//! `ftruncate` and `write` `ENOSPC`, a connection beyond a user's slots is
//! refused `EAGAIN`; a killed process gives everything back; the holdings
//! show in `/proc/<pid>/status` and `nommu-ctl users`.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{c_command, Daemon, Interactive, NOBODY};
use nommu::transport::{ConnectError, DaemonConnection};
use protocol::linux::{IPC_CREAT, IPC_PRIVATE, MAP_ANONYMOUS, MAP_PRIVATE, O_CREAT, O_RDWR};
use protocol::Errno;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

const K: u64 = 1024;
const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
const RW: u32 = 3;

type Client = nommu::Client<DaemonConnection>;

fn map(c: &Client, len: u64) -> Result<u64, Errno> {
    c.mmap(0, len, RW, ANON, -1, 0)
}

/// Run `limits` with `steps` (as `uid` if given); its output lines.
fn run_c(d: &Daemon, uid: Option<u32>, steps: &[&str]) -> Vec<String> {
    let mut cmd = c_command(d, "limits");
    cmd.args(steps);
    if let Some(id) = uid {
        cmd.uid(id).gid(id);
    }
    let out = daemon::check(cmd.output().expect("run limits"), "limits");
    out.lines().map(str::to_string).collect()
}

fn users(d: &Daemon) -> Value {
    let out = d.ctl(&["users", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The `users --json` entry of `uid`, if it holds anything.
fn user(d: &Daemon, uid: u32) -> Option<Value> {
    users(d)["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["uid"] == uid)
        .cloned()
}

#[test]
fn a_process_beyond_its_limit_gets_enomem_while_another_still_maps() {
    let d = Daemon::start_with(&["--process-per-connection", "--max-process-memory=64K"]);
    let (a, b) = (d.client(), d.client());
    let first = map(&a, 48 * K).unwrap();
    assert_eq!(map(&a, 20 * K), Err(Errno::ENOMEM));
    map(&a, 16 * K).unwrap();
    assert_eq!(map(&a, 4 * K), Err(Errno::ENOMEM));
    // mremap growing past the limit too.
    assert_eq!(a.mremap(first, 48 * K, 52 * K, 1, 0), Err(Errno::ENOMEM));
    // The other process holds its own 64K.
    map(&b, 64 * K).unwrap();
    assert_eq!(map(&b, 4 * K), Err(Errno::ENOMEM));
    a.munmap(first, 48 * K).unwrap();
    map(&a, 48 * K).unwrap();
}

#[test]
fn the_user_limit_spans_one_uids_processes_and_not_another_uid() {
    let d = Daemon::start_with(&["--process-per-connection", "--max-user-memory=64K"]);
    let (a, b) = (d.client(), d.client());
    map(&a, 40 * K).unwrap();
    assert_eq!(map(&b, 32 * K), Err(Errno::ENOMEM));
    map(&b, 24 * K).unwrap();
    // Another user's process has its own 64K, whatever root holds (its C
    // library's allocations take some of them: 17 pages alone are too many).
    let other = run_c(&d, Some(NOBODY), &["map:8", "map:17"]);
    assert_eq!(other, ["map ok", "map ENOMEM"]);
    let root = user(&d, 0).unwrap();
    assert_eq!(root["mapped_bytes"], 64 * K);
    // nobody's process has ended: its pages are no longer charged.
    assert!(user(&d, NOBODY).is_none(), "{}", users(&d));
}

#[test]
fn segments_and_memory_files_beyond_the_user_limit_get_enospc() {
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs", "--max-user-memory=64K"]);
    let c = d.client();
    assert_eq!(
        c.shmget(IPC_PRIVATE, 80 * K, IPC_CREAT | 0o600),
        Err(Errno::ENOSPC)
    );
    let id = c.shmget(IPC_PRIVATE, 32 * K, IPC_CREAT | 0o600).unwrap();
    let fd = c.open("/dev/shm/limits", O_CREAT | O_RDWR, 0o600).unwrap();
    assert_eq!(c.ftruncate(fd, 40 * K), Err(Errno::ENOSPC));
    let grown = c.open("/dev/shm/grown", O_CREAT | O_RDWR, 0o600).unwrap();
    // Written page by page: what fits is written, then the file is full.
    let data = vec![7u8; 40 * K as usize];
    assert_eq!(c.write(grown, &data), Ok(32 * K as usize));
    assert_eq!(c.write(grown, &data[..4096]), Err(Errno::ENOSPC));
    let held = user(&d, 0).unwrap();
    assert_eq!(held["shm_bytes"], 32 * K, "{held}");
    // Removing the segment and the file gives the room back.
    c.shm_remove(id).unwrap();
    c.close(grown).unwrap();
    c.unlink("/dev/shm/grown").unwrap();
    c.ftruncate(fd, 40 * K).unwrap();
}

#[test]
fn connections_beyond_a_users_slots_are_refused_eagain() {
    let d = Daemon::start_with(&["--max-clients-per-user=2"]);
    let a = d.client();
    let _b = d.client();
    let refused = DaemonConnection::connect(&d.socket).err();
    assert_eq!(refused, Some(ConnectError::Refused(Errno::EAGAIN)));
    let message = refused.unwrap().to_string();
    assert!(message.contains("--max-clients-per-user"), "{message}");
    // A C program sees its first call fail EAGAIN.
    let c = run_c(&d, None, &["map:1"]);
    assert_eq!(c, ["map EAGAIN"]);
    // Another user has slots of its own.
    assert_eq!(run_c(&d, Some(NOBODY), &["map:1"]), ["map ok"]);
    // A slot comes back when its connection closes.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while DaemonConnection::connect(&d.socket).is_err() {
        assert!(Instant::now() < deadline, "the slot never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_map_count_cap_refuses_the_next_mapping_enomem() {
    let d = Daemon::start_with(&["--max-map-count=8"]);
    let c = d.client();
    for _ in 0..8 {
        map(&c, 4 * K).unwrap();
    }
    assert_eq!(map(&c, 4 * K), Err(Errno::ENOMEM));
}

#[test]
fn killing_a_limited_process_releases_and_uncharges_everything() {
    let d = Daemon::start_with(&["--max-process-memory=1M", "--max-user-memory=2M"]);
    let mut held = Interactive::spawn({
        let mut cmd = c_command(&d, "limits");
        cmd.args(["map:8", "map:16", "map:8", "hold"]);
        cmd
    });
    for _ in 0..3 {
        assert_eq!(held.expect("map "), "ok");
    }
    held.expect("ready");
    // The C library's allocations come on top.
    let mapped = user(&d, 0).unwrap()["mapped_bytes"].as_u64().unwrap();
    assert!(mapped >= 128 * K, "{mapped}");
    held.child.kill().unwrap();
    held.child.wait().unwrap();
    d.assert_all_free();
    let deadline = Instant::now() + Duration::from_secs(10);
    while user(&d, 0).is_some_and(|u| u["held_bytes"] != 0) {
        assert!(Instant::now() < deadline, "still charged: {}", users(&d));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The whole allowance is back: 200 of the 256 pages map, 57 more
    // would pass the limit.
    assert_eq!(
        run_c(&d, None, &["map:200", "map:57"]),
        ["map ok", "map ENOMEM"]
    );
}

#[test]
fn proc_status_reads_in_linuxs_format() {
    let d = Daemon::start();
    let out = run_c(&d, Some(NOBODY), &["map:4", "map:2", "status"]);
    let field = |name: &str| -> String {
        out.iter()
            .find_map(|l| l.strip_prefix(&format!("{name}:\t")))
            .unwrap_or_else(|| panic!("no {name} in {out:?}"))
            .to_string()
    };
    assert_eq!(field("Name"), "limits");
    assert_eq!(field("State"), "R (running)");
    assert_eq!(field("Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(field("Gid"), "65534\t65534\t65534\t65534");
    let pid: u32 = field("Pid").parse().unwrap();
    assert_eq!(field("Tgid"), pid.to_string());
    // The C library's own allocations come on top of the 24K mapped here.
    let kb = |name: &str| -> u64 {
        let v = field(name);
        assert!(v.ends_with(" kB") && v.len() == 11, "{name}: {v:?}");
        v.trim_end_matches(" kB").trim().parse().unwrap()
    };
    assert!(
        kb("VmSize") >= 24 && kb("VmPeak") >= kb("VmSize"),
        "{out:?}"
    );
    assert_eq!(kb("VmRSS"), kb("VmSize"));
    let order: Vec<&str> = out.iter().filter_map(|l| l.split(':').next()).collect();
    let linux = [
        "Name",
        "Umask",
        "State",
        "Tgid",
        "Pid",
        "PPid",
        "TracerPid",
        "Uid",
        "Gid",
        "VmPeak",
        "VmSize",
        "VmHWM",
        "VmRSS",
        "RssAnon",
        "RssFile",
        "RssShmem",
    ];
    assert_eq!(order[2..], linux, "{out:?}");
}

#[test]
fn nommu_ctl_users_shows_each_uid_against_its_limit() {
    let d = Daemon::start_with(&["--max-user-memory=1M", "--max-clients-per-user=8"]);
    let c = d.client();
    map(&c, 12 * K).unwrap();
    c.shmget(IPC_PRIVATE, 8 * K, IPC_CREAT | 0o600).unwrap();
    let text = d.ctl(&["users"]);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("limits: process unlimited kB, user 1024 kB, clients per user 8")
    );
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header[0], "UID");
    let root: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // uid, held, limit, mapped, shm, fs, processes (this client,
    // nommu-ctl and the daemon's host-file driver), connections (the
    // built-in driver holds no user's slot).
    assert_eq!(
        root,
        ["0", "20", "1024", "12", "8", "0", "3", "2"],
        "{text}"
    );
    let j = users(&d);
    assert_eq!(j["limits"]["user_bytes"], 1024 * K);
    assert_eq!(j["limits"]["process_bytes"], Value::Null);
    assert_eq!(j["users"][0]["held_bytes"], 20 * K);
    assert_eq!(j["users"][0]["shm_bytes"], 8 * K);
}
