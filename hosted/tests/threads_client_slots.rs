//! The threads home admits connections with memsrvd's limits and answers:
//! a uid holding its `max_clients_per_user` connections gets `EAGAIN`
//! (others keep theirs; a closed connection gives its slot back), and the
//! table of [`MAX_CLIENTS`] connections, once full, refuses with `ENOTCONN`;
//! a driver the home mounts itself holds no slot, as memsrvd's built-in
//! drivers.

use drivers::ramfs::Ramfs;
use drivers::MountPoint;
use hosted::threads::{ThreadsHome, MAX_CLIENTS};
use memsrv::{Config, Credentials};
use protocol::linux::{O_CREAT, O_RDWR};
use protocol::Errno;

fn user(uid: u32) -> Credentials {
    Credentials {
        pid: None,
        uid,
        gid: uid,
    }
}

/// A threads home allowing each uid `slots` connections.
fn home_with_slots(slots: u32) -> ThreadsHome {
    ThreadsHome::start(Config {
        arena_size: 1 << 20,
        max_clients_per_user: Some(slots),
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn a_user_beyond_its_client_slots_is_refused_eagain() {
    let home = home_with_slots(2);
    let a = home.spawn_process_as(user(1000)).unwrap();
    let _b = home.connect_driver(user(1000)).unwrap();
    assert_eq!(home.spawn_process_as(user(1000)).err(), Some(Errno::EAGAIN));
    assert_eq!(home.connect_driver(user(1000)).err(), Some(Errno::EAGAIN));
    // Another user has slots of its own.
    let _c = home.spawn_process_as(user(1001)).unwrap();
    drop(a);
    // The slot is back once the connection closed (the drop's
    // disconnect reaches the server before the next connect).
    let _d = home.spawn_process_as(user(1000)).unwrap();
    home.check_invariants().unwrap();
}

#[test]
fn a_full_connection_table_refuses_enotconn() {
    let home = ThreadsHome::with_arena_size(1 << 20).unwrap();
    let mut open: Vec<_> = (0..MAX_CLIENTS)
        .map(|_| home.connect_driver(user(1000)).unwrap())
        .collect();
    assert_eq!(home.spawn_process().err(), Some(Errno::ENOTCONN));
    assert_eq!(home.connect_driver(user(0)).err(), Some(Errno::ENOTCONN));
    open.pop();
    let p = home.spawn_process().unwrap();
    assert_eq!(home.connect_driver(user(0)).err(), Some(Errno::ENOTCONN));
    drop(p);
    drop(open);
    home.check_invariants().unwrap();
}

#[test]
fn a_driver_the_home_mounts_holds_no_slot() {
    let home = home_with_slots(1);
    let tmp = Ramfs::new(MountPoint::new("/tmp", (0, 0x10)).unwrap());
    let _mount = home.mount(Box::new(tmp)).unwrap();
    // Root's one slot is still free for a process.
    let p = home.spawn_process().unwrap();
    assert_eq!(home.spawn_process().err(), Some(Errno::EAGAIN));
    p.client().open("/tmp/f", O_CREAT | O_RDWR, 0o600).unwrap();
    home.check_invariants().unwrap();
}
