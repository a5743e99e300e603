//! Linux `vm_flags` bits, backing capabilities (`NOMMU_MAP_*`) and the flag
//! derivation of spec §1.2 / §2.3, kept in the kernel's own terms so the
//! `/proc` letters and the sharing rules read exactly as in `mm/nommu.c`.

use protocol::linux::{MAP_GROWSDOWN, MAP_LOCKED, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE};

/// A mapping's or region's flags, Linux `vm_flags` values.
pub type VmFlags = u64;

pub const VM_READ: VmFlags = 0x1;
pub const VM_WRITE: VmFlags = 0x2;
pub const VM_EXEC: VmFlags = 0x4;
pub const VM_SHARED: VmFlags = 0x8;
pub const VM_MAYREAD: VmFlags = 0x10;
pub const VM_MAYWRITE: VmFlags = 0x20;
pub const VM_MAYEXEC: VmFlags = 0x40;
pub const VM_MAYSHARE: VmFlags = 0x80;
pub const VM_GROWSDOWN: VmFlags = 0x100;
/// No-MMU only (Current): a read-only private file mapping that may overlay
/// an existing region.
pub const VM_MAYOVERLAY: VmFlags = 0x200;
pub const VM_LOCKED: VmFlags = 0x2000;
/// Device memory: futex and remote access refuse it.
pub const VM_IO: VmFlags = 0x4000;
pub const VM_PFNMAP: VmFlags = 0x400;
/// The region is a private copy owned by the server (counted in `MmapCopy`).
pub const VM_MAPPED_COPY: VmFlags = 0x0100_0000;

/// Backing capabilities (`NOMMU_MAP_*`, spec §1.1).
pub type Capabilities = u32;
pub const NOMMU_MAP_COPY: Capabilities = 0x01;
pub const NOMMU_MAP_DIRECT: Capabilities = 0x08;
pub const NOMMU_MAP_READ: Capabilities = VM_MAYREAD as Capabilities;
pub const NOMMU_MAP_WRITE: Capabilities = VM_MAYWRITE as Capabilities;
pub const NOMMU_MAP_EXEC: Capabilities = VM_MAYEXEC as Capabilities;
/// `NOMMU_VMFLAGS`: the capability bits that double as "may" flags.
pub const NOMMU_VMFLAGS: Capabilities = NOMMU_MAP_READ | NOMMU_MAP_WRITE | NOMMU_MAP_EXEC;

/// The shareable predicate `S(flags)` (Current): only shareable mappings take
/// part in region reuse and are refused by `mremap`.
pub fn is_shareable(flags: VmFlags) -> bool {
    flags & (VM_MAYSHARE | VM_MAYOVERLAY) != 0
}

/// Whether the region's memory belongs to the server (freed on last unmap).
pub fn is_copy(flags: VmFlags) -> bool {
    flags & VM_MAPPED_COPY != 0
}

/// `calc_vm_prot_bits` | `calc_vm_flag_bits`.
fn prot_and_flag_bits(prot: u32, flags: u32) -> VmFlags {
    let mut vm = 0;
    if prot & PROT_READ != 0 {
        vm |= VM_READ;
    }
    if prot & PROT_WRITE != 0 {
        vm |= VM_WRITE;
    }
    if prot & PROT_EXEC != 0 {
        vm |= VM_EXEC;
    }
    if flags & MAP_GROWSDOWN != 0 {
        vm |= VM_GROWSDOWN;
    }
    if flags & MAP_LOCKED != 0 {
        vm |= VM_LOCKED;
    }
    vm
}

/// Whether the mapping is backed by an object (file, device, shm segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingKind {
    Anonymous,
    File,
}

/// `determine_vm_flags` (spec §2.3, Current), computed once after validation
/// and never recomputed on a copy fallback.
pub fn determine_vm_flags(
    kind: MappingKind,
    prot: u32,
    flags: u32,
    capabilities: Capabilities,
    ptraced: bool,
) -> VmFlags {
    let mut vm = prot_and_flag_bits(prot, flags);
    match kind {
        // MAP_SHARED anonymous is plain private memory: there is no fork().
        MappingKind::Anonymous => vm |= VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC,
        MappingKind::File if flags & MAP_PRIVATE != 0 => {
            if capabilities & NOMMU_MAP_DIRECT != 0 {
                vm |= VmFlags::from(capabilities & NOMMU_VMFLAGS);
            } else {
                vm |= VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
            }
            if prot & PROT_WRITE == 0 && !ptraced {
                vm |= VM_MAYOVERLAY;
            }
        }
        MappingKind::File => {
            vm |= VM_SHARED | VM_MAYSHARE | VmFlags::from(capabilities & NOMMU_VMFLAGS);
        }
    }
    vm
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::linux::{MAP_ANONYMOUS, MAP_SHARED};

    #[test]
    fn anonymous_is_never_shareable() {
        for ty in [MAP_PRIVATE, MAP_SHARED] {
            let f = determine_vm_flags(
                MappingKind::Anonymous,
                PROT_READ | PROT_WRITE,
                ty | MAP_ANONYMOUS,
                NOMMU_MAP_COPY,
                false,
            );
            assert_eq!(
                f,
                VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
            );
            assert!(!is_shareable(f));
        }
    }

    #[test]
    fn file_flags_follow_current_model() {
        let caps = NOMMU_MAP_DIRECT | NOMMU_MAP_COPY | NOMMU_MAP_READ | NOMMU_MAP_EXEC;
        let ro = determine_vm_flags(MappingKind::File, PROT_READ, MAP_PRIVATE, caps, false);
        assert_eq!(ro, VM_READ | VM_MAYREAD | VM_MAYEXEC | VM_MAYOVERLAY);
        let traced = determine_vm_flags(MappingKind::File, PROT_READ, MAP_PRIVATE, caps, true);
        assert!(!is_shareable(traced));
        let rw = determine_vm_flags(
            MappingKind::File,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE,
            NOMMU_MAP_COPY,
            false,
        );
        assert_eq!(
            rw,
            VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
        );
        let sh = determine_vm_flags(MappingKind::File, PROT_READ, MAP_SHARED, caps, false);
        assert_eq!(
            sh,
            VM_READ | VM_SHARED | VM_MAYSHARE | VM_MAYREAD | VM_MAYEXEC
        );
        assert!(is_shareable(sh));
    }
}
