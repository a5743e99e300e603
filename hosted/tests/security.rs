//! Who may serve a path on `memsrvd`: root, or the user or group
//! `--drivers` names; anyone else's `nommu-driver` is refused `EPERM`, and
//! a root program's host files stay its own throughout. A mount point
//! already served, or above or inside one, is refused `EBUSY`.

#[path = "common/daemon.rs"]
mod daemon;

use daemon::{
    assert_root, c_command, c_program_alone, mount_points, run_expecting, Daemon, DriverProcess,
    Scratch, NOBODY,
};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Run `nommu-driver --mount spec` (as that user and group if given; std
/// drops root's supplementary groups) and return what it printed once it
/// exits refused. A driver still running after a while was accepted: it is
/// killed and the test fails.
fn refused_driver(d: &Daemon, spec: &str, as_user: Option<u32>) -> String {
    let mut cmd = DriverProcess::command(d, spec);
    if let Some(id) = as_user {
        cmd.uid(id).gid(id);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nommu-driver");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{spec} as {as_user:?} was accepted and served");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{spec}: {stderr}");
    stderr
}

fn mounts(d: &Daemon) -> Vec<String> {
    mount_points(&d.client())
}

/// A scratch directory with a host file `host` a root program owns.
fn host_dir() -> Scratch {
    let dir = Scratch::new("security");
    std::fs::write(dir.join("host"), "host file\n").unwrap();
    dir
}

#[test]
fn an_unprivileged_driver_is_refused_and_root_files_stay_untouched() {
    assert_root();
    let d = Daemon::start();
    let dir = host_dir();
    let point = dir.path().to_str().unwrap().to_string();
    let stderr = refused_driver(&d, &format!("{point}=ramfs"), Some(NOBODY));
    assert!(
        stderr.contains("registration") && stderr.contains("EPERM"),
        "{stderr}"
    );
    assert!(!mounts(&d).contains(&point), "{:?}", mounts(&d));
    // The root program reads its host file and creates one beside it: both
    // are the host's.
    run_expecting(
        c_command(&d, "host_files").arg(&point),
        "host_files",
        &["host_files: ok"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("host")).unwrap(),
        "host file\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("made")).unwrap(),
        "made by the program\n"
    );
    d.assert_all_free();
}

#[test]
fn the_user_or_group_drivers_names_may_serve() {
    assert_root();
    for who in [NOBODY.to_string(), format!(":{NOBODY}")] {
        let d = Daemon::start_with(&["--drivers", &who]);
        let mut driver = DriverProcess::command(&d, "/srv/nobody=ramfs");
        driver.uid(NOBODY).gid(NOBODY);
        let served = DriverProcess::spawn(driver);
        assert!(mounts(&d).contains(&"/srv/nobody".to_string()), "{who}");
        // Another unprivileged user is still refused.
        let stderr = refused_driver(&d, "/srv/other=ramfs", Some(NOBODY - 1));
        assert!(stderr.contains("EPERM"), "{who}: {stderr}");
        drop(served);
    }
}

#[test]
fn a_served_point_and_points_above_or_inside_it_are_busy() {
    let d = Daemon::start_with(&["--mount", "/dev/shm=ramfs"]);
    for busy in ["/dev/shm", "/dev/shm/inner", "/dev"] {
        let stderr = refused_driver(&d, &format!("{busy}=ramfs"), None);
        assert!(stderr.contains("EBUSY"), "{busy}: {stderr}");
    }
    // A sibling is no nesting.
    let sibling = DriverProcess::start(&d, "/dev/shm2=ramfs");
    assert!(mounts(&d).contains(&"/dev/shm2".to_string()));
    drop(sibling);
}

#[test]
fn identity_is_the_callers_at_each_call_and_new_files_take_the_umask() {
    assert_root();
    c_program_alone(
        &["--mount", "/dev/shm=ramfs"],
        "identity",
        &[&NOBODY.to_string()],
        &["identity: ok"],
    );
}
