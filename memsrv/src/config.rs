//! The server's configuration, fixed at start: the arena, the spec §4.2
//! and §6 tunables, and the limits a home sets (descriptors, operations,
//! clone children, driver timeout, memory per process and per user).

/// Who besides root may serve a mount (`RegisterDriver`); anyone else is
/// refused `EPERM`. A driver decides what every process sees under its
/// mount, so serving one is a privilege (`memsrvd --drivers`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DriverOwner {
    /// Root alone (the default).
    #[default]
    Root,
    /// Root and this user.
    User(u32),
    /// Root and the members of this group (primary or supplementary, as
    /// the transport reports them).
    Group(u32),
}

/// Configuration fixed at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the first byte of the arena (page aligned).
    pub arena_base: u64,
    /// Size of the arena in bytes (a multiple of the page size).
    pub arena_size: u64,
    /// `/proc/sys/vm/nr_trim_pages` at start (spec §4.2; default 1).
    pub nr_trim_pages: u32,
    /// Whether `MAP_UNINITIALIZED` is honoured (`CONFIG_MMAP_ALLOW_UNINITIALIZED`).
    pub allow_uninitialized: bool,
    /// Largest contiguous allocation order, in pages (Linux default 10).
    pub max_order: u32,
    /// First process id the server hands out itself. Homes that also pass
    /// host pids should start above the host's pid range, so the two never
    /// meet.
    pub first_pid: u32,
    /// Most mappings one address space may hold (`max_map_count`).
    pub max_map_count: usize,
    /// Seed mixed into clone tickets so they cannot be guessed. Every home
    /// draws one per start (the daemon and the threads home from the
    /// host's random source, the board from timer jitter at boot); the
    /// default is fixed, for tests that want repeatable tickets.
    pub ticket_secret: u64,
    /// `sizeof(long)` of the clients' ABI (4 or 8): the `/proc` maps path
    /// column (`25 + 6·sizeof(void*) − 1`) and where lengths and page
    /// offsets wrap in `mmap` validation.
    pub word_size: u32,
    /// Most clone children one process may have waiting to be claimed.
    pub max_pending_children: usize,
    /// How long a driver may take to answer one request before the
    /// operation waiting for it fails `EIO` (measured by [`crate::MemoryServer::tick`]).
    pub driver_timeout_ms: u64,
    /// Most descriptors one process may hold (`RLIMIT_NOFILE`; `EMFILE`).
    pub max_open_files: usize,
    /// Most calls one connection may have waiting for drivers (`EAGAIN`).
    pub max_pending_ops: usize,
    /// Linux's `mremap` exactly (spec §6: never moves). `false` (the
    /// default) enables the documented extension: with `MREMAP_MAYMOVE`
    /// (and without `MREMAP_FIXED`), a private anonymous mapping or
    /// private-writable copy that cannot grow within its region is grown
    /// into its region's untrimmed slack or moved to a new region (contents
    /// copied, old pages freed).
    pub strict_mremap: bool,
    /// Who may serve a mount besides root.
    pub drivers: DriverOwner,
    /// Where copies and anonymous memory are placed in the arena (spec
    /// §4.1 fixes only their sizes): [`Placement::Grouped`] (the default)
    /// keeps large free blocks after long churn; [`Placement::Linux`] is
    /// Linux's buddy allocator exactly.
    pub placement: crate::Placement,
    /// Most bytes of anonymous mappings and private copies one address
    /// space may hold (`mmap`/`mremap` beyond → `ENOMEM`); `None`: no limit.
    pub max_process_memory: Option<u64>,
    /// Most bytes one uid may hold: its processes' mappings and the SysV
    /// segments it created (`ENOMEM`, `ENOSPC` for `shmget`); `None`: no limit.
    pub max_user_memory: Option<u64>,
    /// Most connections one uid may hold at once (`EAGAIN`); `None`: no limit.
    pub max_clients_per_user: Option<u32>,
    /// Pages granted to a connection ahead of time, for the anonymous
    /// mappings its client makes without a round trip (rounded down to a
    /// power of two, at most `protocol::reserve::WINDOW_PAGES`; 0: none).
    /// Only a home whose connections share a reserve area
    /// ([`crate::SharedReserve`]) uses it.
    pub reserve_pages: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            arena_base: 0,
            arena_size: 0,
            nr_trim_pages: 1,
            allow_uninitialized: false,
            max_order: 10,
            first_pid: 1,
            max_map_count: 65530,
            ticket_secret: 0x9e37_79b9_7f4a_7c15,
            word_size: 8,
            max_pending_children: 64,
            driver_timeout_ms: 2000,
            max_open_files: 1024,
            max_pending_ops: 16,
            strict_mremap: false,
            drivers: DriverOwner::Root,
            placement: crate::Placement::Grouped,
            max_process_memory: None,
            max_user_memory: None,
            max_clients_per_user: None,
            reserve_pages: 0,
        }
    }
}
