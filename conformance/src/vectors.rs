//! Every vector in spec order, one row each (its number, section, name
//! and the function that runs it), and the vectors that are encoded but
//! pending or deferred. The functions live in one module per section.

use super::Section::*;
use super::{
    allocation, backing, direct, futex, memfs, mremap, munmap, proc, process, sharing, sysv_shm,
    validation, Deferred, Vector,
};

/// Every encoded vector, in spec order.
#[rustfmt::skip]
pub const VECTORS: &[Vector] = &[
    // §14.1 Argument validation
    Vector { id: 1, section: Validation, name: "MAP_FIXED is refused", run: validation::v1_map_fixed },
    Vector { id: 2, section: Validation, name: "an address hint is ignored", run: validation::v2_hint_ignored },
    Vector { id: 3, section: Validation, name: "zero length is refused", run: validation::v3_zero_length },
    Vector { id: 4, section: Validation, name: "mapping type 0 is refused", run: validation::v4_type_zero },
    Vector { id: 5, section: Validation, name: "MAP_SHARED_VALIDATE is refused", run: validation::v5_shared_validate },
    Vector { id: 6, section: Validation, name: "a length that wraps when aligned", run: validation::v6_huge_length },
    Vector { id: 7, section: Validation, name: "mmap2 page offset overflow", run: validation::v7_pgoff_overflow },
    Vector { id: 8, section: Validation, name: "unaligned byte offset, before the fd", run: validation::v8_unaligned_offset },
    Vector { id: 9, section: Validation, name: "an fd that is not open", run: validation::v9_bad_fd },
    Vector { id: 10, section: Validation, name: "a pipe has no mmap method", run: validation::v10_pipe },
    Vector { id: 11, section: Validation, name: "a socket declares no capabilities", run: validation::v11_socket },
    Vector { id: 12, section: Validation, name: "a file opened O_WRONLY", run: validation::v12_write_only },
    Vector { id: 13, section: Validation, name: "SHARED RW of a file opened O_RDONLY", run: validation::v13_shared_rw_read_only },
    Vector { id: 14, section: Validation, name: "SHARED of a copy-only file", run: validation::v14_shared_copy_only },
    Vector { id: 15, section: Validation, name: "PRIVATE of a framebuffer", run: validation::v15_fb_private },
    Vector { id: 16, section: Validation, name: "SHARED R|X of a framebuffer", run: validation::v16_fb_exec },
    Vector { id: 17, section: Validation, name: "SHARED RW of a framebuffer: its screen", run: validation::v17_fb_shared },
    Vector { id: 18, section: Validation, name: "PROT_EXEC on a noexec mount", run: validation::v18_noexec },
    Vector { id: 19, section: Validation, name: "MAP_FIXED_NOREPLACE is only a hint", run: validation::v19_fixed_noreplace },
    Vector { id: 20, section: Validation, name: "a device without get_unmapped_area", run: validation::v20_no_get_unmapped_area },
    Vector { id: 21, section: Validation, name: "COPY without a read method", run: validation::v21_no_read },

    // §14.2 Direct versus copy
    Vector { id: 22, section: DirectCopy, name: "romfs PRIVATE R is direct (XIP), not page aligned", run: direct::v22_rom_xip },
    Vector { id: 23, section: DirectCopy, name: "romfs PRIVATE RW is a copy", run: direct::v23_rom_private_rw },
    Vector { id: 24, section: DirectCopy, name: "romfs PRIVATE R|X shares the XIP region", run: direct::v24_rom_rx },
    Vector { id: 25, section: DirectCopy, name: "SHARED RW without the WRITE capability", run: direct::v25_shared_rw_without_write },
    Vector { id: 26, section: DirectCopy, name: "get_unmapped_area ENOSYS: PRIVATE R copies", run: direct::v26_gua_enosys_private },
    Vector { id: 27, section: DirectCopy, name: "get_unmapped_area ENOSYS: SHARED R refused", run: direct::v27_gua_enosys_shared },
    Vector { id: 28, section: DirectCopy, name: "get_unmapped_area EINVAL fails the call", run: direct::v28_gua_einval },
    Vector { id: 29, section: DirectCopy, name: "mmap ENOSYS: private copies, shared refused", run: direct::v29_mmap_enosys },
    Vector { id: 30, section: DirectCopy, name: "mmap EIO fails the call and leaves no region", run: direct::v30_mmap_eio },
    Vector { id: 31, section: DirectCopy, name: "PRIVATE without COPY", run: direct::v31_private_without_copy },
    Vector { id: 32, section: DirectCopy, name: "PRIVATE R|X without EXEC copies", run: direct::v32_rx_without_exec },
    Vector { id: 33, section: DirectCopy, name: "a copy past EOF is zero filled", run: direct::v33_copy_past_eof },
    Vector { id: 34, section: DirectCopy, name: "a copy wholly beyond EOF is all zero", run: direct::v34_copy_beyond_eof },
    Vector { id: 35, section: DirectCopy, name: "memory fs SHARED RW aliases the file", run: direct::v35_memfs_shared_aliases },
    Vector { id: 36, section: DirectCopy, name: "memory fs pages written apart: SHARED refused, PRIVATE copies", run: direct::v36_memfs_written_pages },
    Vector { id: 37, section: DirectCopy, name: "memory fs SHARED past EOF", run: direct::v37_memfs_shared_past_eof },
    Vector { id: 38, section: DirectCopy, name: "romfs beyond EOF: PRIVATE R refused, RW zero copy", run: direct::v38_rom_beyond_eof },
    Vector { id: 39, section: DirectCopy, name: "MTD NOR flash: copies only", run: direct::v39_mtd_flash },
    Vector { id: 40, section: DirectCopy, name: "MTD ROM: PRIVATE refused", run: direct::v40_mtd_rom_private },
    Vector { id: 41, section: DirectCopy, name: "/dev/mem SHARED RW: address = offset", run: direct::v41_dev_mem_shared },
    Vector { id: 42, section: DirectCopy, name: "/dev/mem PRIVATE refused", run: direct::v42_dev_mem_private },
    Vector { id: 43, section: DirectCopy, name: "/dev/zero: private zero copies only", run: direct::v43_dev_zero },
    Vector { id: 44, section: DirectCopy, name: "anonymous MAP_SHARED is not shared between processes", run: direct::v44_shared_anon_is_private },

    // §14.3 Region sharing
    Vector { id: 45, section: Sharing, name: "two processes' PRIVATE R copies are one", run: sharing::v45_same_address },
    Vector { id: 46, section: Sharing, name: "a contained range reuses the region", run: sharing::v46_contained },
    Vector { id: 47, section: Sharing, name: "an overlapping, not contained copy request", run: sharing::v47_mismatched },
    Vector { id: 48, section: Sharing, name: "a larger range over a smaller copy, one process", run: sharing::v48_mismatched_same_process },
    Vector { id: 49, section: Sharing, name: "PRIVATE RW never shares", run: sharing::v49_rw_after_r },
    Vector { id: 50, section: Sharing, name: "PRIVATE RW is never shared", run: sharing::v50_r_after_rw },
    Vector { id: 51, section: Sharing, name: "a reused copy is the first mapper's snapshot", run: sharing::v51_stale_copy },
    Vector { id: 52, section: Sharing, name: "a traced process neither shares nor offers", run: sharing::v52_traced },
    Vector { id: 53, section: Sharing, name: "the same range twice in one process", run: sharing::v53_twice_in_one_process },
    Vector { id: 54, section: Sharing, name: "a shared direct region: mmap and close per mapping", run: sharing::v54_direct_shared },
    Vector { id: 55, section: Sharing, name: "a shared copy is one line of /proc/maps", run: sharing::v55_one_line },
    Vector { id: 56, section: Sharing, name: "a direct request over a smaller direct region", run: sharing::v56_duplicate_start },

    // §14.4 Allocation and trimming
    Vector { id: 57, section: Allocation, name: "5 pages cost 20 kB (trimmed)", run: allocation::v57_trimmed },
    Vector { id: 58, section: Allocation, name: "nr_trim_pages = 0 keeps the block", run: allocation::v58_no_trim },
    Vector { id: 59, section: Allocation, name: "nr_trim_pages = 4 trims large excess only", run: allocation::v59_trim_threshold },
    Vector { id: 60, section: Allocation, name: "reused pages read zero", run: allocation::v60_reused_pages_zeroed },
    Vector { id: 61, section: Allocation, name: "unaligned length maps and unmaps", run: allocation::v61_unaligned_length },
    Vector { id: 62, section: Allocation, name: "nr_trim_pages refuses -1", run: allocation::v62_negative_trim },
    Vector { id: 63, section: Allocation, name: "MAP_UNINITIALIZED not permitted: zeroed", run: allocation::v63_uninitialized_zeroed },

    // §14.5 munmap
    Vector { id: 64, section: Munmap, name: "punching a hole splits the mapping", run: munmap::v64_hole },
    Vector { id: 65, section: Munmap, name: "a range past the end is refused", run: munmap::v65_past_end },
    Vector { id: 66, section: Munmap, name: "an unaligned start is refused", run: munmap::v66_unaligned_start },
    Vector { id: 67, section: Munmap, name: "cutting the head", run: munmap::v67_head },
    Vector { id: 68, section: Munmap, name: "cutting the tail frees the slack", run: munmap::v68_tail_with_slack },
    Vector { id: 69, section: Munmap, name: "a file copy is unmapped only whole", run: munmap::v69_file_copy_whole },
    Vector { id: 70, section: Munmap, name: "an address in no mapping", run: munmap::v70_unmapped },
    Vector { id: 71, section: Munmap, name: "zero length is refused", run: munmap::v71_zero_length },
    Vector { id: 72, section: Munmap, name: "an unaligned XIP mapping with its own length", run: munmap::v72_xip_unaligned },
    Vector { id: 73, section: Munmap, name: "a shared copy outlives one of its processes", run: munmap::v73_shared_copy_exit },

    // §14.6 mremap
    Vector { id: 74, section: Mremap, name: "shrink, then grow back in place", run: mremap::v74_shrink_grow },
    Vector { id: 75, section: Mremap, name: "growing past the region: ENOMEM even with MAYMOVE", run: mremap::v75_no_move },
    Vector { id: 76, section: Mremap, name: "the bound is the mapped length, not the allocation", run: mremap::v76_bound_is_mapped_length },
    Vector { id: 77, section: Mremap, name: "old_len must match the mapping", run: mremap::v77_old_len_mismatch },
    Vector { id: 78, section: Mremap, name: "a shareable mapping cannot be resized", run: mremap::v78_shareable },
    Vector { id: 79, section: Mremap, name: "a private writable file copy can be resized", run: mremap::v79_private_copy },
    Vector { id: 80, section: Mremap, name: "MREMAP_FIXED only at the same address", run: mremap::v80_fixed },
    Vector { id: 81, section: Mremap, name: "misaligned address, zero length", run: mremap::v81_bad_arguments },
    Vector { id: 82, section: Mremap, name: "after shrinking, munmap takes the new length", run: mremap::v82_munmap_after_shrink },
    Vector { id: 83, section: Mremap, name: "a traced private read-only file mapping can be resized", run: mremap::v83_traced },

    // §14.7 SysV shared memory
    Vector { id: 84, section: SysvShm, name: "size 0 refused", run: sysv_shm::v84_size_zero },
    Vector { id: 85, section: SysvShm, name: "a segment above the largest block", run: sysv_shm::v85_too_big },
    Vector { id: 86, section: SysvShm, name: "two attaches: one address, nattch 2", run: sysv_shm::v86_same_address },
    Vector { id: 87, section: SysvShm, name: "another process attaches at the same address", run: sysv_shm::v87_other_process },
    Vector { id: 88, section: SysvShm, name: "an attach address or SHM_REMAP refused", run: sysv_shm::v88_no_address },
    Vector { id: 89, section: SysvShm, name: "shmdt removes one attachment", run: sysv_shm::v89_shmdt },
    Vector { id: 90, section: SysvShm, name: "IPC_RMID while attached", run: sysv_shm::v90_rmid_attached },
    Vector { id: 91, section: SysvShm, name: "size and IPC_EXCL of an existing key", run: sysv_shm::v91_existing_key },
    Vector { id: 92, section: SysvShm, name: "another user: no attach, no removal", run: sysv_shm::v92_other_user },
    Vector { id: 93, section: SysvShm, name: "SHM_EXEC and SHM_RDONLY permissions", run: sysv_shm::v93_modes },
    Vector { id: 94, section: SysvShm, name: "a removed segment dies with its last attacher", run: sysv_shm::v94_last_attacher_exits },
    Vector { id: 95, section: SysvShm, name: "the maps line of an attachment", run: sysv_shm::v95_maps_line },

    // §14.8 POSIX shared memory (memory filesystem)
    Vector { id: 96, section: MemoryFs, name: "shm_open + ftruncate: every process at one address", run: memfs::v96_shared_address },
    Vector { id: 97, section: MemoryFs, name: "shrinking under a shared mapping", run: memfs::v97_shrink_under_mapping },
    Vector { id: 98, section: MemoryFs, name: "shrinking cuts the mappable range", run: memfs::v98_shrink },
    Vector { id: 99, section: MemoryFs, name: "growing adds no mappable pages", run: memfs::v99_grow },
    Vector { id: 100, section: MemoryFs, name: "truncating from 0 beyond the largest block", run: memfs::v100_too_big },

    // §14.9 Futexes
    Vector { id: 102, section: Futex, name: "misaligned word", run: futex::v102_misaligned },
    Vector { id: 103, section: Futex, name: "a word in no mapping", run: futex::v103_unmapped },
    Vector { id: 104, section: Futex, name: "a word in an I/O mapping", run: futex::v104_io_mapping },
    Vector { id: 105, section: Futex, name: "two processes meet on a shm segment", run: futex::v105_shm_processes },
    Vector { id: 106, section: Futex, name: "two CLONE_VM threads, private futex", run: futex::v106_threads },
    Vector { id: 107, section: Futex, name: "the word is not the expected value", run: futex::v107_value_changed },

    // §14.10 /proc
    Vector { id: 108, section: Proc, name: "maps line of an anonymous mapping", run: proc::v108_anon_maps_line },
    Vector { id: 109, section: Proc, name: "maps line of a file copy: device, inode, padded path", run: proc::v109_file_maps_line },
    Vector { id: 110, section: Proc, name: "a shared file mapping shows rw-S", run: proc::v110_shared_perms },
    Vector { id: 111, section: Proc, name: "the MmapCopy line of meminfo", run: proc::v111_meminfo_line },
    Vector { id: 112, section: Proc, name: "/proc/maps lists a direct region once", run: proc::v112_direct_region_listed },

    // §14.11 Process model
    Vector { id: 113, section: ProcessModel, name: "fork is refused", run: process::v113_fork },
    Vector { id: 114, section: ProcessModel, name: "a vfork child's mapping is the parent's", run: process::v114_vfork_child_maps },
    Vector { id: 115, section: ProcessModel, name: "clone without CLONE_VM: empty address space", run: process::v115_clone_without_vm },
    Vector { id: 116, section: ProcessModel, name: "PTRACE_PEEKDATA never spans two mappings", run: process::v116_peek },
    Vector { id: 117, section: ProcessModel, name: "PTRACE_POKEDATA needs a writable mapping", run: process::v117_poke },
    Vector { id: 119, section: ProcessModel, name: "a vfork child's execve leaves the parent alone", run: process::v119_vfork_exec },

    // §14.12 Backing contract
    Vector { id: 120, section: Backing, name: "mmap and close once per mapping", run: backing::v120_per_mapping_hooks },
    Vector { id: 121, section: Backing, name: "a device declaring no capabilities", run: backing::v121_default_caps },
    Vector { id: 122, section: Backing, name: "ramdisk: default COPY, or DIRECT over its array", run: backing::v122_ramdisk },

    // The project's futex vectors beyond the spec's list (server decisions
    // beside §8.3, `docs/futex.md`), numbered on from the last spec vector.
    Vector { id: 123, section: Futex, name: "a word in a mapping without read permission", run: futex::v123_unreadable },
    Vector { id: 124, section: Futex, name: "FUTEX_WAKE_OP", run: futex::v124_wake_op },
];

/// Vectors encoded but not yet in [`VECTORS`] because the server does not
/// answer their calls yet (it says `ENOSYS`): a home may run them to see
/// how far the server is; they join [`VECTORS`] as their features land.
pub const PENDING: &[Vector] = &[];

/// Every vector of the covered sections that waits for a later feature.
#[rustfmt::skip]
pub const DEFERRED: &[Deferred] = &[
    Deferred { id: 101, section: MemoryFs, needs: "RLIMIT_FSIZE and SIGXFSZ: the protocol has no resource limits and no signals" },
    Deferred { id: 118, section: ProcessModel, needs: "brk" },
];
