//! The daemon's listening socket: bound only once the server is ready, the
//! path removed again when the daemon stops.

use nommu::sys::last_errno;
use nommu::sys::socket::{new_socket, unix_address, SeqPacket};
use protocol::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
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
    /// Bind and listen at `path`. A stale socket (nobody accepting) left by
    /// a daemon that died is replaced; a live one is not.
    pub fn bind(path: &Path) -> Result<Self, BindError> {
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
        // SAFETY: `addr` is a live sockaddr_un of `len` valid bytes; listen
        // is a plain call on a descriptor we own.
        unsafe {
            if libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            ) != 0
            {
                return Err(BindError::Os(last_errno()));
            }
            if libc::listen(fd.as_raw_fd(), 128) != 0 {
                return Err(BindError::Os(last_errno()));
            }
        }
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
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

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
