//! `msync`, `mprotect`, `madvise`, `mlock`, `mlock2`, `munlock`,
//! `mlockall`, `munlockall` and `mincore` as no-MMU Linux answers them.
//!
//! None of them exists on a no-MMU kernel: `mm/Makefile` builds
//! `mincore.o mlock.o mprotect.o msync.o` only under `mmu-$(CONFIG_MMU)`
//! and `madvise.o` only `ifdef CONFIG_MMU`; `mm/nommu.c` defines none of
//! them; `kernel/sys_ni.c` lists them all under "mm/, CONFIG_MMU only"
//! (`COND_SYSCALL(mprotect)`, `msync`, `mlock`, `munlock`, `mlockall`,
//! `munlockall`, `mincore`, `madvise`; `mlock2` lives in `mm/mlock.c`), so
//! the syscall table entry is `sys_ni_syscall`: `-ENOSYS` whatever the
//! arguments (no validation happens first). The asm-generic table even
//! leaves the numbers out `#ifndef __ARCH_NOMMU`. The server answers each
//! with `ENOSYS`, before looking at `addr`, `len` or `arg`.

use protocol::{Errno, MemoryCall, Reply};

/// The answer to one of the small memory calls: always `ENOSYS` (see the
/// module documentation for the Linux source behind each).
pub fn memory_call(call: MemoryCall, _addr: u64, _len: u64, _arg: u32) -> Result<Reply, Errno> {
    match call {
        // mm/msync.c: MMU only.
        MemoryCall::Msync
        // mm/mprotect.c: MMU only.
        | MemoryCall::Mprotect
        // mm/madvise.c: built only ifdef CONFIG_MMU.
        | MemoryCall::Madvise
        // mm/mlock.c (mlock, mlock2, munlock, mlockall, munlockall): MMU only.
        | MemoryCall::Mlock
        | MemoryCall::Mlock2
        | MemoryCall::Munlock
        | MemoryCall::Mlockall
        | MemoryCall::Munlockall
        // mm/mincore.c: MMU only.
        | MemoryCall::Mincore => Err(Errno::ENOSYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_small_memory_call_is_not_built_on_nommu() {
        for call in MemoryCall::ALL {
            assert_eq!(memory_call(call, 0x1000, 4096, 0), Err(Errno::ENOSYS));
            assert_eq!(memory_call(call, 1, 0, u32::MAX), Err(Errno::ENOSYS));
        }
    }
}
