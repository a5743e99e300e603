//! Where a driver is mounted and how it registers.
//!
//! Every driver takes a [`MountPoint`] in its constructor, so a home can
//! mount the same driver at `/tmp` and at `/dev/shm`, with the device
//! numbers its `/proc/<pid>/maps` should show.

use crate::flags::open;
use protocol::{DriverRegistration, Errno, MountName};

/// The mount point, device number and `noexec` flag of one driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPoint {
    path: MountName,
    dev: (u8, u8),
    noexec: bool,
}

impl MountPoint {
    /// `path` is a directory (`/tmp`) or a device (`/dev/fb0`); `dev` is
    /// (major, minor). Fails `ENAMETOOLONG` past 64 bytes and `EINVAL`
    /// unless it is absolute.
    pub fn new(path: &str, dev: (u8, u8)) -> Result<Self, Errno> {
        if !path.starts_with('/') {
            return Err(Errno::EINVAL);
        }
        let path = MountName::try_from(path).map_err(|()| Errno::ENAMETOOLONG)?;
        Ok(Self {
            path,
            dev,
            noexec: false,
        })
    }

    /// Mounted `noexec`: `PROT_EXEC` mappings of its files fail `EPERM`.
    pub fn noexec(mut self) -> Self {
        self.noexec = true;
        self
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn dev(&self) -> (u8, u8) {
        self.dev
    }

    pub fn is_noexec(&self) -> bool {
        self.noexec
    }

    /// The registration a driver named `name` sends for this mount.
    pub fn registration(&self, name: &str, read_only: bool) -> DriverRegistration {
        let mut short = heapless::String::<32>::new();
        for c in name.chars() {
            if short.push(c).is_err() {
                break;
            }
        }
        DriverRegistration {
            name: short,
            mount: self.path.clone(),
            dev: self.dev,
            noexec: self.noexec,
            read_only,
        }
    }
}

/// The handle a single-device mount (`/dev/fb0`) gives its device.
pub const DEVICE_OBJECT: u64 = 1;

/// A single-device mount answers only the empty lookup path.
pub(crate) fn device_lookup(path: &[u8]) -> Result<u64, Errno> {
    if path.is_empty() {
        Ok(DEVICE_OBJECT)
    } else {
        Err(Errno::ENOENT)
    }
}

/// Opening a single-device mount: only the empty path, which always
/// exists, so `O_CREAT|O_EXCL` fails `EEXIST`.
pub(crate) fn device_open(path: &[u8], flags: u32) -> Result<(), Errno> {
    device_lookup(path)?;
    if open::creates_exclusively(flags) {
        return Err(Errno::EEXIST);
    }
    Ok(())
}

/// A lookup path as a filesystem whose names are text reads it: a path
/// that is not UTF-8 names nothing there (`ENOENT`).
pub fn text_path(path: &[u8]) -> Result<&str, Errno> {
    core::str::from_utf8(path).map_err(|_| Errno::ENOENT)
}

/// Requests must name the device's handle.
pub(crate) fn check_device(object: u64) -> Result<(), Errno> {
    if object == DEVICE_OBJECT {
        Ok(())
    } else {
        Err(Errno::EBADF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_carries_the_mount() {
        let m = MountPoint::new("/rom", (31, 0)).unwrap().noexec();
        let r = m.registration("romfs", true);
        assert_eq!(r.mount.as_str(), "/rom");
        assert_eq!(r.dev, (31, 0));
        assert!(r.noexec && r.read_only);
        assert_eq!(r.name.as_str(), "romfs");
    }

    #[test]
    fn bad_paths_are_refused() {
        assert_eq!(MountPoint::new("tmp", (0, 1)), Err(Errno::EINVAL));
        let long = "/".repeat(65);
        assert_eq!(MountPoint::new(&long, (0, 1)), Err(Errno::ENAMETOOLONG));
        let name = "x".repeat(40);
        let r = MountPoint::new("/x", (0, 1))
            .unwrap()
            .registration(&name, false);
        assert_eq!(r.name.len(), 32);
    }
}
