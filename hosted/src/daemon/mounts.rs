//! Backing devices from `--mount POINT=KIND[:ARG]` (memsrvd's built-in
//! drivers and `nommu-driver` alike).

use super::options::{geometry, mount_kind_names, parse_size, MountSpec};
use crate::hostdir::HostDir;
use drivers::copyfs::CopyFs;
use drivers::devmem::DevMem;
use drivers::devzero::DevZero;
use drivers::fbdev::Framebuffer;
use drivers::mtd::{Mtd, MtdType};
use drivers::pipe::Pipe;
use drivers::ramdisk::{Ramdisk, RamdiskMapping};
use drivers::ramfs::Ramfs;
use drivers::romfs::Romfs;
use drivers::socket::Socket;
use drivers::{BackingDevice, MountPoint};

/// A device a driver thread or process owns.
pub type Device = Box<dyn BackingDevice + Send>;

/// The arena, for drivers whose answers are arena addresses (`/dev/mem`).
#[derive(Clone, Copy, Debug)]
pub struct ArenaRange {
    pub base: u64,
    pub size: u64,
}

/// Device numbers (major, minor) as Linux gives these devices; the minor
/// tells mounts of one kind apart.
fn dev(kind: &str, minor: u8) -> (u8, u8) {
    let major = match kind {
        "romfs" | "mtd" => 31,
        "ramdisk" | "devzero" | "devmem" => 1,
        "fbdev" => 29,
        "hostdir" => 8,
        _ => 0,
    };
    (major, minor)
}

fn need_arg<'a>(spec: &'a MountSpec, what: &str) -> Result<&'a str, String> {
    spec.arg
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("{}: {} needs {what}", spec.point, spec.kind))
}

fn no_arg(spec: &MountSpec) -> Result<(), String> {
    match &spec.arg {
        None => Ok(()),
        Some(_) => Err(format!("{}: {} takes no argument", spec.point, spec.kind)),
    }
}

fn read_image(spec: &MountSpec, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: cannot read image {path}: {e}", spec.point))
}

/// Build the device `spec` names; `minor` numbers it among mounts of its
/// kind. Errors are for the operator.
pub fn build(spec: &MountSpec, minor: u8, arena: ArenaRange) -> Result<Device, String> {
    let mount = MountPoint::new(&spec.point, dev(&spec.kind, minor))
        .map_err(|e| format!("bad mount point {}: {e}", spec.point))?;
    let device: Device = match spec.kind.as_str() {
        "romfs" => {
            let image = read_image(spec, need_arg(spec, "an image file")?)?;
            let romfs = Romfs::mount(&image, mount)
                .map_err(|e| format!("{}: not a romfs image: {e:?}", spec.point))?;
            Box::new(romfs)
        }
        "ramfs" | "tmpfs" => {
            no_arg(spec)?;
            // Its root is the serving user's, as a mount of its own.
            // SAFETY: geteuid and getegid have no preconditions.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            Box::new(Ramfs::new(mount).owned_by(protocol::Owner { uid, gid }))
        }
        "hostdir" => {
            let dir = need_arg(spec, "a directory")?;
            let store = HostDir::new(dir).map_err(|e| format!("{}: {e}", spec.point))?;
            Box::new(CopyFs::new(mount, store))
        }
        "fbdev" => {
            let arg = need_arg(spec, "a geometry WxH")?;
            let (w, h) = geometry(arg)
                .ok_or_else(|| format!("{}: bad geometry {arg:?} (WxH)", spec.point))?;
            Box::new(Framebuffer::new(mount, w, h))
        }
        "mtd" => {
            let arg = need_arg(spec, "an image file")?;
            let (path, kind) = match arg.rsplit_once(',') {
                Some((path, "rom")) => (path, MtdType::Rom),
                Some((path, "ram")) => (path, MtdType::Ram),
                Some((path, "nor")) => (path, MtdType::Nor),
                _ => (arg, MtdType::Rom),
            };
            let image = read_image(spec, path)?;
            if image.is_empty() {
                return Err(format!("{}: the image {path} is empty", spec.point));
            }
            let len = image.len() as u64;
            let erase = [64 << 10, 4096, 512, 1]
                .into_iter()
                .find(|e| len.is_multiple_of(*e))
                .unwrap_or(1);
            Box::new(Mtd::new(mount, kind, &image, erase))
        }
        "ramdisk" => {
            let arg = need_arg(spec, "a size")?;
            let (size, mapping) = match arg.split_once(',') {
                Some((size, "direct")) => (size, RamdiskMapping::Direct),
                Some((size, "copy")) => (size, RamdiskMapping::Copy),
                Some(_) => return Err(format!("{}: bad ramdisk {arg:?}", spec.point)),
                None => (arg, RamdiskMapping::Copy),
            };
            let size = parse_size(size)
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("{}: bad ramdisk size {size:?}", spec.point))?;
            Box::new(Ramdisk::new(mount, size, mapping))
        }
        "devzero" => {
            no_arg(spec)?;
            Box::new(DevZero::new(mount))
        }
        "devmem" => {
            no_arg(spec)?;
            Box::new(DevMem::new(mount, arena.base..arena.base + arena.size))
        }
        "pipe" => {
            no_arg(spec)?;
            Box::new(Pipe::new(mount))
        }
        "socket" => {
            no_arg(spec)?;
            Box::new(Socket::new(mount))
        }
        other => {
            return Err(format!(
                "{}: unknown driver kind {other:?} (one of {})",
                spec.point,
                mount_kind_names()
            ))
        }
    };
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARENA: ArenaRange = ArenaRange {
        base: 0x1000_0000,
        size: 1 << 20,
    };

    fn spec(text: &str) -> MountSpec {
        MountSpec::parse(text).unwrap()
    }

    #[test]
    fn devices_build_from_their_specs() {
        for text in [
            "/dev/shm=ramfs",
            "/tmp=tmpfs",
            "/dev/fb0=fbdev:640x480",
            "/dev/ram0=ramdisk:64K",
            "/dev/ram1=ramdisk:1M,direct",
            "/dev/zero=devzero",
            "/dev/mem=devmem",
            "/data=hostdir:/tmp",
        ] {
            let device = build(&spec(text), 0, ARENA).unwrap();
            let point = text.split_once('=').unwrap().0;
            assert_eq!(device.registration().mount.as_str(), point);
        }
    }

    /// A spec as a caller may build it, without `MountSpec::parse`'s
    /// checks of the kind and of the argument's presence.
    fn unchecked(text: &str) -> MountSpec {
        let (point, rest) = text.split_once('=').unwrap();
        let (kind, arg) = match rest.split_once(':') {
            Some((k, a)) => (k, Some(a.to_string())),
            None => (rest, None),
        };
        MountSpec {
            point: point.into(),
            kind: kind.into(),
            arg,
        }
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        for text in [
            "/rom=romfs",
            "/rom=romfs:/nonexistent/image",
            "/dev/fb0=fbdev:640",
            "/dev/ram0=ramdisk:0",
            "/dev/shm=ramfs:x",
            "/x=bogus",
            "/data=hostdir:/nonexistent/dir",
        ] {
            let e = build(&unchecked(text), 0, ARENA).err().unwrap();
            assert!(e.starts_with(text.split_once('=').unwrap().0), "{e}");
        }
    }

    #[test]
    fn mount_points_must_be_plain_absolute_paths() {
        for bad in [
            "rom=romfs",
            "/=ramfs",
            "/a/../b=ramfs",
            "/a/=ramfs",
            "/rom",
            "/rom=",
        ] {
            assert!(MountSpec::parse(bad).is_err(), "{bad}");
        }
        let m = spec("/rom=romfs:/a:b.img");
        assert_eq!(m.kind, "romfs");
        assert_eq!(m.arg.as_deref(), Some("/a:b.img"));
    }
}
