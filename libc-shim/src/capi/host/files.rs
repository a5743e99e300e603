//! Files in a program that links the shim: which calls go to the memory
//! server and which to the host.
//!
//! * **Paths.** An absolute path that lies under one of the server's
//!   mounts (asked once with `ListMounts`, after the connection is made;
//!   [`refresh_mounts`] asks again) goes to the server; every other path —
//!   relative ones included — goes to the host kernel. The test is lexical:
//!   repeated `/` and `.` are dropped and `..` removes the component before
//!   it, then the longest mount that is the path itself or a prefix of it
//!   followed by `/` wins.
//! * **Descriptors.** A server file's descriptor belongs to the server's
//!   fd table, which the host knows nothing of. So that the numbers never
//!   collide with the host's, each server descriptor is given a real host
//!   descriptor (of `/dev/null`, close-on-exec) and the program sees only
//!   that one; a fixed table ([`FdTable`], no heap) maps it to the server's
//!   number. A call on a descriptor found in the table goes to the server,
//!   every other descriptor to the host kernel (by `syscall`, never through
//!   the library's own exported names).
//! * **Host files in `mmap`.** A host descriptor given to `mmap` is handed
//!   to the daemon over the socket (`SCM_RIGHTS`, see
//!   `hosted::daemon::hostfile`), opened there as a server file, mapped,
//!   and closed again ([`super::mmap::nommu_mmap`]).

use super::mmap::global;
use crate::client::Client;
use crate::transport::connection::DaemonConnection;
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use protocol::{Errno, MAX_MOUNTS, PATH_MAX};
use std::sync::Mutex;

/// Host descriptors below this number can stand for a server file (a
/// higher one is given back and the open fails `EMFILE`).
pub const MAX_TRACKED_FDS: usize = 4096;

/// Host descriptor → server descriptor + 1 (0: not a server file).
pub struct FdTable {
    slots: [AtomicI32; MAX_TRACKED_FDS],
}

impl FdTable {
    const fn new() -> Self {
        Self {
            slots: [const { AtomicI32::new(0) }; MAX_TRACKED_FDS],
        }
    }

    /// The server descriptor host descriptor `fd` stands for, if any.
    pub fn server_fd(&self, fd: i32) -> Option<i32> {
        let slot = self.slots.get(usize::try_from(fd).ok()?)?;
        match slot.load(Ordering::Acquire) {
            0 => None,
            plus_one => Some(plus_one - 1),
        }
    }

    /// Record that host descriptor `fd` stands for server descriptor
    /// `server`; returns the server descriptor it stood for before (one
    /// whose host descriptor was closed behind the library's back).
    fn bind(&self, fd: i32, server: i32) -> Result<Option<i32>, Errno> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .ok_or(Errno::EMFILE)?;
        let plus_one = server.checked_add(1).ok_or(Errno::EMFILE)?;
        Ok(match slot.swap(plus_one, Ordering::AcqRel) {
            0 => None,
            old => Some(old - 1),
        })
    }

    /// Forget host descriptor `fd`; returns the server descriptor it stood
    /// for (only one of several racing callers gets it).
    fn unbind(&self, fd: i32) -> Option<i32> {
        let slot = self.slots.get(usize::try_from(fd).ok()?)?;
        match slot.swap(0, Ordering::AcqRel) {
            0 => None,
            plus_one => Some(plus_one - 1),
        }
    }
}

/// Every server file this process has open.
pub static FDS: FdTable = FdTable::new();

/// Host descriptor → the file status flags of the server file it stands
/// for (access mode, `O_APPEND`, `O_NONBLOCK`, ...), as `fcntl(F_GETFL)`
/// answers them. Meaningful only while [`FDS`] has the descriptor.
pub struct FlagTable {
    slots: [AtomicI32; MAX_TRACKED_FDS],
}

impl FlagTable {
    const fn new() -> Self {
        Self {
            slots: [const { AtomicI32::new(0) }; MAX_TRACKED_FDS],
        }
    }

    /// The flags recorded for host descriptor `fd` (0 if out of range).
    pub fn get(&self, fd: i32) -> i32 {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .map_or(0, |s| s.load(Ordering::Acquire))
    }

    /// Record the flags of host descriptor `fd`.
    pub fn set(&self, fd: i32, flags: i32) {
        if let Some(slot) = usize::try_from(fd).ok().and_then(|i| self.slots.get(i)) {
            slot.store(flags, Ordering::Release);
        }
    }
}

/// The file status flags of every server file this process has open.
pub static FLAGS: FlagTable = FlagTable::new();

/// The flags `F_GETFL` reports for a file opened with `flags`: the access
/// mode and status flags, without the open-time-only ones (as Linux keeps
/// them).
pub fn status_flags(flags: i32) -> i32 {
    let open_only = libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOCTTY
        | libc::O_TRUNC
        | libc::O_CLOEXEC
        | libc::O_DIRECTORY
        | libc::O_NOFOLLOW;
    flags & !open_only
}

/// A mount point, as the server named it.
#[derive(Clone, Copy)]
struct Mount {
    name: [u8; 64],
    len: u8,
}

impl Mount {
    fn as_bytes(&self) -> &[u8] {
        &self.name[..usize::from(self.len)]
    }
}

struct MountTable {
    mounts: [Mount; MAX_MOUNTS],
    count: usize,
}

static MOUNTS: Mutex<MountTable> = Mutex::new(MountTable {
    mounts: [Mount {
        name: [0; 64],
        len: 0,
    }; MAX_MOUNTS],
    count: 0,
});
static MOUNTS_LOADED: AtomicBool = AtomicBool::new(false);

std::thread_local! {
    /// Set while this thread connects: a file call made meanwhile (from
    /// inside the library) goes to the host instead of waiting for the
    /// connection it is part of.
    static CONNECTING: Cell<bool> = const { Cell::new(false) };
}

/// Ask the server for its mounts again (a driver may have registered since
/// the connection was made).
pub fn refresh_mounts(client: &Client<DaemonConnection>) {
    let mut table = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    table.count = 0;
    if let Ok(list) = client.list_mounts() {
        for name in list {
            let bytes = name.as_bytes();
            if table.count == MAX_MOUNTS || bytes.len() > 64 {
                continue;
            }
            let mut mount = Mount {
                name: [0; 64],
                len: bytes.len() as u8,
            };
            mount.name[..bytes.len()].copy_from_slice(bytes);
            let at = table.count;
            table.mounts[at] = mount;
            table.count += 1;
        }
    }
    MOUNTS_LOADED.store(true, Ordering::Release);
}

/// The process-wide client if the daemon can be reached, with the mounts
/// loaded. `None` (the host takes the call) when it cannot, or when called
/// from inside the connection's own set-up.
pub fn client_for_paths() -> Option<&'static Client<DaemonConnection>> {
    if CONNECTING.with(Cell::get) {
        return None;
    }
    CONNECTING.with(|c| c.set(true));
    let client = global().ok();
    if let Some(client) = client {
        if !MOUNTS_LOADED.load(Ordering::Acquire) {
            refresh_mounts(client);
        }
    }
    CONNECTING.with(|c| c.set(false));
    client
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

    /// The path as the server takes it (`None` if not UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.as_bytes()).ok()
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
fn under(path: &[u8], mount: &[u8]) -> bool {
    path.strip_prefix(mount)
        .is_some_and(|rest| rest.is_empty() || rest[0] == b'/' || mount == b"/")
}

/// Where a path-based call goes.
// The path stays inline: the request path allocates nothing.
#[allow(clippy::large_enum_variant)]
pub enum Route {
    Host,
    Server(&'static Client<DaemonConnection>, NormalPath),
}

/// Decide where `path` goes (connecting if need be).
pub fn route_path(path: &[u8]) -> Route {
    let Some(normal) = normalise(path) else {
        return Route::Host;
    };
    let Some(client) = client_for_paths() else {
        return Route::Host;
    };
    let table = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let mounted = table.mounts[..table.count]
        .iter()
        .any(|m| under(normal.as_bytes(), m.as_bytes()));
    drop(table);
    if mounted {
        Route::Server(client, normal)
    } else {
        Route::Host
    }
}

/// Open `path` on the server and give the program a host descriptor that
/// stands for it.
pub fn open_on_server(
    client: &Client<DaemonConnection>,
    path: &NormalPath,
    flags: i32,
    mode: u32,
) -> Result<i32, Errno> {
    let text = path.as_str().ok_or(Errno::ENOENT)?;
    let server = client.open(text, flags as u32, mode)?;
    // SAFETY: a NUL-terminated literal.
    let host = unsafe {
        crate::sys::host::openat(
            libc::AT_FDCWD,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
        )
    };
    if host < 0 {
        let e = crate::sys::last_errno();
        let _ = client.close(server);
        return Err(e);
    }
    FLAGS.set(host, status_flags(flags));
    match FDS.bind(host, server) {
        Ok(stale) => {
            if let Some(stale) = stale {
                let _ = client.close(stale);
            }
            Ok(host)
        }
        Err(e) => {
            crate::sys::host::close(host);
            let _ = client.close(server);
            Err(e)
        }
    }
}

/// Close a descriptor: a server file's on the server (then its host
/// stand-in), any other on the host.
pub fn close(fd: i32) -> Result<(), Errno> {
    match FDS.unbind(fd) {
        Some(server) => {
            let result = global().and_then(|c| c.close(server));
            crate::sys::host::close(fd);
            result
        }
        None => {
            if crate::sys::host::close(fd) < 0 {
                Err(crate::sys::last_errno())
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Option<String> {
        normalise(p.as_bytes()).map(|n| n.as_str().unwrap().to_string())
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

    #[test]
    fn the_table_binds_and_unbinds_once() {
        let table = FdTable::new();
        assert_eq!(table.server_fd(7), None);
        assert_eq!(table.bind(7, 3), Ok(None));
        assert_eq!(table.server_fd(7), Some(3));
        assert_eq!(table.bind(7, 4), Ok(Some(3)));
        assert_eq!(table.unbind(7), Some(4));
        assert_eq!(table.unbind(7), None);
        assert_eq!(table.server_fd(-1), None);
        assert_eq!(table.bind(MAX_TRACKED_FDS as i32, 1), Err(Errno::EMFILE));
    }
}
