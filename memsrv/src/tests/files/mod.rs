//! File calls, file mappings and the driver link at the memsrv level, with
//! fake drivers standing in for the spec's test environment (§14.0):
//! the vectors of §14.1–§14.3, §14.8, §14.10 and §14.12 that a fake
//! driver can express, plus deferred replies, timeouts, driver death,
//! backing storage, exclusive mode and ptrace.

use alloc::vec::Vec;

use super::fake_driver::*;
use super::rig::*;
use super::sim::{anon_request, mmap_request, user, BASE, P};
use crate::ClientId;
use protocol::linux::*;
use protocol::{DriverOps, DriverRequest, Errno, ObjectKind, ProcView, Reply, Request};

mod backing_storage;
mod calls_ended;
mod deferred;
mod descriptors;
mod lease;
mod mapping_room;
mod memfs_proc_contract;
mod page_map;
mod region_sharing;
mod sync;
mod transfer;
mod trunc_lookup;
mod validation_and_direct;

const R: u32 = PROT_READ;
const RW: u32 = PROT_READ | PROT_WRITE;
const RX: u32 = PROT_READ | PROT_EXEC;

pub(super) const DATA: u64 = 100;
pub(super) const TMP: u64 = 101;
pub(super) const ROM: u64 = 102;
const TST: u64 = 103;
const FB: u64 = 104;

pub(super) const ROM_DATA: u64 = 0x1230;
const TST_BASE: u64 = 0x5000_0000;
const FB_BASE: u64 = 0x3000_0000;

/// `/data/f`, `/tmp`, `/rom/t`, `/dev/tst`, `/dev/fb0` as §14.0 has them,
/// and two processes on connections 1 and 2.
pub(super) fn env() -> Rig {
    env_with(|_| {})
}

pub(super) fn env_with(tweak: impl FnOnce(&mut crate::Config)) -> Rig {
    let mut r = Rig::with(512, |c| {
        c.word_size = 4;
        tweak(c);
    });
    r.driver(DATA, "/data", (0x1f, 2), false, false);
    r.add(DATA, "f", |_, _| {
        let mut o = FakeObject::new(
            37,
            ObjectKind::RegularFile,
            None,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE,
            Store::Heap(pattern(10000)),
        );
        o.info.mode = 0o644;
        o
    });
    r.driver(TMP, "/tmp", (0, 0x10), false, false);
    r.driver(ROM, "/rom", (0x1f, 0), false, true);
    r.add(ROM, "t", |d, s| {
        // The image holds the file at offset 0x1230.
        let base = match s.handle_now(d.client, Request::AllocBacking { pages: 8 }) {
            Reply::Mapped { addr } => addr,
            other => panic!("{other:?}"),
        };
        let data = pattern(20000);
        s.memory_mut()
            .bytes_at(base + ROM_DATA, data.len() as u64)
            .copy_from_slice(&data);
        let mut o = FakeObject::new(
            0,
            ObjectKind::RegularFile,
            Some(0x01 | 0x08 | 0x10 | 0x40),
            DriverOps::MMAP | DriverOps::READ | DriverOps::GET_UNMAPPED_AREA,
            Store::Window {
                base: base + ROM_DATA,
            },
        );
        o.info.size = 20000;
        o
    });
    r.driver(TST, "/dev/tst", (0xa, 1), false, false);
    r.add(TST, "", |_, _| tst(0x01 | 0x08 | 0x10 | 0x20));
    r.driver(FB, "/dev/fb0", (29, 0), false, false);
    r.add(FB, "", |_, _| {
        let mut o = FakeObject::new(
            0,
            ObjectKind::CharDevice,
            None,
            DriverOps::MMAP | DriverOps::READ | DriverOps::WRITE | DriverOps::GET_UNMAPPED_AREA,
            Store::Window { base: FB_BASE },
        );
        o.info.size = 1 << 20;
        o
    });
    r.process(1, 1000);
    r.process(2, 1000);
    r.ok();
    r
}

/// `/dev/tst` with these capabilities: every method, a close hook,
/// `get_unmapped_area` → 0x50000000 + pgoff·P, reads of 0xAA.
pub(super) fn tst(caps: u8) -> FakeObject {
    let mut o = FakeObject::new(
        0,
        ObjectKind::CharDevice,
        Some(caps),
        DriverOps::MMAP
            | DriverOps::READ
            | DriverOps::WRITE
            | DriverOps::GET_UNMAPPED_AREA
            | DriverOps::CLOSE_VMA,
        Store::Window { base: TST_BASE },
    );
    o.info.size = 1 << 20;
    o.read_fill = Some(0xAA);
    o
}

fn set_tst(r: &mut Rig, f: impl FnOnce(&mut FakeObject)) {
    f(r.d(TST).obj(""));
}

fn mc(r: &Rig) -> u64 {
    r.s.stats().mmap_copy_pages * 4
}

fn global_lines(r: &mut Rig) -> Vec<alloc::string::String> {
    r.maps(1, ProcView::GlobalMaps)
        .lines()
        .map(Into::into)
        .collect()
}

/// `path` opened with `flags` by both of the environment's processes
/// (connections 1 and 2); their descriptors, in that order.
fn open_in_both(r: &mut Rig, path: &str, flags: u32) -> (i32, i32) {
    let first = r.open(1, path, flags).unwrap();
    (first, r.open(2, path, flags).unwrap())
}

fn r_open(r: &mut Rig, c: u64, path: &str) -> i32 {
    r.open(c, path, RDWR).unwrap()
}
