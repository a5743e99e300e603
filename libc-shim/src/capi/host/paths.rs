//! Paths for the mount test, handled lexically as bytes (a name need not
//! be UTF-8, and goes to the server as it is): a path normalised
//! (repeated `/` and `.` dropped, `..` resolved) and whether it lies under
//! a mount; and a C caller's path string, copied in the way the kernel
//! copies one ([`CallerPath`]).

use core::ffi::{c_char, c_void};
use protocol::{Errno, PATH_MAX};

/// The host's limit on a path with its NUL (Linux's `PATH_MAX`).
const HOST_PATH_MAX: usize = 4096;

/// A C caller's path string, copied out of its memory: `EFAULT` for a
/// pointer that cannot be read (null included), `ENAMETOOLONG` past the
/// host's `PATH_MAX`, as the kernel's own path calls answer.
pub struct CallerPath {
    buf: [u8; HOST_PATH_MAX],
    len: usize,
}

impl CallerPath {
    /// Copy the NUL-terminated string at `path`.
    pub fn copy_in(path: *const c_char) -> Result<Self, Errno> {
        let mut buf = [0u8; HOST_PATH_MAX];
        let len = crate::sys::user::copy_string_from_user(&mut buf, path.cast::<c_void>())?;
        Ok(Self { buf, len })
    }

    /// The path's bytes, without the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The copy as a C string (NUL terminated), to hand the host kernel.
    pub fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

/// A path normalised for the mount test.
pub struct NormalPath {
    buf: [u8; PATH_MAX],
    len: usize,
}

impl NormalPath {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// `path` with repeated `/` and `.` dropped and `..` resolved lexically;
/// `None` for a relative path or one longer than [`PATH_MAX`].
pub fn normalise(path: &[u8]) -> Option<NormalPath> {
    if path.first() != Some(&b'/') {
        return None;
    }
    let mut out = NormalPath {
        buf: [0; PATH_MAX],
        len: 0,
    };
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                let keep = out.buf[..out.len]
                    .iter()
                    .rposition(|b| *b == b'/')
                    .unwrap_or(0);
                out.len = keep;
            }
            name => {
                let end = out.len + 1 + name.len();
                if end > PATH_MAX {
                    return None;
                }
                out.buf[out.len] = b'/';
                out.buf[out.len + 1..end].copy_from_slice(name);
                out.len = end;
            }
        }
    }
    if out.len == 0 {
        out.buf[0] = b'/';
        out.len = 1;
    }
    Some(out)
}

/// Whether `path` (normalised) lies under `mount`.
pub(crate) fn under(path: &[u8], mount: &[u8]) -> bool {
    path.strip_prefix(mount)
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'/' || mount == b"/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Option<String> {
        normalise(p.as_bytes()).map(|n| String::from_utf8(n.as_bytes().to_vec()).unwrap())
    }

    #[test]
    fn paths_normalise_lexically() {
        assert_eq!(norm("/rom/t").as_deref(), Some("/rom/t"));
        assert_eq!(norm("//rom///./t/").as_deref(), Some("/rom/t"));
        assert_eq!(norm("/rom/../etc/passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(norm("/../..").as_deref(), Some("/"));
        assert_eq!(norm("rom/t"), None);
        assert_eq!(norm(""), None);
        let long = format!("/{}", "a".repeat(PATH_MAX));
        assert_eq!(norm(&long), None);
    }

    #[test]
    fn mounts_match_whole_components() {
        assert!(under(b"/rom", b"/rom"));
        assert!(under(b"/rom/t", b"/rom"));
        assert!(!under(b"/romx", b"/rom"));
        assert!(under(b"/dev/fb0", b"/dev/fb0"));
        assert!(!under(b"/dev/fb01", b"/dev/fb0"));
    }
}
