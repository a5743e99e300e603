//! `/proc/<pid>/status`'s identity lines in the hosted homes, column by
//! column: in `memsrvd` what the host kernel holds of the process at the
//! time of the read (`Umask`, `PPid`, the real, saved set and filesystem
//! ids; the effective ones as `SCM_CREDENTIALS` vouched), checked against
//! the host's own `/proc/<pid>/status` (same lines, field order and
//! separators) for a process that switched its effective ids with
//! `seteuid` as root; in the threads home the process's own record.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{assert_root, proc_text, Daemon, Interactive};
use hosted::threads::ThreadsHome;
use memsrv::Credentials;
use protocol::linux::CLONE_VM;
use protocol::ProcView;
use std::process::Command;

/// The environment variable that makes this binary the switched process:
/// the daemon's socket.
const SWITCHED: &str = "NOMMU_STATUS_SWITCHED";

/// The lines memsrv and the host must show alike, for the same process
/// read by the same reader (not `State`: the host shows the main
/// thread's, which waits for the test's thread).
const SAME: [&str; 8] = [
    "Name",
    "Umask",
    "Tgid",
    "Pid",
    "PPid",
    "TracerPid",
    "Uid",
    "Gid",
];

/// Not a test of its own: the switched process, run only in a copy of
/// this binary started with [`SWITCHED`] set. As root it sets its umask
/// to 027, connects, takes effective ids 1000 (real and saved stay 0),
/// prints its status as memsrv shows it (`M:` lines) and as the host
/// does (`H:` lines), says `READY` and waits for a line on stdin.
#[test]
fn switched_entry() {
    let Ok(socket) = std::env::var(SWITCHED) else {
        return;
    };
    // SAFETY: umask, setegid and seteuid touch no memory; glibc applies
    // the ids to every thread of the process.
    unsafe {
        libc::umask(0o027);
    }
    let client = nommu::transport::DaemonConnection::connect(&socket).unwrap();
    // SAFETY: as above.
    unsafe {
        assert_eq!(libc::setegid(1000), 0);
        assert_eq!(libc::seteuid(1000), 0);
    }
    let memsrv = proc_text(&client, ProcView::SelfStatus);
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    println!();
    for l in memsrv.lines() {
        println!("M:{l}");
    }
    for l in host.lines() {
        println!("H:{l}");
    }
    println!("READY");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.split_once(":\t").is_some_and(|(f, _)| f == name))
}

/// memsrv's status text agrees with the host's: every line of [`SAME`]
/// equal, every field memsrv shows present in the host's text in the same
/// order, the memory counts in the host's `%8lu kB` form.
fn assert_like_the_host(memsrv: &str, host: &str) {
    for name in SAME {
        assert_eq!(
            field(memsrv, name),
            field(host, name),
            "{name}\n{memsrv}\n{host}"
        );
    }
    let fields: Vec<&str> = memsrv
        .lines()
        .map(|l| l.split_once(":\t").expect("Field:\\tvalue").0)
        .collect();
    let at: Vec<usize> = fields
        .iter()
        .map(|f| {
            host.lines()
                .position(|l| l.starts_with(&format!("{f}:\t")))
                .unwrap_or_else(|| panic!("the host has no {f}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "order {fields:?}");
    for l in memsrv
        .lines()
        .filter(|l| l.starts_with("Vm") || l.starts_with("Rss"))
    {
        let (f, value) = l.split_once(":\t").unwrap();
        let theirs = field(host, f).unwrap().split_once(":\t").unwrap().1;
        assert_eq!(value.len(), theirs.len(), "{l} / {theirs}");
        assert!(value.ends_with(" kB") && theirs.ends_with(" kB"));
    }
}

#[test]
fn memsrvd_shows_the_kernels_ids_umask_and_parent_of_a_switched_process() {
    assert_root();
    let d = Daemon::start();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "switched_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(SWITCHED, &d.socket);
    let mut child = Interactive::spawn(cmd);
    child.expect("READY");
    let lines = |prefix: &str| -> String {
        child
            .seen
            .iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let (memsrv, host) = (lines("M:"), lines("H:"));
    // Its own read: as the host shows it to itself.
    assert_like_the_host(&memsrv, &host);
    assert_eq!(field(&memsrv, "Umask"), Some("Umask:\t0027"));
    assert_eq!(
        field(&memsrv, "PPid"),
        Some(format!("PPid:\t{}", std::process::id()).as_str())
    );
    // Real, effective, saved set, filesystem.
    assert_eq!(field(&memsrv, "Uid"), Some("Uid:\t0\t1000\t0\t1000"));
    assert_eq!(field(&memsrv, "Gid"), Some("Gid:\t0\t1000\t0\t1000"));
    // Another process reads it: what the host shows this reader now.
    let pid = child.child.id();
    let reader = d.client();
    let theirs = proc_text(&reader, ProcView::ProcessStatus { pid });
    let host_now = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_like_the_host(&theirs, &host_now);
    child.say("done");
    child.finish();
}

#[test]
fn the_threads_home_shows_each_processs_own_record() {
    let home = ThreadsHome::with_arena_size(1 << 20).unwrap();
    let status = |p: &hosted::threads::Process, pid: u32| {
        let mut buf = vec![0u8; 4096];
        let n = p
            .client()
            .read_proc(ProcView::ProcessStatus { pid }, &mut buf)
            .unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    let parent = home
        .spawn_process_as(Credentials {
            pid: None,
            uid: 1000,
            gid: 100,
        })
        .unwrap();
    let text = status(&parent, parent.pid());
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("Name:\t"));
    // No mask applies to the modes a threads-home process names.
    assert_eq!(lines.next(), Some("Umask:\t0000"));
    assert_eq!(field(&text, "PPid"), Some("PPid:\t0"));
    assert_eq!(field(&text, "Uid"), Some("Uid:\t1000\t1000\t1000\t1000"));
    assert_eq!(field(&text, "Gid"), Some("Gid:\t100\t100\t100\t100"));
    let (pid, ticket) = parent.clone_process(CLONE_VM).unwrap();
    let child = home.attach(ticket).unwrap();
    assert_eq!(child.pid(), pid);
    let text = status(&child, pid);
    assert_eq!(
        field(&text, "PPid"),
        Some(format!("PPid:\t{}", parent.pid()).as_str())
    );
    assert_eq!(field(&text, "Uid"), Some("Uid:\t1000\t1000\t1000\t1000"));
    drop(parent);
    assert_eq!(field(&status(&child, pid), "PPid"), Some("PPid:\t0"));
}
