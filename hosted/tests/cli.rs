//! The command-line tools answer `--help` and `--version`, reject nonsense
//! with exit code 2, and list the mount kinds they accept.

#[path = "common/daemon.rs"]
mod daemon;

use std::process::Command;

fn run(exe: &str, args: &[&str]) -> std::process::Output {
    Command::new(exe).args(args).output().expect("run tool")
}

/// A tool's `--help` text (it must succeed).
fn help(exe: &str) -> String {
    let out = run(exe, &["--help"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// A tool's `--help` names every one of `words`.
fn help_mentions(exe: &str, words: &[&str]) {
    let text = help(exe);
    for word in words {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}

#[test]
fn memsrvd_help_documents_every_option() {
    help_mentions(
        env!("CARGO_BIN_EXE_memsrvd"),
        &[
            "--socket",
            "--arena-size",
            "--arena-base",
            "--nr-trim-pages",
            "--allow-uninitialized",
            "--max-clients",
            "--driver-timeout",
            "--mount <POINT=KIND[:ARG]>",
            "romfs:IMAGE",
            "ramfs",
            "tmpfs",
            "hostdir:DIR",
            "fbdev:WxH",
            "mtd:IMAGE",
            "ramdisk:SIZE",
            "nommu-driver",
            "--help",
            "NOMMU_SOCKET",
        ],
    );
}

#[test]
fn memsrvd_rejects_bad_arguments() {
    for args in [
        &["--bogus"][..],
        &["--arena-size", "123"],
        &["--arena-base", "0x1001"],
        &["--socket"],
        &["--mount", "rom=romfs:x.img"],
        &["--mount", "/rom"],
        &["--mount", "/a=ramfs", "--mount", "/a=tmpfs"],
        &["--driver-timeout", "soon"],
        &["--mount", "/x=bogus"],
        &["--mount", "/dev/mtd0=nand:x.img"],
        &["--mount", "/rom=romfs"],
        &["--mount", "/dev/shm=ramfs:x"],
    ] {
        let out = run(env!("CARGO_BIN_EXE_memsrvd"), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn memsrvd_refuses_a_mount_it_cannot_serve() {
    let socket = std::env::temp_dir().join(format!("nommu-cli-mount-{}.sock", std::process::id()));
    for (mount, says) in [
        ("/rom=romfs:/nonexistent/rom.img", "cannot read image"),
        ("/rom=romfs:/dev/null", "not a romfs image"),
        ("/data=hostdir:/nonexistent/dir", "cannot use directory"),
    ] {
        let out = run(
            env!("CARGO_BIN_EXE_memsrvd"),
            &[
                "--socket",
                socket.to_str().unwrap(),
                "--arena-size",
                "1M",
                "--arena-base",
                "0x3e0000000000",
                "--mount",
                mount,
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{mount}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{mount}: {stderr}");
        assert!(!socket.exists(), "{mount}: the socket was bound");
    }
    // An argument of the wrong form is a usage error, found before any
    // device is built.
    for (mount, says) in [
        ("/dev/fb0=fbdev:wide", "bad geometry"),
        ("/dev/mtd0=mtd:x.img,nand", "bad mtd type"),
        ("/dev/ram0=ramdisk:lots", "bad ramdisk size"),
    ] {
        let out = run(
            env!("CARGO_BIN_EXE_memsrvd"),
            &["--socket", socket.to_str().unwrap(), "--mount", mount],
        );
        assert_eq!(out.status.code(), Some(2), "{mount}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{mount}: {stderr}");
        assert!(!socket.exists(), "{mount}: the socket was bound");
    }
}

#[test]
fn nommu_driver_help_and_bad_arguments() {
    help_mentions(
        env!("CARGO_BIN_EXE_nommu-driver"),
        &[
            "--socket",
            "--mount <POINT=KIND[:ARG]>",
            "romfs:IMAGE",
            "serving",
        ],
    );
    for args in [
        &[][..],
        &["--bogus"],
        &["--mount", "nope"],
        &["--mount", "/x=bogus"],
        &["--mount", "/a=ramfs", "--mount", "/b=ramfs"],
    ] {
        let out = run(env!("CARGO_BIN_EXE_nommu-driver"), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let out = run(
        env!("CARGO_BIN_EXE_nommu-driver"),
        &[
            "--socket",
            "/nonexistent/nommu.sock",
            "--mount",
            "/tmp=ramfs",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/nommu.sock"));
}

#[test]
fn memsrvd_with_mounts_serves_them_and_lists_them() {
    let scratch = daemon::Scratch::new("cli-mtd");
    let flash = daemon::pattern(64 << 10, 0x42);
    std::fs::write(scratch.join("flash.img"), &flash).unwrap();
    let rom = format!("/dev/mtd0=mtd:{}", scratch.join("flash.img").display());
    let nor = format!("/dev/mtd1=mtd:{},nor", scratch.join("flash.img").display());
    let d = daemon::Daemon::start_with(&[
        "--mount",
        &rom,
        "--mount",
        &nor,
        "--mount",
        "/dev/shm=ramfs",
        "--mount",
        "/dev/fb0=fbdev:64x32",
        "--mount",
        "/dev/ram0=ramdisk:64K",
        "--mount",
        "/dev/zero=devzero",
    ]);
    let client = d.client();
    let mounts = daemon::mount_points(&client);
    for point in [
        "/dev/shm",
        "/dev/fb0",
        "/dev/ram0",
        "/dev/zero",
        "/dev/mtd0",
        "/dev/mtd1",
    ] {
        assert!(mounts.iter().any(|m| m == point), "{point}: {mounts:?}");
    }
    // The framebuffer maps shared in place; the ramdisk is copy-only.
    let fb = client.open("/dev/fb0", 2, 0).unwrap();
    assert_eq!(client.fstat(fb).unwrap().size, 64 * 32 * 4);
    let screen = client.mmap(0, 8192, 3, 1, fb, 0).unwrap();
    assert_eq!(
        client.mmap(0, 4096, 1, 2, fb, 0),
        Err(protocol::Errno::ENODEV)
    );
    let ram = client.open("/dev/ram0", 2, 0).unwrap();
    assert_eq!(
        client.mmap(0, 4096, 1, 1, ram, 0),
        Err(protocol::Errno::ENODEV)
    );
    let zero = client.open("/dev/zero", 0, 0).unwrap();
    let zeros = client.mmap(0, 8192, 3, 2, zero, 0).unwrap();
    let maps = d.ctl(&["maps"]);
    assert!(maps.contains(&format!("{screen:08x}")), "{maps}");
    client.munmap(screen, 8192).unwrap();
    client.munmap(zeros, 8192).unwrap();
    // MTD ROM: shared read-only in place, private refused (spec vector
    // 40); NOR flash: copies only (vector 39).
    let mtd0 = client.open("/dev/mtd0", 0, 0).unwrap();
    let direct = client.mmap(0, 4096, 1, 1, mtd0, 0).unwrap();
    // SAFETY: a live mapping inside the arena this process maps.
    let seen = unsafe { std::slice::from_raw_parts(direct as usize as *const u8, 4096) };
    assert_eq!(seen, &flash[..4096]);
    assert_eq!(
        client.mmap(0, 4096, 1, 2, mtd0, 0),
        Err(protocol::Errno::EACCES)
    );
    let mtd1 = client.open("/dev/mtd1", 0, 0).unwrap();
    assert_eq!(
        client.mmap(0, 4096, 1, 1, mtd1, 0),
        Err(protocol::Errno::ENODEV)
    );
    let copy = client.mmap(0, 4096, 1, 2, mtd1, 4096).unwrap();
    // SAFETY: as above.
    let seen = unsafe { std::slice::from_raw_parts(copy as usize as *const u8, 4096) };
    assert_eq!(seen, &flash[4096..8192]);
    client.munmap(direct, 4096).unwrap();
    client.munmap(copy, 4096).unwrap();
    for fd in [fb, ram, zero, mtd0, mtd1] {
        client.close(fd).unwrap();
    }
}

#[test]
fn nommu_ctl_help_lists_commands() {
    help_mentions(
        env!("CARGO_BIN_EXE_nommu-ctl"),
        &["maps", "meminfo", "ipcs", "sysvipc", "--socket"],
    );
}

/// The four tools, by name and path.
const TOOLS: [(&str, &str); 4] = [
    ("memsrvd", env!("CARGO_BIN_EXE_memsrvd")),
    ("nommu-ctl", env!("CARGO_BIN_EXE_nommu-ctl")),
    ("nommu-driver", env!("CARGO_BIN_EXE_nommu-driver")),
    ("nommu-demo", env!("CARGO_BIN_EXE_nommu-demo")),
];

#[test]
fn every_tool_tells_its_version() {
    for (name, exe) in TOOLS {
        let out = run(exe, &["--version"]);
        assert!(out.status.success(), "{name}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text.trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION")),
            "{name}"
        );
    }
}

#[test]
fn every_usage_error_exits_2() {
    for (name, exe) in TOOLS {
        for args in [
            &["--no-such-option"][..],
            &["--socket"],
            &["stray", "words"],
        ] {
            let out = run(exe, args);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.starts_with("error: "), "{name} {args:?}: {stderr}");
        }
    }
    for args in [&[][..], &["maps", "notapid"], &["maps", "1", "2"]] {
        let out = run(env!("CARGO_BIN_EXE_nommu-ctl"), args);
        assert_eq!(out.status.code(), Some(2), "nommu-ctl {args:?}");
    }
}

/// The `KIND[:ARG]` entries of a tool's `--help`, by kind name.
fn listed_kinds(exe: &str) -> Vec<(String, bool)> {
    let text = help(exe);
    let list = text
        .split_once("Mount kinds (--mount POINT=KIND[:ARG]):\n")
        .unwrap_or_else(|| panic!("no mount kinds in --help:\n{text}"))
        .1;
    list.lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let usage = l.split_whitespace().next().unwrap();
            match usage.split_once(':') {
                Some((kind, _)) => (kind.to_string(), true),
                None => (usage.to_string(), false),
            }
        })
        .collect()
}

/// Both tools list the same kinds, each exactly the ones `--mount`
/// accepts: every listed kind parses (`nommu-driver` then fails only to
/// reach its daemon), an unlisted one is a usage error naming the list.
#[test]
fn help_lists_exactly_the_accepted_mount_kinds() {
    let kinds = listed_kinds(env!("CARGO_BIN_EXE_memsrvd"));
    assert_eq!(kinds, listed_kinds(env!("CARGO_BIN_EXE_nommu-driver")));
    assert!(kinds.len() >= 10, "{kinds:?}");
    for (kind, takes_arg) in &kinds {
        // An argument of the right form, naming nothing where it names a file.
        let mount = match (kind.as_str(), takes_arg) {
            ("fbdev", _) => "/m=fbdev:4x4".to_string(),
            ("ramdisk", _) => "/m=ramdisk:64K".to_string(),
            (_, true) => format!("/m={kind}:/nonexistent/arg"),
            (_, false) => format!("/m={kind}"),
        };
        let out = run(
            env!("CARGO_BIN_EXE_nommu-driver"),
            &["--socket", "/nonexistent/nommu.sock", "--mount", &mount],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mount}: {stderr}");
        assert!(
            stderr.contains("/nonexistent/nommu.sock"),
            "{mount}: {stderr}"
        );
    }
    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    for unlisted in ["nand", "bogus", "romfs2"] {
        for exe in [
            env!("CARGO_BIN_EXE_memsrvd"),
            env!("CARGO_BIN_EXE_nommu-driver"),
        ] {
            let out = run(exe, &["--mount", &format!("/m={unlisted}")]);
            assert_eq!(out.status.code(), Some(2), "{unlisted}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(&names.join(", ")), "{stderr}");
        }
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

#[test]
fn sigterm_removes_the_socket_and_exits_cleanly() {
    let mut d = daemon::Daemon::start();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(d.pid as i32, libc::SIGTERM) }, 0);
    let status = d.child().wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!d.socket.exists(), "the socket was left behind");
}

#[test]
fn a_stale_socket_left_by_a_dead_daemon_is_replaced() {
    let mut first = daemon::Daemon::start();
    let path = first.socket.clone();
    first.child().kill().unwrap();
    first.child().wait().unwrap();
    assert!(path.exists(), "SIGKILL leaves the socket behind");
    // A new daemon on the same path starts and serves.
    let mut second = Command::new(env!("CARGO_BIN_EXE_memsrvd"))
        .args(["--socket", path.to_str().unwrap(), "--arena-size", "1M"])
        .args(["--arena-base", "0x3f0000000000"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(second.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let served = Command::new(env!("CARGO_BIN_EXE_nommu-ctl"))
        .args(["--socket", path.to_str().unwrap(), "meminfo"])
        .output()
        .unwrap();
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_file(&path);
    assert!(line.starts_with("memsrvd: ready on "), "{line:?}");
    let text = String::from_utf8_lossy(&served.stdout);
    assert_eq!(
        daemon::meminfo_field(&text, "MemTotal"),
        Some(1024),
        "{text}"
    );
}

#[test]
fn a_taken_arena_address_is_a_clear_error() {
    use nommu::sys::sealed_memfd;
    use nommu::transport::mapping::SharedMapping;
    use nommu::transport::{ConnectError, DaemonConnection};
    use std::os::fd::AsFd;
    let d = daemon::Daemon::start();
    let squatter = sealed_memfd(c"squatter", 4096).unwrap();
    let _taken = SharedMapping::exactly_at(squatter.as_fd(), 4096, d.arena_base as usize + 8192)
        .expect("map inside the arena's range");
    let Err(err) = DaemonConnection::connect(&d.socket) else {
        panic!("connected although the arena's range is taken");
    };
    assert!(matches!(err, ConnectError::ArenaTaken { base, .. } if base == d.arena_base));
    assert!(err.to_string().contains("already mapped"), "{err}");
    // nommu-ctl, another process, connects fine.
    assert!(d.ctl(&["meminfo"]).contains("MemTotal"));
}
