//! `read`/`pread`, `write`/`pwrite`, `lseek`, `fstat` and `ftruncate` of
//! descriptors, forwarded to the object's driver (`ReadData`, `WriteData`,
//! `Stat`, `Truncate`) through the object's queue. The server keeps the
//! file position; `O_APPEND` writes go to the size `Stat` reports.

use alloc::vec::Vec;

use crate::file_flags::{is_stream, type_bits, MAX_OFFSET, SEEK_CUR, SEEK_END, SEEK_SET};
use crate::files::{FileId, OpenFile};
use crate::ops::{driver_errno, unexpected, Input, Op, OpKind, Step};
use crate::region::ObjectKey;
use crate::{Answer, Caller, Effect, MemoryServer, PhysicalMemory};
use protocol::{
    Bytes, DriverOps, DriverReply, DriverRequest, Errno, FileStat, ObjectInfo, ObjectKind, Reply,
    DATA_CHUNK,
};

pub struct ReadOp {
    pub file: FileId,
    pub len: u32,
    /// `pread`'s offset; `None` reads at the file position.
    pub offset: Option<u64>,
    /// Where the read was sent.
    pub at: u64,
}

pub struct WriteOp {
    pub file: FileId,
    pub data: Bytes,
    pub offset: Option<u64>,
    /// Waiting for the size of an `O_APPEND` file.
    pub sizing: bool,
    /// Where the write was sent.
    pub at: u64,
}

/// `lseek(SEEK_END)`: the size comes from the driver.
pub struct SeekOp {
    pub file: FileId,
    pub offset: i64,
}

pub struct StatOp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncState {
    Stat,
    Truncating,
}

pub struct TruncateOp {
    pub len: u64,
    pub state: TruncState,
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// An operation on the object behind a descriptor (holding a reference).
    pub(crate) fn object_op(&mut self, who: &Caller, key: ObjectKey, kind: OpKind) -> Op {
        self.files.get_object(key);
        Op::for_caller(who, key.driver, Some(key), kind)
    }

    pub(super) fn info_of(&self, key: ObjectKey) -> Result<ObjectInfo, Errno> {
        self.files
            .objects
            .get(&key)
            .map(|o| o.info)
            .ok_or(Errno::EBADF)
    }

    /// A stat answer: the object's size and mode are refreshed (its
    /// identity, kind, capabilities and methods stay those of the lookup).
    /// Returns the size.
    pub(crate) fn refresh_info(&mut self, key: ObjectKey, info: &ObjectInfo) -> u64 {
        if let Some(o) = self.files.objects.get_mut(&key) {
            o.info.size = info.size;
            o.info.mode = info.mode;
        }
        info.size
    }

    /// The open file behind `fd` for a read or (`write`) a write at
    /// `offset`, checked as `read`/`write` check it: `EBADF` without that
    /// access, `EISDIR` for reading a directory, `EINVAL` when the driver
    /// has no such method, then the offset (`check_offset`).
    pub(super) fn file_for_io(
        &self,
        who: &Caller,
        fd: i32,
        write: bool,
        offset: Option<u64>,
    ) -> Result<(FileId, OpenFile), Errno> {
        let (file, f) = self.files.file_of(who.pid, fd)?;
        let (allowed, method) = if write {
            (f.access.write, DriverOps::WRITE)
        } else {
            (f.access.read, DriverOps::READ)
        };
        if !allowed {
            return Err(Errno::EBADF);
        }
        let info = self.info_of(f.key)?;
        if !write && info.kind == ObjectKind::Directory {
            return Err(Errno::EISDIR);
        }
        if !info.ops.has(method) {
            return Err(Errno::EINVAL);
        }
        check_offset(info.kind, offset)?;
        Ok((file, f))
    }

    pub(crate) fn sys_read(
        &mut self,
        who: &Caller,
        fd: i32,
        len: u32,
        offset: Option<u64>,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (file, f) = self.file_for_io(who, fd, false, offset)?;
        let len = len.min(DATA_CHUNK as u32);
        if len == 0 {
            return Ok(Answer::Now(Reply::Data(Bytes::new())));
        }
        let op = self.object_op(
            who,
            f.key,
            OpKind::Read(ReadOp {
                file,
                len,
                offset,
                at: 0,
            }),
        );
        Ok(self.submit_op(op, fx))
    }

    pub(crate) fn read_step(&mut self, o: &mut ReadOp, key: ObjectKey, input: Input) -> Step {
        match input {
            Input::Start => {
                o.at = self.position(o.file, o.offset);
                Step::Send(DriverRequest::ReadData {
                    object: key.object,
                    offset: o.at,
                    len: o.len,
                })
            }
            Input::Reply(DriverReply::Data(bytes)) => {
                if bytes.len() > o.len as usize {
                    return Step::Done(Err(Errno::EIO));
                }
                if o.offset.is_none() {
                    if let Some(f) = self.files.open.get_mut(&o.file) {
                        f.pos = o.at.saturating_add(bytes.len() as u64);
                    }
                }
                Step::Done(Ok(Reply::Data(bytes)))
            }
            Input::Reply(other) => unexpected(other),
        }
    }

    pub(crate) fn sys_write(
        &mut self,
        who: &Caller,
        fd: i32,
        data: Bytes,
        offset: Option<u64>,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (file, f) = self.file_for_io(who, fd, true, offset)?;
        if data.is_empty() {
            return Ok(Answer::Now(Reply::Count(0)));
        }
        let sizing = offset.is_none() && f.append;
        let op = self.object_op(
            who,
            f.key,
            OpKind::Write(WriteOp {
                file,
                data,
                offset,
                sizing,
                at: 0,
            }),
        );
        Ok(self.submit_op(op, fx))
    }

    pub(crate) fn write_step(&mut self, o: &mut WriteOp, key: ObjectKey, input: Input) -> Step {
        match input {
            Input::Start if o.sizing => Step::Send(DriverRequest::Stat { object: key.object }),
            Input::Start => self.send_write(o, key),
            Input::Reply(DriverReply::Opened(info)) if o.sizing => {
                o.sizing = false;
                let size = self.refresh_info(key, &info);
                if let Some(f) = self.files.open.get_mut(&o.file) {
                    f.pos = size;
                }
                self.send_write(o, key)
            }
            Input::Reply(DriverReply::Count(n)) if !o.sizing => {
                if n > o.data.len() as u64 {
                    return Step::Done(Err(Errno::EIO));
                }
                if o.offset.is_none() {
                    if let Some(f) = self.files.open.get_mut(&o.file) {
                        f.pos = o.at.saturating_add(n);
                    }
                }
                Step::Done(Ok(Reply::Count(n)))
            }
            Input::Reply(other) => unexpected(other),
        }
    }

    /// Where a transfer goes: `pread`'s offset, else the file position.
    fn position(&self, file: FileId, offset: Option<u64>) -> u64 {
        offset.unwrap_or_else(|| self.files.open.get(&file).map_or(0, |f| f.pos))
    }

    fn send_write(&mut self, o: &mut WriteOp, key: ObjectKey) -> Step {
        o.at = self.position(o.file, o.offset);
        match o.at.checked_add(o.data.len() as u64) {
            Some(end) if end <= MAX_OFFSET => Step::Send(DriverRequest::WriteData {
                object: key.object,
                offset: o.at,
                data: o.data.clone(),
            }),
            _ => Step::Done(Err(Errno::EFBIG)),
        }
    }

    pub(crate) fn sys_lseek(
        &mut self,
        who: &Caller,
        fd: i32,
        offset: i64,
        whence: u32,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (file, f) = self.files.file_of(who.pid, fd)?;
        let info = self.info_of(f.key)?;
        if is_stream(info.kind) {
            return Err(Errno::ESPIPE);
        }
        let base = match whence {
            SEEK_SET => 0,
            SEEK_CUR => f.pos,
            SEEK_END => {
                let op = self.object_op(who, f.key, OpKind::Seek(SeekOp { file, offset }));
                return Ok(self.submit_op(op, fx));
            }
            _ => return Err(Errno::EINVAL),
        };
        let pos = seek_to(base, offset)?;
        if let Some(f) = self.files.open.get_mut(&file) {
            f.pos = pos;
        }
        Ok(Answer::Now(Reply::Offset(pos)))
    }

    pub(crate) fn seek_step(&mut self, o: &mut SeekOp, key: ObjectKey, input: Input) -> Step {
        match input {
            Input::Start => Step::Send(DriverRequest::Stat { object: key.object }),
            Input::Reply(DriverReply::Opened(info)) => {
                let size = self.refresh_info(key, &info);
                let result = seek_to(size, o.offset).map(|pos| {
                    if let Some(f) = self.files.open.get_mut(&o.file) {
                        f.pos = pos;
                    }
                    Reply::Offset(pos)
                });
                Step::Done(result)
            }
            Input::Reply(other) => unexpected(other),
        }
    }

    pub(crate) fn sys_fstat(
        &mut self,
        who: &Caller,
        fd: i32,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (_, f) = self.files.file_of(who.pid, fd)?;
        let op = self.object_op(who, f.key, OpKind::Stat(StatOp));
        Ok(self.submit_op(op, fx))
    }

    pub(crate) fn stat_step(&mut self, _o: &mut StatOp, key: ObjectKey, input: Input) -> Step {
        match input {
            Input::Start => Step::Send(DriverRequest::Stat { object: key.object }),
            Input::Reply(DriverReply::Opened(info)) => {
                self.refresh_info(key, &info);
                let Some(d) = self.files.drivers.get(&key.driver) else {
                    return Step::Done(Err(Errno::EIO));
                };
                let owner = self.files.owner_of(key);
                let kind = self
                    .files
                    .objects
                    .get(&key)
                    .map_or(info.kind, |o| o.info.kind);
                Step::Done(Ok(Reply::Stat(FileStat {
                    dev: d.registration.dev,
                    ino: info.ino,
                    mode: type_bits(kind) | (info.mode & 0o7777),
                    size: info.size,
                    uid: owner.uid,
                    gid: owner.gid,
                })))
            }
            Input::Reply(other) => unexpected(other),
        }
    }

    /// `ftruncate`: write access and a driver that can truncate, else
    /// `EINVAL` (as Linux); then the §7.5 rules against the current size.
    pub(crate) fn sys_ftruncate(
        &mut self,
        who: &Caller,
        fd: i32,
        len: u64,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (_, f) = self.files.file_of(who.pid, fd)?;
        if len > MAX_OFFSET || !f.access.write {
            return Err(Errno::EINVAL);
        }
        let info = self.info_of(f.key)?;
        if !info.ops.has(DriverOps::TRUNCATE) {
            return Err(Errno::EINVAL);
        }
        let op = self.object_op(
            who,
            f.key,
            OpKind::Truncate(TruncateOp {
                len,
                state: TruncState::Stat,
            }),
        );
        Ok(self.submit_op(op, fx))
    }

    pub(crate) fn truncate_step(
        &mut self,
        o: &mut TruncateOp,
        key: ObjectKey,
        input: Input,
    ) -> Step {
        match (o.state, input) {
            (TruncState::Stat, Input::Start) => {
                Step::Send(DriverRequest::Stat { object: key.object })
            }
            (TruncState::Stat, Input::Reply(DriverReply::Opened(info))) => {
                let old = self.refresh_info(key, &info);
                if let Err(e) = self.truncate_allowed(key, old, o.len) {
                    return Step::Done(Err(e));
                }
                self.truncate_mappings(key, old, o.len);
                o.state = TruncState::Truncating;
                Step::Send(DriverRequest::Truncate {
                    object: key.object,
                    size: o.len,
                })
            }
            (TruncState::Truncating, Input::Reply(DriverReply::Done)) => {
                self.truncate_done(key, o.len);
                Step::Done(Ok(Reply::Done))
            }
            (_, Input::Reply(DriverReply::Error(e))) => Step::Done(Err(driver_errno(e))),
            _ => Step::Done(Err(Errno::EIO)),
        }
    }
}

/// `base + offset` as a new file position (`EINVAL` below 0,
/// `EOVERFLOW` past the largest offset).
fn seek_to(base: u64, offset: i64) -> Result<u64, Errno> {
    let base = i64::try_from(base).map_err(|_| Errno::EOVERFLOW)?;
    match base.checked_add(offset) {
        Some(pos) if pos >= 0 => Ok(pos as u64),
        Some(_) => Err(Errno::EINVAL),
        None if offset < 0 => Err(Errno::EINVAL),
        None => Err(Errno::EOVERFLOW),
    }
}

/// `pread`/`pwrite`'s offset: none on a stream (`ESPIPE`), none past the
/// largest file offset (`EINVAL`).
fn check_offset(kind: ObjectKind, offset: Option<u64>) -> Result<(), Errno> {
    if offset.is_some() && is_stream(kind) {
        return Err(Errno::ESPIPE);
    }
    if offset.is_some_and(|o| o > MAX_OFFSET) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}
