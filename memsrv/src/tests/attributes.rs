//! `chmod`/`chown` (`Request::SetAttributes`): Linux's rules as
//! [`judge`] applies them, and the operation through a driver (a device
//! keeps no attributes, a read-only mount refuses, a missing path is
//! `ENOENT`).

use super::fake_driver::{FakeObject, FILE_OPS};
use super::rig::Rig;
use crate::attributes::{judge, Attributes, Change};
use protocol::{AttributeTarget, Errno, ObjectKind, Owner, Path, Reply, Request};

const ALICE: Owner = Owner {
    uid: 1000,
    gid: 100,
};
const BOB: Owner = Owner {
    uid: 1001,
    gid: 101,
};
const ROOT: Owner = Owner { uid: 0, gid: 0 };

fn alices(mode: u32) -> Attributes {
    Attributes { mode, owner: ALICE }
}

fn chmod(mode: u32) -> Change {
    Change {
        mode: Some(mode),
        uid: None,
        gid: None,
    }
}

fn chown(uid: Option<u32>, gid: Option<u32>) -> Change {
    Change {
        mode: None,
        uid,
        gid,
    }
}

fn file(now: Attributes, change: Change, caller: Owner) -> Result<Attributes, Errno> {
    judge(now, false, change, caller, &[])
}

#[test]
fn chmod_is_for_the_owner_and_root() {
    assert_eq!(file(alices(0o600), chmod(0o644), ALICE), Ok(alices(0o644)));
    assert_eq!(file(alices(0o600), chmod(0o644), ROOT), Ok(alices(0o644)));
    assert_eq!(file(alices(0o600), chmod(0o644), BOB), Err(Errno::EPERM));
    // Only the permission bits are taken.
    assert_eq!(file(alices(0), chmod(0o170_755), ALICE), Ok(alices(0o755)));
}

#[test]
fn chmod_drops_setgid_for_a_caller_outside_the_group() {
    let outside = Owner {
        uid: 1000,
        gid: 999,
    };
    assert_eq!(file(alices(0), chmod(0o2755), outside), Ok(alices(0o755)));
    assert_eq!(file(alices(0), chmod(0o2755), ALICE), Ok(alices(0o2755)));
    assert_eq!(file(alices(0), chmod(0o2755), ROOT), Ok(alices(0o2755)));
    // A supplementary group counts.
    let member = judge(alices(0), false, chmod(0o2755), outside, &[100]);
    assert_eq!(member, Ok(alices(0o2755)));
    // Setuid stays for the owner.
    assert_eq!(file(alices(0), chmod(0o4755), outside), Ok(alices(0o4755)));
}

#[test]
fn chown_is_for_root_and_chgrp_for_the_owner_in_the_group() {
    let to_bob = Attributes {
        mode: 0o644,
        owner: Owner {
            uid: BOB.uid,
            gid: ALICE.gid,
        },
    };
    assert_eq!(
        file(alices(0o644), chown(Some(1001), None), ROOT),
        Ok(to_bob)
    );
    let eperm = Err(Errno::EPERM);
    assert_eq!(file(alices(0o644), chown(Some(1001), None), ALICE), eperm);
    assert_eq!(file(alices(0o644), chown(Some(1001), None), BOB), eperm);
    // The owner may "change" the owner to itself, and leave both alone.
    let same = chown(Some(1000), Some(100));
    assert_eq!(file(alices(0o644), same, ALICE), Ok(alices(0o644)));
    assert_eq!(
        file(alices(0o644), chown(None, None), BOB),
        Ok(alices(0o644))
    );
    // chgrp: to a group the owner is in, not to another.
    let own_group = Owner {
        uid: 1000,
        gid: 555,
    };
    let regrouped = Attributes {
        mode: 0o644,
        owner: own_group,
    };
    assert_eq!(
        file(alices(0o644), chown(None, Some(555)), own_group),
        Ok(regrouped)
    );
    let in_supplementary = judge(alices(0o644), false, chown(None, Some(555)), ALICE, &[555]);
    assert_eq!(in_supplementary, Ok(regrouped));
    assert_eq!(file(alices(0o644), chown(None, Some(555)), ALICE), eperm);
    assert_eq!(file(alices(0o644), chown(None, Some(100)), BOB), eperm);
}

#[test]
fn chown_drops_setuid_and_group_executable_setgid() {
    let by_root = chown(Some(1000), None);
    assert_eq!(file(alices(0o6755), by_root, ROOT), Ok(alices(0o0755)));
    // Setgid without group execute is mandatory locking: it stays.
    assert_eq!(file(alices(0o6745), by_root, ROOT), Ok(alices(0o2745)));
    // Even chown(-1, -1) by the owner.
    assert_eq!(
        file(alices(0o4700), chown(None, None), ALICE),
        Ok(alices(0o700))
    );
    // A stranger whose chown would change the mode may not.
    assert_eq!(
        file(alices(0o4700), chown(None, None), BOB),
        Err(Errno::EPERM)
    );
    // A directory keeps its bits.
    let dir = judge(alices(0o3777), true, chown(None, None), ROOT, &[]);
    assert_eq!(dir, Ok(alices(0o3777)));
}

fn set(rig: &mut Rig, target: AttributeTarget, change: Change) -> Result<(), Errno> {
    let request = Request::SetAttributes {
        target,
        mode: change.mode,
        uid: change.uid,
        gid: change.gid,
    };
    match rig.call(1, request) {
        Reply::Done => Ok(()),
        Reply::Error(e) => Err(e),
        other => panic!("SetAttributes: {other:?}"),
    }
}

fn path(p: &str) -> AttributeTarget {
    AttributeTarget::Path(Path::try_from(p).unwrap())
}

#[test]
fn through_a_driver_errors_come_as_linux_gives_them() {
    let mut rig = Rig::with(64, |_| {});
    rig.process(1, 0);
    rig.driver(10, "/dev", (1, 2), false, false);
    rig.driver(11, "/rom", (1, 3), false, true);
    for (c, name) in [(10, "dev0"), (11, "file")] {
        rig.add(c, name, |_, _| {
            FakeObject::heap(ObjectKind::RegularFile, FILE_OPS, alloc::vec::Vec::new())
        });
    }
    // A device keeps no attributes.
    assert_eq!(
        set(&mut rig, path("/dev/dev0"), chmod(0o600)),
        Err(Errno::EPERM)
    );
    // The path is walked before the mount is found read-only.
    assert_eq!(
        set(&mut rig, path("/rom/none"), chmod(0o600)),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        set(&mut rig, path("/rom/file"), chmod(0o600)),
        Err(Errno::EROFS)
    );
    let fd = rig.open(1, "/rom/file", 0).unwrap();
    let by_fd = set(&mut rig, AttributeTarget::Fd(fd), chown(Some(0), None));
    assert_eq!(by_fd, Err(Errno::EROFS));
    assert_eq!(
        set(&mut rig, AttributeTarget::Fd(99), chmod(0)),
        Err(Errno::EBADF)
    );
    assert_eq!(
        set(&mut rig, path("/nowhere/x"), chmod(0)),
        Err(Errno::ENOENT)
    );
    rig.close(1, fd).unwrap();
    rig.ok();
    // Every lookup's reference went back.
    assert!(rig.s.files.objects.is_empty(), "objects left behind");
}
