//! The file side of the server: the mount table (which driver serves which
//! path), the drivers, the object table keyed `(driver, object)` with its
//! reference counts and per-object operation queues, the open file
//! descriptions and each process's descriptor table.
//!
//! An object's reference count is the number of open descriptions,
//! regions and mappings naming it plus the pending operations holding it;
//! when it falls to zero the driver is sent `Release`. Descriptors are per
//! process, numbered from 3 upward (lowest free), copied on `clone` and
//! closed on exit.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::file_flags::Access;
use crate::ops::OpId;
use crate::region::{BackingObject, DriverId, ObjectKey};
use crate::ClientId;
use protocol::{DriverRegistration, Errno, MountName, ObjectInfo, Owner, MAX_MOUNTS};

/// Descriptors start here (0–2 belong to the host's stdio).
pub const FIRST_FD: i32 = 3;
/// Timed-out call tags a driver may still answer late without being taken
/// for confused.
const EXPIRED_TAGS_KEPT: usize = 32;

/// An open file description's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u64);

/// A registered backing device.
#[derive(Debug)]
pub struct Driver {
    /// The connection it answers on.
    pub client: ClientId,
    pub registration: DriverRegistration,
    /// The driver connection's uid and gid: the owner of its objects for
    /// permission checks and `fstat`.
    pub owner: (u32, u32),
    /// False once its connection closed: its mount is gone, calls fail `EIO`.
    pub alive: bool,
    /// Objects in a mode change (`BeginExclusive`).
    pub exclusive: BTreeSet<u64>,
    /// Tags of calls that timed out, most recent last.
    pub expired: VecDeque<u32>,
    /// Objects whose `Release` waits for the lookups in flight.
    pub parked_releases: BTreeSet<u64>,
    /// It answered `Pages` with `ENOSYS` (its bytes are not arena pages):
    /// leases to it start in framed steps without asking again.
    pub without_pages: bool,
}

impl Driver {
    pub fn note_expired(&mut self, tag: u32) {
        if self.expired.len() >= EXPIRED_TAGS_KEPT {
            self.expired.pop_front();
        }
        self.expired.push_back(tag);
    }
}

/// One object some descriptor, region, mapping or operation refers to.
#[derive(Debug)]
pub struct Object {
    /// What the last lookup or stat said.
    pub info: ObjectInfo,
    /// Its owner, from a filesystem that keeps one per object
    /// (`DriverReply::Owned`); `None`: the driver's connection owns it.
    pub owner: Option<Owner>,
    /// Identity and `/proc` face shared with regions and mappings.
    pub backing: Arc<BackingObject>,
    pub refs: u32,
    /// The operation that holds the object now, and those waiting.
    pub active: Option<OpId>,
    pub queue: VecDeque<OpId>,
    /// The last reference went and `Release` is yet to be queued.
    pub release_due: bool,
}

impl Object {
    /// Nothing refers to it, nothing waits on it, nothing is due.
    pub fn idle(&self) -> bool {
        self.refs == 0 && self.active.is_none() && self.queue.is_empty() && !self.release_due
    }
}

/// An open file description (shared by the descriptors `clone` copied).
#[derive(Clone, Copy, Debug)]
pub struct OpenFile {
    pub key: ObjectKey,
    pub access: Access,
    pub append: bool,
    pub pos: u64,
    /// Descriptors naming it, in every table.
    pub refs: u32,
}

#[derive(Default)]
pub struct Files {
    /// Mount point → driver.
    pub mounts: BTreeMap<String, DriverId>,
    pub drivers: BTreeMap<DriverId, Driver>,
    /// Live drivers by connection.
    pub by_client: BTreeMap<ClientId, DriverId>,
    pub objects: BTreeMap<ObjectKey, Object>,
    pub open: BTreeMap<FileId, OpenFile>,
    /// Descriptor tables by pid (no entry: empty).
    pub fds: BTreeMap<u32, BTreeMap<i32, FileId>>,
    /// The owner a driver's answer named for an object not in the table
    /// yet (a lookup), taken by [`Files::object_for`] during that step.
    pub reported_owner: Option<(ObjectKey, Owner)>,
    next_driver: u32,
    next_file: u64,
}

/// Whether a mount name is an absolute path without a trailing `/`
/// (except `/` itself) or empty components.
fn valid_mount(mount: &str) -> bool {
    mount == "/"
        || (mount.starts_with('/')
            && !mount.ends_with('/')
            && !mount.contains("//")
            && !mount.split('/').any(|c| c == "." || c == ".."))
}

/// Append a file name's bytes to `/proc` text as Linux's
/// `seq_file_path(m, file, "\n")` does for `/proc/<pid>/maps`: a newline
/// as the octal escape `\012`; a byte that is not part of UTF-8 text
/// (Linux writes it raw, the text here is UTF-8) as `\ooo` too.
pub fn push_proc_name(out: &mut String, name: &[u8]) {
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\n' {
                out.push_str("\\012");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = core::fmt::Write::write_fmt(out, format_args!("\\{b:03o}"));
        }
    }
}

/// Whether one mount point is the other, or lies under it.
fn overlaps(a: &str, b: &str) -> bool {
    let under = |inner: &str, outer: &str| {
        outer == "/"
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    a == b || under(a, b) || under(b, a)
}

impl Files {
    /// `RegisterDriver` from `client`.
    pub fn register(
        &mut self,
        client: ClientId,
        owner: (u32, u32),
        registration: DriverRegistration,
    ) -> Result<DriverId, Errno> {
        if self.by_client.contains_key(&client) {
            // A connection serves one mount.
            return Err(Errno::EINVAL);
        }
        if !valid_mount(&registration.mount) {
            return Err(Errno::EINVAL);
        }
        // One driver decides what a path is: a point already served, or
        // one above or inside a served point (which would take part of
        // that driver's names, or hand it part of its own), is refused.
        let mount = registration.mount.as_str();
        if self.mounts.keys().any(|m| overlaps(m, mount)) {
            return Err(Errno::EBUSY);
        }
        if self.mounts.len() >= MAX_MOUNTS {
            return Err(Errno::ENOSPC);
        }
        // The last number is the SysV segments' pseudo-driver.
        self.next_driver = self
            .next_driver
            .checked_add(1)
            .filter(|&n| n != crate::shm::SHM_DRIVER.0)
            .ok_or(Errno::ENOSPC)?;
        let id = DriverId(self.next_driver);
        self.mounts
            .insert(String::from(registration.mount.as_str()), id);
        self.by_client.insert(client, id);
        self.drivers.insert(
            id,
            Driver {
                client,
                registration,
                owner,
                alive: true,
                exclusive: BTreeSet::new(),
                expired: VecDeque::new(),
                parked_releases: BTreeSet::new(),
                without_pages: false,
            },
        );
        Ok(id)
    }

    /// The live driver a connection is, if it is one.
    pub fn driver_of(&self, client: ClientId) -> Option<DriverId> {
        self.by_client.get(&client).copied()
    }

    pub fn alive(&self, driver: DriverId) -> bool {
        self.drivers.get(&driver).is_some_and(|d| d.alive)
    }

    /// The driver's connection closed: the mount goes; what refers to its
    /// objects stays until released, but calls fail.
    pub fn kill(&mut self, driver: DriverId) {
        if let Some(d) = self.drivers.get_mut(&driver) {
            d.alive = false;
            d.exclusive.clear();
            for object in core::mem::take(&mut d.parked_releases) {
                if let Some(o) = self.objects.get_mut(&ObjectKey { driver, object }) {
                    o.release_due = false;
                }
            }
            self.by_client.remove(&d.client);
            self.mounts.remove(d.registration.mount.as_str());
        }
    }

    /// The mount serving `path` (the longest mount that is the path itself
    /// or a prefix of it followed by `/`) and the rest of the path without
    /// its leading `/` (`""` for the mount itself). A path is bytes; mount
    /// points are text, so a prefix that is not UTF-8 is no mount.
    pub fn resolve<'p>(&self, path: &'p [u8]) -> Result<(DriverId, &'p [u8]), Errno> {
        if path.first() != Some(&b'/') {
            return Err(Errno::ENOENT);
        }
        let mut prefix = path;
        loop {
            let mount = core::str::from_utf8(prefix).ok();
            if let Some(&driver) = mount.and_then(|m| self.mounts.get(m)) {
                let mut rest = &path[prefix.len()..];
                while let [b'/', tail @ ..] = rest {
                    rest = tail;
                }
                return Ok((driver, rest));
            }
            match prefix.iter().rposition(|&b| b == b'/') {
                Some(0) if prefix != b"/" => prefix = b"/",
                Some(0) | None => return Err(Errno::ENOENT),
                Some(i) => prefix = &prefix[..i],
            }
        }
    }

    /// Every mount point, for `ListMounts`.
    pub fn mount_names(&self) -> heapless::Vec<MountName, MAX_MOUNTS> {
        let mut out = heapless::Vec::new();
        for name in self.mounts.keys() {
            let mut m = MountName::new();
            if m.push_str(name).is_ok() {
                let _ = out.push(m);
            }
        }
        out
    }

    /// The owner of an object: the one its driver reported, else the
    /// driver's connection.
    pub fn owner_of(&self, key: ObjectKey) -> Owner {
        if let Some(owner) = self.objects.get(&key).and_then(|o| o.owner) {
            return owner;
        }
        let (uid, gid) = self.drivers.get(&key.driver).map_or((0, 0), |d| d.owner);
        Owner { uid, gid }
    }

    /// A driver's answer named `owner` for `key`: recorded on the object,
    /// or kept for the lookup that is about to add it.
    pub fn note_owner(&mut self, key: ObjectKey, owner: Owner) {
        match self.objects.get_mut(&key) {
            Some(o) => o.owner = Some(owner),
            None => self.reported_owner = Some((key, owner)),
        }
    }

    /// `/proc` name of an object: mount + `/` + lookup path, or the device
    /// mount itself; the name's bytes as [`push_proc_name`] writes them.
    pub fn display_path(&self, driver: DriverId, lookup: &[u8]) -> String {
        let mount = self
            .drivers
            .get(&driver)
            .map(|d| d.registration.mount.as_str())
            .unwrap_or("");
        let mut path = String::from(mount);
        if !lookup.is_empty() {
            if !path.ends_with('/') {
                path.push('/');
            }
            push_proc_name(&mut path, lookup);
        }
        path
    }

    /// A new open file description (one descriptor reference).
    pub fn new_file(&mut self, key: ObjectKey, access: Access, append: bool) -> FileId {
        self.next_file += 1;
        let id = FileId(self.next_file);
        self.open.insert(
            id,
            OpenFile {
                key,
                access,
                append,
                pos: 0,
                refs: 1,
            },
        );
        id
    }

    /// Install `file` at the lowest free descriptor of `pid`.
    pub fn install_fd(&mut self, pid: u32, file: FileId, max: usize) -> Result<i32, Errno> {
        let table = self.fds.entry(pid).or_default();
        if table.len() >= max {
            return Err(Errno::EMFILE);
        }
        let mut fd = FIRST_FD;
        for &used in table.keys() {
            if used != fd {
                break;
            }
            fd = fd.checked_add(1).ok_or(Errno::EMFILE)?;
        }
        table.insert(fd, file);
        Ok(fd)
    }

    /// The description behind `fd` of `pid`.
    pub fn file_of(&self, pid: u32, fd: i32) -> Result<(FileId, OpenFile), Errno> {
        let id = *self
            .fds
            .get(&pid)
            .and_then(|t| t.get(&fd))
            .ok_or(Errno::EBADF)?;
        let file = *self.open.get(&id).ok_or(Errno::EBADF)?;
        Ok((id, file))
    }

    /// Remove `fd` from `pid`'s table.
    pub fn remove_fd(&mut self, pid: u32, fd: i32) -> Result<FileId, Errno> {
        let table = self.fds.get_mut(&pid).ok_or(Errno::EBADF)?;
        let id = table.remove(&fd).ok_or(Errno::EBADF)?;
        if table.is_empty() {
            self.fds.remove(&pid);
        }
        Ok(id)
    }

    /// Drop one descriptor reference to `file`; the object whose reference
    /// the description held when it is gone.
    pub fn put_file(&mut self, file: FileId) -> Option<ObjectKey> {
        let f = self.open.get_mut(&file)?;
        f.refs = f.refs.saturating_sub(1);
        if f.refs == 0 {
            return self.open.remove(&file).map(|f| f.key);
        }
        None
    }

    /// `clone`: the child gets a copy of the parent's table (sharing the
    /// descriptions).
    pub fn copy_table(&mut self, from: u32, to: u32) {
        let Some(table) = self.fds.get(&from).cloned() else {
            return;
        };
        for id in table.values() {
            if let Some(f) = self.open.get_mut(id) {
                f.refs += 1;
            }
        }
        self.fds.insert(to, table);
    }

    /// Everything `pid` had open (its table is gone).
    pub fn take_table(&mut self, pid: u32) -> Vec<FileId> {
        self.fds
            .remove(&pid)
            .map(|t| t.into_values().collect())
            .unwrap_or_default()
    }

    /// One more reference to an object that exists.
    pub fn get_object(&mut self, key: ObjectKey) {
        if let Some(o) = self.objects.get_mut(&key) {
            o.refs += 1;
        }
    }

    /// The object for a lookup answer: found (its info refreshed) or made.
    /// Takes one reference.
    pub fn object_for(&mut self, driver: DriverId, info: ObjectInfo, lookup: &[u8]) -> ObjectKey {
        let key = ObjectKey {
            driver,
            object: info.object,
        };
        let reported = self.reported_owner.take().filter(|(k, _)| *k == key);
        if let Some(o) = self.objects.get_mut(&key) {
            o.info = info;
            o.refs += 1;
            return key;
        }
        let (dev_major, dev_minor) = self
            .drivers
            .get(&driver)
            .map(|d| d.registration.dev)
            .unwrap_or((0, 0));
        let backing = Arc::new(BackingObject {
            key,
            dev_major: u32::from(dev_major),
            dev_minor: u32::from(dev_minor),
            inode: info.ino,
            path: self.display_path(driver, lookup),
        });
        self.objects.insert(
            key,
            Object {
                info,
                owner: reported.map(|(_, owner)| owner),
                backing,
                refs: 1,
                active: None,
                queue: VecDeque::new(),
                release_due: false,
            },
        );
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(mount: &str) -> DriverRegistration {
        DriverRegistration {
            name: heapless::String::try_from("t").unwrap(),
            mount: MountName::try_from(mount).unwrap(),
            dev: (1, 2),
            noexec: false,
            read_only: false,
        }
    }

    #[test]
    fn mount_points_neither_repeat_nor_nest() {
        let mut f = Files::default();
        let shm = f.register(ClientId(1), (0, 0), reg("/dev/shm")).unwrap();
        let fb = f.register(ClientId(2), (0, 0), reg("/dev/fb0")).unwrap();
        let rom = f.register(ClientId(3), (0, 0), reg("/rom")).unwrap();
        // The same point, one inside a served point, one enclosing one.
        for busy in ["/dev/shm", "/dev/shm/x", "/dev", "/", "/rom/a/b"] {
            assert_eq!(
                f.register(ClientId(4), (0, 0), reg(busy)),
                Err(Errno::EBUSY),
                "{busy}"
            );
        }
        // A name that only starts like a served point is no nesting.
        let shm2 = f.register(ClientId(5), (0, 0), reg("/dev/shm2")).unwrap();
        assert_eq!(
            f.register(ClientId(1), (0, 0), reg("/x")),
            Err(Errno::EINVAL)
        );
        for bad in ["dev", "/dev/", "/a//b", "/a/../b", ""] {
            assert_eq!(
                f.register(ClientId(9), (0, 0), reg(bad)),
                Err(Errno::EINVAL)
            );
        }
        assert_eq!(f.resolve(b"/dev/fb0"), Ok((fb, &b""[..])));
        assert_eq!(f.resolve(b"/dev/fb0/x"), Ok((fb, &b"x"[..])));
        assert_eq!(f.resolve(b"/dev/fb01"), Err(Errno::ENOENT));
        assert_eq!(f.resolve(b"/dev/shm/a"), Ok((shm, &b"a"[..])));
        assert_eq!(f.resolve(b"/dev/shm2/a"), Ok((shm2, &b"a"[..])));
        assert_eq!(f.resolve(b"/dev"), Err(Errno::ENOENT));
        assert_eq!(f.resolve(b"/rom"), Ok((rom, &b""[..])));
        assert_eq!(f.resolve(b"/"), Err(Errno::ENOENT));
        assert_eq!(f.resolve(b"rel"), Err(Errno::ENOENT));
        // Once a driver is gone its point, and what it enclosed, is free.
        f.kill(shm);
        assert_eq!(f.resolve(b"/dev/shm/a"), Err(Errno::ENOENT));
        let under = f
            .register(ClientId(6), (0, 0), reg("/dev/shm/deep"))
            .unwrap();
        assert_eq!(f.resolve(b"/dev/shm/deep/z"), Ok((under, &b"z"[..])));
        assert_eq!(f.display_path(fb, b""), "/dev/fb0");
        assert_eq!(f.display_path(rom, b"a"), "/rom/a");
        assert_eq!(f.mount_names().len(), 4);
    }

    #[test]
    fn the_root_mount_takes_every_path_and_so_stands_alone() {
        let mut f = Files::default();
        let root = f.register(ClientId(1), (0, 0), reg("/")).unwrap();
        assert_eq!(f.resolve(b"/devx/a"), Ok((root, &b"devx/a"[..])));
        assert_eq!(f.resolve(b"/"), Ok((root, &b""[..])));
        assert_eq!(f.display_path(root, b"a"), "/a");
        assert_eq!(
            f.register(ClientId(2), (0, 0), reg("/dev")),
            Err(Errno::EBUSY)
        );
        f.kill(root);
        assert_eq!(f.resolve(b"/devx/a"), Err(Errno::ENOENT));
    }

    #[test]
    fn descriptors_take_the_lowest_free_number() {
        let mut f = Files::default();
        let key = ObjectKey {
            driver: DriverId(1),
            object: 1,
        };
        let acc = Access {
            read: true,
            write: false,
        };
        let mut fds = Vec::new();
        for _ in 0..3 {
            let id = f.new_file(key, acc, false);
            fds.push(f.install_fd(7, id, 10).unwrap());
        }
        assert_eq!(fds, [3, 4, 5]);
        let gone = f.remove_fd(7, 4).unwrap();
        assert_eq!(f.put_file(gone), Some(key));
        let id = f.new_file(key, acc, false);
        assert_eq!(f.install_fd(7, id, 10), Ok(4));
        let id = f.new_file(key, acc, false);
        assert_eq!(f.install_fd(7, id, 3), Err(Errno::EMFILE));
        f.copy_table(7, 8);
        let (id3, file) = f.file_of(8, 3).unwrap();
        assert_eq!(file.refs, 2);
        assert_eq!(f.file_of(9, 3).map(|_| ()), Err(Errno::EBADF));
        assert_eq!(f.take_table(7).len(), 3);
        assert_eq!(f.put_file(id3), None);
        assert_eq!(f.put_file(id3), Some(key));
    }
}
