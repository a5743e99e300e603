use super::format::{entry, superblock, EntryType};
use super::*;
use crate::flags::open::{CREAT, DIRECTORY, EXCL, NOFOLLOW, RDONLY, RDWR, TRUNC, WRONLY};
use crate::flags::vm::{MAYOVERLAY, MAYSHARE, SHARED};
use crate::testing::*;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const GOOD: &[u8] = include_bytes!("../../testdata/romfs/good.img");

fn mount_point() -> MountPoint {
    MountPoint::new("/rom", (31, 0)).unwrap()
}

fn started(image: &[u8]) -> (Romfs, TestHost) {
    let mut host = TestHost::new();
    let mut fs = Romfs::mount(image, mount_point()).expect("image refused");
    fs.start(&mut host).unwrap();
    (fs, host)
}

fn open(fs: &mut Romfs, host: &mut TestHost, path: &str) -> ObjectInfo {
    opened(fs.serve(lookup(path, RDONLY, 0), host))
}

fn read_all(fs: &mut Romfs, host: &mut TestHost, object: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let chunk = data(fs.serve(read_data(object, out.len() as u64, 1024), host));
        if chunk.is_empty() {
            return out;
        }
        out.extend_from_slice(&chunk);
    }
}

/// A scratch directory under the system's temporary directory.
fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "drivers-romfs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An image of `dir` made by Debian's genromfs. CI installs it
/// (scripts/setup-debian.sh); without it these tests fail, never skip.
fn genromfs(dir: &FsPath, volume: &str) -> Vec<u8> {
    let out = dir.with_extension("img");
    let status = std::process::Command::new("genromfs")
        .arg("-f")
        .arg(&out)
        .arg("-d")
        .arg(dir)
        .arg("-V")
        .arg(volume)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run genromfs ({e}): install it (apt-get install genromfs, \
                 see scripts/setup-debian.sh); the romfs tests need real images"
            )
        });
    assert!(status.success(), "genromfs failed: {status}");
    let image = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    image
}

/// The tree the genromfs tests use, written to disk.
fn sample_tree() -> PathBuf {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = scratch();
    let w = |p: &str, data: &[u8]| std::fs::write(dir.join(p), data).unwrap();
    let t: Vec<u8> = (0..20000).map(pattern).collect();
    w("t", &t);
    w("empty", b"");
    std::fs::create_dir_all(dir.join("bin/deep/er")).unwrap();
    w("bin/tool", b"#!/bin/sh\necho tool\n");
    let tool = dir.join("bin/tool");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    w("bin/deep/er/leaf", b"leaf");
    symlink("../t", dir.join("bin/t-link")).unwrap();
    symlink("/rom/bin/tool", dir.join("abs-link")).unwrap();
    symlink("/elsewhere/x", dir.join("outside-link")).unwrap();
    symlink("loop-b", dir.join("loop-a")).unwrap();
    symlink("loop-a", dir.join("loop-b")).unwrap();
    symlink("bin", dir.join("bin-link")).unwrap();
    std::fs::hard_link(dir.join("t"), dir.join("t-hard")).unwrap();
    dir
}

#[test]
fn genromfs_images_mount_and_read() {
    let dir = sample_tree();
    let image = genromfs(&dir, "sample");
    let (mut fs, mut host) = started(&image);
    assert_eq!(fs.volume(), b"sample");
    let t = open(&mut fs, &mut host, "t");
    assert_eq!(t.kind, ObjectKind::RegularFile);
    assert_eq!(t.size, 20000);
    assert_eq!(
        t.ino, t.object,
        "the header offset is the inode, as in Linux"
    );
    assert_eq!(t.caps, Some(0x01 | 0x08 | 0x10 | 0x40));
    assert_eq!(
        t.ops.0,
        DriverOps::MMAP | DriverOps::READ | DriverOps::GET_UNMAPPED_AREA
    );
    assert_eq!(t.mode, 0o644);
    let expect: Vec<u8> = (0..20000).map(pattern).collect();
    assert_eq!(read_all(&mut fs, &mut host, t.object), expect);
    assert_eq!(std::fs::read(dir.join("t")).unwrap(), expect);

    let tool = open(&mut fs, &mut host, "bin/tool");
    assert_eq!(tool.mode, 0o755, "the exec bit");
    assert_eq!(
        read_all(&mut fs, &mut host, tool.object),
        b"#!/bin/sh\necho tool\n"
    );
    let leaf = open(&mut fs, &mut host, "bin/deep/er/leaf").object;
    assert_eq!(read_all(&mut fs, &mut host, leaf), b"leaf");
    let empty = open(&mut fs, &mut host, "empty");
    assert_eq!(empty.size, 0);
    assert_eq!(read_all(&mut fs, &mut host, empty.object), b"");
    let bin = open(&mut fs, &mut host, "bin");
    assert_eq!(bin.kind, ObjectKind::Directory);
    assert_eq!(bin.ops.0, 0);
    let root = open(&mut fs, &mut host, "");
    assert_eq!(root.kind, ObjectKind::Directory);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn links_resolve_or_are_refused_cleanly() {
    let dir = sample_tree();
    let image = genromfs(&dir, "links");
    let (mut fs, mut host) = started(&image);
    let t = open(&mut fs, &mut host, "t").object;
    // Hard links are the same object (region sharing keys on it).
    assert_eq!(open(&mut fs, &mut host, "t-hard").object, t);
    // Relative, absolute-within-the-mount and directory symlinks.
    assert_eq!(open(&mut fs, &mut host, "bin/t-link").object, t);
    let tool = open(&mut fs, &mut host, "bin/tool").object;
    assert_eq!(open(&mut fs, &mut host, "abs-link").object, tool);
    assert_eq!(open(&mut fs, &mut host, "bin-link/tool").object, tool);
    assert_eq!(open(&mut fs, &mut host, "bin/deep/../tool").object, tool);
    assert_eq!(
        open(&mut fs, &mut host, "./bin//deep/er/../../tool").object,
        tool
    );
    assert_eq!(
        open(&mut fs, &mut host, "../../t").object,
        t,
        ".. stops at the root"
    );
    for (path, errno) in [
        ("outside-link", Errno::ENOENT),
        ("loop-a", crate::flags::ELOOP),
        ("missing", Errno::ENOENT),
        ("bin/missing/x", Errno::ENOENT),
        ("t/x", Errno::ENOTDIR),
        ("t/", Errno::ENOTDIR),
        ("t/..", Errno::ENOTDIR),
    ] {
        assert_eq!(
            error(fs.serve(lookup(path, RDONLY, 0), &mut host)),
            errno,
            "{path}"
        );
    }
    assert_eq!(
        error(fs.serve(lookup("bin/t-link", RDONLY | NOFOLLOW, 0), &mut host)),
        crate::flags::ELOOP
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_read_only_filesystem_refuses_writes() {
    let (mut fs, mut host) = started(GOOD);
    assert!(fs.registration().read_only);
    assert_eq!(fs.registration().name.as_str(), "romfs");
    for (path, flags, errno) in [
        ("new", CREAT | WRONLY, Errno::EROFS),
        ("new", CREAT | RDONLY, Errno::EROFS),
        ("d/new", CREAT | RDWR, Errno::EROFS),
        ("nodir/new", CREAT | RDWR, Errno::ENOENT),
        ("f/new", CREAT | RDWR, Errno::ENOTDIR),
        ("f", CREAT | EXCL | RDONLY, Errno::EEXIST),
        ("f", WRONLY, Errno::EROFS),
        ("f", RDONLY | TRUNC, Errno::EROFS),
        ("f", RDONLY | DIRECTORY, Errno::ENOTDIR),
        ("d", RDWR, Errno::EISDIR),
        ("d", CREAT | RDONLY, Errno::EISDIR),
        ("", CREAT | RDONLY, Errno::EISDIR),
    ] {
        assert_eq!(
            error(fs.serve(lookup(path, flags, 0o644), &mut host)),
            errno,
            "{path} {flags:o}"
        );
    }
    let f = open(&mut fs, &mut host, "f").object;
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (write_data(f, 0, b"x"), Errno::EROFS),
            (DriverRequest::Truncate { object: f, size: 0 }, Errno::EROFS),
        ],
    );
}

#[test]
fn the_hand_made_image_walks_its_cycle() {
    let (mut fs, mut host) = started(GOOD);
    assert_eq!(fs.volume(), b"t");
    let f = open(&mut fs, &mut host, "f");
    assert_eq!(read_all(&mut fs, &mut host, f.object), b"hello");
    assert_eq!(open(&mut fs, &mut host, "l").object, f.object);
    let d = open(&mut fs, &mut host, "d").object;
    assert_eq!(open(&mut fs, &mut host, "d/again/again/again").object, d);
    assert_eq!(fs.data_offset("f"), Some(0x80));
}

/// Spec §14.0's `/rom/t`: 20000 bytes whose data starts at image offset
/// 0x1230, built with the image writer; vectors 22, 24 and 38.
#[test]
fn get_unmapped_area_is_the_data_inside_the_image() {
    let t: Vec<u8> = (0..20000).map(pattern).collect();
    let image = RomfsImage::new("rom")
        .file("pad", &alloc::vec![0; 0x1190])
        .file("t", &t)
        .build();
    assert_eq!(RomfsImage::data_offset(&image, "t"), Some(0x1230));
    let (mut fs, mut host) = started(&image);
    let base = fs.image_base().unwrap();
    assert_eq!(
        host.read(base, image.len()),
        image,
        "the image is in the arena"
    );
    let t_obj = open(&mut fs, &mut host, "t").object;
    let x = address(fs.serve(get_unmapped_area(t_obj, 8192, 0), &mut host));
    assert_eq!(x, base + 0x1230, "not page aligned");
    assert_eq!(host.read(x, 16), &t[..16]);
    assert_eq!(
        address(fs.serve(get_unmapped_area(t_obj, 4096, 4), &mut host)),
        base + 0x1230 + 4 * 4096
    );
    assert_bad_ranges(
        &mut fs,
        &mut host,
        t_obj,
        &[(4096, 10), (4096, 5), (8192, 4), (24576, 0), (1, u64::MAX)],
    );
    for flags in [
        SHARED | MAYSHARE,
        MAYOVERLAY,
        0x1 | 0x4 | 0x10 | 0x40 | MAYOVERLAY,
    ] {
        assert_eq!(
            fs.serve(mmap(t_obj, x, 8192, 0, flags), &mut host),
            DriverReply::Done
        );
    }
    assert_eq!(
        error(fs.serve(mmap(t_obj, x, 8192, 0, 0x1 | 0x2 | 0x10 | 0x20), &mut host)),
        Errno::ENOSYS
    );
    // The copy of vector 23, and of 38's beyond-EOF page (zero-filled by
    // the server after a short read).
    let dest = host.alloc_backing(2).unwrap();
    assert_eq!(
        count(fs.serve(read_into(t_obj, 0, 8192, dest), &mut host)),
        8192
    );
    assert_eq!(host.read(dest, 8192), &t[..8192]);
    assert_eq!(
        count(fs.serve(read_into(t_obj, 10 * 4096, 4096, dest), &mut host)),
        0
    );
    assert_eq!(
        count(fs.serve(read_into(t_obj, 4 * 4096, 8192, dest), &mut host)),
        20000 - 4 * 4096
    );
    // An empty file has no pages to map.
    let empty = RomfsImage::new("e").file("z", b"").build();
    let (mut fs, mut host) = started(&empty);
    let z = open(&mut fs, &mut host, "z").object;
    assert_eq!(
        error(fs.serve(get_unmapped_area(z, 1, 0), &mut host)),
        Errno::EINVAL
    );
}

#[test]
fn media_choose_the_capabilities() {
    let image = RomfsImage::new("m")
        .file("f", b"data")
        .file("g", &[1; 5000])
        .build();
    let cases = [
        (Medium::MtdRom, 0x01 | 0x08 | 0x10 | 0x40),
        (Medium::MtdRam, 0x01 | 0x08 | 0x10 | 0x20 | 0x40),
        (Medium::Block, 0x01),
    ];
    for (medium, caps) in cases {
        let mut host = TestHost::new();
        let mut fs = Romfs::mount(&image, mount_point()).unwrap().on(medium);
        fs.start(&mut host).unwrap();
        let f = open(&mut fs, &mut host, "f");
        assert_eq!(f.caps, Some(caps), "{medium:?}");
        let gua = fs.serve(get_unmapped_area(f.object, 4, 0), &mut host);
        if medium == Medium::Block {
            assert_eq!(error(gua), Errno::ENOSYS);
        } else {
            assert_eq!(
                address(gua),
                fs.image_base().unwrap() + fs.data_offset("f").unwrap() as u64
            );
        }
    }
}

#[test]
fn requests_before_start_or_for_unknown_objects_fail_cleanly() {
    let mut host = TestHost::new();
    let mut fs = Romfs::mount(GOOD, mount_point()).unwrap();
    let f = opened(fs.serve(lookup("f", RDONLY, 0), &mut host)).object;
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (read_data(f, 0, 4), Errno::EIO),
            (get_unmapped_area(f, 4, 0), Errno::EIO),
        ],
    );
    fs.start(&mut host).unwrap();
    assert_eq!(fs.start(&mut host), Err(Errno::EBUSY));
    for object in [0, 1, 0x61, u64::MAX] {
        assert_errors(
            &mut fs,
            &mut host,
            &[
                (read_data(object, 0, 4), Errno::EBADF),
                (DriverRequest::Stat { object }, Errno::EBADF),
            ],
        );
    }
    let d = opened(fs.serve(lookup("d", RDONLY, 0), &mut host)).object;
    assert_errors(
        &mut fs,
        &mut host,
        &[
            (read_data(d, 0, 4), Errno::EISDIR),
            (mmap(d, 0, 4, 0, SHARED), Errno::EISDIR),
        ],
    );
}

#[test]
fn a_failed_start_gives_the_storage_back() {
    let mut host = TestHost::new();
    host.limit_alloc(0);
    let mut fs = Romfs::mount(GOOD, mount_point()).unwrap();
    assert_eq!(fs.start(&mut host), Err(Errno::ENOMEM));
    assert_eq!(host.allocated_pages(), 0);
}

/// The same tree through genromfs and through the image writer reads the
/// same (the writer is what bare-metal tests use).
#[test]
fn the_image_writer_agrees_with_genromfs() {
    let dir = scratch();
    let t: Vec<u8> = (0..5000).map(pattern).collect();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a"), b"alpha").unwrap();
    std::fs::write(dir.join("sub/t"), &t).unwrap();
    std::os::unix::fs::symlink("sub/t", dir.join("link")).unwrap();
    let real = genromfs(&dir, "same");
    let ours = RomfsImage::new("same")
        .file("a", b"alpha")
        .file("sub/t", &t)
        .symlink("link", "sub/t")
        .build();
    assert_eq!(real.len() % 1024, 0);
    assert_eq!(ours.len() % 1024, 0);
    for image in [&real, &ours] {
        let (mut fs, mut host) = started(image);
        for (path, want) in [("a", &b"alpha"[..]), ("sub/t", &t), ("link", &t)] {
            let o = open(&mut fs, &mut host, path).object;
            assert_eq!(read_all(&mut fs, &mut host, o), want, "{path}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hand_made_bad_images_are_refused() {
    macro_rules! img {
        ($name:literal) => {
            (
                $name,
                &include_bytes!(concat!("../../testdata/romfs/", $name))[..],
            )
        };
    }
    let cases: [(&str, &[u8], RomfsError); 12] = [
        {
            let (n, b) = img!("bad-magic.img");
            (n, b, RomfsError::BadMagic)
        },
        {
            let (n, b) = img!("bad-superblock-checksum.img");
            (n, b, RomfsError::BadSuperblockChecksum)
        },
        {
            let (n, b) = img!("bad-header-checksum.img");
            (n, b, RomfsError::BadChecksum { offset: 0x60 })
        },
        {
            let (n, b) = img!("size-beyond-image.img");
            (
                n,
                b,
                RomfsError::BadSize {
                    full_size: 0x400,
                    image_len: 0x140,
                },
            )
        },
        {
            let (n, b) = img!("truncated.img");
            (
                n,
                b,
                RomfsError::BadSize {
                    full_size: 0x140,
                    image_len: 0xA0,
                },
            )
        },
        {
            let (n, b) = img!("next-out-of-bounds.img");
            (n, b, RomfsError::HeaderOutOfBounds { offset: 0x1000 })
        },
        {
            let (n, b) = img!("chain-loop.img");
            (n, b, RomfsError::ChainLoop { offset: 0x60 })
        },
        {
            let (n, b) = img!("hard-link-loop.img");
            (n, b, RomfsError::HardLinkLoop { offset: 0x40 })
        },
        {
            let (n, b) = img!("data-out-of-bounds.img");
            (n, b, RomfsError::DataOutOfBounds { offset: 0x60 })
        },
        {
            let (n, b) = img!("root-not-directory.img");
            (n, b, RomfsError::RootNotDirectory)
        },
        {
            let (n, b) = img!("unterminated-name.img");
            (n, b, RomfsError::BadName { offset: 0x110 })
        },
        {
            let (n, b) = img!("too-small.img");
            (n, b, RomfsError::TooSmall)
        },
    ];
    for (name, bytes, want) in cases {
        match Romfs::mount(bytes, mount_point()) {
            Err(e) => {
                assert_eq!(e, want, "{name}: {e}");
                assert_eq!(Errno::from(e), Errno::EINVAL);
            }
            Ok(_) => panic!("{name} was accepted"),
        }
    }
    assert!(Romfs::mount(b"", mount_point()).is_err());
}

/// Every header offset of a valid image (every chain, recursively).
fn header_offsets(image: &[u8]) -> Vec<u32> {
    let sb = superblock(image).unwrap();
    let mut out = Vec::new();
    let mut chains = alloc::vec![sb.root];
    let mut seen_dirs = std::collections::BTreeSet::new();
    while let Some(mut at) = chains.pop() {
        while at != 0 && !out.contains(&at) {
            out.push(at);
            let e = entry(sb.fs, at).unwrap();
            if e.kind == EntryType::Directory && seen_dirs.insert(at) {
                chains.push(e.spec);
            }
            at = e.next;
        }
    }
    out
}

fn fix_checksum(img: &mut [u8], at: usize, len: usize) {
    img[at + 12..at + 16].fill(0);
    let sum = crate::testing::romfs_checksum(&img[at..at + len]);
    img[at + 12..at + 16].copy_from_slice(&0u32.wrapping_sub(sum).to_be_bytes());
}

fn fix_superblock(img: &mut [u8]) {
    let size = u32::from_be_bytes(img[8..12].try_into().unwrap()) as usize;
    img[12..16].fill(0);
    let n = size.min(512).min(img.len()) & !3;
    let sum = crate::testing::romfs_checksum(&img[..n]);
    img[12..16].copy_from_slice(&0u32.wrapping_sub(sum).to_be_bytes());
}

/// Whatever an accepted image holds, serving it never panics.
fn exercise(image: &[u8], rng: &mut Rng) {
    let Ok(mut fs) = Romfs::mount(image, mount_point()) else {
        return;
    };
    let mut host = TestHost::with_arena(0x1000_0000, 64);
    if fs.start(&mut host).is_err() {
        return;
    }
    let objects: Vec<u32> = fs.index.nodes.keys().copied().collect();
    let names: Vec<String> = fs
        .index
        .nodes
        .values()
        .filter_map(|n| match n {
            Node::Directory { children, .. } => Some(children.clone()),
            _ => None,
        })
        .flatten()
        .map(|(name, _)| String::from_utf8_lossy(&name).into_owned())
        .collect();
    for name in &names {
        let _ = fs.serve(lookup(name, RDONLY, 0), &mut host);
        let _ = fs.serve(lookup(&format!("{name}/{name}/.."), RDONLY, 0), &mut host);
    }
    for object in objects {
        let object = u64::from(object);
        let _ = fs.serve(DriverRequest::Stat { object }, &mut host);
        let _ = fs.serve(read_data(object, rng.below(70000), 1024), &mut host);
        let _ = fs.serve(
            get_unmapped_area(object, rng.below(70000), rng.below(20)),
            &mut host,
        );
        let dest = 0x1000_0000 + 60 * 4096;
        let _ = fs.serve(
            read_into(object, rng.below(9000), rng.below(8192), dest),
            &mut host,
        );
    }
}

/// Random corruption of real and written images: refused or served, never
/// a panic or a read outside the image.
#[test]
fn corrupted_images_never_panic() {
    let dir = sample_tree();
    let bases = [
        genromfs(&dir, "fuzz"),
        GOOD.to_vec(),
        RomfsImage::new("w")
            .file("a", b"alpha")
            .dir("d/e")
            .symlink("d/l", "../a")
            .hardlink("d/h", "a")
            .build(),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = Rng::new(0x5eed);
    let mut accepted = 0;
    for round in 0..3000 {
        let base = &bases[round % bases.len()];
        let mut img = base.clone();
        let headers = header_offsets(base);
        match rng.below(4) {
            // Random bytes anywhere (mostly caught by checksums).
            0 => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(img.len() as u64) as usize;
                    img[at] = rng.next_u64() as u8;
                }
            }
            // One header field rewritten, checksums made right again, so
            // the walk meets the damage.
            1 | 2 => {
                let h = headers[rng.below(headers.len() as u64) as usize] as usize;
                let field = (rng.below(4) * 4) as usize;
                let value = match rng.below(4) {
                    0 => rng.next_u64() as u32,
                    1 => (rng.below(img.len() as u64 + 64) as u32) & !0xF | rng.below(16) as u32,
                    2 => headers[rng.below(headers.len() as u64) as usize] | rng.below(16) as u32,
                    _ => u32::MAX,
                };
                if field != 12 {
                    img[h + field..h + field + 4].copy_from_slice(&value.to_be_bytes());
                } else {
                    // The name: overwrite its bytes instead.
                    for b in &mut img[h + 16..h + 32] {
                        *b = rng.next_u64() as u8;
                    }
                }
                let name_end = img[h + 16..]
                    .iter()
                    .position(|b| *b == 0)
                    .map(|p| h + 16 + p);
                if let Some(end) = name_end {
                    let meta = ((end - h + 1) + 15) & !15;
                    if h + meta <= img.len() {
                        fix_checksum(&mut img, h, meta);
                    }
                }
                fix_superblock(&mut img);
            }
            // Cut short, or the size field changed.
            _ => {
                if rng.below(2) == 0 {
                    img.truncate(rng.below(img.len() as u64) as usize);
                } else if img.len() >= 16 {
                    let size = rng.below(img.len() as u64 * 2) as u32;
                    img[8..12].copy_from_slice(&size.to_be_bytes());
                    fix_superblock(&mut img);
                }
            }
        }
        if Romfs::mount(&img, mount_point()).is_ok() {
            accepted += 1;
        }
        exercise(&img, &mut rng);
    }
    // Pure noise too.
    for _ in 0..500 {
        let len = rng.below(600) as usize;
        let mut img: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if len >= 16 && rng.below(2) == 0 {
            img[..8].copy_from_slice(b"-rom1fs-");
            img[8..12].copy_from_slice(&(len as u32).to_be_bytes());
            fix_superblock(&mut img);
        }
        exercise(&img, &mut rng);
    }
    assert!(
        accepted > 100,
        "the corruptions should leave some images valid ({accepted})"
    );
}

#[test]
fn overlong_link_targets_are_refused() {
    let target = "a/".repeat(2100);
    let image = RomfsImage::new("l")
        .file("a", b"x")
        .symlink("long", &target)
        .build();
    let (mut fs, mut host) = started(&image);
    assert_eq!(
        error(fs.serve(lookup("long", RDONLY, 0), &mut host)),
        Errno::ENAMETOOLONG
    );
}

/// An image that already sits in flash at a fixed address: nothing is
/// allocated or copied, reads come from the image, direct mappings are
/// the flash address, and the RomTData landmark (image base + data
/// offset) is that address too.
#[test]
fn an_image_in_place_is_served_where_it_is() {
    const FLASH: u64 = 0x2300_0000;
    let t: Vec<u8> = (0..20000).map(pattern).collect();
    let image: &'static [u8] = alloc::boxed::Box::leak(
        RomfsImage::new("rom")
            .file("pad", &alloc::vec![0; 0x1190])
            .file("t", &t)
            .build()
            .into_boxed_slice(),
    );
    // What a board does: read the superblock, take that many bytes.
    let size = image_size(image).unwrap() as usize;
    assert!(size <= image.len());
    let image = &image[..size];
    let mut host = TestHost::new();
    let mut fs = Romfs::in_place(image, FLASH, mount_point()).unwrap();
    assert_eq!(fs.image_base(), None, "not started");
    fs.start(&mut host).unwrap();
    assert!(host.events().is_empty(), "{:?}", host.events());
    assert_eq!(host.allocated_pages(), 0);
    assert_eq!(fs.image_base(), Some(FLASH));
    assert_eq!(fs.data_offset("t"), Some(0x1230));
    let t_obj = open(&mut fs, &mut host, "t").object;
    assert_eq!(
        address(fs.serve(get_unmapped_area(t_obj, 8192, 0), &mut host)),
        FLASH + 0x1230
    );
    assert_eq!(
        address(fs.serve(get_unmapped_area(t_obj, 4096, 4), &mut host)),
        FLASH + 0x1230 + 4 * 4096
    );
    assert_eq!(
        error(fs.serve(get_unmapped_area(t_obj, 4096, 5), &mut host)),
        Errno::EINVAL
    );
    assert_eq!(read_all(&mut fs, &mut host, t_obj), t);
    assert_eq!(
        data(fs.serve(read_data(t_obj, 19998, 100), &mut host)),
        &t[19998..]
    );
    assert_eq!(data(fs.serve(read_data(t_obj, 20000, 1), &mut host)), b"");
    assert_eq!(
        data(fs.serve(read_data(t_obj, u64::MAX, 1), &mut host)),
        b""
    );
    // Copies for private mappings come from the image.
    let dest = host.alloc_backing(2).unwrap();
    assert_eq!(
        count(fs.serve(read_into(t_obj, 4 * 4096, 8192, dest), &mut host)),
        20000 - 4 * 4096
    );
    assert_eq!(host.read(dest, 20000 - 4 * 4096), &t[4 * 4096..]);
    assert_eq!(
        count(fs.serve(read_into(t_obj, 10 * 4096, 4096, dest), &mut host)),
        0
    );
    assert_eq!(
        error(fs.serve(write_data(t_obj, 0, b"x"), &mut host)),
        Errno::EROFS
    );
    assert_eq!(fs.start(&mut host), Err(Errno::EBUSY));
}

#[test]
fn images_in_place_are_checked_like_any_other() {
    let mut host = TestHost::new();
    assert!(Romfs::in_place(&GOOD[..GOOD.len() - 16], 0x2300_0000, mount_point()).is_err());
    assert!(Romfs::in_place(b"-rom1fs-", 0x2300_0000, mount_point()).is_err());
    // An address where the image (and its spare page) would wrap.
    let mut fs = Romfs::in_place(GOOD, u64::MAX - 4096, mount_point()).unwrap();
    assert_eq!(fs.start(&mut host), Err(Errno::EFAULT));
    let f = opened(fs.serve(lookup("f", RDONLY, 0), &mut host)).object;
    assert_eq!(error(fs.serve(read_data(f, 0, 4), &mut host)), Errno::EIO);
    // Medium still chooses the capabilities.
    let mut fs = Romfs::in_place(GOOD, 0x2300_0000, mount_point())
        .unwrap()
        .on(Medium::Block);
    fs.start(&mut host).unwrap();
    let f = open(&mut fs, &mut host, "f");
    assert_eq!(f.caps, Some(0x01));
    assert_eq!(read_all(&mut fs, &mut host, f.object), b"hello");
    assert_eq!(image_size(b"-rom1fs"), None);
    assert_eq!(image_size(b"-rom2fs-\0\0\0\x10"), None);
    assert_eq!(image_size(b"-rom1fs-\0\0\x01\x10"), Some(0x110));
}
