//! The counters a home or test reads without going through `/proc` text
//! (spec §11's `/proc/meminfo` figures in pages, plus the server's own).

/// Counters a home or test reads without going through `/proc` text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub total_pages: u64,
    pub free_pages: u64,
    /// Pages held by copy and anonymous regions (`MmapCopy` in pages).
    pub mmap_copy_pages: u64,
    pub regions: usize,
    pub vmas: usize,
    /// Running processes and clone children not claimed yet.
    pub processes: usize,
    /// Pages drivers hold for their storage (`Shmem` in pages).
    pub backing_pages: u64,
    /// Objects known (descriptors, mappings or operations refer to them).
    pub objects: usize,
    /// Open file descriptions.
    pub open_files: usize,
    /// Calls waiting for a driver (client calls and notifications).
    pub pending_ops: usize,
    /// Live drivers.
    pub drivers: usize,
    /// Pages SysV segments hold (also part of `Shmem` in `/proc/meminfo`).
    pub shm_pages: u64,
    /// SysV segments (including those marked for removal).
    pub shm_segments: usize,
}

impl Stats {
    /// Whether nothing a conformance vector made is left once its
    /// processes are gone: no copies, every page free but the drivers'
    /// storage, no open file, object, waiting call or SysV segment.
    pub fn left_nothing(&self) -> bool {
        self.mmap_copy_pages == 0
            && self.free_pages + self.backing_pages == self.total_pages
            && self.open_files == 0
            && self.objects == 0
            && self.pending_ops == 0
            && self.shm_segments == 0
            && self.shm_pages == 0
    }
}
