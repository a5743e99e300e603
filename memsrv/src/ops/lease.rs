//! `read`/`pread`, `write`/`pwrite` by lease (`ReadLease`, `WriteLease`):
//! the caller names a range of its own memory in the arena, and the bytes
//! move between it and the file in one copy, not 1 KiB per frame (the
//! Hubris idea of lending the caller's buffer for the length of a call;
//! Linux's `copy_to_user`/`copy_from_user` in `filemap_read` and
//! `generic_perform_write`, spec §7).
//!
//! The server, not the driver, copies: it asks the driver where the file's
//! bytes lie (`Pages`, checked against the driver's own storage; pages it
//! was told of before are remembered, [`super::page_map`]), checks
//! the lease against the caller's mappings as they are at that moment, and
//! copies while no other request can run. So a lease that names memory
//! not the caller's is `EFAULT`, and a buffer unmapped by another thread
//! during the call is never written. A driver whose bytes are not arena
//! pages answers `ENOSYS`, and the server moves the bytes in
//! `ReadData`/`WriteData` steps instead, still one round trip for the
//! client.
//!
//! A connection may also ask for a bulk window (`BulkWindow`): arena pages
//! of its own, charged to its process as a copy is and freed when the
//! connection closes, through which a client moves a buffer that lies
//! outside the arena. Since the server does every copy, freeing the window
//! at hang-up can never race a driver writing into it.

use alloc::vec::Vec;

use crate::file_flags::MAX_OFFSET;
use crate::files::FileId;
use crate::mm::MmId;
use crate::ops::transfer::Stage;
use crate::ops::{driver_errno, unexpected, Input, OpKind, Step};
use crate::region::ObjectKey;
use crate::vm_flags::{VmFlags, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE};
use crate::{Answer, Caller, ClientId, Effect, MemoryServer, PhysicalMemory};
use protocol::{
    Bytes, DriverOps, DriverReply, DriverRequest, Errno, PageList, Reply, Request, BULK_WINDOW,
    DATA_CHUNK, LEASE_STEP, PAGE_SIZE,
};

/// Linux's `MAX_RW_COUNT`: the most one `read`/`write` moves.
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// A transfer between a file and the caller's memory.
pub struct LeaseOp {
    pub file: FileId,
    /// The calling connection, whose window the lease may name.
    pub client: ClientId,
    /// The caller's address space, whose mappings the lease must lie in.
    pub mm: MmId,
    pub buf: u64,
    pub len: u64,
    /// `pread`'s/`pwrite`'s offset; `None` moves at the file position.
    pub offset: Option<u64>,
    /// Into the file (`write`) or out of it.
    pub write: bool,
    /// Waiting for the size of an `O_APPEND` file.
    pub sizing: bool,
    /// Where the transfer starts in the file.
    pub at: u64,
    /// Bytes moved so far.
    pub done: u64,
    /// Bytes asked of the driver in the step in flight.
    pub step: u64,
    /// The driver's bytes are not arena pages: moved in framed steps.
    pub framed: bool,
    /// The object's driver moves the bytes itself (`Transfer`).
    pub transfer: bool,
    /// The staging buffer of the `Transfer` in flight.
    pub stage: Option<Stage>,
}

impl<M: PhysicalMemory> MemoryServer<M> {
    /// `ReadLease` and `WriteLease` (anything else is `EINVAL`).
    pub(crate) fn sys_lease(
        &mut self,
        who: &Caller,
        request: Request,
        fx: &mut Vec<Effect>,
    ) -> Result<Answer, Errno> {
        let (fd, buf, len, offset, write) = match request {
            Request::ReadLease {
                fd,
                buf,
                len,
                offset,
            } => (fd, buf, len, offset, false),
            Request::WriteLease {
                fd,
                buf,
                len,
                offset,
            } => (fd, buf, len, offset, true),
            _ => return Err(Errno::EINVAL),
        };
        let (file, f) = self.file_for_io(who, fd, write, offset)?;
        let transfer = self.info_of(f.key)?.ops.has(DriverOps::TRANSFER);
        let len = len.min(MAX_RW_COUNT);
        if len == 0 {
            return Ok(Answer::Now(Reply::Count(0)));
        }
        self.lease_range(who.client, who.mm, buf, len, write)?;
        let op = self.object_op(
            who,
            f.key,
            OpKind::Lease(LeaseOp {
                file,
                client: who.client,
                mm: who.mm,
                buf,
                len,
                offset,
                write,
                sizing: write && offset.is_none() && f.append,
                at: 0,
                done: 0,
                step: 0,
                framed: self
                    .files
                    .drivers
                    .get(&f.key.driver)
                    .is_some_and(|d| d.without_pages),
                transfer,
                stage: None,
            }),
        );
        Ok(self.submit_op(op, fx))
    }

    /// `[buf, buf + len)` lies inside `client`'s bulk window, or inside
    /// one mapping of `mm` in the arena that may be read (the source of a
    /// write) or written (the destination of a read) and is not device
    /// memory; else `EFAULT`.
    fn lease_range(
        &self,
        client: ClientId,
        mm: MmId,
        buf: u64,
        len: u64,
        from: bool,
    ) -> Result<(), Errno> {
        let end = buf.checked_add(len).ok_or(Errno::EFAULT)?;
        if let Some(&(start, _)) = self.ops.windows.get(&client) {
            if buf >= start && end <= start + BULK_WINDOW {
                return Ok(());
            }
        }
        let space = self.nommu.mms.get(&mm).ok_or(Errno::EFAULT)?;
        let key = space.find_vma(buf).ok_or(Errno::EFAULT)?;
        let vma = space.get(&key).ok_or(Errno::EFAULT)?;
        let need: VmFlags = if from { VM_READ } else { VM_WRITE };
        if end > key.end
            || vma.flags & need != need
            || vma.flags & (VM_IO | VM_PFNMAP) != 0
            || !self.nommu.in_arena(buf, end)
        {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    pub(crate) fn lease_step(&mut self, o: &mut LeaseOp, key: ObjectKey, input: Input) -> Step {
        let Some(stage) = o.stage.take() else {
            return self.lease_answer(o, key, input);
        };
        // The driver answered (whatever it said): it is done with the
        // staging buffer once the bytes it read are copied out.
        let step = match input {
            Input::Reply(DriverReply::Count(n)) => self.transfer_done(o, key, stage, n),
            other => self.lease_answer(o, key, other),
        };
        self.free_stage(stage);
        step
    }

    /// Continue after a driver's answer that named no staging buffer.
    fn lease_answer(&mut self, o: &mut LeaseOp, key: ObjectKey, input: Input) -> Step {
        let reply = match input {
            Input::Start if o.sizing => {
                return Step::Send(DriverRequest::Stat { object: key.object })
            }
            Input::Start => return self.lease_begin(o, key),
            Input::Reply(reply) => reply,
        };
        let moved = match reply {
            DriverReply::Opened(info) if o.sizing => {
                o.sizing = false;
                let size = self.refresh_info(key, &info);
                if let Some(f) = self.files.open.get_mut(&o.file) {
                    f.pos = size;
                }
                return self.lease_begin(o, key);
            }
            DriverReply::Pages(list) if !o.framed => {
                let offset = o.at.saturating_add(o.done);
                let copied = self.lease_copy(o, key, &list);
                if copied.is_ok() {
                    self.ops.page_maps.learn(key, offset, &list);
                }
                copied
            }
            DriverReply::Error(Errno::ENOSYS) if o.transfer && o.done == 0 => {
                // It declared `TRANSFER` but cannot: the ordinary way.
                o.transfer = false;
                return self.lease_next(o, key);
            }
            DriverReply::Error(Errno::ENOSYS) if !o.framed && o.done == 0 => {
                o.framed = true;
                if let Some(d) = self.files.drivers.get_mut(&key.driver) {
                    d.without_pages = true;
                }
                return self.lease_next(o, key);
            }
            DriverReply::Data(bytes) if o.framed && !o.write => {
                if bytes.len() as u64 > o.step {
                    Err(Errno::EIO)
                } else {
                    self.lease_range(o.client, o.mm, o.buf + o.done, bytes.len() as u64, false)
                        .map(|()| {
                            self.memory.write(o.buf + o.done, &bytes);
                            bytes.len() as u64
                        })
                }
            }
            DriverReply::Count(n) if o.framed && o.write => {
                if n > o.step {
                    Err(Errno::EIO)
                } else {
                    Ok(n)
                }
            }
            DriverReply::Error(e) => Err(driver_errno(e)),
            other => return unexpected(other),
        };
        self.lease_moved(o, key, moved)
    }

    /// One step moved `moved` bytes (or failed): the next step, or the
    /// answer.
    fn lease_moved(&mut self, o: &mut LeaseOp, key: ObjectKey, moved: Result<u64, Errno>) -> Step {
        match moved {
            Ok(n) => {
                o.done += n;
                if n == o.step && o.done < o.len {
                    return self.lease_next(o, key);
                }
                self.lease_done(o, Ok(()))
            }
            Err(e) => self.lease_done(o, Err(e)),
        }
    }

    /// The driver moved `n` bytes of a `Transfer`: a read's bytes go from
    /// the staging buffer into the lease, checked again now (the caller's
    /// mappings may have changed while the driver worked). A count above
    /// the step is a broken driver (`EIO`), never a reason to copy more.
    fn transfer_done(&mut self, o: &mut LeaseOp, key: ObjectKey, stage: Stage, n: u64) -> Step {
        let moved = if n > o.step {
            Err(Errno::EIO)
        } else if o.write {
            Ok(n)
        } else {
            let dest = o.buf + o.done;
            self.lease_range(o.client, o.mm, dest, n, false).map(|()| {
                self.memory.copy(stage.addr, dest, n);
                n
            })
        };
        self.lease_moved(o, key, moved)
    }

    /// The transfer's start is known: check a write's end, then the first
    /// step.
    fn lease_begin(&mut self, o: &mut LeaseOp, key: ObjectKey) -> Step {
        o.at = o
            .offset
            .unwrap_or_else(|| self.files.open.get(&o.file).map_or(0, |f| f.pos));
        let end = o.at.checked_add(o.len);
        if o.write && end.is_none_or(|e| e > MAX_OFFSET) {
            return Step::Done(Err(Errno::EFBIG));
        }
        self.lease_next(o, key)
    }

    /// Ask the driver for the next piece.
    fn lease_next(&mut self, o: &mut LeaseOp, key: ObjectKey) -> Step {
        let left = o.len - o.done;
        let offset = o.at.saturating_add(o.done);
        let object = key.object;
        if o.transfer {
            o.step = left.min(LEASE_STEP);
            match self.alloc_stage(o.step) {
                Some(stage) => return self.transfer_send(o, object, offset, stage),
                // No room for a staging buffer: framed steps.
                None => {
                    o.transfer = false;
                    o.framed = true;
                }
            }
        }
        if !o.framed {
            o.step = left.min(LEASE_STEP);
            if let Some(list) = self.ops.page_maps.lookup(key, offset, o.step, o.write) {
                return self.lease_known(o, key, list);
            }
            return Step::Send(DriverRequest::Pages {
                object,
                offset,
                len: o.step,
                write: o.write,
            });
        }
        o.step = left.min(DATA_CHUNK as u64);
        if !o.write {
            return Step::Send(DriverRequest::ReadData {
                object,
                offset,
                len: o.step as u32,
            });
        }
        let src = o.buf + o.done;
        if let Err(e) = self.lease_range(o.client, o.mm, src, o.step, true) {
            return self.lease_done(o, Err(e));
        }
        let mut data = [0u8; DATA_CHUNK];
        let piece = &mut data[..o.step as usize];
        self.memory.read(src, piece);
        // Cannot fail: a piece is at most DATA_CHUNK long.
        let data = Bytes::from_slice(piece).unwrap_or_default();
        Step::Send(DriverRequest::WriteData {
            object,
            offset,
            data,
        })
    }

    /// Copy steps whose pages the server already knows
    /// ([`super::page_map`]) without asking the driver, as long as it
    /// knows them; then ask for the next, or answer.
    fn lease_known(&mut self, o: &mut LeaseOp, key: ObjectKey, mut list: PageList) -> Step {
        loop {
            let n = match self.lease_copy(o, key, &list) {
                Ok(n) => n,
                Err(e) => return self.lease_done(o, Err(e)),
            };
            o.done += n;
            if o.done == o.len {
                return self.lease_done(o, Ok(()));
            }
            let offset = o.at.saturating_add(o.done);
            o.step = (o.len - o.done).min(LEASE_STEP);
            match self.ops.page_maps.lookup(key, offset, o.step, o.write) {
                Some(next) => list = next,
                None => return self.lease_next(o, key),
            }
        }
    }

    /// Send one `Transfer` through `stage`, a write's bytes copied into it
    /// first from the lease (checked again now).
    fn transfer_send(&mut self, o: &mut LeaseOp, object: u64, offset: u64, stage: Stage) -> Step {
        if o.write {
            let src = o.buf + o.done;
            if let Err(e) = self.lease_range(o.client, o.mm, src, o.step, true) {
                self.free_stage(stage);
                return self.lease_done(o, Err(e));
            }
            self.memory.copy(src, stage.addr, o.step);
        }
        o.stage = Some(stage);
        Step::Send(DriverRequest::Transfer {
            object,
            offset,
            len: o.step,
            at: stage.addr,
            write: o.write,
        })
    }

    /// Copy one `Pages` answer's bytes between the file and the lease; the
    /// bytes moved. The pages must be the driver's own storage and as many
    /// as the range touches; the lease is checked again now, since the
    /// caller's mappings may have changed while the driver worked.
    fn lease_copy(&mut self, o: &LeaseOp, key: ObjectKey, list: &PageList) -> Result<u64, Errno> {
        let n = list.len;
        if n > o.step {
            return Err(Errno::EIO);
        }
        let offset = o.at.saturating_add(o.done);
        let first = offset / PAGE_SIZE;
        let touched = match n {
            0 => 0,
            n => (offset + n - 1) / PAGE_SIZE - first + 1,
        };
        if list.pages.len() as u64 != touched {
            return Err(Errno::EIO);
        }
        for &page in &list.pages {
            let ok = if page == 0 {
                !o.write
            } else {
                page.is_multiple_of(PAGE_SIZE)
                    && page
                        .checked_add(PAGE_SIZE)
                        .is_some_and(|end| self.nommu.in_arena(page, end))
                    && self.nommu.direct_range_ok(key.driver, page, PAGE_SIZE)
            };
            if !ok {
                return Err(Errno::EIO);
            }
        }
        let lease = o.buf + o.done;
        self.lease_range(o.client, o.mm, lease, n, o.write)?;
        let mut moved = 0u64;
        for &page in &list.pages {
            let pos = offset + moved;
            let in_page = pos % PAGE_SIZE;
            let piece = (PAGE_SIZE - in_page).min(n - moved);
            let at = lease + moved;
            match (page, o.write) {
                (0, _) => self.memory.fill(at, piece, 0),
                (page, false) => self.memory.copy(page + in_page, at, piece),
                (page, true) => self.memory.copy(at, page + in_page, piece),
            }
            moved += piece;
        }
        Ok(n)
    }

    /// The answer: the bytes moved (the file position after them), or the
    /// error if none moved (as Linux's short read or write).
    fn lease_done(&mut self, o: &LeaseOp, result: Result<(), Errno>) -> Step {
        if let Err(e) = result {
            if o.done == 0 {
                return Step::Done(Err(e));
            }
        }
        if o.offset.is_none() {
            if let Some(f) = self.files.open.get_mut(&o.file) {
                f.pos = o.at.saturating_add(o.done);
            }
        }
        Step::Done(Ok(Reply::Count(o.done)))
    }

    /// `BulkWindow`: the connection's window, granted on first asking:
    /// zeroed pages charged to the caller's process as a copy is (its
    /// limits apply: `ENOMEM`), freed at hang-up ([`Self::drop_window`]).
    pub(crate) fn bulk_window(&mut self, who: &Caller) -> Result<Reply, Errno> {
        if let Some(&(addr, _)) = self.ops.windows.get(&who.client) {
            return Ok(Reply::Mapped { addr });
        }
        let pages = BULK_WINDOW / PAGE_SIZE;
        self.nommu.charges.actor = Some((who.mm, who.uid));
        self.nommu.charges.may_map(pages)?;
        // Untrimmed: a power of two, and the window is freed whole.
        let (first, kept) = self.nommu.alloc_pages(pages, 0).ok_or(Errno::ENOMEM)?;
        let addr = self.nommu.addr_of(first);
        if kept != pages {
            self.nommu.release_pages(first, kept as u32);
            return Err(Errno::ENOMEM);
        }
        // Charged to the process as a copy is (its limits apply), but not
        // `MmapCopy`: no mapping holds it, as no mapping holds a kernel's
        // bounce buffer.
        let payer = self.nommu.charges.payer();
        self.nommu.charges.charge_copy(payer, kept);
        // The pages may hold what an earlier owner left.
        self.memory.fill(addr, BULK_WINDOW, 0);
        self.ops.windows.insert(who.client, (addr, payer));
        Ok(Reply::Mapped { addr })
    }

    /// The connection closed: its window's pages go back (uncharged).
    pub(crate) fn drop_window(&mut self, client: ClientId) {
        if let Some((addr, payer)) = self.ops.windows.remove(&client) {
            let pages = BULK_WINDOW / PAGE_SIZE;
            let first = self.nommu.page_of(addr);
            self.nommu.release_pages(first, pages as u32);
            self.nommu.charges.uncharge_copy(payer, pages);
        }
    }
}
