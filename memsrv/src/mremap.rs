//! `mremap` (spec §6), and the server's documented extension.
//!
//! Linux (`mm/nommu.c` `do_mremap`), in order, nothing changed on failure:
//! zero aligned lengths or an unaligned `addr` → `EINVAL`; `MREMAP_FIXED`
//! with `new_addr ≠ addr` → `EINVAL`; no mapping exactly
//! `[addr, addr + align(old_len))` → `EINVAL`; a shareable mapping →
//! `EPERM`; `align(new_len)` beyond the region's mapped length →
//! `ENOMEM`; else the mapping's end moves (the region is untouched).
//! `MREMAP_MAYMOVE` is ignored and unknown flag bits are not checked.
//!
//! Extension (unless [`crate::Config::strict_mremap`]): with
//! `MREMAP_MAYMOVE` and without `MREMAP_FIXED`, a request that would fail
//! `ENOMEM` only because it outgrows the region — the mapping being a
//! private copy (anonymous memory or a private-writable or ptraced file
//! copy, never shareable) — is served instead: within the region's own
//! untrimmed slack (`top`) the region grows in place (the new pages
//! zeroed); beyond it the mapping moves to a new block of
//! `pages(new_len)` pages (trimmed per `nr_trim_pages`), its contents
//! copied with [`PhysicalMemory::copy`], the rest zeroed, the old block
//! freed. Out of memory is still `ENOMEM`.

use protocol::linux::{MREMAP_FIXED, MREMAP_MAYMOVE};
use protocol::{Errno, Reply, PAGE_SIZE};

use crate::mm::{MmId, VmaKey};
use crate::nommu::{page_align, Nommu};
use crate::vm_flags::{is_copy, is_shareable};
use crate::{MemoryServer, PhysicalMemory};

impl<M: PhysicalMemory> MemoryServer<M> {
    pub(crate) fn sys_mremap(
        &mut self,
        mm: MmId,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> Result<Reply, Errno> {
        let strict = self.config.strict_mremap;
        let addr = self.nommu.do_mremap(
            mm,
            addr,
            old_len,
            new_len,
            flags,
            new_addr,
            strict,
            &mut self.memory,
        )?;
        Ok(Reply::Mapped { addr })
    }
}

impl Nommu {
    /// `do_mremap`; `strict` turns the moving extension off.
    #[allow(clippy::too_many_arguments)]
    pub fn do_mremap<M: PhysicalMemory>(
        &mut self,
        mm_id: MmId,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
        strict: bool,
        memory: &mut M,
    ) -> Result<u64, Errno> {
        let ulong_max = self.tunables.ulong_max;
        // PAGE_ALIGN wraps to 0 in the client's word: EINVAL.
        let align = |len: u64| page_align(len).filter(|&l| l != 0 && l <= ulong_max);
        let (Some(old_len), Some(new_len)) = (align(old_len), align(new_len)) else {
            return Err(Errno::EINVAL);
        };
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_FIXED != 0 && new_addr != addr {
            return Err(Errno::EINVAL);
        }
        let old_end = addr.checked_add(old_len).ok_or(Errno::EINVAL)?;
        let mm = self.mms.get(&mm_id).ok_or(Errno::EINVAL)?;
        let (key, vma) = mm
            .iter()
            .skip_while(|(k, _)| k.start < addr)
            .take_while(|(k, _)| k.start == addr)
            .find(|(k, _)| k.end == old_end)
            .map(|(k, v)| (*k, v.clone()))
            .ok_or(Errno::EINVAL)?;
        if is_shareable(vma.flags) {
            return Err(Errno::EPERM);
        }
        let region = self.regions.get(vma.region).cloned().ok_or(Errno::EINVAL)?;
        if new_len > region.end - region.start {
            let may_move = flags & MREMAP_MAYMOVE != 0 && flags & MREMAP_FIXED == 0;
            if strict || !may_move || !is_copy(region.flags) || region.usage != 1 {
                return Err(Errno::ENOMEM);
            }
            return self.mremap_grow(mm_id, key, new_len, memory);
        }
        let new_end = addr.checked_add(new_len).ok_or(Errno::EINVAL)?;
        self.rekey_vma(mm_id, &key, addr, new_end);
        Ok(addr)
    }

    /// Move a mapping's key, keeping the object index right.
    fn rekey_vma(&mut self, mm_id: MmId, key: &VmaKey, start: u64, end: u64) {
        let Some(mm) = self.mms.get_mut(&mm_id) else {
            return;
        };
        let backing = mm.get(key).and_then(|v| v.backing.as_ref().map(|b| b.key));
        let Some(new) = mm.rekey(key, start, end) else {
            return;
        };
        if let Some(maps) = backing.and_then(|k| self.files.get_mut(&k)) {
            if maps.vmas.remove(&(mm_id, *key)) {
                maps.vmas.insert((mm_id, new));
            }
        }
    }

    /// The extension: grow a private copy (sole user of its region) to
    /// `new_len`, in its slack or by moving it.
    fn mremap_grow<M: PhysicalMemory>(
        &mut self,
        mm_id: MmId,
        key: VmaKey,
        new_len: u64,
        memory: &mut M,
    ) -> Result<u64, Errno> {
        let region_id = self
            .mms
            .get(&mm_id)
            .and_then(|m| m.get(&key))
            .map(|v| v.region)
            .ok_or(Errno::EINVAL)?;
        let region = self.regions.get(region_id).cloned().ok_or(Errno::EINVAL)?;
        let start = region.start;
        let grown_end = start.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if grown_end <= region.top {
            // The slack is owned already: extend the region over it.
            memory.fill(region.end, grown_end - region.end, 0);
            if let Some(r) = self.regions.get_mut(region_id) {
                r.end = grown_end;
            }
            self.rekey_vma(mm_id, &key, start, grown_end);
            return Ok(start);
        }
        if new_len > self.arena_size {
            return Err(Errno::ENOMEM);
        }
        let pages = new_len / PAGE_SIZE;
        // The old pages go back once the move is done: only the growth counts.
        self.charges
            .may_map(pages.saturating_sub((region.top - region.start) / PAGE_SIZE))?;
        let (first, kept) = self
            .alloc_pages(pages, self.tunables.nr_trim_pages)
            .ok_or(Errno::ENOMEM)?;
        self.mmap_copy_pages += kept;
        let payer = self.charges.payer();
        self.charges.charge_copy(payer, kept);
        let to = self.addr_of(first);
        let used = key.end - key.start;
        memory.copy(key.start, to, used);
        memory.fill(to + used, new_len - used, 0);
        self.free_page_series(region.start, region.top, region.payer);
        self.regions.set_start(region_id, to);
        if let Some(r) = self.regions.get_mut(region_id) {
            r.end = to + new_len;
            r.top = to + kept * PAGE_SIZE;
            r.payer = payer;
        }
        self.rekey_vma(mm_id, &key, to, to + new_len);
        Ok(to)
    }
}
