//! The process-wide state of the host C surface, in one place: the one
//! connection to `memsrvd` (made lazily, by whichever thread calls first),
//! the descriptor and status-flag tables, the server's mount list, the
//! idle connections of futex waiters and the tag counter of host-file
//! opens. No other module of the C surface holds a `static`; they all ask
//! here.

use super::fd_table::{FdTable, FlagTable};
use super::paths::under;
use crate::client::Client;
use crate::transport::{ConnectOptions, DaemonConnection, DEFAULT_SOCKET};
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use protocol::{Errno, MAX_MOUNTS};
use std::sync::{Mutex, OnceLock};

// ---- the connection ----

static CLIENT: OnceLock<Client<DaemonConnection>> = OnceLock::new();
static CONNECTING: Mutex<()> = Mutex::new(());

/// The process-wide client, connecting on first use. A failed attempt is
/// not remembered: the next call tries again. After the first success a
/// call takes no lock but the connection's own and allocates nothing.
pub fn global() -> Result<&'static Client<DaemonConnection>, Errno> {
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let _guard = CONNECTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let connection = open_connection()?;
    Ok(CLIENT.get_or_init(|| Client::new(connection)))
}

/// Whether this process has made its connection (without making it).
pub fn connected() -> bool {
    CLIENT.get().is_some()
}

/// A new connection to the daemon named by `$NOMMU_SOCKET` (else
/// [`DEFAULT_SOCKET`]). Made without a ticket, it speaks for the process
/// the daemon knows by this host pid: the first one makes the process, a
/// later one (a futex waiter's, see [`take_waiter`]) joins it.
pub(crate) fn open_connection() -> Result<DaemonConnection, Errno> {
    let path = crate::sys::getenv(c"NOMMU_SOCKET").unwrap_or(DEFAULT_SOCKET.as_bytes());
    let options = ConnectOptions {
        // NOMMU_TRANSPORT=socket turns the shared channel off (to compare).
        fast_path: std::env::var_os("NOMMU_TRANSPORT").is_none_or(|v| v != "socket"),
        ticket: None,
    };
    DaemonConnection::open(path, options).map_err(|e| e.errno())
}

// ---- futex waiters' connections ----

/// Idle secondary connections for futex waiters (see
/// [`super::futex`]: a wait holds a connection until it is woken).
static WAITERS: Mutex<Vec<Client<DaemonConnection>>> = Mutex::new(Vec::new());

/// An idle secondary connection of this process, or a new one.
pub(crate) fn take_waiter() -> Result<Client<DaemonConnection>, Errno> {
    let idle = WAITERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
    match idle {
        Some(client) => Ok(client),
        None => Ok(Client::new(open_connection()?)),
    }
}

/// Put a secondary connection back for the next waiter.
pub(crate) fn give_back_waiter(client: Client<DaemonConnection>) {
    WAITERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(client);
}

// ---- descriptors ----

/// Every server file this process has open.
pub static FDS: FdTable = FdTable::new();

/// The file status flags of every server file this process has open.
pub static FLAGS: FlagTable = FlagTable::new();

/// Tags of host-file opens, apart from the client's own numbering.
static HOST_FILE_TAG: AtomicU32 = AtomicU32::new(0x8000_0000);

/// The tag of the next host-file open (top bit set: never one the
/// client core numbers).
pub(crate) fn next_host_file_tag() -> u32 {
    HOST_FILE_TAG.fetch_add(1, Ordering::Relaxed) | 0x8000_0000
}

// ---- mounts ----

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
    static SETTING_UP: Cell<bool> = const { Cell::new(false) };
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
    if SETTING_UP.with(Cell::get) {
        return None;
    }
    SETTING_UP.with(|c| c.set(true));
    let client = global().ok();
    if let Some(client) = client {
        if !MOUNTS_LOADED.load(Ordering::Acquire) {
            refresh_mounts(client);
        }
    }
    SETTING_UP.with(|c| c.set(false));
    client
}

/// Whether `path` (normalised) lies under one of the server's mounts as
/// last loaded.
pub(crate) fn is_mounted(path: &[u8]) -> bool {
    let table = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    table.mounts[..table.count]
        .iter()
        .any(|m| under(path, m.as_bytes()))
}
