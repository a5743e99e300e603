//! The memory filesystem's attributes: every file and the root directory
//! keep permission bits and an owner, as Linux's tmpfs inodes do. A new
//! file is owned by the caller the server names in its `Lookup`; the
//! server judges `chmod`/`chown` and sends the result (`SetAttributes`);
//! `unlink` applies Linux's `may_delete` to the root directory here, where
//! the owners are kept: write and search permission on it (`EACCES`), and
//! with its sticky bit only the file's owner, the directory's owner or
//! root may remove a name (`EPERM`, Linux's `check_sticky`).

use super::{Ramfs, ROOT};
use protocol::{Errno, Owner};

/// `S_ISVTX`: the sticky bit.
const STICKY: u32 = 0o1000;

/// Permission bits and owner of the root directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub mode: u32,
    pub owner: Owner,
}

impl Attributes {
    /// The root as Linux's tmpfs mounts it by root: `01777`, root's.
    pub const ROOT: Self = Self {
        mode: 0o1777,
        owner: Owner { uid: 0, gid: 0 },
    };
}

/// Whether `mode` and `owner` grant `caller` every bit of `want` (`r` 4,
/// `w` 2, `x` 1): root passes, else the owner, group or other class.
fn grants(mode: u32, owner: Owner, caller: Owner, want: u32) -> bool {
    if caller.uid == 0 {
        return true;
    }
    let bits = if caller.uid == owner.uid {
        mode >> 6
    } else if caller.gid == owner.gid {
        mode >> 3
    } else {
        mode
    };
    bits & want == want
}

impl Ramfs {
    /// The root directory is owned by `owner` (the user serving the mount).
    pub fn owned_by(mut self, owner: Owner) -> Self {
        self.root.owner = owner;
        self
    }

    /// The owner of an object.
    pub(super) fn owner(&self, object: u64) -> Result<Owner, Errno> {
        if object == ROOT {
            return Ok(self.root.owner);
        }
        self.file(object).map(|f| f.owner)
    }

    /// Store what the server decided for `chmod`/`chown`.
    pub(super) fn set_attributes(
        &mut self,
        object: u64,
        mode: u32,
        owner: Owner,
    ) -> Result<(), Errno> {
        let mode = mode & 0o7777;
        if object == ROOT {
            self.root = Attributes { mode, owner };
        } else {
            let file = self.file_mut(object)?;
            file.mode = mode;
            file.owner = owner;
        }
        Ok(())
    }

    /// Linux's `may_delete` for removing `name` from the root: a missing
    /// name is left to `unlink` (`ENOENT`).
    pub(super) fn may_unlink(&self, name: &[u8], caller: Owner) -> Result<(), Errno> {
        let Some(&object) = self.names.get(name) else {
            return Ok(());
        };
        let root = self.root;
        if !grants(root.mode, root.owner, caller, 0o3) {
            return Err(Errno::EACCES);
        }
        let sticky = root.mode & STICKY != 0;
        let owner = self.owner(object)?;
        if sticky && caller.uid != 0 && caller.uid != owner.uid && caller.uid != root.owner.uid {
            return Err(Errno::EPERM);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::open::{CREAT, RDWR};
    use crate::mount::MountPoint;
    use crate::testing::*;
    use crate::BackingDevice;
    use protocol::{DriverReply, DriverRequest, ObjectInfo};

    const ALICE: Owner = Owner {
        uid: 1000,
        gid: 100,
    };
    const BOB: Owner = Owner {
        uid: 1001,
        gid: 100,
    };
    const ROOT_USER: Owner = Owner { uid: 0, gid: 0 };

    fn fs() -> (Ramfs, TestHost) {
        let mut host = TestHost::new();
        let mut fs = Ramfs::new(MountPoint::new("/dev/shm", (0, 13)).unwrap());
        fs.start(&mut host).unwrap();
        (fs, host)
    }

    fn owned(reply: DriverReply) -> (ObjectInfo, Owner) {
        match reply {
            DriverReply::Owned { info, owner } => (info, owner),
            other => panic!("expected Owned, got {other:?}"),
        }
    }

    fn unlink(fs: &mut Ramfs, host: &mut TestHost, name: &str, caller: Owner) -> DriverReply {
        let path = path(name);
        fs.serve(DriverRequest::Unlink { path, caller }, host)
    }

    #[test]
    fn a_new_file_is_the_callers_and_stat_says_so() {
        let (mut fs, mut host) = fs();
        let (info, owner) = owned(fs.serve(lookup_as("f", CREAT | RDWR, 0o640, ALICE), &mut host));
        assert_eq!((info.mode, owner), (0o640, ALICE));
        let (_, again) = owned(fs.serve(lookup_as("f", RDWR, 0, BOB), &mut host));
        assert_eq!(again, ALICE, "a lookup of an existing file keeps its owner");
        let (root, root_owner) = owned(fs.serve(lookup("", 0, 0), &mut host));
        assert_eq!((root.mode, root_owner), (0o1777, ROOT_USER));
    }

    #[test]
    fn set_attributes_stores_mode_and_owner() {
        let (mut fs, mut host) = fs();
        let (info, _) = owned(fs.serve(lookup_as("f", CREAT | RDWR, 0o600, ALICE), &mut host));
        let request = DriverRequest::SetAttributes {
            object: info.object,
            mode: 0o104755,
            owner: BOB,
        };
        let (changed, owner) = owned(fs.serve(request, &mut host));
        assert_eq!((changed.mode, owner), (0o4755, BOB), "type bits dropped");
        let stat = DriverRequest::Stat {
            object: info.object,
        };
        assert_eq!(owned(fs.serve(stat, &mut host)), (changed, BOB));
        let gone = DriverRequest::SetAttributes {
            object: 99,
            mode: 0,
            owner: BOB,
        };
        assert_eq!(fs.serve(gone, &mut host), DriverReply::Error(Errno::EBADF));
    }

    #[test]
    fn the_sticky_root_lets_only_owners_and_root_unlink() {
        let mut host = TestHost::new();
        let mount = MountPoint::new("/dev/shm", (0, 13)).unwrap();
        let mut fs = Ramfs::new(mount).owned_by(Owner {
            uid: 1002,
            gid: 102,
        });
        fs.start(&mut host).unwrap();
        for name in ["a", "b", "c", "d"] {
            fs.serve(lookup_as(name, CREAT | RDWR, 0o666, ALICE), &mut host);
        }
        let eperm = DriverReply::Error(Errno::EPERM);
        assert_eq!(unlink(&mut fs, &mut host, "a", BOB), eperm);
        assert_eq!(unlink(&mut fs, &mut host, "a", ALICE), DriverReply::Done);
        assert_eq!(
            unlink(&mut fs, &mut host, "b", ROOT_USER),
            DriverReply::Done
        );
        let dir_owner = Owner { uid: 1002, gid: 7 };
        assert_eq!(
            unlink(&mut fs, &mut host, "c", dir_owner),
            DriverReply::Done
        );
        let missing = unlink(&mut fs, &mut host, "none", BOB);
        assert_eq!(missing, DriverReply::Error(Errno::ENOENT));
        // Without the sticky bit, write permission on the root suffices.
        let root = DriverRequest::SetAttributes {
            object: ROOT,
            mode: 0o777,
            owner: dir_owner,
        };
        owned(fs.serve(root, &mut host));
        assert_eq!(unlink(&mut fs, &mut host, "d", BOB), DriverReply::Done);
    }

    #[test]
    fn unlink_needs_write_and_search_on_the_root() {
        let (mut fs, mut host) = fs();
        fs.serve(lookup_as("f", CREAT | RDWR, 0o666, ALICE), &mut host);
        let root = DriverRequest::SetAttributes {
            object: ROOT,
            mode: 0o1755,
            owner: ROOT_USER,
        };
        owned(fs.serve(root, &mut host));
        let eacces = DriverReply::Error(Errno::EACCES);
        assert_eq!(unlink(&mut fs, &mut host, "f", ALICE), eacces);
        assert_eq!(
            unlink(&mut fs, &mut host, "f", ROOT_USER),
            DriverReply::Done
        );
    }

    #[test]
    fn names_are_bytes_but_never_hold_a_nul() {
        let (mut fs, mut host) = fs();
        let name = [0x80u8, 0xfe, 0xff];
        let create = DriverRequest::Lookup {
            path: protocol::Path::try_from(&name[..]).unwrap(),
            flags: CREAT | RDWR,
            mode: 0o600,
            caller: ALICE,
        };
        let (info, owner) = owned(fs.serve(create.clone(), &mut host));
        assert_eq!(owner, ALICE);
        let (again, _) = owned(fs.serve(create, &mut host));
        assert_eq!(again.object, info.object, "the same bytes, the same file");
        let unlink = DriverRequest::Unlink {
            path: protocol::Path::try_from(&name[..]).unwrap(),
            caller: ALICE,
        };
        assert_eq!(fs.serve(unlink.clone(), &mut host), DriverReply::Done);
        assert_eq!(
            fs.serve(unlink, &mut host),
            DriverReply::Error(Errno::ENOENT)
        );
        let nul = lookup_as("a\0b", CREAT | RDWR, 0o600, ALICE);
        assert_eq!(fs.serve(nul, &mut host), DriverReply::Error(Errno::EINVAL));
    }
}
