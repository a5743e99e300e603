//! The command-line tools answer `--help` and reject nonsense.

#[path = "common/daemon.rs"]
mod daemon;

use std::process::Command;

fn run(exe: &str, args: &[&str]) -> std::process::Output {
    Command::new(exe).args(args).output().expect("run tool")
}

#[test]
fn memsrvd_help_documents_every_option() {
    let out = run(env!("CARGO_BIN_EXE_memsrvd"), &["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for option in [
        "--socket",
        "--arena-size",
        "--arena-base",
        "--nr-trim-pages",
        "--allow-uninitialized",
        "--max-clients",
        "--help",
        "NOMMU_SOCKET",
    ] {
        assert!(text.contains(option), "--help lacks {option}:\n{text}");
    }
}

#[test]
fn memsrvd_rejects_bad_arguments() {
    for args in [
        &["--bogus"][..],
        &["--arena-size", "123"],
        &["--arena-base", "0x1001"],
        &["--socket"],
    ] {
        let out = run(env!("CARGO_BIN_EXE_memsrvd"), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn nommu_ctl_help_lists_commands() {
    let out = run(env!("CARGO_BIN_EXE_nommu-ctl"), &["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["maps [PID]", "meminfo", "--socket"] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}

#[test]
fn nommu_ctl_reports_an_absent_daemon() {
    let out = run(
        env!("CARGO_BIN_EXE_nommu-ctl"),
        &["--socket", "/nonexistent/nommu.sock", "meminfo"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach memsrvd"));
}

#[test]
fn nommu_ctl_reads_meminfo_and_maps() {
    let d = daemon::Daemon::start();
    let meminfo = d.ctl(&["meminfo"]);
    let total = daemon::meminfo_field(&meminfo, "MemTotal").expect("MemTotal");
    assert_eq!(total, daemon::ARENA_SIZE / 1024);
    let client = d.client();
    let addr = client.mmap(0, 8192, 3, 0x22, -1, 0).unwrap();
    let maps = d.ctl(&["maps"]);
    assert!(maps.contains(&format!("{addr:08x}")), "{maps}");
    let pid = client.transport().welcome().pid.to_string();
    let own = d.ctl(&["maps", &pid]);
    assert!(own.contains(&format!("{addr:08x}")), "{own}");
}

#[test]
fn a_second_daemon_on_a_live_socket_refuses() {
    let d = daemon::Daemon::start();
    let out = run(
        env!("CARGO_BIN_EXE_memsrvd"),
        &["--socket", d.socket.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another memsrvd"));
    // The first daemon still serves.
    assert!(d.ctl(&["meminfo"]).contains("MemTotal"));
}
