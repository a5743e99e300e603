//! Pure pieces of the C ABI that every home's C functions share: the
//! `shm_open` name rule, timespec conversion, which open flags carry a
//! mode. No I/O and no std, so the host library ([`crate::capi::host`]) and the
//! bare-metal C ABI (`capi::board`, feature `c-abi`) both use them.

use core::ffi::c_void;
use protocol::Errno;

/// The `MAP_FAILED` of C (also what `shmat` and `mremap` return on failure).
pub const MAP_FAILED: *mut c_void = !0usize as *mut c_void;

/// Linux's asm-generic open flags the protocol does not name (riscv,
/// x86-64; the host library takes its own target's from libc).
pub const O_NOFOLLOW: i32 = 0o400000;
pub const O_CLOEXEC: i32 = 0o2000000;
pub const O_TMPFILE: i32 = 0o20000000 | 0o200000;
const O_CREAT: i32 = protocol::linux::O_CREAT as i32;

/// What `shm_open` adds to the caller's flags (as glibc does).
pub const SHM_OPEN_FLAGS: i32 = O_NOFOLLOW | O_CLOEXEC;

/// The mode `open` passes on: only with `O_CREAT` or `O_TMPFILE` did the C
/// caller pass one (a variadic argument), otherwise the register holds
/// anything.
pub fn open_mode(flags: i32, mode: u32) -> u32 {
    if flags & (O_CREAT | O_TMPFILE) != 0 {
        mode
    } else {
        0
    }
}

/// glibc may add `IPC_64` (0x100) to a `shmctl` command.
pub fn shmctl_cmd(cmd: i32) -> i32 {
    cmd & !0x100
}

/// Longest name `shm_open` takes (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Where POSIX shared memory objects live.
pub const SHM_DIR: &[u8] = b"/dev/shm/";
/// Room for `/dev/shm/NAME` and a NUL.
pub const SHM_PATH_MAX: usize = SHM_DIR.len() + NAME_MAX + 1;

/// `/dev/shm/NAME` for a `shm_open` name (without its NUL), NUL
/// terminated, and its length without the NUL, as glibc builds it:
/// leading slashes are dropped; an empty name, one with another '/', "."
/// or ".." → `EINVAL`; longer than `NAME_MAX` → `ENAMETOOLONG`.
pub fn shm_path(bytes: &[u8]) -> Result<([u8; SHM_PATH_MAX], usize), Errno> {
    let start = bytes.iter().position(|b| *b != b'/').unwrap_or(bytes.len());
    let name = &bytes[start..];
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut path = [0u8; SHM_PATH_MAX];
    path[..SHM_DIR.len()].copy_from_slice(SHM_DIR);
    path[SHM_DIR.len()..SHM_DIR.len() + name.len()].copy_from_slice(name);
    Ok((path, SHM_DIR.len() + name.len()))
}

/// A `struct timespec`'s nanoseconds; a negative second count or a
/// nanosecond field outside `0..1e9` → `EINVAL` (as Linux checks a futex
/// timeout).
pub fn timespec_ns(sec: i64, nsec: i64) -> Result<u64, Errno> {
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_names_follow_glibc() {
        let (path, len) = shm_path(b"//obj").unwrap();
        assert_eq!(&path[..len], b"/dev/shm/obj");
        assert_eq!(path[len], 0);
        for bad in [&b""[..], b"/", b".", b"..", b"a/b"] {
            assert_eq!(shm_path(bad).unwrap_err(), Errno::EINVAL, "{bad:?}");
        }
        assert_eq!(shm_path(&[b'x'; 256]).unwrap_err(), Errno::ENAMETOOLONG);
        assert!(shm_path(&[b'x'; 255]).is_ok());
    }

    #[test]
    fn timespecs_and_modes() {
        assert_eq!(timespec_ns(1, 5), Ok(1_000_000_005));
        assert_eq!(timespec_ns(-1, 0), Err(Errno::EINVAL));
        assert_eq!(timespec_ns(0, 1_000_000_000), Err(Errno::EINVAL));
        assert_eq!(open_mode(0, 0o644), 0);
        assert_eq!(open_mode(O_CREAT, 0o644), 0o644);
        assert_eq!(open_mode(O_TMPFILE, 0o600), 0o600);
        assert_eq!(shmctl_cmd(0x100 | 2), 2);
    }
}
