//! An in-test backing device that speaks the driver side of the protocol
//! on frames: an in-memory file store whose objects behave like the
//! spec's test environment (§14.0) — a copy-only filesystem, a memory
//! filesystem (§7.5), an XIP ROM window, the configurable `/dev/tst` —
//! with every answer overridable per object, a log of every request and
//! counters for `Mmap`, `CloseVma` and `Release`.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::sim::SimMemory;
use crate::vm_flags::{VM_MAYOVERLAY, VM_MAYSHARE, VM_SHARED};
use crate::{ClientId, MemoryServer};
use protocol::{
    decode_driver_request, encode_driver_reply, Bytes, DriverOps, DriverReply, DriverRequest,
    Errno, ObjectInfo, ObjectKind, Reply, Request, MAX_FRAME, PAGE_SIZE,
};

const P: u64 = PAGE_SIZE;
use super::rig::O_CREAT;
const O_EXCL: u32 = 0o200;
use protocol::linux::O_TRUNC;

/// Where an object's bytes are.
#[derive(Clone, Debug)]
pub enum Store {
    /// Kept by the driver itself (disk-like files, devices).
    Heap(Vec<u8>),
    /// Arena pages, one address per file page (a memory filesystem).
    Arena(Vec<u64>),
    /// A window at a fixed address (XIP ROM, device memory): file byte
    /// `i` is at `base + i`; `get_unmapped_area` answers `base + pgoff·P`.
    Window { base: u64 },
}

#[derive(Clone, Debug)]
pub struct FakeObject {
    pub info: ObjectInfo,
    pub store: Store,
    /// Fixed `GetUnmappedArea` answer.
    pub gua: Option<Result<u64, Errno>>,
    /// Fixed `Mmap` answer.
    pub mmap: Option<Errno>,
    /// `Read` (into a copy) fails with this.
    pub read_error: Option<Errno>,
    /// `Read` delivers this byte for every requested byte (a device).
    pub read_fill: Option<u8>,
    /// An arena-stored object answers `Pages` (else `ENOSYS`).
    pub answers_pages: bool,
    /// `Sync` fails with this (a disk's `EIO`).
    pub sync_error: Option<Errno>,
    pub mmaps: u32,
    pub closes: u32,
    pub releases: u32,
}

impl FakeObject {
    /// Object 0 of `kind`: it declares no capabilities (the server derives
    /// them from its kind and methods) and keeps `bytes` on the heap.
    pub fn heap(kind: ObjectKind, ops: u8, bytes: Vec<u8>) -> Self {
        Self::new(0, kind, None, ops, Store::Heap(bytes))
    }

    pub fn new(object: u64, kind: ObjectKind, caps: Option<u8>, ops: u8, store: Store) -> Self {
        let size = match &store {
            Store::Heap(b) => b.len() as u64,
            _ => 0,
        };
        Self {
            info: ObjectInfo {
                object,
                ino: object,
                kind,
                mode: 0o644,
                size,
                caps,
                ops: DriverOps(ops),
                io_memory: false,
            },
            store,
            gua: None,
            mmap: None,
            read_error: None,
            read_fill: None,
            answers_pages: false,
            sync_error: None,
            mmaps: 0,
            closes: 0,
            releases: 0,
        }
    }
}

/// Every method a file has.
pub const FILE_OPS: u8 = DriverOps::MMAP
    | DriverOps::READ
    | DriverOps::WRITE
    | DriverOps::GET_UNMAPPED_AREA
    | DriverOps::TRUNCATE;

pub struct FakeDriver {
    pub client: ClientId,
    pub paths: BTreeMap<String, u64>,
    pub objects: BTreeMap<u64, FakeObject>,
    /// Kind and capabilities of files `O_CREAT` makes.
    pub new_file: (ObjectKind, Option<u8>, u8),
    /// Every request, in order.
    pub log: Vec<DriverRequest>,
    /// While set, requests wait in `held` instead of being answered.
    pub hold: bool,
    pub held: Vec<(u32, DriverRequest)>,
    next_object: u64,
}

impl FakeDriver {
    pub fn new(client: ClientId) -> Self {
        Self {
            client,
            paths: BTreeMap::new(),
            objects: BTreeMap::new(),
            new_file: (ObjectKind::MemoryFile, Some(0x79), FILE_OPS),
            log: Vec::new(),
            hold: false,
            held: Vec::new(),
            next_object: 100,
        }
    }

    /// Add an object at `path`; returns its handle.
    pub fn add(&mut self, path: &str, mut obj: FakeObject) -> u64 {
        self.next_object += 1;
        let id = obj.info.object;
        let id = if id == 0 { self.next_object } else { id };
        obj.info.object = id;
        obj.info.ino = id;
        self.paths.insert(path.into(), id);
        self.objects.insert(id, obj);
        id
    }

    pub fn obj(&mut self, path: &str) -> &mut FakeObject {
        let id = self.paths[path];
        self.objects.get_mut(&id).unwrap()
    }

    /// Answer one request frame; `None` when it is held.
    pub fn serve_frame(
        &mut self,
        frame: &[u8],
        s: &mut MemoryServer<SimMemory>,
    ) -> Option<Vec<u8>> {
        let f = decode_driver_request(frame).expect("memsrv sent a bad driver frame");
        self.log.push(f.message.clone());
        if self.hold {
            self.held.push((f.tag, f.message));
            return None;
        }
        Some(self.answer(f.tag, f.message, s))
    }

    /// Answer a request (held or fresh) as a reply frame.
    pub fn answer(
        &mut self,
        tag: u32,
        req: DriverRequest,
        s: &mut MemoryServer<SimMemory>,
    ) -> Vec<u8> {
        let reply = self.serve(req, s).unwrap_or_else(DriverReply::Error);
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_driver_reply(tag, &reply, &mut buf);
        buf[..len].to_vec()
    }

    fn alloc(&self, s: &mut MemoryServer<SimMemory>, pages: u64) -> Result<u64, Errno> {
        match s.handle_now(self.client, Request::AllocBacking { pages }) {
            Reply::Mapped { addr } => Ok(addr),
            Reply::Error(e) => Err(e),
            other => panic!("AllocBacking: {other:?}"),
        }
    }

    fn free(&self, s: &mut MemoryServer<SimMemory>, addr: u64, pages: u64) -> Result<(), Errno> {
        s.handle_now(self.client, Request::FreeBacking { addr, pages })
            .into_result()
            .map(|_| ())
    }

    fn serve(
        &mut self,
        req: DriverRequest,
        s: &mut MemoryServer<SimMemory>,
    ) -> Result<DriverReply, Errno> {
        match req {
            DriverRequest::Lookup {
                path, flags, mode, ..
            } => {
                let p = String::from(core::str::from_utf8(&path).map_err(|_| Errno::ENOENT)?);
                if let Some(&id) = self.paths.get(&p) {
                    if flags & O_CREAT != 0 && flags & O_EXCL != 0 {
                        return Err(Errno::EEXIST);
                    }
                    let info = self.objects[&id].info;
                    // Without `TRUNCATE`, a lookup with `O_TRUNC` empties a
                    // regular file, as the driver contract's lookup does
                    // (`copyfs::FileStore::lookup`); memsrv sends it only
                    // in the object's turn, after its own checks.
                    if flags & O_TRUNC != 0
                        && info.kind == ObjectKind::RegularFile
                        && !info.ops.has(DriverOps::TRUNCATE)
                    {
                        self.truncate(id, 0, s)?;
                    }
                    return Ok(DriverReply::Opened(self.objects[&id].info));
                }
                if flags & O_CREAT == 0 {
                    return Err(Errno::ENOENT);
                }
                let (kind, caps, ops) = self.new_file;
                let store = if kind == ObjectKind::MemoryFile {
                    Store::Arena(Vec::new())
                } else {
                    Store::Heap(Vec::new())
                };
                let mut obj = FakeObject::new(0, kind, caps, ops, store);
                obj.info.mode = mode & 0o7777;
                let id = self.add(&p, obj);
                Ok(DriverReply::Opened(self.objects[&id].info))
            }
            DriverRequest::Stat { object } => {
                let o = self.objects.get(&object).ok_or(Errno::ENOENT)?;
                Ok(DriverReply::Opened(o.info))
            }
            DriverRequest::GetUnmappedArea {
                object, len, pgoff, ..
            } => self
                .unmapped_area(object, len, pgoff)
                .map(DriverReply::Address),
            DriverRequest::Mmap {
                object, vm_flags, ..
            } => {
                let o = self.objects.get_mut(&object).ok_or(Errno::ENOENT)?;
                o.mmaps += 1;
                if let Some(e) = o.mmap {
                    return Err(e);
                }
                let shareable = u64::from(vm_flags) & (VM_SHARED | VM_MAYSHARE | VM_MAYOVERLAY);
                if shareable == 0 {
                    return Err(Errno::ENOSYS);
                }
                Ok(DriverReply::Done)
            }
            DriverRequest::CloseVma { object, .. } => {
                if let Some(o) = self.objects.get_mut(&object) {
                    o.closes += 1;
                }
                Ok(DriverReply::Done)
            }
            // A memory filesystem removes the name; the object lives on.
            DriverRequest::Unlink { path, .. } => {
                let p = String::from(core::str::from_utf8(&path).map_err(|_| Errno::ENOENT)?);
                let id = *self.paths.get(&p).ok_or(Errno::ENOENT)?;
                if self.objects[&id].info.kind != ObjectKind::MemoryFile {
                    return Err(Errno::EPERM);
                }
                self.paths.remove(&p);
                Ok(DriverReply::Done)
            }
            // It keeps no attributes, as a device.
            DriverRequest::SetAttributes { .. } => Err(Errno::EPERM),
            // Its bytes are not handed out by page: leases move in frames.
            DriverRequest::Pages {
                object,
                offset,
                len,
                write,
            } => {
                let o = self.objects.get(&object).ok_or(Errno::ENOENT)?;
                if !o.answers_pages || !matches!(o.store, Store::Arena(_)) {
                    return Err(Errno::ENOSYS);
                }
                self.pages(object, offset, len, write, s)
                    .map(DriverReply::Pages)
            }
            // Only an object that declared it moves a lease step itself.
            DriverRequest::Transfer {
                object,
                offset,
                len,
                at,
                write,
            } => {
                let o = self.objects.get(&object).ok_or(Errno::ENOENT)?;
                if !o.info.ops.has(DriverOps::TRANSFER) {
                    return Err(Errno::ENOSYS);
                }
                if write {
                    let data = s.memory().slice(at, len).to_vec();
                    self.write_bytes(object, offset, &data, s)?;
                    return Ok(DriverReply::Count(len));
                }
                let data = self.read_bytes(object, offset, len, s);
                s.memory_mut()
                    .bytes_at(at, data.len() as u64)
                    .copy_from_slice(&data);
                Ok(DriverReply::Count(data.len() as u64))
            }
            // Only an object that declared it has an fsync method.
            DriverRequest::Sync { object, .. } => {
                let o = self.objects.get(&object).ok_or(Errno::ENOENT)?;
                if !o.info.ops.has(DriverOps::SYNC) {
                    return Err(Errno::EINVAL);
                }
                o.sync_error.map_or(Ok(DriverReply::Done), Err)
            }
            DriverRequest::Release { object } => {
                if let Some(o) = self.objects.get_mut(&object) {
                    o.releases += 1;
                }
                Ok(DriverReply::Done)
            }
            DriverRequest::Read {
                object,
                offset,
                len,
                dest,
            } => {
                let o = self.objects.get(&object).ok_or(Errno::ENOENT)?;
                if let Some(e) = o.read_error {
                    return Err(e);
                }
                if let Some(b) = o.read_fill {
                    s.memory_mut().bytes_at(dest, len).fill(b);
                    return Ok(DriverReply::Count(len));
                }
                let data = self.read_bytes(object, offset, len, s);
                s.memory_mut()
                    .bytes_at(dest, data.len() as u64)
                    .copy_from_slice(&data);
                Ok(DriverReply::Count(data.len() as u64))
            }
            DriverRequest::ReadData {
                object,
                offset,
                len,
            } => {
                self.objects.get(&object).ok_or(Errno::ENOENT)?;
                let data = self.read_bytes(object, offset, u64::from(len), s);
                Ok(DriverReply::Data(Bytes::from_slice(&data).unwrap()))
            }
            DriverRequest::WriteData {
                object,
                offset,
                data,
            } => {
                self.write_bytes(object, offset, &data, s)?;
                Ok(DriverReply::Count(data.len() as u64))
            }
            DriverRequest::Truncate { object, size } => {
                self.truncate(object, size, s)?;
                Ok(DriverReply::Done)
            }
        }
    }

    /// The driver's `get_unmapped_area` answer.
    pub fn unmapped_area(&self, object: u64, len: u64, pgoff: u64) -> Result<u64, Errno> {
        let o = self.objects.get(&object).ok_or(Errno::ENOENT)?;
        if let Some(r) = o.gua {
            return r;
        }
        let pages = len.div_ceil(P);
        let size_pages = o.info.size.div_ceil(P);
        match &o.store {
            Store::Heap(_) => Err(Errno::ENOSYS),
            Store::Window { base } => {
                if pgoff >= size_pages.max(1) {
                    return Err(Errno::EINVAL);
                }
                Ok(base + pgoff * P)
            }
            Store::Arena(list) => {
                // §7.5: in EOF and physically consecutive.
                if pgoff >= size_pages || size_pages - pgoff < pages {
                    return Err(Errno::ENOSYS);
                }
                let Some(&first) = list.get(pgoff as usize) else {
                    return Err(Errno::ENOSYS);
                };
                for i in 0..pages {
                    if list.get((pgoff + i) as usize) != Some(&(first + i * P)) {
                        return Err(Errno::ENOSYS);
                    }
                }
                Ok(first)
            }
        }
    }

    fn read_bytes(
        &self,
        object: u64,
        offset: u64,
        len: u64,
        s: &MemoryServer<SimMemory>,
    ) -> Vec<u8> {
        let o = &self.objects[&object];
        let size = o.info.size;
        if offset >= size {
            return Vec::new();
        }
        let n = len.min(size - offset);
        match &o.store {
            Store::Heap(b) => b[offset as usize..(offset + n) as usize].to_vec(),
            Store::Window { base } => s.memory().slice(base + offset, n).to_vec(),
            Store::Arena(pages) => (offset..offset + n)
                .map(|i| match pages.get((i / P) as usize) {
                    Some(&a) => s.memory().slice(a + i % P, 1)[0],
                    None => 0,
                })
                .collect(),
        }
    }

    fn write_bytes(
        &mut self,
        object: u64,
        offset: u64,
        data: &[u8],
        s: &mut MemoryServer<SimMemory>,
    ) -> Result<(), Errno> {
        let end = offset + data.len() as u64;
        let need = end.div_ceil(P) as usize;
        let have = match &self.objects.get(&object).ok_or(Errno::ENOENT)?.store {
            Store::Arena(p) => p.len(),
            _ => usize::MAX,
        };
        let mut fresh = Vec::new();
        if have < need {
            for _ in have..need {
                match self.alloc(s, 1) {
                    Ok(a) => fresh.push(a),
                    Err(e) => {
                        for &a in &fresh {
                            self.free(s, a, 1)?;
                        }
                        return Err(e);
                    }
                }
            }
        }
        let o = self.objects.get_mut(&object).unwrap();
        match &mut o.store {
            Store::Heap(b) => {
                if b.len() < end as usize {
                    b.resize(end as usize, 0);
                }
                b[offset as usize..end as usize].copy_from_slice(data);
            }
            Store::Window { .. } => return Err(Errno::EROFS),
            Store::Arena(pages) => {
                pages.extend(fresh);
                for (i, &byte) in data.iter().enumerate() {
                    let at = offset + i as u64;
                    let a = pages[(at / P) as usize] + at % P;
                    s.memory_mut().bytes_at(a, 1)[0] = byte;
                }
            }
        }
        o.info.size = o.info.size.max(end);
        Ok(())
    }

    /// `Pages` of an arena-stored object: its pages (0 past them), a
    /// write adding the missing ones and growing the size first.
    fn pages(
        &mut self,
        object: u64,
        offset: u64,
        len: u64,
        write: bool,
        s: &mut MemoryServer<SimMemory>,
    ) -> Result<protocol::PageList, Errno> {
        let size = self.objects[&object].info.size;
        let n = if write {
            len
        } else {
            len.min(size.saturating_sub(offset))
        };
        if write {
            let need = (offset + n).div_ceil(P) as usize;
            let have = match &self.objects[&object].store {
                Store::Arena(p) => p.len(),
                _ => return Err(Errno::ENOSYS),
            };
            let mut fresh = Vec::new();
            for _ in have..need {
                fresh.push(self.alloc(s, 1)?);
            }
            let o = self.objects.get_mut(&object).unwrap();
            if let Store::Arena(p) = &mut o.store {
                p.extend(fresh);
            }
            o.info.size = o.info.size.max(offset + n);
        }
        let Store::Arena(pages) = &self.objects[&object].store else {
            return Err(Errno::ENOSYS);
        };
        let mut list = protocol::PageList {
            len: n,
            pages: heapless::Vec::new(),
        };
        if n > 0 {
            for index in offset / P..=(offset + n - 1) / P {
                let page = pages.get(index as usize).copied().unwrap_or(0);
                list.pages.push(page).map_err(|_| Errno::EIO)?;
            }
        }
        Ok(list)
    }

    fn truncate(
        &mut self,
        object: u64,
        size: u64,
        s: &mut MemoryServer<SimMemory>,
    ) -> Result<(), Errno> {
        let o = self.objects.get(&object).ok_or(Errno::ENOENT)?;
        let old = o.info.size;
        let mut store = o.store.clone();
        match &mut store {
            Store::Heap(b) => b.resize(size as usize, 0),
            Store::Window { .. } => return Err(Errno::EROFS),
            Store::Arena(pages) => {
                if old == 0 && size > 0 {
                    // §7.5: one contiguous zeroed run.
                    let n = size.div_ceil(P);
                    let base = self.alloc(s, n)?;
                    for &a in pages.iter() {
                        self.free(s, a, 1)?;
                    }
                    *pages = (0..n).map(|i| base + i * P).collect();
                } else if size < old {
                    let keep = size.div_ceil(P) as usize;
                    for &a in pages.iter().skip(keep) {
                        self.free(s, a, 1)?;
                    }
                    pages.truncate(keep);
                    // The tail of the page holding the new end reads as zero.
                    if let (true, Some(&last)) = (pages.len() == keep, pages.last()) {
                        let cut = size % P;
                        if cut != 0 {
                            s.memory_mut().bytes_at(last + cut, P - cut).fill(0);
                        }
                    }
                }
            }
        }
        let o = self.objects.get_mut(&object).unwrap();
        o.store = store;
        o.info.size = size;
        Ok(())
    }
}

/// A memory filesystem file already holding `pages` contiguous pages
/// of `byte`, `size` bytes long.
pub fn arena_file(
    d: &FakeDriver,
    s: &mut MemoryServer<SimMemory>,
    object: u64,
    size: u64,
    byte: u8,
) -> FakeObject {
    let n = size.div_ceil(P);
    let base = d.alloc(s, n).unwrap();
    s.memory_mut().bytes_at(base, n * P).fill(byte);
    let mut o = FakeObject::new(
        object,
        ObjectKind::MemoryFile,
        Some(0x79),
        FILE_OPS,
        Store::Arena((0..n).map(|i| base + i * P).collect()),
    );
    o.info.size = size;
    o
}

/// A known byte pattern (`/data/f`).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8 | 1).collect()
}

/// Default driver request frame checks used by tests.
pub fn zeroes(n: u64) -> Vec<u8> {
    vec![0; n as usize]
}
