//! The bare-metal home: a small kernel for QEMU's riscv64 `virt` board,
//! paging off (`satp` = Bare), that runs memsrv, the drivers and test
//! programs (Rust and C) as tasks in user mode.
//!
//! | module | owns |
//! | --- | --- |
//! | [`kernel`] | the task table, scheduler and IPC (plain code, tested on the host) |
//! | `arch` | boot entry, trap vectors, CSRs, SBI calls |
//! | `trap` | the trap path: system calls, the timer, faults, the idle loop |
//! | `memory` | the physical memory map and raw access to it |
//! | `heap` | the task heaps: the global allocator, a heap per user task |
//! | `c_runtime` | C tasks' thread-local blocks, the C glue's accessors, `main`, Lua's C API |
//! | `console` | the UART and the exit device |
//! | `sys` | the task side: system calls, spawning, printing, the shim transport |
//! | `devices` | QEMU's flash and virtio-blk as backing-device hardware |
//! | `tasks` | memsrv, drivers and the test programs as tasks |
//!
//! Everything but [`kernel`] exists only for `riscv64gc-unknown-none-elf`,
//! built by `scripts/board.sh`.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(test)]
extern crate std;

#[cfg(target_os = "none")]
extern crate alloc;

pub mod kernel;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod c_runtime;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod devices;
#[cfg(target_os = "none")]
pub mod handover;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod memory;
#[cfg(target_os = "none")]
pub mod sys;
#[cfg(target_os = "none")]
pub mod tasks;
#[cfg(target_os = "none")]
pub mod trap;
