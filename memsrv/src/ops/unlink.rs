//! `unlink(path)` (`shm_unlink`, spec §7.5): the mount is resolved as for
//! `open` and the driver asked (`DriverRequest::Unlink`); the memory
//! filesystem removes the name (judging the caller the request names by
//! its sticky root, `ramfs/attributes.rs`), others answer `EPERM`. The object itself
//! lives on while descriptors, mappings or regions refer to it (the
//! server holds its references; the driver drops the data at `Release`).

use alloc::vec::Vec;

use protocol::{DriverReply, DriverRequest, Errno, Owner, Path, Reply};

use crate::ops::{unexpected, Input, Op, OpKind, Step};
use crate::{Answer, Caller, Effect, MemoryServer, PhysicalMemory};

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `Unlink { path }`: `EROFS` on a read-only mount, else the driver
    /// decides (the mount point itself goes as an empty path: a device
    /// answers `EPERM`, the memory filesystem `ENOENT`).
    pub(crate) fn sys_unlink(
        &mut self,
        who: &Caller,
        path: &[u8],
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (driver, lookup, read_only) = self.resolve_mount(path)?;
        if read_only {
            return Err(Errno::EROFS);
        }
        let caller = Owner {
            uid: who.uid,
            gid: who.gid,
        };
        let op = Op::for_caller(who, driver, None, OpKind::Unlink(lookup, caller));
        Ok(self.submit_op(op, fx))
    }

    /// One step of an unlink: ask, then pass the answer on.
    pub(crate) fn unlink_step(&mut self, path: &Path, caller: Owner, input: Input) -> Step {
        match input {
            Input::Start => Step::Send(DriverRequest::Unlink {
                path: path.clone(),
                caller,
            }),
            Input::Reply(DriverReply::Done) => Step::Done(Ok(Reply::Done)),
            Input::Reply(other) => unexpected(other),
        }
    }
}
