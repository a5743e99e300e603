//! The `open` flags, `lseek` whences and file-type bits the server reads
//! (asm-generic values, as the protocol carries them raw).

use protocol::ObjectKind;

pub use protocol::linux::{
    O_ACCMODE, O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY,
};

pub const SEEK_SET: u32 = 0;
pub const SEEK_CUR: u32 = 1;
pub const SEEK_END: u32 = 2;

/// Largest file offset (`loff_t` is signed).
pub const MAX_OFFSET: u64 = i64::MAX as u64;

/// Access an open file description grants (Linux `FMODE_READ`/`WRITE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

impl Access {
    /// From `open` flags; `None` for the access mode 3, which the server
    /// refuses.
    pub fn from_flags(flags: u32) -> Option<Self> {
        match flags & O_ACCMODE {
            O_RDONLY => Some(Self {
                read: true,
                write: false,
            }),
            O_WRONLY => Some(Self {
                read: false,
                write: true,
            }),
            O_RDWR => Some(Self {
                read: true,
                write: true,
            }),
            _ => None,
        }
    }
}

/// `st_mode` type bits for an object kind.
pub fn type_bits(kind: ObjectKind) -> u32 {
    match kind {
        ObjectKind::RegularFile | ObjectKind::MemoryFile => 0o100_000,
        ObjectKind::BlockDevice => 0o060_000,
        ObjectKind::CharDevice => 0o020_000,
        ObjectKind::Fifo => 0o010_000,
        ObjectKind::Socket => 0o140_000,
        ObjectKind::Directory => 0o040_000,
    }
}

/// Whether a kind has no file position (`lseek`, `pread` → `ESPIPE`).
pub fn is_stream(kind: ObjectKind) -> bool {
    matches!(kind, ObjectKind::Fifo | ObjectKind::Socket)
}

/// `inode_permission` against the owner's ids: root passes, else the
/// owner, group or other bits of `mode` must grant every asked access (the
/// group's for a caller whose gid or supplementary `groups` hold it).
pub fn permitted(
    mode: u32,
    owner: (u32, u32),
    caller: (u32, u32),
    groups: &[u32],
    want: Access,
) -> bool {
    if caller.0 == 0 {
        return true;
    }
    let bits = if caller.0 == owner.0 {
        (mode >> 6) & 7
    } else if caller.1 == owner.1 || groups.contains(&owner.1) {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    (!want.read || bits & 4 != 0) && (!want.write || bits & 2 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_classes() {
        let rw = Access {
            read: true,
            write: true,
        };
        let r = Access {
            read: true,
            write: false,
        };
        assert!(permitted(0o600, (5, 5), (5, 5), &[], rw));
        assert!(!permitted(0o600, (5, 5), (6, 5), &[], r));
        assert!(permitted(0o640, (5, 5), (6, 5), &[], r));
        assert!(!permitted(0o640, (5, 5), (6, 5), &[], rw));
        assert!(permitted(0o604, (5, 5), (6, 7), &[], r));
        assert!(permitted(0o000, (5, 5), (0, 0), &[], rw));
        // A supplementary group counts as the group.
        assert!(permitted(0o640, (5, 5), (6, 7), &[9, 5], r));
        assert!(!permitted(0o604, (5, 5), (6, 7), &[9, 5], r));
        assert_eq!(Access::from_flags(3), None);
    }
}
