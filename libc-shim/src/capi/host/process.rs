//! The process-wide state of the host C surface, in one place: the one
//! connection to `memsrvd` (made lazily, by whichever thread calls first,
//! without ever sleeping so that no call acts differently for being the
//! first; a child made by `fork()` lets go of its parent's and makes its
//! own),
//! the descriptor and status-flag tables, the server's mount list, the
//! idle connections of futex waiters, the host files handed to the daemon
//! and the tag counter of host-file opens. No other module of the C
//! surface holds a `static`; they all ask here.

use super::fd_table::{FdTable, FlagTable};
use super::host_files::HostFileCache;
use super::paths::under;
use crate::client::Client;
use crate::transport::{ConnectOptions, DaemonConnection, DEFAULT_SOCKET};
use core::cell::{Cell, RefCell};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use protocol::{Errno, MAX_MOUNTS};
use std::sync::{Mutex, MutexGuard, Once, TryLockError};

// ---- the connection ----

/// The process-wide client: null until the first connection, then a
/// leaked `Box` (never freed, so a reference handed out stays valid). A
/// child made by `fork()` sets it back to null ([`in_forked_child`]).
static CLIENT: AtomicPtr<Client<DaemonConnection>> = AtomicPtr::new(ptr::null_mut());
/// Held while a connection is made (the main one or a waiter's), and
/// across `fork()` so a child never inherits it held.
static CONNECTING: Mutex<()> = Mutex::new(());
static FORK_HANDLERS: Once = Once::new();

/// The process-wide client, connecting on first use. A failed attempt is
/// not remembered: the next call tries again. After the first success a
/// call takes no lock but the connection's own and allocates nothing.
///
/// A child made by `fork()` never uses its parent's connection: its first
/// call connects anew, and the daemon, which knows a process by the host
/// pid and credentials of the connecting process, makes it a new process
/// (an empty address space, as `clone` without `CLONE_VM` gives; the
/// arena stays mapped, being `MAP_SHARED`). See [`in_forked_child`].
pub fn global() -> Result<&'static Client<DaemonConnection>, Errno> {
    let current = CLIENT.load(Ordering::Acquire);
    if !current.is_null() {
        // SAFETY: a non-null CLIENT is a leaked Box that is never freed.
        return Ok(unsafe { &*current });
    }
    let _guard = lock_awake(&CONNECTING);
    let current = CLIENT.load(Ordering::Acquire);
    if !current.is_null() {
        // SAFETY: as above.
        return Ok(unsafe { &*current });
    }
    let connection = open_connection()?;
    let mut registered = Ok(());
    FORK_HANDLERS.call_once(|| {
        registered = crate::sys::at_fork(before_fork, after_fork_in_parent, in_forked_child);
    });
    if let Err(e) = registered {
        // Without the handlers a forked child would speak for us.
        connection.close_in_forked_child();
        return Err(e);
    }
    let client: &'static Client<DaemonConnection> = Box::leak(Box::new(Client::new(connection)));
    CLIENT.store(ptr::from_ref(client).cast_mut(), Ordering::Release);
    Ok(client)
}

/// Take `lock` without sleeping: try, yield, try again. A connection is
/// made inside a caller's call, maybe its first, maybe a FUTEX_WAIT, and
/// a thread asleep on a lock looks waiting before its wait is queued (see
/// `DaemonConnection::open`); connections are made rarely and quickly.
fn lock_awake<T>(lock: &'static Mutex<T>) -> MutexGuard<'static, T> {
    loop {
        match lock.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(e)) => return e.into_inner(),
            Err(TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
}

/// Whether this process has made its connection (without making it).
pub fn connected() -> bool {
    !CLIENT.load(Ordering::Acquire).is_null()
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
        follow_identity: true,
    };
    DaemonConnection::open(path, options).map_err(|e| e.errno())
}

// ---- fork ----

type ForkGuards = (
    MutexGuard<'static, ()>,
    MutexGuard<'static, Vec<Client<DaemonConnection>>>,
    MutexGuard<'static, MountTable>,
);

std::thread_local! {
    /// The locks [`before_fork`] took, released after the fork on both
    /// sides (the child's only thread is a copy of the forking one).
    static HELD_OVER_FORK: RefCell<Option<ForkGuards>> = const { RefCell::new(None) };
}

/// Before `fork()`: take the locks the child will need, so none is
/// inherited held by a thread that does not exist in the child.
unsafe extern "C" fn before_fork() {
    let guards = (
        CONNECTING.lock().unwrap_or_else(|e| e.into_inner()),
        WAITERS.lock().unwrap_or_else(|e| e.into_inner()),
        MOUNTS.lock().unwrap_or_else(|e| e.into_inner()),
    );
    // A thread being torn down has no thread-locals left: the guards are
    // then dropped here and the child takes the pool's lock itself.
    let _ = HELD_OVER_FORK.try_with(|held| *held.borrow_mut() = Some(guards));
}

/// The locks [`before_fork`] took in this thread, if it could keep them.
fn take_held_over_fork() -> Option<ForkGuards> {
    HELD_OVER_FORK
        .try_with(|held| held.borrow_mut().take())
        .ok()
        .flatten()
}

/// After `fork()`, in the parent: nothing changed; let the locks go.
unsafe extern "C" fn after_fork_in_parent() {
    drop(take_held_over_fork());
}

/// After `fork()`, in the child: every connection this process holds
/// speaks for the parent. Let go of them (the child's copies of their
/// descriptors are closed, nothing is sent) so the child's next call
/// connects as a new process, and drop the server files: they are the
/// parent's, so their stand-in descriptors are closed in the child (a
/// call on one fails `EBADF`). The mount list stays: it is the daemon's.
unsafe extern "C" fn in_forked_child() {
    let mut held = take_held_over_fork();
    let parents = CLIENT.swap(ptr::null_mut(), Ordering::AcqRel);
    if !parents.is_null() {
        // SAFETY: a leaked Box that is never freed; it stays leaked.
        unsafe { &*parents }.transport().close_in_forked_child();
    }
    let idle = match held {
        Some((_, ref mut waiters, _)) => core::mem::take(&mut **waiters),
        None => WAITERS
            .try_lock()
            .map(|mut waiters| core::mem::take(&mut *waiters))
            .unwrap_or_default(),
    };
    for waiter in idle {
        waiter.transport().close_in_forked_child();
        // Its descriptors are closed: never drop it (that would close
        // them again).
        core::mem::forget(waiter);
    }
    FDS.unbind_all(|fd| {
        crate::sys::host::close(fd);
    });
    drop(held);
}

// ---- futex waiters' connections ----

/// Idle secondary connections for futex waiters (see
/// [`super::futex`]: a wait holds a connection until it is woken).
static WAITERS: Mutex<Vec<Client<DaemonConnection>>> = Mutex::new(Vec::new());

/// An idle secondary connection of this process, or a new one.
pub(crate) fn take_waiter() -> Result<Client<DaemonConnection>, Errno> {
    // The main connection first: it registers the fork handlers, and a
    // waiter's connection joins the process it made.
    global()?;
    let idle = WAITERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
    match idle {
        Some(client) => Ok(client),
        None => {
            let _guard = lock_awake(&CONNECTING);
            Ok(Client::new(open_connection()?))
        }
    }
}

/// Put a secondary connection back for the next waiter.
pub(crate) fn give_back_waiter(client: Client<DaemonConnection>) {
    WAITERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(client);
}

/// Drop a secondary connection that broke (under the connecting lock, as
/// its arena lease is counted under it).
pub(crate) fn discard_waiter(client: Client<DaemonConnection>) {
    let _guard = CONNECTING.lock().unwrap_or_else(|e| e.into_inner());
    drop(client);
}

// ---- descriptors ----

/// Every server file this process has open.
pub static FDS: FdTable = FdTable::new();

/// The file status flags of every server file this process has open.
pub static FLAGS: FlagTable = FlagTable::new();

/// The host files this process has handed to the daemon
/// ([`super::host_files`]).
pub static HOST_FILES: HostFileCache = HostFileCache::new();

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

/// Whether the mount list was loaded (by this process, or by its parent
/// before a fork).
pub(crate) fn mounts_known() -> bool {
    MOUNTS_LOADED.load(Ordering::Acquire)
}

/// Whether `path` (normalised) lies under one of the server's mounts as
/// last loaded.
pub(crate) fn is_mounted(path: &[u8]) -> bool {
    let table = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    table.mounts[..table.count]
        .iter()
        .any(|m| under(path, m.as_bytes()))
}
