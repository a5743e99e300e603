//! Who may serve a mount, and identity per call: a driver registration is
//! judged by the credentials the transport reported (root, or the
//! configured user or group), and a changed effective identity
//! ([`MemoryServer::set_identity`]) governs the calls after it.

use super::sim::{hello, server_with, user, SimMemory};
use crate::{ClientId, DriverOwner, MemoryServer};
use protocol::{DriverRegistration, Errno, MountName, Reply, Request, Sysctl};

fn registration(mount: &str) -> Request {
    Request::RegisterDriver(DriverRegistration {
        name: heapless::String::try_from("t").unwrap(),
        mount: MountName::try_from(mount).unwrap(),
        dev: (1, 2),
        noexec: false,
        read_only: false,
    })
}

fn register(s: &mut MemoryServer<SimMemory>, c: u64, mount: &str) -> Result<(), Errno> {
    match s.handle_now(ClientId(c), registration(mount)) {
        Reply::Registered { .. } => Ok(()),
        Reply::Error(e) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

fn server(drivers: DriverOwner) -> MemoryServer<SimMemory> {
    server_with(64, |c| c.drivers = drivers)
}

#[test]
fn by_default_only_root_serves_a_mount() {
    let mut s = server(DriverOwner::Root);
    s.connect(ClientId(1), user(65534, 65534));
    assert_eq!(register(&mut s, 1, "/etc"), Err(Errno::EPERM));
    // Refused, it serves nothing: the point is still free for root.
    assert_eq!(s.stats().drivers, 0);
    s.connect(ClientId(2), user(0, 0));
    assert_eq!(register(&mut s, 2, "/etc"), Ok(()));
    s.check_invariants().unwrap();
}

#[test]
fn the_named_user_serves_and_no_other() {
    let mut s = server(DriverOwner::User(1000));
    s.connect(ClientId(1), user(1001, 1000));
    assert_eq!(register(&mut s, 1, "/data"), Err(Errno::EPERM));
    s.connect(ClientId(2), user(1000, 1000));
    assert_eq!(register(&mut s, 2, "/data"), Ok(()));
}

#[test]
fn members_of_the_named_group_serve_primary_or_supplementary() {
    let mut s = server(DriverOwner::Group(50));
    s.connect(ClientId(1), user(1001, 1001));
    assert_eq!(register(&mut s, 1, "/a"), Err(Errno::EPERM));
    s.connect_in_groups(ClientId(2), user(1001, 1001), &[20, 50]);
    assert_eq!(register(&mut s, 2, "/a"), Ok(()));
    s.connect(ClientId(3), user(1002, 50));
    assert_eq!(register(&mut s, 3, "/b"), Ok(()));
    // The group is not a user id.
    s.connect(ClientId(4), user(50, 1003));
    assert_eq!(register(&mut s, 4, "/c"), Err(Errno::EPERM));
}

#[test]
fn a_served_point_and_points_above_or_inside_it_are_busy() {
    let mut s = server(DriverOwner::Root);
    s.connect(ClientId(1), user(0, 0));
    assert_eq!(register(&mut s, 1, "/dev/shm"), Ok(()));
    for (c, busy) in [(2, "/dev/shm"), (3, "/dev/shm/sub"), (4, "/dev"), (5, "/")] {
        s.connect(ClientId(c), user(0, 0));
        assert_eq!(register(&mut s, c, busy), Err(Errno::EBUSY), "{busy}");
    }
    // The driver gone, its point is free again.
    s.disconnect(ClientId(1));
    assert_eq!(register(&mut s, 3, "/dev/shm/sub"), Ok(()));
    s.check_invariants().unwrap();
}

#[test]
fn a_changed_identity_governs_the_next_call() {
    let mut s = server(DriverOwner::Root);
    let first = hello(&mut s, 1, 0, None).unwrap();
    hello(&mut s, 2, 1000, None).unwrap();
    let write = |s: &mut MemoryServer<SimMemory>| {
        s.handle_now(
            ClientId(1),
            Request::WriteSysctl {
                name: Sysctl::NrTrimPages,
                value: 3,
            },
        )
    };
    let attach = Request::PtraceAttach { pid: first };
    assert_eq!(write(&mut s), Reply::Done);
    assert_eq!(
        s.handle_now(ClientId(2), attach.clone()),
        Reply::Error(Errno::EPERM)
    );
    // seteuid(1000): the same process, no longer root for its next call...
    s.set_identity(ClientId(1), 1000, 1000).unwrap();
    assert_eq!(write(&mut s), Reply::Error(Errno::EACCES));
    // ...and owned by 1000 as other callers see it.
    assert_eq!(s.handle_now(ClientId(2), attach), Reply::Done);
    // seteuid(0) back: root again.
    s.set_identity(ClientId(1), 0, 0).unwrap();
    assert_eq!(write(&mut s), Reply::Done);
    assert_eq!(s.set_identity(ClientId(9), 0, 0), Err(Errno::ENOTCONN));
    s.check_invariants().unwrap();
}
