//! romfs on arbitrary images: mounting, starting and serving requests
//! must never panic or reach outside the image. Images are raw bytes, or
//! well-formed images (written by the test image writer from an arbitrary
//! layout) with arbitrary bytes changed; checksums are then repaired on
//! request, so the walk past them is fuzzed too, not only the checksums.
#![no_main]

use arbitrary::Arbitrary;
use drivers::romfs::{Medium, Romfs, RomfsError};
use drivers::testing::{romfs_checksum, RomfsImage, TestHost};
use drivers::{BackingDevice, MountPoint};
use libfuzzer_sys::fuzz_target;
use protocol::{Bytes, DriverReply, DriverRequest, Path, PAGE_SIZE};

const DIRS: [&str; 3] = ["", "d", "d/e"];
const ARENA_BASE: u64 = 0x1000_0000;
const ARENA_PAGES: usize = 64;

#[derive(Arbitrary, Debug)]
enum Item {
    File {
        dir: u8,
        name: u8,
        len: u16,
        exec: bool,
    },
    Dir {
        dir: u8,
        name: u8,
    },
    Symlink {
        dir: u8,
        name: u8,
        target: u8,
    },
    HardLink {
        dir: u8,
        name: u8,
        target: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum Image {
    Raw(Vec<u8>),
    Written {
        volume: u8,
        items: Vec<Item>,
        edits: Vec<(u16, u8)>,
    },
}

#[derive(Arbitrary, Debug)]
enum Call {
    Lookup {
        path: u8,
        flags: u16,
    },
    Stat {
        object: u16,
    },
    ReadData {
        object: u16,
        offset: u16,
        len: u16,
    },
    Read {
        object: u16,
        offset: u16,
        len: u16,
        dest: u16,
    },
    Write {
        object: u16,
        offset: u16,
    },
    GetUnmappedArea {
        object: u16,
        len: u32,
        pgoff: u8,
    },
    Mmap {
        object: u16,
        vm_flags: u16,
    },
    Truncate {
        object: u16,
    },
    Release {
        object: u16,
    },
    Unlink {
        path: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    image: Image,
    repair: bool,
    medium: u8,
    calls: Vec<Call>,
}

/// Lay out `items` with the image writer; returns the image and the paths
/// it holds.
fn write_image(volume: u8, items: &[Item]) -> (Vec<u8>, Vec<String>) {
    let mut image = RomfsImage::new(if volume & 1 == 0 { "vol" } else { "" });
    // Paths an entry may be linked to (hard links never name hard links).
    let mut paths: Vec<String> = vec![String::new()];
    let join = |dir: u8, leaf: String| {
        let d = DIRS[usize::from(dir) % DIRS.len()];
        if d.is_empty() {
            leaf
        } else {
            format!("{d}/{leaf}")
        }
    };
    for item in items.iter().take(24) {
        match *item {
            Item::File {
                dir,
                name,
                len,
                exec,
            } => {
                let p = join(dir, format!("f{}", name % 4));
                let data: Vec<u8> = (0..len % 5000).map(|i| i as u8).collect();
                if exec {
                    image.exec_file(&p, &data);
                } else {
                    image.file(&p, &data);
                }
                paths.push(p);
            }
            Item::Dir { dir, name } => {
                let p = join(dir, format!("x{}", name % 2));
                image.dir(&p);
                paths.push(p);
            }
            Item::Symlink { dir, name, target } => {
                let p = join(dir, format!("s{}", name % 2));
                let t = ["f0", "/d/f1", "..", "s0", "/nowhere"][usize::from(target % 5)];
                image.symlink(&p, t);
                paths.push(p);
            }
            Item::HardLink { dir, name, target } => {
                let p = join(dir, format!("h{}", name % 2));
                let t = paths[usize::from(target) % paths.len()].clone();
                image.hardlink(&p, &t);
            }
        }
    }
    (image.build(), paths)
}

/// Make the header at `offset` (or the superblock) sum to zero again.
fn repair(image: &mut [u8], error: RomfsError) -> bool {
    let (at, covered) = match error {
        RomfsError::BadSuperblockChecksum => {
            let full = u32::from_be_bytes([image[8], image[9], image[10], image[11]]) as usize;
            (0, full.min(512))
        }
        RomfsError::BadChecksum { offset } => {
            let at = offset as usize;
            let name = image[at + 16..].iter().take(128).position(|b| *b == 0);
            let Some(name) = name else { return false };
            (at, (16 + name + 1 + 15) & !15)
        }
        _ => return false,
    };
    let Some(end) = at.checked_add(covered).filter(|e| *e <= image.len()) else {
        return false;
    };
    if covered < 16 {
        return false;
    }
    image[at + 12..at + 16].fill(0);
    let sum = romfs_checksum(&image[at..end]);
    image[at + 12..at + 16].copy_from_slice(&0u32.wrapping_sub(sum).to_be_bytes());
    true
}

fn path(s: &str) -> Path {
    let mut p = Path::new();
    let _ = p.extend_from_slice(s.as_bytes());
    p
}

fuzz_target!(|input: Input| {
    let (mut image, paths, written) = match input.image {
        Image::Raw(bytes) => (bytes, vec![String::new()], false),
        Image::Written {
            volume,
            items,
            edits,
        } => {
            let (mut image, paths) = write_image(volume, &items);
            let pristine = edits.is_empty();
            for (at, byte) in edits.iter().take(16) {
                let len = image.len();
                image[usize::from(*at) % len] = *byte;
            }
            (image, paths, pristine)
        }
    };
    let mount_point = || MountPoint::new("/rom", (31, 0)).expect("a valid mount point");
    let mut mounted = Romfs::mount(&image, mount_point());
    if input.repair {
        for _ in 0..32 {
            match mounted {
                Err(e) if repair(&mut image, e) => mounted = Romfs::mount(&image, mount_point()),
                _ => break,
            }
        }
    }
    let mut fs = match mounted {
        Ok(fs) => fs,
        Err(e) => {
            assert!(!written, "a written image fails to mount: {e}");
            return;
        }
    };
    fs = fs.on([Medium::MtdRom, Medium::MtdRam, Medium::Block][usize::from(input.medium % 3)]);
    let mut host = TestHost::with_arena(ARENA_BASE, ARENA_PAGES);
    if fs.start(&mut host).is_err() {
        assert!(image.len() as u64 + PAGE_SIZE > ARENA_PAGES as u64 * PAGE_SIZE || !written);
        return;
    }
    let base = fs.image_base().expect("a started image has a base");
    let mut objects: Vec<u64> = Vec::new();
    let object = |objects: &[u64], o: u16| -> u64 {
        if objects.is_empty() || o & 0x8000 != 0 {
            u64::from(o & 0x7fff)
        } else {
            objects[usize::from(o) % objects.len()]
        }
    };
    for call in input.calls.iter().take(64) {
        let request = match *call {
            Call::Lookup { path: p, flags } => DriverRequest::Lookup {
                path: path(&paths[usize::from(p) % paths.len()]),
                flags: u32::from(flags),
                mode: 0o644,
                caller: protocol::Owner { uid: 0, gid: 0 },
            },
            Call::Stat { object: o } => DriverRequest::Stat {
                object: object(&objects, o),
            },
            Call::ReadData {
                object: o,
                offset,
                len,
            } => DriverRequest::ReadData {
                object: object(&objects, o),
                offset: u64::from(offset),
                len: u32::from(len),
            },
            Call::Read {
                object: o,
                offset,
                len,
                dest,
            } => DriverRequest::Read {
                object: object(&objects, o),
                offset: u64::from(offset),
                len: u64::from(len),
                dest: ARENA_BASE + u64::from(dest) * 4,
            },
            Call::Write { object: o, offset } => DriverRequest::WriteData {
                object: object(&objects, o),
                offset: u64::from(offset),
                data: Bytes::from_slice(b"data").unwrap_or_default(),
            },
            Call::GetUnmappedArea {
                object: o,
                len,
                pgoff,
            } => DriverRequest::GetUnmappedArea {
                object: object(&objects, o),
                len: u64::from(len),
                pgoff: u64::from(pgoff),
                flags: 0,
            },
            Call::Mmap {
                object: o,
                vm_flags,
            } => DriverRequest::Mmap {
                object: object(&objects, o),
                start: base,
                len: PAGE_SIZE,
                pgoff: 0,
                vm_flags: u32::from(vm_flags),
            },
            Call::Truncate { object: o } => DriverRequest::Truncate {
                object: object(&objects, o),
                size: 0,
            },
            Call::Release { object: o } => DriverRequest::Release {
                object: object(&objects, o),
            },
            Call::Unlink { path: p } => DriverRequest::Unlink {
                path: path(&paths[usize::from(p) % paths.len()]),
                caller: protocol::Owner { uid: 0, gid: 0 },
            },
        };
        let reply = fs.serve(request.clone(), &mut host);
        match (&request, reply) {
            (DriverRequest::ReadData { len, .. }, DriverReply::Data(d)) => {
                assert!(d.len() as u64 <= u64::from(*len), "more data than asked");
            }
            (DriverRequest::Read { len, .. }, DriverReply::Count(n)) => {
                assert!(n <= *len, "more bytes than asked");
            }
            (DriverRequest::GetUnmappedArea { len, .. }, DriverReply::Address(a)) => {
                // Inside the image's window (which keeps a spare page).
                let end = base + image.len() as u64 + PAGE_SIZE;
                assert!(
                    a >= base && a.saturating_add(*len) <= end + PAGE_SIZE,
                    "{a:#x}"
                );
            }
            (_, DriverReply::Opened(info)) => objects.push(info.object),
            (
                DriverRequest::WriteData { .. } | DriverRequest::Truncate { .. },
                DriverReply::Count(_) | DriverReply::Done,
            ) => panic!("romfs accepted a write"),
            _ => {}
        }
    }
});
