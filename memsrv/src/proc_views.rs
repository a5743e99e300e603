//! Serving the `/proc` views a client asks for (spec §9; Linux's
//! `fs/proc`): which text a [`ProcView`] names, the arena usage record
//! behind `nommu-ctl`, and the chunk of it one reply carries. The texts'
//! formats are [`crate::proc_fs`]'s.

use alloc::vec::Vec;

use crate::{mm, proc_fs, shm, MemoryServer, PhysicalMemory};
use protocol::{Errno, ProcView, Reply, PAGE_SIZE, PROC_CHUNK};

impl<M: PhysicalMemory> MemoryServer<M> {
    /// [`ProcView::Usage`]: the arena's counts, each process's mappings
    /// and every free block, postcard-encoded one after another.
    pub(crate) fn usage(&self) -> Vec<u8> {
        use protocol::message::{ArenaUsage, FreeBlock, ProcessUsage};
        let pages = &self.nommu.pages;
        let mut free = Vec::new();
        for (page, order) in self.nommu.free_blocks() {
            free.push(FreeBlock {
                start: self.config.arena_base + u64::from(page) * PAGE_SIZE,
                order,
            });
        }
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let head = ArenaUsage {
            arena_base: self.config.arena_base,
            total_pages: pages.total_pages(),
            free_pages: self.nommu.free_pages(),
            mmap_copy_pages: self.nommu.mmap_copy_pages,
            backing_pages: self.nommu.backing.pages,
            shm_pages: self.nommu.shm.pages,
            regions: count(self.nommu.regions.len()),
            vmas: count(self.nommu.vma_count()),
            processes: count(self.procs.procs.len()),
            free_blocks: count(free.len()),
        };
        let mut out = Vec::new();
        push_postcard(&mut out, &head);
        for (&pid, process) in &self.procs.procs {
            let (mappings, bytes) = self.nommu.mms.get(&process.mm).map_or((0, 0), |m| {
                (
                    count(m.map_count()),
                    m.iter().map(|(k, _)| k.end - k.start).sum(),
                )
            });
            let usage = ProcessUsage {
                pid,
                mappings,
                bytes,
            };
            push_postcard(&mut out, &usage);
        }
        for block in &free {
            push_postcard(&mut out, block);
        }
        out
    }

    /// The bytes of a `/proc` view: text, except [`ProcView::Usage`].
    pub(crate) fn proc_view(
        &self,
        view: ProcView,
        mm: mm::MmId,
        uid: u32,
    ) -> Result<Vec<u8>, Errno> {
        let word = self.config.word_size;
        let maps_of = |id: mm::MmId| {
            self.nommu
                .mms
                .get(&id)
                .map(|m| proc_fs::process_maps(m, word))
                .unwrap_or_default()
        };
        let text = match view {
            ProcView::GlobalMaps => proc_fs::global_maps(&self.nommu.regions, word),
            ProcView::SelfMaps => maps_of(mm),
            ProcView::ProcessMaps { pid } => {
                let target = self.procs.procs.get(&pid).ok_or(Errno::ESRCH)?;
                // PTRACE_MODE_READ: same uid, or root.
                if uid != 0 && uid != target.uid {
                    return Err(Errno::EACCES);
                }
                maps_of(target.mm)
            }
            ProcView::Meminfo => proc_fs::meminfo(&proc_fs::MemCounts {
                total: self.nommu.pages.total_pages(),
                free: self.nommu.free_pages(),
                mmap_copy: self.nommu.mmap_copy_pages,
                shmem: self.nommu.backing.pages + self.nommu.shm.pages,
            }),
            ProcView::SysvShm => shm::sysvipc_shm(&self.nommu.shm, word),
            // Linux's buddyinfo counts the buddy lists' blocks
            // (`free_area[order].nr_free`); pages on per-CPU lists are in
            // none, so reserved pages are left out here, though `MemFree`
            // counts them.
            ProcView::Buddyinfo => proc_fs::buddyinfo(&self.nommu.pages.free_counts()),
            ProcView::Usage => return Ok(self.usage()),
            // Served by `status_view`.
            ProcView::ProcessStatus { .. } | ProcView::SelfStatus | ProcView::Users => {
                return Err(Errno::EINVAL)
            }
        };
        Ok(text.into_bytes())
    }
}

/// Append `item` postcard-encoded (each item of [`ProcView::Usage`] is a
/// few varints: 96 bytes always hold one).
pub(crate) fn push_postcard<T: serde::Serialize>(out: &mut Vec<u8>, item: &T) {
    let mut buf = [0u8; 96];
    if let Ok(bytes) = postcard::to_slice(item, &mut buf) {
        out.extend_from_slice(bytes);
    }
}

/// The `PROC_CHUNK` bytes of `text` from `offset`, and its total length.
pub(crate) fn proc_slice(bytes: &[u8], offset: u32) -> Reply {
    let from = (offset as usize).min(bytes.len());
    let to = from.saturating_add(PROC_CHUNK).min(bytes.len());
    let mut data = heapless::Vec::new();
    // to − from ≤ PROC_CHUNK, so this always fits.
    let _ = data.extend_from_slice(&bytes[from..to]);
    Reply::ProcText {
        total: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        data,
    }
}
