//! A [`FileStore`] that passes every call to another and lets a test see
//! its syncs (how many, how many of them `fdatasync`, the object of the
//! last one) and fail them with an errno of the test's choosing (a disk's
//! `EIO` or `ENOSPC`). The counters are shared, so a test keeps them while
//! the store runs on a driver's thread.

use crate::copyfs::FileStore;
use alloc::sync::Arc;
use core::sync::atomic::AtomicU16;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::SeqCst;
use protocol::Errno;

/// What happened to a [`SyncWatch`]'s syncs.
#[derive(Default, Debug)]
pub struct SyncStats {
    /// Syncs asked, and how many of them asked for the data alone.
    pub syncs: AtomicU64,
    pub data_only: AtomicU64,
    /// The object the last sync named.
    pub last_object: AtomicU64,
    /// The errno every sync fails with, 0 for none.
    pub fail: AtomicU16,
}

impl SyncStats {
    /// `(syncs, data_only, last_object)`.
    pub fn seen(&self) -> (u64, u64, u64) {
        (
            self.syncs.load(SeqCst),
            self.data_only.load(SeqCst),
            self.last_object.load(SeqCst),
        )
    }

    /// Fail the syncs from now on with `errno` (`None`: pass them on).
    pub fn fail_with(&self, errno: Option<Errno>) {
        self.fail.store(errno.map_or(0, |e| e.0), SeqCst);
    }
}

/// `inner`, with its syncs watched.
pub struct SyncWatch<S> {
    pub inner: S,
    pub stats: Arc<SyncStats>,
}

impl<S> SyncWatch<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            stats: Arc::new(SyncStats::default()),
        }
    }
}

impl<S: FileStore> FileStore for SyncWatch<S> {
    fn lookup(&mut self, path: &str, flags: u32, mode: u32) -> Result<u64, Errno> {
        self.inner.lookup(path, flags, mode)
    }
    fn size(&mut self, id: u64) -> Result<u64, Errno> {
        self.inner.size(id)
    }
    fn ino(&mut self, id: u64) -> Result<u64, Errno> {
        self.inner.ino(id)
    }
    fn read(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.inner.read(id, offset, buf)
    }
    fn write(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.inner.write(id, offset, data)
    }
    fn mode(&mut self, id: u64) -> Result<u32, Errno> {
        self.inner.mode(id)
    }
    fn is_dir(&mut self, id: u64) -> Result<bool, Errno> {
        self.inner.is_dir(id)
    }
    fn sync(&mut self, id: u64, data_only: bool) -> Result<(), Errno> {
        self.stats.syncs.fetch_add(1, SeqCst);
        if data_only {
            self.stats.data_only.fetch_add(1, SeqCst);
        }
        self.stats.last_object.store(id, SeqCst);
        match self.stats.fail.load(SeqCst) {
            0 => self.inner.sync(id, data_only),
            e => Err(Errno(e)),
        }
    }
    fn release(&mut self, id: u64) {
        self.inner.release(id)
    }
}
