//! testdev: the configurable test character device `/dev/tst` of spec
//! §14.0. A test holds a [`TestDevControl`] handle (cheap to clone, `Send +
//! Sync`: the driver usually runs on another thread) and changes, between
//! vectors, what the device declares and answers (a [`TestDevConfig`], or
//! one setting at a time); it reads back how often the server called
//! `mmap` and `close` ([`TestDevCounters`]).
//!
//! What the server learns at lookup (capabilities, methods, I/O memory)
//! is part of the object: each change to it starts a new *generation*,
//! and the device's object handle is that generation, so the next open
//! after a change is a new object to the server (no stale cached
//! capabilities, no reuse of regions made under the old configuration).
//! Answers (`get_unmapped_area`, `mmap`, read data) are read from the
//! configuration at each request.

use crate::flags::{data_len, page_offset};
use crate::methods::{self, Lookup, Methods, ReadData, ReadInto, WriteData};
use crate::mount::{device_open, MountPoint};
use crate::{BackingDevice, DriverHost};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, Ordering};
use protocol::{
    Bytes, DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};

/// Spec §14.0's default `get_unmapped_area` base.
pub const DEFAULT_BASE: u64 = 0x5000_0000;
/// Spec §14.0's read data.
pub const DEFAULT_READ_BYTE: u8 = 0xAA;

/// `caps` encoding: bit 8 set = declared, low byte = the bits.
const DECLARED: u16 = 0x100;

struct Shared {
    generation: AtomicU64,
    caps: AtomicU16,
    has_mmap: AtomicBool,
    has_read: AtomicBool,
    has_get_unmapped_area: AtomicBool,
    has_close: AtomicBool,
    io_memory: AtomicBool,
    base: AtomicU64,
    /// 0: answer the address; else this errno.
    gua_errno: AtomicU16,
    /// 0: approve; else this errno.
    mmap_errno: AtomicU16,
    read_byte: AtomicU8,
    mmap_calls: AtomicU64,
    close_calls: AtomicU64,
    gua_calls: AtomicU64,
}

/// The test's handle on a [`TestDev`].
#[derive(Clone)]
pub struct TestDevControl(Arc<Shared>);

/// How `/dev/tst` answers, as a whole; [`TestDevConfig::default`] is the
/// spec's default device (§14.0). [`TestDevControl::configure`] applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestDevConfig {
    /// Declared capabilities (spec §1.1 bits); `None` declares nothing (the
    /// character-device defaults `DIRECT|READ|WRITE` apply).
    pub caps: Option<u8>,
    /// `None`: no `get_unmapped_area` method. `Some(Ok(()))`: it answers
    /// [`TestDevControl::base`] `+ pgoff·P`. `Some(Err(e))`: it fails with
    /// `e` (`ENOSYS` = "copy instead").
    pub get_unmapped_area: Option<Result<(), Errno>>,
    /// What its `mmap` answers.
    pub mmap: Result<(), Errno>,
    /// Whether it has a read method (reads give [`DEFAULT_READ_BYTE`]).
    pub read: bool,
    /// Whether it has a per-mapping `close` hook.
    pub close: bool,
}

impl Default for TestDevConfig {
    fn default() -> Self {
        Self {
            caps: None,
            get_unmapped_area: Some(Ok(())),
            mmap: Ok(()),
            read: true,
            close: true,
        }
    }
}

/// What `/dev/tst` has been asked since its counters were last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestDevCounters {
    /// `mmap` approvals asked for.
    pub mmap_calls: u64,
    /// `close` calls for removed mappings.
    pub close_calls: u64,
}

const ORDER: Ordering = Ordering::SeqCst;

fn errno_code(result: Result<(), Errno>) -> u16 {
    match result {
        Ok(()) => 0,
        Err(e) => e.0,
    }
}

fn code_result(code: u16) -> Result<(), Errno> {
    if code == 0 {
        Ok(())
    } else {
        Err(Errno(code))
    }
}

impl TestDevControl {
    fn new() -> Self {
        Self(Arc::new(Shared {
            generation: AtomicU64::new(1),
            caps: AtomicU16::new(0),
            has_mmap: AtomicBool::new(true),
            has_read: AtomicBool::new(true),
            has_get_unmapped_area: AtomicBool::new(true),
            has_close: AtomicBool::new(true),
            io_memory: AtomicBool::new(false),
            base: AtomicU64::new(DEFAULT_BASE),
            gua_errno: AtomicU16::new(0),
            mmap_errno: AtomicU16::new(0),
            read_byte: AtomicU8::new(DEFAULT_READ_BYTE),
            mmap_calls: AtomicU64::new(0),
            close_calls: AtomicU64::new(0),
            gua_calls: AtomicU64::new(0),
        }))
    }

    fn bump(&self) {
        self.0.generation.fetch_add(1, ORDER);
    }

    /// Change one thing lookup tells (a method present or not, I/O
    /// memory): a new generation, so the next open is a new object.
    fn set_lookup_flag(&self, flag: &AtomicBool, value: bool) {
        flag.store(value, ORDER);
        self.bump();
    }

    /// The object handle lookups give now.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(ORDER)
    }

    /// Declared capabilities (`None`: a character device's defaults).
    pub fn set_caps(&self, caps: Option<u8>) {
        let code = caps.map_or(0, |c| DECLARED | u16::from(c));
        self.0.caps.store(code, ORDER);
        self.bump();
    }

    pub fn caps(&self) -> Option<u8> {
        let code = self.0.caps.load(ORDER);
        (code & DECLARED != 0).then_some(code.to_le_bytes()[0])
    }

    /// Whether it has an mmap method at all.
    pub fn set_mmap_method(&self, present: bool) {
        self.set_lookup_flag(&self.0.has_mmap, present);
    }

    /// Whether it has a read method (vector 21 removes it).
    pub fn set_read_method(&self, present: bool) {
        self.set_lookup_flag(&self.0.has_read, present);
    }

    /// Whether it has `get_unmapped_area` (vector 20 removes it).
    pub fn set_get_unmapped_area_method(&self, present: bool) {
        self.set_lookup_flag(&self.0.has_get_unmapped_area, present);
    }

    /// Whether it wants `close` for every mapping removed (default yes).
    pub fn set_close_method(&self, present: bool) {
        self.set_lookup_flag(&self.0.has_close, present);
    }

    /// Whether its mappings are I/O memory.
    pub fn set_io_memory(&self, io: bool) {
        self.set_lookup_flag(&self.0.io_memory, io);
    }

    /// `get_unmapped_area` answers `base + pgoff·P`.
    pub fn set_base(&self, base: u64) {
        self.0.base.store(base, ORDER);
    }

    pub fn base(&self) -> u64 {
        self.0.base.load(ORDER)
    }

    /// `get_unmapped_area` answers the address (`Ok`) or this error
    /// (`ENOSYS` = "copy instead").
    pub fn set_get_unmapped_area_result(&self, result: Result<(), Errno>) {
        self.0.gua_errno.store(errno_code(result), ORDER);
    }

    /// The driver's `mmap` answer (`Ok` = 0).
    pub fn set_mmap_result(&self, result: Result<(), Errno>) {
        self.0.mmap_errno.store(errno_code(result), ORDER);
    }

    /// The byte reads return.
    pub fn set_read_byte(&self, byte: u8) {
        self.0.read_byte.store(byte, ORDER);
    }

    /// `mmap` calls since the last reset.
    pub fn mmap_calls(&self) -> u64 {
        self.0.mmap_calls.load(ORDER)
    }

    /// `close` (`CloseVma`) calls since the last reset.
    pub fn close_calls(&self) -> u64 {
        self.0.close_calls.load(ORDER)
    }

    /// `get_unmapped_area` calls since the last reset.
    pub fn get_unmapped_area_calls(&self) -> u64 {
        self.0.gua_calls.load(ORDER)
    }

    pub fn reset_counters(&self) {
        self.0.mmap_calls.store(0, ORDER);
        self.0.close_calls.store(0, ORDER);
        self.0.gua_calls.store(0, ORDER);
    }

    /// `mmap` and `close` calls since the last reset.
    pub fn counters(&self) -> TestDevCounters {
        TestDevCounters {
            mmap_calls: self.mmap_calls(),
            close_calls: self.close_calls(),
        }
    }

    /// Reset, then answer as `config` says (a conformance vector's
    /// device).
    pub fn configure(&self, config: TestDevConfig) {
        self.reset();
        self.set_caps(config.caps);
        self.set_get_unmapped_area_method(config.get_unmapped_area.is_some());
        if let Some(answer) = config.get_unmapped_area {
            self.set_get_unmapped_area_result(answer);
        }
        self.set_mmap_result(config.mmap);
        self.set_read_method(config.read);
        self.set_close_method(config.close);
    }

    /// Back to spec §14.0's defaults (a new generation; counters reset).
    pub fn reset(&self) {
        let s = &self.0;
        s.caps.store(0, ORDER);
        s.has_mmap.store(true, ORDER);
        s.has_read.store(true, ORDER);
        s.has_get_unmapped_area.store(true, ORDER);
        s.has_close.store(true, ORDER);
        s.io_memory.store(false, ORDER);
        s.gua_errno.store(0, ORDER);
        s.mmap_errno.store(0, ORDER);
        s.read_byte.store(DEFAULT_READ_BYTE, ORDER);
        self.reset_counters();
        self.bump();
    }
}

/// The configurable test device.
pub struct TestDev {
    mount: MountPoint,
    config: TestDevControl,
    ino: u64,
    window_pages: u64,
}

impl TestDev {
    /// A device with spec §14.0's defaults, and the handle to change them.
    pub fn new(mount: MountPoint) -> (Self, TestDevControl) {
        let config = TestDevControl::new();
        let dev = Self {
            mount,
            config: config.clone(),
            ino: 1,
            window_pages: 0,
        };
        (dev, config)
    }

    /// The handle to change it (as [`TestDev::new`] gave it), for a home
    /// that builds the device where its driver runs.
    pub fn control(&self) -> TestDevControl {
        self.config.clone()
    }

    /// At start, allocate `pages` of arena and make them the
    /// `get_unmapped_area` base, so direct mappings are real memory.
    pub fn with_window(mut self, pages: u64) -> Self {
        self.window_pages = pages;
        self
    }

    /// The inode number `/proc/<pid>/maps` shows.
    pub fn with_ino(mut self, ino: u64) -> Self {
        self.ino = ino;
        self
    }

    fn info(&self, object: u64) -> ObjectInfo {
        let s = &self.config.0;
        let mut ops = 0;
        for (present, bit) in [
            (&s.has_mmap, DriverOps::MMAP),
            (&s.has_read, DriverOps::READ),
            (&s.has_get_unmapped_area, DriverOps::GET_UNMAPPED_AREA),
            (&s.has_close, DriverOps::CLOSE_VMA),
        ] {
            if present.load(ORDER) {
                ops |= bit;
            }
        }
        ObjectInfo {
            object,
            ino: self.ino,
            kind: ObjectKind::CharDevice,
            mode: 0o666,
            size: 0,
            caps: self.config.caps(),
            ops: DriverOps(ops | DriverOps::WRITE),
            io_memory: s.io_memory.load(ORDER),
        }
    }
}

impl Methods for TestDev {
    /// Any generation handed out so far is a valid handle.
    fn check(&mut self, object: u64) -> Result<(), Errno> {
        if object >= 1 && object <= self.config.generation() {
            Ok(())
        } else {
            Err(Errno::EBADF)
        }
    }

    fn lookup(&mut self, _host: &mut dyn DriverHost, req: Lookup<'_>) -> Result<ObjectInfo, Errno> {
        device_open(req.path, req.flags)?;
        Ok(self.info(self.config.generation()))
    }

    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        self.check(object)?;
        Ok(self.info(object))
    }

    fn read_data(&mut self, _host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        self.check(req.object)?;
        let mut bytes = Bytes::new();
        bytes
            .resize(data_len(req.len), self.config.0.read_byte.load(ORDER))
            .map_err(|()| Errno::EIO)?;
        Ok(bytes)
    }

    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        self.check(req.object)?;
        host.fill_arena(req.dest, self.config.0.read_byte.load(ORDER), req.len)?;
        Ok(req.len)
    }

    fn write_data(&mut self, _host: &mut dyn DriverHost, req: WriteData<'_>) -> Result<u64, Errno> {
        self.check(req.object)?;
        Ok(req.data.len() as u64)
    }

    fn get_unmapped_area(&mut self, object: u64, _len: u64, pgoff: u64) -> Result<u64, Errno> {
        self.check(object)?;
        let s = &self.config.0;
        s.gua_calls.fetch_add(1, ORDER);
        code_result(s.gua_errno.load(ORDER))?;
        s.base
            .load(ORDER)
            .checked_add(page_offset(pgoff)?)
            .ok_or(Errno::EINVAL)
    }

    fn mmap(&mut self, object: u64, _len: u64, _pgoff: u64, _vm_flags: u32) -> Result<(), Errno> {
        self.check(object)?;
        let s = &self.config.0;
        s.mmap_calls.fetch_add(1, ORDER);
        code_result(s.mmap_errno.load(ORDER))
    }

    fn close_vma(&mut self, object: u64) -> Result<(), Errno> {
        self.check(object)?;
        self.config.0.close_calls.fetch_add(1, ORDER);
        Ok(())
    }

    fn release(&mut self, _host: &mut dyn DriverHost, object: u64) -> Result<(), Errno> {
        self.check(object)
    }
}

impl BackingDevice for TestDev {
    fn registration(&self) -> DriverRegistration {
        self.mount.registration("testdev", false)
    }

    fn start(&mut self, host: &mut dyn DriverHost) -> Result<(), Errno> {
        if self.window_pages > 0 {
            let base = host.alloc_backing(self.window_pages)?;
            self.config.set_base(base);
        }
        Ok(())
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        methods::serve(self, request, host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn tst() -> (TestDev, TestDevControl, TestHost) {
        let (mut dev, cfg) = TestDev::new(MountPoint::new("/dev/tst", (10, 99)).unwrap());
        let mut host = TestHost::new();
        dev.start(&mut host).unwrap();
        (dev, cfg, host)
    }

    #[test]
    fn the_handle_can_cross_threads() {
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        send_sync::<TestDevControl>();
        let (_, cfg, _) = tst();
        let other = cfg.clone();
        std::thread::spawn(move || other.set_read_byte(0x11))
            .join()
            .unwrap();
    }

    /// Spec §14.0's defaults; vectors 54 and 120 count mmap and close.
    #[test]
    fn defaults_and_counters() {
        let (mut dev, cfg, mut host) = tst();
        let info = opened(dev.serve(lookup("", 0o2, 0), &mut host));
        assert_eq!(info.caps, None);
        assert_eq!(info.kind, ObjectKind::CharDevice);
        assert_eq!(
            info.ops.0,
            DriverOps::MMAP
                | DriverOps::READ
                | DriverOps::WRITE
                | DriverOps::GET_UNMAPPED_AREA
                | DriverOps::CLOSE_VMA
        );
        let o = info.object;
        assert_eq!(
            address(dev.serve(get_unmapped_area(o, 8192, 0), &mut host)),
            0x5000_0000
        );
        assert_eq!(
            address(dev.serve(get_unmapped_area(o, 4096, 3), &mut host)),
            0x5000_3000
        );
        for _ in 0..2 {
            assert_eq!(
                dev.serve(mmap(o, 0x5000_0000, 4096, 0, 0x8), &mut host),
                DriverReply::Done
            );
        }
        for _ in 0..2 {
            let close = DriverRequest::CloseVma {
                object: o,
                start: 0x5000_0000,
                len: 4096,
            };
            assert_eq!(dev.serve(close, &mut host), DriverReply::Done);
        }
        assert_eq!(
            (
                cfg.mmap_calls(),
                cfg.close_calls(),
                cfg.get_unmapped_area_calls()
            ),
            (2, 2, 2)
        );
        cfg.reset_counters();
        assert_eq!((cfg.mmap_calls(), cfg.close_calls()), (0, 0));
        assert_eq!(data(dev.serve(read_data(o, 0, 3), &mut host)), [0xAA; 3]);
        let dest = host.alloc_backing(1).unwrap();
        assert_eq!(
            count(dev.serve(read_into(o, 0, 4096, dest), &mut host)),
            4096
        );
        assert!(host.read(dest, 4096).iter().all(|b| *b == 0xAA));
    }

    /// Vectors 26–30: configured answers.
    #[test]
    fn configured_answers() {
        let (mut dev, cfg, mut host) = tst();
        cfg.set_caps(Some(0x08 | 0x01 | 0x10 | 0x20));
        let o = opened(dev.serve(lookup("", 0o2, 0), &mut host)).object;
        cfg.set_get_unmapped_area_result(Err(Errno::ENOSYS));
        assert_eq!(
            error(dev.serve(get_unmapped_area(o, 4096, 0), &mut host)),
            Errno::ENOSYS
        );
        cfg.set_get_unmapped_area_result(Err(Errno::EINVAL));
        assert_eq!(
            error(dev.serve(get_unmapped_area(o, 4096, 0), &mut host)),
            Errno::EINVAL
        );
        cfg.set_get_unmapped_area_result(Ok(()));
        cfg.set_base(0x1234_0000);
        assert_eq!(
            address(dev.serve(get_unmapped_area(o, 4096, 1), &mut host)),
            0x1234_1000
        );
        cfg.set_mmap_result(Err(Errno::EIO));
        assert_eq!(
            error(dev.serve(mmap(o, 0, 4096, 0, 0x8), &mut host)),
            Errno::EIO
        );
        assert_eq!(cfg.mmap_calls(), 1, "a refused mmap was still called");
        cfg.set_read_byte(0x5A);
        assert_eq!(data(dev.serve(read_data(o, 0, 2), &mut host)), [0x5A; 2]);
        assert_eq!(
            error(dev.serve(get_unmapped_area(o, 4096, u64::MAX), &mut host)),
            Errno::EINVAL
        );
    }

    /// What the server caches at lookup changes the object: each change
    /// is a new generation, the old handle still answers.
    #[test]
    fn changing_what_lookup_tells_makes_a_new_object() {
        let (mut dev, cfg, mut host) = tst();
        let first = opened(dev.serve(lookup("", 0, 0), &mut host));
        cfg.set_get_unmapped_area_method(false);
        cfg.set_read_method(false);
        cfg.set_close_method(false);
        cfg.set_io_memory(true);
        cfg.set_caps(Some(0x08 | 0x10));
        let second = opened(dev.serve(lookup("", 0, 0), &mut host));
        assert_ne!(second.object, first.object);
        assert_eq!(second.caps, Some(0x08 | 0x10));
        assert_eq!(second.ops.0, DriverOps::MMAP | DriverOps::WRITE);
        assert!(second.io_memory);
        assert_eq!(
            opened(dev.serve(
                DriverRequest::Stat {
                    object: first.object
                },
                &mut host
            ))
            .object,
            first.object
        );
        cfg.set_mmap_method(false);
        assert!(!opened(dev.serve(lookup("", 0, 0), &mut host))
            .ops
            .has(DriverOps::MMAP));
        assert_errors(
            &mut dev,
            &mut host,
            &[
                (read_data(0, 0, 1), Errno::EBADF),
                (read_data(cfg.generation() + 1, 0, 1), Errno::EBADF),
            ],
        );
        cfg.reset();
        let again = opened(dev.serve(lookup("", 0, 0), &mut host));
        assert_eq!(again.caps, None);
        assert_eq!(again.ops.0, first.ops.0);
        assert_eq!(
            error(dev.serve(lookup("x", 0, 0), &mut host)),
            Errno::ENOENT
        );
    }

    /// A whole configuration at once, as the conformance vectors set it;
    /// each one starts from fresh counters.
    #[test]
    fn configure_applies_a_whole_configuration() {
        let (mut dev, ctl, mut host) = tst();
        ctl.configure(TestDevConfig {
            caps: Some(0x08),
            get_unmapped_area: None,
            mmap: Err(Errno::EIO),
            read: false,
            close: false,
        });
        let info = opened(dev.serve(lookup("", 0, 0), &mut host));
        assert_eq!(info.caps, Some(0x08));
        assert_eq!(info.ops.0, DriverOps::MMAP | DriverOps::WRITE);
        assert_eq!(
            error(dev.serve(mmap(info.object, 0, 4096, 0, 0x8), &mut host)),
            Errno::EIO
        );
        assert_eq!(
            ctl.counters(),
            TestDevCounters {
                mmap_calls: 1,
                close_calls: 0
            }
        );
        ctl.configure(TestDevConfig::default());
        assert_eq!(ctl.counters(), TestDevCounters::default());
        let again = opened(dev.serve(lookup("", 0, 0), &mut host));
        assert_ne!(again.object, info.object);
        assert_eq!(again.caps, None);
        assert!(again.ops.has(DriverOps::GET_UNMAPPED_AREA));
        assert!(again.ops.has(DriverOps::CLOSE_VMA));
    }

    #[test]
    fn a_window_makes_direct_mappings_real_memory() {
        let (dev, cfg) = TestDev::new(MountPoint::new("/dev/tst", (10, 99)).unwrap());
        let mut dev = dev.with_window(4);
        let mut host = TestHost::new();
        dev.start(&mut host).unwrap();
        assert_eq!(host.allocated_pages(), 4);
        assert_eq!(cfg.base(), host.base());
        let o = opened(dev.serve(lookup("", 0, 0), &mut host)).object;
        assert_eq!(
            address(dev.serve(get_unmapped_area(o, 4096, 2), &mut host)),
            host.base() + 8192
        );
    }
}
