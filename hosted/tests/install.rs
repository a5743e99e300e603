//! `scripts/install.sh PREFIX` gives a tree a C programmer uses with
//! pkg-config alone: the installed memsrvd serves a program compiled with
//! `cc prog.c $(pkg-config --cflags --libs nommu)`, and one linked with the
//! static library and `Libs.private`, and `examples/c-port` builds with its
//! Makefile and runs.

#[path = "common/daemon.rs"]
mod daemon;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A C program: its mmap is the server's (an arena address, no
/// MAP_FIXED without an MMU), its bytes are there to read back.
const PROGRAM: &str = r#"
#include <nommu.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void)
{
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    strcpy(p, "hello");
    void *fixed = mmap((void *)0x10000000, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    int fixed_errno = errno;
    printf("mapped %p %s fixed=%s\n", (void *)p, p,
           fixed == MAP_FAILED && fixed_errno == EINVAL ? "EINVAL" : "mapped");
    return munmap(p, 8192) == 0 ? 0 : 1;
}
"#;

/// Run a shell command line; its standard output, or a failure showing both.
fn sh(script: &str, env: &[(&str, PathBuf)]) -> String {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    for (key, value) in env {
        cmd.env(key, value);
    }
    daemon::check(cmd.output().expect("run sh"), script)
}

#[test]
fn an_installed_tree_builds_and_serves_a_c_program_with_pkg_config_alone() {
    let root = daemon::workspace();
    let scratch = daemon::Scratch::new("install");
    let prefix = scratch.join("prefix");
    let mut install = daemon::install_sh(&prefix);
    daemon::check(install.output().expect("run install.sh"), "install.sh");
    for file in [
        "bin/memsrvd",
        "bin/nommu-ctl",
        "bin/nommu-driver",
        "lib/libnommu.a",
        "lib/libnommu.so",
        "include/nommu.h",
        "include/nommu_malloc.h",
        "lib/pkgconfig/nommu.pc",
    ] {
        assert!(prefix.join(file).is_file(), "{file} not installed");
    }
    let version = daemon::check(
        Command::new(prefix.join("bin/memsrvd"))
            .arg("--version")
            .output()
            .unwrap(),
        "memsrvd --version",
    );
    assert_eq!(
        version.trim(),
        format!("memsrvd {}", env!("CARGO_PKG_VERSION"))
    );

    let source = scratch.join("prog.c");
    std::fs::write(&source, PROGRAM).unwrap();
    let env = [
        ("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
        ("SRC", source),
        ("OUT", scratch.path().to_path_buf()),
    ];
    sh(
        r#"cc -Wall -Werror "$SRC" $(pkg-config --cflags --libs nommu) -o "$OUT/shared""#,
        &env,
    );
    sh(
        r#"cc -Wall -Werror $(pkg-config --cflags nommu) "$SRC" \
             "$(pkg-config --variable=libdir nommu)/libnommu.a" \
             $(pkg-config --static --libs-only-l nommu | sed 's/-lnommu//') -o "$OUT/static""#,
        &env,
    );
    let needed = sh(r#"ldd "$OUT/shared""#, &env);
    assert!(
        needed.contains(&format!("{}", prefix.join("lib/libnommu.so").display())),
        "{needed}"
    );

    // The installed daemon, on a socket and arena of this test's own.
    let socket = scratch.join("nommu.sock");
    let (base, size) = (0x3c00_0000_0000u64, 16u64 << 20);
    let mut memsrvd = daemon::ChildGuard(
        Command::new(prefix.join("bin/memsrvd"))
            .arg("--socket")
            .arg(&socket)
            .args(["--arena-base", &format!("{base:#x}"), "--arena-size", "16M"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the installed memsrvd"),
    );
    let mut ready = String::new();
    BufReader::new(memsrvd.0.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("memsrvd: ready on "), "{ready:?}");
    for program in ["shared", "static"] {
        let out = Command::new(scratch.join(program))
            .env("NOMMU_SOCKET", &socket)
            .output()
            .unwrap();
        let text = daemon::check(out, program);
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [_, addr, "hello", "fixed=EINVAL"] = fields[..] else {
            panic!("{program}: {text}");
        };
        let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap();
        assert!((base..base + size).contains(&addr), "{program}: {text}");
    }

    // The example port: its Makefile, pkg-config and the installed tree.
    let make = Command::new("make")
        .arg("-C")
        .arg(root.join("examples").join("c-port"))
        .arg(format!("O={}", scratch.path().display()))
        .arg(format!("NOMMU_SOCKET={}", socket.display()))
        .arg("run")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .output()
        .expect("run make");
    let text = daemon::check(make, "make -C examples/c-port run");
    assert!(text.contains(" distinct words; heap at 0x"), "{text}");
    let calls = text
        .lines()
        .find_map(|l| l.strip_prefix("server calls: mmap "))
        .unwrap_or_else(|| panic!("no server calls reported:\n{text}"));
    let mmaps: u64 = calls.split(',').next().unwrap().parse().unwrap();
    assert!(mmaps > 0, "{text}");
}
