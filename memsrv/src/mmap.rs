//! `mmap`: the entry checks (spec §2.1), `validate_mmap_request` steps
//! 1–5 (§2.2), and the anonymous set-up `do_mmap_private` (§2.6, §4). File
//! mappings continue in [`crate::ops::file_mmap`].

use protocol::linux::{MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MAP_TYPE, MAP_UNINITIALIZED};
use protocol::{Errno, OffsetUnit, PAGE_SIZE};

use crate::mm::{MmId, Vma};
use crate::nommu::{page_align, Nommu};
use crate::region::Region;
use crate::vm_flags::{determine_vm_flags, MappingKind, VmFlags, NOMMU_MAP_COPY, VM_MAPPED_COPY};
use crate::PhysicalMemory;

/// The arguments of one `mmap`/`mmap2` call as the client sent them.
#[derive(Clone, Copy, Debug)]
pub struct MmapArgs {
    /// The address hint: validation discards it (spec §2.5).
    #[allow(dead_code)]
    pub addr: u64,
    pub len: u64,
    pub prot: u32,
    pub flags: u32,
    /// Ignored with `MAP_ANONYMOUS`.
    pub fd: i32,
}

/// What validation leaves of a request: the hint is gone and `len` is
/// page aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidatedRequest {
    pub len: u64,
    pub pgoff: u64,
}

/// The architecture entry wrapper: a byte offset must be page aligned and
/// becomes a page offset; `mmap2` passes pages through unchecked.
pub fn offset_to_pgoff(offset: u64, unit: OffsetUnit) -> Result<u64, Errno> {
    match unit {
        OffsetUnit::Bytes if !offset.is_multiple_of(PAGE_SIZE) => Err(Errno::EINVAL),
        OffsetUnit::Bytes => Ok(offset / PAGE_SIZE),
        OffsetUnit::Pages => Ok(offset),
    }
}

/// Steps 1–5 of spec §2.2, which every request passes in this order.
/// `limit` is the largest mappable length (the arena), `ulong_max` the
/// clients' `ULONG_MAX`.
pub fn validate_mmap_request(
    len: u64,
    flags: u32,
    pgoff: u64,
    limit: u64,
    ulong_max: u64,
) -> Result<ValidatedRequest, Errno> {
    if flags & MAP_FIXED != 0 {
        return Err(Errno::EINVAL);
    }
    let ty = flags & MAP_TYPE;
    if ty != MAP_PRIVATE && ty != MAP_SHARED {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = match page_align(len) {
        Some(l) if l != 0 && l <= ulong_max && l <= limit => l,
        _ => return Err(Errno::ENOMEM),
    };
    match pgoff.checked_add(len / PAGE_SIZE) {
        Some(last) if last <= ulong_max => {}
        _ => return Err(Errno::EOVERFLOW),
    }
    Ok(ValidatedRequest { len, pgoff })
}

impl Nommu {
    /// `do_mmap` of anonymous memory for the caller's address space `mm`
    /// (`pgoff` from the entry wrapper); returns the address.
    pub fn do_mmap_anon<M: PhysicalMemory>(
        &mut self,
        mm: MmId,
        args: &MmapArgs,
        pgoff: u64,
        memory: &mut M,
    ) -> Result<u64, Errno> {
        let req = validate_mmap_request(
            args.len,
            args.flags,
            pgoff,
            self.arena_size,
            self.tunables.ulong_max,
        )?;
        // Anonymous: capabilities := COPY, so the mapping is always a
        // private copy, whatever MAP_SHARED says. The hint is discarded.
        let vm_flags = determine_vm_flags(
            MappingKind::Anonymous,
            args.prot,
            args.flags,
            NOMMU_MAP_COPY,
            false,
        );
        let zero = !(args.flags & MAP_UNINITIALIZED != 0 && self.tunables.allow_uninitialized);
        self.do_mmap_private(mm, req, vm_flags, zero, memory)
    }

    /// Allocate the private copy (spec §4.1), register its region, zero it
    /// unless told otherwise, and add the mapping to `mm`.
    fn do_mmap_private<M: PhysicalMemory>(
        &mut self,
        mm: MmId,
        req: ValidatedRequest,
        vm_flags: VmFlags,
        zero: bool,
        memory: &mut M,
    ) -> Result<u64, Errno> {
        let max_map_count = self.tunables.max_map_count;
        match self.mms.get(&mm) {
            Some(m) if m.map_count() < max_map_count && memory.may_add_mapping(mm.0) => {}
            // Bookkeeping is charged to the address space that asks for it.
            _ => return Err(Errno::ENOMEM),
        }
        let pages = req.len / PAGE_SIZE;
        self.charges.may_map(pages)?;
        let (first, kept) = self
            .alloc_pages(pages, self.tunables.nr_trim_pages)
            .ok_or(Errno::ENOMEM)?;
        let start = self.addr_of(first);
        if zero {
            // Only [start, end): the slack up to top is never reachable.
            memory.fill(start, req.len, 0);
        }
        self.insert_private_copy(mm, start, req.len, kept, req.pgoff, vm_flags);
        Ok(start)
    }

    /// Register the private copy `[start, start + len)` holding `kept`
    /// pages as a region and add its mapping to `mm` (the tail of
    /// `do_mmap_private`; the pages are already the region's).
    pub fn insert_private_copy(
        &mut self,
        mm: MmId,
        start: u64,
        len: u64,
        kept: u64,
        pgoff: u64,
        vm_flags: VmFlags,
    ) {
        let end = start + len;
        let top = start + kept * PAGE_SIZE;
        let flags = vm_flags | VM_MAPPED_COPY;
        self.mmap_copy_pages += kept;
        let payer = self.charges.payer();
        self.charges.charge_copy(payer, kept);
        let region = self.regions.add(Region {
            start,
            end,
            top,
            pgoff,
            flags,
            backing: None,
            usage: 1,
            icache_flushed: false,
            payer,
        });
        let key = self.next_vma_key(start, end);
        if let Some(m) = self.mms.get_mut(&mm) {
            m.insert(
                key,
                Vma {
                    region,
                    pgoff,
                    flags,
                    backing: None,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::linux::MAP_ANONYMOUS;

    const PRIV: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

    fn check(len: u64, flags: u32, pgoff: u64) -> Result<ValidatedRequest, Errno> {
        validate_mmap_request(len, flags, pgoff, 1 << 30, u64::MAX)
    }

    #[test]
    fn validation_order_of_section_2_2() {
        // Vector 1: MAP_FIXED first, even with len 0.
        assert_eq!(check(0, PRIV | MAP_FIXED, 0), Err(Errno::EINVAL));
        // Vectors 4, 5: type 0 and MAP_SHARED_VALIDATE.
        assert_eq!(check(4096, MAP_ANONYMOUS, 0), Err(Errno::EINVAL));
        assert_eq!(check(4096, MAP_ANONYMOUS | 3, 0), Err(Errno::EINVAL));
        // Vector 3.
        assert_eq!(check(0, PRIV, 0), Err(Errno::EINVAL));
        // Vector 6, and lengths above the arena.
        assert_eq!(check(u64::MAX - 100, PRIV, 0), Err(Errno::ENOMEM));
        assert_eq!(check((1 << 30) + 1, PRIV, 0), Err(Errno::ENOMEM));
        // ENOMEM is decided before EOVERFLOW.
        assert_eq!(check(u64::MAX - 100, PRIV, u64::MAX), Err(Errno::ENOMEM));
        // Vector 7.
        assert_eq!(check(4096, PRIV, u64::MAX), Err(Errno::EOVERFLOW));
        assert_eq!(
            check(100, MAP_SHARED | MAP_ANONYMOUS, 7),
            Ok(ValidatedRequest {
                len: 4096,
                pgoff: 7
            })
        );
    }

    #[test]
    fn thirty_two_bit_clients_wrap_at_their_ulong_max() {
        let ulong = u64::from(u32::MAX);
        let v = |len, pgoff| validate_mmap_request(len, PRIV, pgoff, u64::MAX, ulong);
        // Vector 6 on a 32-bit client: SIZE_MAX − 100 wraps when aligned.
        assert_eq!(v(ulong - 100, 0), Err(Errno::ENOMEM));
        // Vector 7 on a 32-bit client: pgoff = ULONG_MAX.
        assert_eq!(v(4096, ulong), Err(Errno::EOVERFLOW));
        assert!(v(4096, ulong - 1).is_ok());
    }

    #[test]
    fn byte_offsets_must_be_page_aligned() {
        assert_eq!(offset_to_pgoff(100, OffsetUnit::Bytes), Err(Errno::EINVAL));
        assert_eq!(offset_to_pgoff(8192, OffsetUnit::Bytes), Ok(2));
        assert_eq!(offset_to_pgoff(100, OffsetUnit::Pages), Ok(100));
    }
}
