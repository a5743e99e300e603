//! `fsync(fd)` and `fdatasync(fd)` of a server file (outside the spec's
//! mapping rules, next to §7.6's writes): Linux's `do_fsync` →
//! `vfs_fsync_range`. A descriptor not open is `EBADF`. An object whose
//! driver declares [`DriverOps::SYNC`] is asked `Sync` in the object's
//! turn, after every write queued before it, and its answer (`EIO`,
//! `ENOSPC` from a host disk) is the caller's. Without the method, a
//! memory filesystem's file answers at once (tmpfs's `noop_fsync`: its
//! bytes are memory) and so does a block device (`blkdev_fsync` is always
//! there; a driver with nothing cached does not declare `SYNC`); any other
//! object has no fsync method and fails `EINVAL`, as in Linux (a pipe, a
//! socket, `/dev/null`, a romfs file). The descriptor's access mode does
//! not matter: Linux syncs a read-only descriptor's file too.

use alloc::vec::Vec;

use protocol::{DriverOps, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind, Reply};

use crate::ops::{unexpected, Input, OpKind, Step};
use crate::region::ObjectKey;
use crate::{Answer, Caller, Effect, MemoryServer, PhysicalMemory};

/// `fsync` (or `fdatasync`, `data_only`) waiting for the driver.
pub struct SyncOp {
    pub data_only: bool,
}

/// How an object is synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncMethod {
    /// The driver's `Sync`.
    Driver,
    /// Nothing is kept anywhere a sync could flush: done at once.
    Nothing,
    /// No fsync method: `EINVAL`.
    None,
}

fn sync_method(info: &ObjectInfo) -> SyncMethod {
    if info.ops.has(DriverOps::SYNC) {
        SyncMethod::Driver
    } else if matches!(info.kind, ObjectKind::MemoryFile | ObjectKind::BlockDevice) {
        SyncMethod::Nothing
    } else {
        SyncMethod::None
    }
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `Fsync { fd, data_only }`.
    pub(crate) fn sys_fsync(
        &mut self,
        who: &Caller,
        fd: i32,
        data_only: bool,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (_, f) = self.files.file_of(who.pid, fd)?;
        let info = self.info_of(f.key)?;
        match sync_method(&info) {
            SyncMethod::Driver => {
                let op = self.object_op(who, f.key, OpKind::Sync(SyncOp { data_only }));
                Ok(self.submit_op(op, fx))
            }
            SyncMethod::Nothing => Ok(Answer::Now(Reply::Done)),
            SyncMethod::None => Err(Errno::EINVAL),
        }
    }

    /// One step of a sync: ask, then pass the answer on.
    pub(crate) fn sync_step(&mut self, o: &SyncOp, key: ObjectKey, input: Input) -> Step {
        match input {
            Input::Start => Step::Send(DriverRequest::Sync {
                object: key.object,
                data_only: o.data_only,
            }),
            Input::Reply(DriverReply::Done) => Step::Done(Ok(Reply::Done)),
            Input::Reply(other) => unexpected(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: ObjectKind, ops: u8) -> ObjectInfo {
        crate::tests::fake_driver::FakeObject::heap(kind, ops, Vec::new()).info
    }

    #[test]
    fn the_method_follows_the_sync_bit_then_the_kind() {
        let sync = DriverOps::READ | DriverOps::SYNC;
        for kind in ObjectKind::ALL {
            assert_eq!(sync_method(&info(kind, sync)), SyncMethod::Driver);
        }
        let expected = [
            (ObjectKind::RegularFile, SyncMethod::None),
            (ObjectKind::MemoryFile, SyncMethod::Nothing),
            (ObjectKind::BlockDevice, SyncMethod::Nothing),
            (ObjectKind::CharDevice, SyncMethod::None),
            (ObjectKind::Fifo, SyncMethod::None),
            (ObjectKind::Socket, SyncMethod::None),
            (ObjectKind::Directory, SyncMethod::None),
        ];
        for (kind, method) in expected {
            assert_eq!(
                sync_method(&info(kind, DriverOps::READ)),
                method,
                "{kind:?}"
            );
        }
    }
}
