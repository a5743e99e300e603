//! Every driver against random and extreme requests: each answers every
//! one (an error is fine), never panics, and never leaves an exclusive
//! section open. Also the frame loop of lib.rs.

use crate::copyfs::{CopyFs, MemStore};
use crate::devmem::DevMem;
use crate::devzero::DevZero;
use crate::fbdev::Framebuffer;
use crate::iomem::IoMem;
use crate::mtd::{Mtd, MtdType};
use crate::pipe::Pipe;
use crate::ramdisk::{Ramdisk, RamdiskMapping};
use crate::ramfs::Ramfs;
use crate::romfs::Romfs;
use crate::socket::Socket;
use crate::testdev::TestDev;
use crate::testing::*;
use crate::{serve_frame, BackingDevice, MountPoint};
use alloc::boxed::Box;
use alloc::vec::Vec;
use protocol::{
    decode_driver_reply, encode_driver_request, DriverReply, DriverRequest, Errno, MAX_FRAME,
};

fn m(path: &str) -> MountPoint {
    MountPoint::new(path, (1, 2)).unwrap()
}

fn all_drivers(host: &TestHost) -> Vec<(&'static str, Box<dyn BackingDevice>)> {
    let rom = RomfsImage::new("fuzz")
        .file("t", &[3; 9000])
        .dir("d")
        .symlink("d/l", "../t")
        .build();
    let (tst, cfg) = TestDev::new(m("/dev/tst"));
    cfg.set_caps(Some(0x7F));
    alloc::vec![
        (
            "ramfs",
            Box::new(Ramfs::new(m("/tmp"))) as Box<dyn BackingDevice>
        ),
        (
            "ramfs scattered",
            Box::new(Ramfs::new(m("/dev/shm")).scatter_written_pages(true))
        ),
        ("romfs", Box::new(Romfs::mount(&rom, m("/rom")).unwrap())),
        (
            "ramdisk",
            Box::new(Ramdisk::new(m("/dev/ram0"), 5000, RamdiskMapping::Copy))
        ),
        (
            "ramdisk direct",
            Box::new(Ramdisk::new(m("/dev/ram1"), 8192, RamdiskMapping::Direct))
        ),
        ("fbdev", Box::new(Framebuffer::new(m("/dev/fb0"), 64, 64))),
        ("iomem", Box::new(IoMem::new(m("/dev/io"), 4096))),
        (
            "mtd rom",
            Box::new(Mtd::new(m("/dev/mtd0"), MtdType::Rom, &[1; 8192], 4096))
        ),
        (
            "mtd ram",
            Box::new(Mtd::blank(m("/dev/mtd1"), MtdType::Ram, 8192, 4096))
        ),
        (
            "mtd nor",
            Box::new(Mtd::blank(m("/dev/mtd2"), MtdType::Nor, 16384, 4096))
        ),
        (
            "mtd nor direct",
            Box::new(Mtd::blank(m("/dev/mtd3"), MtdType::Nor, 8192, 1024).with_direct_window()),
        ),
        (
            "copyfs",
            Box::new(CopyFs::new(
                m("/data"),
                MemStore::new().with_file("f", 37, &[9; 3000])
            ))
        ),
        ("pipe", Box::new(Pipe::new(m("/dev/fifo")))),
        ("socket", Box::new(Socket::new(m("/dev/sock")))),
        (
            "devmem",
            Box::new(DevMem::new(
                m("/dev/mem"),
                host.base()..host.base() + host.size()
            ))
        ),
        ("devzero", Box::new(DevZero::new(m("/dev/zero")))),
        ("testdev", Box::new(tst.with_window(1))),
    ]
}

fn pick<T: Copy>(rng: &mut Rng, options: &[T]) -> T {
    options[rng.below(options.len() as u64) as usize]
}

fn number(rng: &mut Rng, base: u64) -> u64 {
    match rng.below(8) {
        0 => 0,
        1 => u64::MAX,
        2 => u64::MAX - rng.below(5000),
        3 => 1u64 << rng.below(64),
        4 => base + rng.below(5 * 4096),
        _ => rng.below(20000),
    }
}

fn request(rng: &mut Rng, base: u64) -> DriverRequest {
    let object = pick(rng, &[0, 1, 2, 3, 0x20, 0x60, u64::MAX, 42]);
    let (offset, len, dest) = (number(rng, base), number(rng, base), number(rng, base));
    let caller = protocol::Owner {
        uid: pick(rng, &[0, 1000, u32::MAX]),
        gid: pick(rng, &[0, 1000, u32::MAX]),
    };
    match rng.below(13) {
        0 => {
            let long = "x".repeat(255);
            let paths = [
                "", "t", "f", "a", "d", "d/l", "d/../t", "../..", "x/y", "erase", "./", &long,
            ];
            let flags = pick(
                rng,
                &[0, 1, 2, 0o100, 0o302, 0o1002, 0o200000, 0o400000, u32::MAX],
            );
            DriverRequest::Lookup {
                path: path(pick(rng, &paths)),
                flags,
                mode: rng.next_u64() as u32,
                caller,
            }
        }
        1 => DriverRequest::Read {
            object,
            offset,
            len: len % (64 * 1024),
            dest,
        },
        2 => DriverRequest::ReadData {
            object,
            offset,
            len: rng.next_u64() as u32,
        },
        3 => {
            let n = rng.below(1025) as usize;
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            DriverRequest::WriteData {
                object,
                offset,
                data: crate::testing::bytes(&bytes),
            }
        }
        4 => DriverRequest::GetUnmappedArea {
            object,
            len,
            pgoff: number(rng, 0),
            flags: rng.next_u64() as u32,
        },
        5 => DriverRequest::Mmap {
            object,
            start: dest,
            len,
            pgoff: number(rng, 0),
            vm_flags: rng.next_u64() as u32,
        },
        6 => DriverRequest::CloseVma {
            object,
            start: dest,
            len,
        },
        7 => DriverRequest::Truncate {
            object,
            size: number(rng, 0) % (1 << 34),
        },
        8 => DriverRequest::Stat { object },
        9 => DriverRequest::Release { object },
        10 => DriverRequest::Unlink {
            path: path(pick(rng, &["", "t", "f", "d/l", "../x"])),
            caller,
        },
        11 => DriverRequest::SetAttributes {
            object,
            mode: rng.next_u64() as u32,
            owner: caller,
        },
        _ => DriverRequest::ReadData {
            object,
            offset: rng.below(9000),
            len: 1024,
        },
    }
}

#[test]
fn no_request_makes_a_driver_panic() {
    let probe = TestHost::new();
    let names: Vec<&str> = all_drivers(&probe).iter().map(|(n, _)| *n).collect();
    for (i, name) in names.iter().enumerate() {
        let mut host = TestHost::new().permissive();
        let mut driver = all_drivers(&host).swap_remove(i).1;
        driver
            .start(&mut host)
            .unwrap_or_else(|e| panic!("{name}: start {e:?}"));
        let mut rng = Rng::new(i as u64 + 1);
        let mut answered = 0;
        for step in 0..3000 {
            if step % 500 == 250 {
                host.set_mapped(1);
            } else if step % 500 == 0 {
                host.set_unmapped(1);
            }
            let req = request(&mut rng, host.base());
            if !matches!(driver.serve(req.clone(), &mut host), DriverReply::Error(_)) {
                answered += 1;
            }
            for object in [0, 1, 2, 3] {
                assert!(
                    !host.in_exclusive(object),
                    "{name}: exclusive left open by {req:?}"
                );
            }
        }
        assert!(answered > 0, "{name} refused everything");
    }
}

#[test]
fn the_frame_loop_answers_with_the_tag() {
    let mut host = TestHost::new();
    let mut fs = Ramfs::new(m("/tmp"));
    let mut frame = [0u8; MAX_FRAME];
    let mut out = [0u8; MAX_FRAME];
    let req = lookup("new", 0o102, 0o600);
    let n = encode_driver_request(77, &req, &mut frame);
    let len = serve_frame(&mut fs, &frame[..n], &mut host, &mut out).unwrap();
    let reply = decode_driver_reply(&out[..len]).unwrap();
    assert_eq!(reply.tag, 77);
    assert_eq!(opened(reply.message).size, 0);

    // A body that is not a request: an error reply with the tag.
    frame[protocol::HEADER_LEN] = 0xFF;
    let len = serve_frame(&mut fs, &frame[..n], &mut host, &mut out).unwrap();
    let reply = decode_driver_reply(&out[..len]).unwrap();
    assert_eq!(reply.tag, 77);
    assert_eq!(reply.message, DriverReply::Error(Errno::EBADMSG));
    // No header at all: nothing can be addressed.
    assert_eq!(serve_frame(&mut fs, b"junk", &mut host, &mut out), None);
}
