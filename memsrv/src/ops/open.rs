//! `open` and `close` of paths under driver mounts.
//!
//! `Open` resolves the mount (longest prefix), refuses write access on a
//! read-only mount (`EROFS`), asks the driver to look the path up, checks
//! the object's permission bits against the caller (the driver's
//! connection owns its objects; uid 0 passes), and installs a descriptor
//! at the lowest free number from 3. `O_TRUNC` is not passed to the
//! driver's first lookup: the server truncates through the §7.5 rules
//! itself, so a file under a shared mapping cannot be emptied behind it
//! (`ETXTBSY`). A regular file whose driver has no `TRUNCATE` (a copy-only
//! filesystem: files grow by writing, never shrink by `ftruncate`) is
//! looked up once more with `O_TRUNC`, after the same check, and empties
//! itself there, as the driver contract's lookup does.

use alloc::vec::Vec;

use crate::attributes::AttributesOp;
use crate::file_flags::{permitted, Access, O_APPEND, O_CREAT, O_EXCL, O_TRUNC};
use crate::ops::{driver_errno, Input, Op, OpKind, Step};
use crate::region::{DriverId, ObjectKey};
use crate::{Answer, Caller, Effect, MemoryServer, PhysicalMemory};
use protocol::{DriverOps, DriverReply, DriverRequest, Errno, ObjectKind, Owner, Path, Reply};

/// Where an open stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenState {
    Lookup,
    /// `O_TRUNC`: asking the current size.
    TruncStat,
    /// `O_TRUNC`: the driver truncates to 0.
    Truncating,
    /// `O_TRUNC` on a driver without `TRUNCATE`: the file looked up again
    /// with `O_TRUNC`, which empties it.
    TruncLookup,
    /// Not an open: a `SetAttributes` of the path looked up.
    Attributes,
}

pub struct OpenOp {
    /// The path relative to the mount.
    pub lookup: Path,
    pub flags: u32,
    pub mode: u32,
    pub access: Access,
    pub caller: (u32, u32),
    /// The caller's supplementary groups.
    pub groups: Vec<u32>,
    pub read_only: bool,
    pub state: OpenState,
    /// A lookup for `chmod`/`chown`, not an open: what to do with the
    /// object once found.
    pub attributes: Option<AttributesOp>,
}

impl<M: PhysicalMemory> MemoryServer<M> {
    pub(crate) fn sys_open(
        &mut self,
        who: &Caller,
        path: &[u8],
        flags: u32,
        mode: u32,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let access = Access::from_flags(flags).ok_or(Errno::EINVAL)?;
        let (driver, lookup, read_only) = self.resolve_mount(path)?;
        if read_only && (access.write || flags & O_TRUNC != 0) {
            return Err(Errno::EROFS);
        }
        let open = self.files.fds.get(&who.pid).map_or(0, |t| t.len());
        if open >= self.config.max_open_files {
            return Err(Errno::EMFILE);
        }
        let op = Op::for_caller(
            who,
            driver,
            None,
            OpKind::Open(OpenOp {
                lookup,
                flags,
                mode,
                access,
                caller: (who.uid, who.gid),
                groups: self.caller_groups(who),
                read_only,
                state: OpenState::Lookup,
                attributes: None,
            }),
        );
        Ok(self.submit_op(op, fx))
    }

    /// The supplementary groups the transport reported for the caller's
    /// connection.
    pub(crate) fn caller_groups(&self, who: &Caller) -> Vec<u32> {
        self.procs
            .conns
            .get(&who.client)
            .map(|c| c.groups.clone())
            .unwrap_or_default()
    }

    /// The mount serving `path`, the path relative to it, and whether the
    /// mount is read-only. A path holding a NUL (no C caller can name one)
    /// → `EINVAL`.
    pub(crate) fn resolve_mount(&self, path: &[u8]) -> Result<(DriverId, Path, bool), Errno> {
        if path.contains(&0) {
            return Err(Errno::EINVAL);
        }
        let (driver, rest) = self.files.resolve(path)?;
        let lookup = Path::try_from(rest).map_err(|_| Errno::ENAMETOOLONG)?;
        let read_only = self
            .files
            .drivers
            .get(&driver)
            .is_some_and(|d| d.registration.read_only);
        Ok((driver, lookup, read_only))
    }

    pub(crate) fn sys_close(&mut self, pid: u32, fd: i32) -> Result<Answer, Errno> {
        let file = self.files.remove_fd(pid, fd)?;
        if let Some(key) = self.files.put_file(file) {
            self.unref_object(key);
        }
        Ok(Answer::Now(Reply::Done))
    }

    pub(crate) fn open_step(
        &mut self,
        o: &mut OpenOp,
        driver: DriverId,
        pid: u32,
        object: &mut Option<ObjectKey>,
        holds: &mut bool,
        input: Input,
    ) -> Step {
        if let (OpenState::Attributes, Some(a), Some(key)) = (o.state, &mut o.attributes, *object) {
            return self.attributes_step(a, key, input);
        }
        let reply = match input {
            Input::Start => {
                return match (o.state, *object) {
                    (OpenState::Lookup, _) => {
                        let mut flags = o.flags & !O_TRUNC;
                        if o.read_only {
                            flags &= !O_CREAT;
                        }
                        Step::Send(DriverRequest::Lookup {
                            path: o.lookup.clone(),
                            flags,
                            mode: o.mode,
                            caller: Owner {
                                uid: o.caller.0,
                                gid: o.caller.1,
                            },
                        })
                    }
                    (OpenState::TruncStat, Some(key)) => {
                        Step::Send(DriverRequest::Stat { object: key.object })
                    }
                    (OpenState::TruncLookup, Some(key)) => {
                        // In the object's turn: the §7.5 check, then the
                        // lookup that empties it.
                        let old = self.files.objects.get(&key).map_or(0, |o| o.info.size);
                        if let Err(e) = self.truncate_allowed(key, old, 0) {
                            return Step::Done(Err(e));
                        }
                        Step::Send(DriverRequest::Lookup {
                            path: o.lookup.clone(),
                            // The file exists now: only emptied.
                            flags: o.flags & !(O_CREAT | O_EXCL),
                            mode: o.mode,
                            caller: Owner {
                                uid: o.caller.0,
                                gid: o.caller.1,
                            },
                        })
                    }
                    _ => Step::Done(Err(Errno::EIO)),
                };
            }
            Input::Reply(r) => r,
        };
        match (o.state, reply, *object) {
            (OpenState::Lookup, DriverReply::Opened(info), _) => {
                let lookup = o.lookup.clone();
                let key = self.files.object_for(driver, info, &lookup);
                *object = Some(key);
                *holds = true;
                if o.attributes.is_some() {
                    // Found: the rest waits for the object's turn.
                    o.state = OpenState::Attributes;
                    return Step::Queue;
                }
                // The lookup went without O_CREAT on a read-only mount;
                // an exclusive create of an existing file is still EEXIST.
                if o.read_only && o.flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
                    return Step::Done(Err(Errno::EEXIST));
                }
                let truncate = o.flags & O_TRUNC != 0;
                if info.kind == ObjectKind::Directory && (o.access.write || truncate) {
                    return Step::Done(Err(Errno::EISDIR));
                }
                let owner = self.files.owner_of(key);
                let owner = (owner.uid, owner.gid);
                let want = Access {
                    read: o.access.read,
                    write: o.access.write || truncate,
                };
                if !permitted(info.mode, owner, o.caller, &o.groups, want) {
                    return Step::Done(Err(Errno::EACCES));
                }
                let device = matches!(
                    info.kind,
                    ObjectKind::CharDevice | ObjectKind::BlockDevice | ObjectKind::Fifo
                );
                if truncate && o.access.write && !device && info.ops.has(DriverOps::TRUNCATE) {
                    o.state = OpenState::TruncStat;
                    return Step::Queue;
                }
                if truncate
                    && o.access.write
                    && info.kind == ObjectKind::RegularFile
                    && info.size > 0
                {
                    o.state = OpenState::TruncLookup;
                    return Step::Queue;
                }
                Step::Done(self.install_open(o, key, pid, holds))
            }
            (OpenState::Lookup, DriverReply::Error(e), _) => {
                if e == Errno::ENOENT && o.read_only && o.flags & O_CREAT != 0 {
                    Step::Done(Err(Errno::EROFS))
                } else {
                    Step::Done(Err(driver_errno(e)))
                }
            }
            (OpenState::TruncStat, DriverReply::Opened(info), Some(key)) => {
                let old = self.refresh_info(key, &info);
                if old == 0 {
                    return Step::Done(self.install_open(o, key, pid, holds));
                }
                if let Err(e) = self.truncate_allowed(key, old, 0) {
                    return Step::Done(Err(e));
                }
                self.truncate_mappings(key, old, 0);
                o.state = OpenState::Truncating;
                Step::Send(DriverRequest::Truncate {
                    object: key.object,
                    size: 0,
                })
            }
            (OpenState::TruncLookup, DriverReply::Opened(info), Some(key)) => {
                // The same file, or the name changed hands meanwhile.
                if info.object != key.object {
                    return Step::Done(Err(Errno::EIO));
                }
                let old = self.files.objects.get(&key).map_or(0, |o| o.info.size);
                self.truncate_mappings(key, old, info.size);
                self.refresh_info(key, &info);
                Step::Done(self.install_open(o, key, pid, holds))
            }
            (OpenState::Truncating, DriverReply::Done, Some(key)) => {
                self.truncate_done(key, 0);
                Step::Done(self.install_open(o, key, pid, holds))
            }
            (_, DriverReply::Error(e), _) => Step::Done(Err(driver_errno(e))),
            _ => Step::Done(Err(Errno::EIO)),
        }
    }

    /// The open succeeded: a description and the lowest free descriptor.
    fn install_open(
        &mut self,
        o: &OpenOp,
        key: ObjectKey,
        pid: u32,
        holds: &mut bool,
    ) -> Result<Reply, Errno> {
        if !self.procs.procs.contains_key(&pid) {
            return Err(Errno::ESRCH);
        }
        let file = self.files.new_file(key, o.access, o.flags & O_APPEND != 0);
        match self.files.install_fd(pid, file, self.config.max_open_files) {
            Ok(fd) => {
                // The description now holds the operation's reference.
                *holds = false;
                Ok(Reply::Fd(fd))
            }
            Err(e) => {
                // The description goes without dropping the reference it
                // would have taken over: the operation still holds it.
                self.files.open.remove(&file);
                Err(e)
            }
        }
    }
}
