//! Test support other crates may reuse (feature `testing`): a
//! [`DriverHost`] over a plain byte vector that checks what drivers do
//! with it, request builders, checks that several drivers' tests share
//! (a table of refusals, copy-only devices, the end of a device), a romfs
//! image writer for exact layouts, simulated hardware (a NOR chip, a
//! disk) for the drivers over devices, and a file store whose syncs a
//! test watches.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod romfs_image;
mod sim;
mod sync_watch;

pub use romfs_image::{checksum as romfs_checksum, RomfsImage};
pub use sim::{DiskStats, FlashStats, SimDisk, SimFlash};
pub use sync_watch::{SyncStats, SyncWatch};

use crate::{BackingDevice, DriverHost};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;
use protocol::{Bytes, DriverReply, DriverRequest, Errno, ObjectInfo, Owner, Path, PAGE_SIZE};

/// Something a driver asked of its [`TestHost`], in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEvent {
    Alloc {
        addr: u64,
        pages: u64,
    },
    Free {
        addr: u64,
        pages: u64,
    },
    /// A write to the arena; `fill` is the byte value when every byte
    /// written was the same.
    Write {
        addr: u64,
        len: u64,
        fill: Option<u8>,
    },
    BeginExclusive(u64),
    EndExclusive(u64),
}

/// The byte freed pages are overwritten with, so a driver that reads
/// storage it gave back is seen.
pub const POISON: u8 = 0xDB;

/// A home for tests: `pages` pages of arena at `base`, a first-fit page
/// allocator that zeroes what it hands out, and checks that the driver
/// writes only into storage it owns, frees only parts of single runs it
/// got (as memsrv does), and pairs its exclusive sections.
pub struct TestHost {
    base: u64,
    arena: Vec<u8>,
    owned: Vec<bool>,
    /// Allocation runs still (partly) held: first page → pages.
    runs: BTreeMap<usize, usize>,
    strict: bool,
    exclusive: BTreeSet<u64>,
    busy: BTreeSet<u64>,
    alloc_budget: Option<u64>,
    events: Vec<HostEvent>,
}

impl TestHost {
    /// The usual test arena: 4 MiB at 0x1000_0000.
    pub fn new() -> Self {
        Self::with_arena(0x1000_0000, 1024)
    }

    pub fn with_arena(base: u64, pages: usize) -> Self {
        Self {
            base,
            arena: vec![0; pages * PAGE_SIZE as usize],
            owned: vec![false; pages],
            runs: BTreeMap::new(),
            strict: true,
            exclusive: BTreeSet::new(),
            busy: BTreeSet::new(),
            alloc_budget: None,
            events: Vec::new(),
        }
    }

    /// Allow writes anywhere in the arena (`/dev/mem`), not only into
    /// storage the driver got.
    pub fn permissive(mut self) -> Self {
        self.strict = false;
        self
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.arena.len() as u64
    }

    /// Only `pages` more pages may be allocated (then `ENOMEM`).
    pub fn limit_alloc(&mut self, pages: u64) {
        self.alloc_budget = Some(pages);
    }

    /// `BeginExclusive` of `object` fails `EBUSY` (a direct mapping of it
    /// exists) until [`TestHost::set_unmapped`].
    pub fn set_mapped(&mut self, object: u64) {
        self.busy.insert(object);
    }

    pub fn set_unmapped(&mut self, object: u64) {
        self.busy.remove(&object);
    }

    pub fn in_exclusive(&self, object: u64) -> bool {
        self.exclusive.contains(&object)
    }

    pub fn events(&self) -> &[HostEvent] {
        &self.events
    }

    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Pages currently allocated to the driver.
    pub fn allocated_pages(&self) -> u64 {
        self.owned.iter().filter(|o| **o).count() as u64
    }

    /// Arena bytes, as a process reading through a mapping sees them.
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let at = self.index(addr, len).expect("read outside the arena");
        self.arena[at..at + len].to_vec()
    }

    /// A store by a process through a mapping.
    pub fn store(&mut self, addr: u64, bytes: &[u8]) {
        let at = self
            .index(addr, bytes.len())
            .expect("store outside the arena");
        self.arena[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn index(&self, addr: u64, len: usize) -> Option<usize> {
        let off = addr.checked_sub(self.base)?;
        let end = off.checked_add(len as u64)?;
        (end <= self.arena.len() as u64).then_some(off as usize)
    }

    fn page_range(&self, addr: u64, pages: u64) -> Option<core::ops::Range<usize>> {
        let off = addr.checked_sub(self.base)?;
        if off % PAGE_SIZE != 0 {
            return None;
        }
        let first = (off / PAGE_SIZE) as usize;
        let last = first.checked_add(usize::try_from(pages).ok()?)?;
        (last <= self.owned.len()).then_some(first..last)
    }
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl DriverHost for TestHost {
    fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let at = self.index(addr, bytes.len()).ok_or(Errno::EFAULT)?;
        if self.strict && !bytes.is_empty() {
            let first = at / PAGE_SIZE as usize;
            let last = (at + bytes.len() - 1) / PAGE_SIZE as usize;
            if !self.owned[first..=last].iter().all(|o| *o) {
                return Err(Errno::EFAULT);
            }
        }
        self.arena[at..at + bytes.len()].copy_from_slice(bytes);
        let fill = match bytes.first() {
            Some(b) if bytes.iter().all(|x| x == b) => Some(*b),
            _ => None,
        };
        self.events.push(HostEvent::Write {
            addr,
            len: bytes.len() as u64,
            fill,
        });
        Ok(())
    }

    fn read_arena(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let at = self.index(addr, buf.len()).ok_or(Errno::EFAULT)?;
        buf.copy_from_slice(&self.arena[at..at + buf.len()]);
        Ok(())
    }

    fn alloc_backing(&mut self, pages: u64) -> Result<u64, Errno> {
        if pages == 0 {
            return Err(Errno::EINVAL);
        }
        if let Some(budget) = self.alloc_budget {
            if pages > budget {
                return Err(Errno::ENOMEM);
            }
            self.alloc_budget = Some(budget - pages);
        }
        let want = usize::try_from(pages).map_err(|_| Errno::ENOMEM)?;
        let mut run = 0;
        for i in 0..self.owned.len() {
            run = if self.owned[i] { 0 } else { run + 1 };
            if run == want {
                let first = i + 1 - want;
                for o in &mut self.owned[first..=i] {
                    *o = true;
                }
                let size = PAGE_SIZE as usize;
                self.arena[first * size..(i + 1) * size].fill(0);
                self.runs.insert(first, want);
                let addr = self.base + (first * size) as u64;
                self.events.push(HostEvent::Alloc { addr, pages });
                return Ok(addr);
            }
        }
        Err(Errno::ENOMEM)
    }

    fn free_backing(&mut self, addr: u64, pages: u64) -> Result<(), Errno> {
        let range = self.page_range(addr, pages).ok_or(Errno::EINVAL)?;
        if range.is_empty() || !self.owned[range.clone()].iter().all(|o| *o) {
            return Err(Errno::EINVAL);
        }
        // Like memsrv: the pages must lie inside one run the driver got.
        let (&run, &len) = self
            .runs
            .range(..=range.start)
            .next_back()
            .ok_or(Errno::EINVAL)?;
        if range.end > run + len {
            return Err(Errno::EINVAL);
        }
        self.runs.remove(&run);
        if range.start > run {
            self.runs.insert(run, range.start - run);
        }
        if run + len > range.end {
            self.runs.insert(range.end, run + len - range.end);
        }
        let size = PAGE_SIZE as usize;
        self.arena[range.start * size..range.end * size].fill(POISON);
        for o in &mut self.owned[range] {
            *o = false;
        }
        if let Some(budget) = self.alloc_budget.as_mut() {
            *budget += pages;
        }
        self.events.push(HostEvent::Free { addr, pages });
        Ok(())
    }

    fn begin_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        if self.busy.contains(&object) {
            return Err(Errno::EBUSY);
        }
        if !self.exclusive.insert(object) {
            return Err(Errno::EINVAL);
        }
        self.events.push(HostEvent::BeginExclusive(object));
        Ok(())
    }

    fn end_exclusive(&mut self, object: u64) -> Result<(), Errno> {
        if !self.exclusive.remove(&object) {
            return Err(Errno::EINVAL);
        }
        self.events.push(HostEvent::EndExclusive(object));
        Ok(())
    }
}

/// A wire path.
pub fn path(s: &str) -> Path {
    Path::try_from(s).expect("path too long")
}

/// Wire bytes.
pub fn bytes(data: &[u8]) -> Bytes {
    Bytes::from_slice(data).expect("more than DATA_CHUNK bytes")
}

/// A lookup by root.
pub fn lookup(p: &str, flags: u32, mode: u32) -> DriverRequest {
    lookup_as(p, flags, mode, Owner { uid: 0, gid: 0 })
}

/// A lookup for `caller` (the owner of a file it creates).
pub fn lookup_as(p: &str, flags: u32, mode: u32, caller: Owner) -> DriverRequest {
    DriverRequest::Lookup {
        path: path(p),
        flags,
        mode,
        caller,
    }
}

pub fn read_data(object: u64, offset: u64, len: u32) -> DriverRequest {
    DriverRequest::ReadData {
        object,
        offset,
        len,
    }
}

pub fn write_data(object: u64, offset: u64, data: &[u8]) -> DriverRequest {
    DriverRequest::WriteData {
        object,
        offset,
        data: bytes(data),
    }
}

pub fn read_into(object: u64, offset: u64, len: u64, dest: u64) -> DriverRequest {
    DriverRequest::Read {
        object,
        offset,
        len,
        dest,
    }
}

pub fn get_unmapped_area(object: u64, len: u64, pgoff: u64) -> DriverRequest {
    DriverRequest::GetUnmappedArea {
        object,
        len,
        pgoff,
        flags: 0,
    }
}

pub fn mmap(object: u64, start: u64, len: u64, pgoff: u64, vm_flags: u32) -> DriverRequest {
    DriverRequest::Mmap {
        object,
        start,
        len,
        pgoff,
        vm_flags,
    }
}

/// The [`ObjectInfo`] of an `Opened` (or `Owned`) reply.
pub fn opened(reply: DriverReply) -> ObjectInfo {
    match reply {
        DriverReply::Opened(info) | DriverReply::Owned { info, .. } => info,
        other => panic!("expected Opened, got {other:?}"),
    }
}

/// The bytes of a `Data` reply.
pub fn data(reply: DriverReply) -> Vec<u8> {
    match reply {
        DriverReply::Data(d) => d.to_vec(),
        other => panic!("expected Data, got {other:?}"),
    }
}

/// The address of an `Address` reply.
pub fn address(reply: DriverReply) -> u64 {
    match reply {
        DriverReply::Address(a) => a,
        other => panic!("expected Address, got {other:?}"),
    }
}

/// The count of a `Count` reply.
pub fn count(reply: DriverReply) -> u64 {
    match reply {
        DriverReply::Count(n) => n,
        other => panic!("expected Count, got {other:?}"),
    }
}

/// The errno of an `Error` reply.
pub fn error(reply: DriverReply) -> Errno {
    match reply {
        DriverReply::Error(e) => e,
        other => panic!("expected Error, got {other:?}"),
    }
}

/// `device` started on a fresh [`TestHost`] (most tests' first lines).
pub fn started<D: BackingDevice>(mut device: D) -> (D, TestHost) {
    let mut host = TestHost::new();
    device.start(&mut host).expect("the device starts");
    (device, host)
}

/// Serve each request in turn and check that it fails with its errno (a
/// failure names the request): one table instead of one assertion each.
pub fn assert_errors(
    device: &mut dyn BackingDevice,
    host: &mut TestHost,
    cases: &[(DriverRequest, Errno)],
) {
    for (request, errno) in cases {
        let reply = device.serve(request.clone(), host);
        assert_eq!(reply, DriverReply::Error(*errno), "{request:?}");
    }
}

/// `get_unmapped_area` of `object` fails `EINVAL` (a bad offset) for each
/// `(len, pgoff)`: an empty range, or one past what lives in place.
pub fn assert_bad_ranges(
    device: &mut dyn BackingDevice,
    host: &mut TestHost,
    object: u64,
    ranges: &[(u64, u64)],
) {
    for &(len, pgoff) in ranges {
        let reply = device.serve(get_unmapped_area(object, len, pgoff), host);
        assert_eq!(error(reply), Errno::EINVAL, "len {len} pgoff {pgoff:#x}");
    }
}

/// A device that is only ever copied (block devices, `/dev/zero`):
/// `get_unmapped_area` and a shared `mmap` of handle 1 fail `ENOSYS`.
pub fn assert_copy_only(device: &mut dyn BackingDevice, host: &mut TestHost) {
    assert_errors(
        device,
        host,
        &[
            (get_unmapped_area(1, 4096, 0), Errno::ENOSYS),
            (mmap(1, 0, 4096, 0, crate::flags::vm::SHARED), Errno::ENOSYS),
        ],
    );
}

/// The end of a device of `end` bytes at handle 1, as Linux's block and
/// memory devices treat it: a write across it is short, one at it fails
/// `at_end`.
pub fn assert_writes_stop_at(
    device: &mut dyn BackingDevice,
    host: &mut TestHost,
    end: u64,
    at_end: Errno,
) {
    let across = device.serve(write_data(1, end - 2, b"abcd"), host);
    assert_eq!(count(across), 2, "a write across the end");
    let at = device.serve(write_data(1, end, b"x"), host);
    assert_eq!(error(at), at_end, "a write at the end");
}

/// A filesystem's root, opened read-only: a directory without methods
/// (but, on a filesystem that has one, `fsync`), refused for writing
/// (`EISDIR`). Its lookup answer.
pub fn assert_root_is_a_directory(fs: &mut dyn BackingDevice, host: &mut TestHost) -> ObjectInfo {
    let root = opened(fs.serve(lookup("", crate::flags::open::RDONLY, 0), host));
    assert_eq!(root.kind, protocol::ObjectKind::Directory);
    assert_eq!(
        root.ops.0 & !protocol::DriverOps::SYNC,
        0,
        "a directory has no methods but fsync"
    );
    let write = lookup("", crate::flags::open::RDWR, 0);
    assert_eq!(error(fs.serve(write, host)), Errno::EISDIR);
    root
}

/// A small deterministic generator for randomised tests (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// A generator starting from `state` as given (non-zero), for a test
    /// or bench whose recorded runs came from that exact stream.
    pub fn from_state(state: u64) -> Self {
        assert_ne!(state, 0, "xorshift64* never leaves the zero state");
        Self(state)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The known pattern byte `i` of spec §14.0's `/data/f`.
pub fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(7) % 251) as u8
}
