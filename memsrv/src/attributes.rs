//! `chmod`/`fchmod` and `chown`/`fchown`/`lchown` of files under driver
//! mounts (`Request::SetAttributes`), judged as Linux's `chmod_common`,
//! `chown_common`, `notify_change` and `setattr_prepare` judge them.
//!
//! The server decides; the driver stores (`DriverRequest::SetAttributes`,
//! answered `Owned`). A path is looked up first (`ENOENT`, `ENOTDIR` as the
//! driver answers), then, in the object's turn, the server asks its current
//! mode and owner (`Stat`), applies the rules and sends the result:
//!
//! * a read-only mount: `EROFS` (after the lookup, as Linux's
//!   `mnt_want_write` comes after the path walk);
//! * `chmod`: the owner or root (`EPERM`); `S_ISGID` is dropped unless the
//!   caller is root or in the file's group;
//! * `chown`: a new owner only by root (the owner may "change" it to
//!   itself); a new group by root, or by the owner to the file's group or
//!   one it is in (`EPERM`): its effective gid or a supplementary group the
//!   transport reported for the connection;
//! * a `chown` of anything but a directory drops `S_ISUID`, and `S_ISGID`
//!   where group execute is set (Linux's `ATTR_KILL_SUID`/`ATTR_KILL_SGID`),
//!   even by root; a caller who may not `chmod` gets `EPERM` when that would
//!   change the mode.
//!
//! A driver that keeps no attributes (a device) answers `EPERM`.

use alloc::vec::Vec;

use protocol::{AttributeTarget, DriverReply, DriverRequest, Errno, ObjectKind, Owner, Reply};

use crate::file_flags::{Access, O_RDONLY};
use crate::ops::open::{OpenOp, OpenState};
use crate::ops::{unexpected, Input, Op, OpKind, Step};
use crate::region::ObjectKey;
use crate::{Answer, Caller, Effect, MemoryServer, PhysicalMemory};

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o0010;

/// What a `SetAttributes` request asks (`None`: leave it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Change {
    /// A `chown` (any request that does not set the mode, `-1, -1`
    /// included, as Linux's `chown_common` treats it).
    fn is_chown(&self) -> bool {
        self.mode.is_none() || self.uid.is_some() || self.gid.is_some()
    }
}

/// The attributes a file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub owner: Owner,
}

/// Linux's rules (see the module text): the attributes after `change` by
/// `caller`, or `EPERM`.
pub fn judge(
    now: Attributes,
    directory: bool,
    change: Change,
    caller: Owner,
    groups: &[u32],
) -> Result<Attributes, Errno> {
    let in_group = |gid: u32| gid == caller.gid || groups.contains(&gid);
    let root = caller.uid == 0;
    let owner_or_root = root || caller.uid == now.owner.uid;
    let uid = change.uid.unwrap_or(now.owner.uid);
    let gid = change.gid.unwrap_or(now.owner.gid);
    // chown_ok, chgrp_ok.
    if change.uid.is_some() && !(root || (caller.uid == now.owner.uid && uid == now.owner.uid)) {
        return Err(Errno::EPERM);
    }
    let own_group = gid == now.owner.gid || in_group(gid);
    if change.gid.is_some() && !(root || (caller.uid == now.owner.uid && own_group)) {
        return Err(Errno::EPERM);
    }
    let mut mode = now.mode & 0o7777;
    let mut mode_set = false;
    if let Some(new) = change.mode {
        mode = new & 0o7777;
        mode_set = true;
        // setattr_prepare: S_ISGID only for a member of the file's group.
        if !root && !in_group(gid) {
            mode &= !S_ISGID;
        }
    }
    if change.is_chown() && !directory {
        let before = mode;
        mode &= !S_ISUID;
        if mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP {
            mode &= !S_ISGID;
        }
        mode_set |= mode != before;
    }
    if mode_set && !owner_or_root {
        return Err(Errno::EPERM);
    }
    Ok(Attributes {
        mode,
        owner: Owner { uid, gid },
    })
}

/// Where a `SetAttributes` operation stands, in its object's turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributesState {
    /// Asking the current mode and owner.
    Stat,
    /// The driver stores the new ones.
    Storing,
}

/// A `SetAttributes` operation on a known object.
pub struct AttributesOp {
    pub change: Change,
    pub caller: Owner,
    /// The caller's supplementary groups.
    pub groups: Vec<u32>,
    pub state: AttributesState,
}

impl AttributesOp {
    fn new(change: Change, who: &Caller, groups: Vec<u32>) -> Self {
        Self {
            change,
            caller: Owner {
                uid: who.uid,
                gid: who.gid,
            },
            groups,
            state: AttributesState::Stat,
        }
    }
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `Request::SetAttributes`.
    pub(crate) fn sys_set_attributes(
        &mut self,
        who: &Caller,
        target: AttributeTarget,
        change: Change,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let groups = self.caller_groups(who);
        let attributes = AttributesOp::new(change, who, groups.clone());
        let op = match target {
            AttributeTarget::Fd(fd) => {
                let (_, f) = self.files.file_of(who.pid, fd)?;
                self.object_op(who, f.key, OpKind::Attributes(attributes))
            }
            AttributeTarget::Path(path) => {
                let (driver, lookup, read_only) = self.resolve_mount(&path)?;
                let open = OpenOp {
                    lookup,
                    flags: O_RDONLY,
                    mode: 0,
                    access: Access {
                        read: false,
                        write: false,
                    },
                    caller: (who.uid, who.gid),
                    groups,
                    read_only,
                    state: OpenState::Lookup,
                    attributes: Some(attributes),
                };
                Op::for_caller(who, driver, None, OpKind::Open(open))
            }
        };
        Ok(self.submit_op(op, fx))
    }

    /// One step of a `SetAttributes` operation in its object's turn.
    pub(crate) fn attributes_step(
        &mut self,
        a: &mut AttributesOp,
        key: ObjectKey,
        input: Input,
    ) -> Step {
        match (a.state, input) {
            (AttributesState::Stat, Input::Start) => {
                let read_only = self
                    .files
                    .drivers
                    .get(&key.driver)
                    .is_some_and(|d| d.registration.read_only);
                if read_only {
                    return Step::Done(Err(Errno::EROFS));
                }
                Step::Send(DriverRequest::Stat { object: key.object })
            }
            (AttributesState::Stat, Input::Reply(DriverReply::Opened(info))) => {
                self.refresh_info(key, &info);
                let now = Attributes {
                    mode: info.mode & 0o7777,
                    owner: self.files.owner_of(key),
                };
                let directory = info.kind == ObjectKind::Directory;
                match judge(now, directory, a.change, a.caller, &a.groups) {
                    Ok(new) => {
                        a.state = AttributesState::Storing;
                        Step::Send(DriverRequest::SetAttributes {
                            object: key.object,
                            mode: new.mode,
                            owner: new.owner,
                        })
                    }
                    Err(e) => Step::Done(Err(e)),
                }
            }
            (AttributesState::Storing, Input::Reply(DriverReply::Opened(info))) => {
                self.refresh_info(key, &info);
                Step::Done(Ok(Reply::Done))
            }
            (_, Input::Reply(other)) => unexpected(other),
            (AttributesState::Storing, Input::Start) => Step::Done(Err(Errno::EIO)),
        }
    }
}
