//! The daemon's listening socket: bound only once the server is ready, the
//! path removed again when the daemon stops. Its permission bits and group
//! are set before it listens (every local user by default: the server
//! checks each call's credentials, so a process that dropped its
//! privileges before its first call still connects).

use nommu::sys::last_errno;
use nommu::sys::socket::{new_socket, unix_address, SeqPacket};
use protocol::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A listening `SOCK_SEQPACKET` socket that owns its path.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Why the socket could not be bound.
#[derive(Debug)]
pub enum BindError {
    /// Another daemon answers on this path.
    InUse,
    /// Something that is not a socket sits at the path.
    NotASocket,
    Os(Errno),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InUse => f.write_str("another memsrvd is serving this socket"),
            Self::NotASocket => f.write_str("the path exists and is not a socket"),
            Self::Os(e) => write!(f, "{e}"),
        }
    }
}

impl Listener {
    /// Bind and listen at `path`, with permission bits `mode` and group
    /// `group` (the daemon's when `None`). A stale socket (nobody
    /// accepting) left by a daemon that died is replaced; a live one is
    /// not.
    pub fn bind(path: &Path, mode: u32, group: Option<u32>) -> Result<Self, BindError> {
        let bytes = path.as_os_str().as_bytes();
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(BindError::NotASocket);
            }
            if SeqPacket::connect(bytes).is_ok() {
                return Err(BindError::InUse);
            }
            let _ = std::fs::remove_file(path);
        }
        let fd = new_socket().map_err(BindError::Os)?;
        let (addr, len) = unix_address(bytes).map_err(BindError::Os)?;
        // SAFETY: `addr` is a live sockaddr_un of `len` valid bytes.
        unsafe {
            if libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            ) != 0
            {
                return Err(BindError::Os(last_errno()));
            }
        }
        // The bound path carries the umask's bits until set here, before
        // anyone can connect.
        let listener = Self {
            fd,
            path: path.to_path_buf(),
        };
        if let Some(gid) = group {
            std::os::unix::fs::chown(path, None, Some(gid))
                .map_err(|e| BindError::Os(io_errno(&e)))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| BindError::Os(io_errno(&e)))?;
        // SAFETY: listen is a plain call on a descriptor we own.
        unsafe {
            if libc::listen(listener.fd.as_raw_fd(), 128) != 0 {
                return Err(BindError::Os(last_errno()));
            }
        }
        Ok(listener)
    }

    /// Accept one connection (close-on-exec); `None` if the attempt failed
    /// in a way that only concerns that one peer (it went away, EINTR, or
    /// we are out of descriptors for now).
    pub fn accept(&self) -> Option<SeqPacket> {
        // SAFETY: null address arguments are allowed; the result is checked.
        let fd = unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        Some(SeqPacket::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The errno of a failed `std::fs` call.
fn io_errno(e: &std::io::Error) -> Errno {
    Errno(
        e.raw_os_error()
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(5),
    )
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
