//! The bare-metal home: a small kernel for QEMU's riscv64 `virt` board,
//! paging off (`satp` = Bare), that runs memsrv, the drivers and test
//! programs (Rust and C) as tasks.
//!
//! The kernel's IPC core ([`ipc`]) is plain code, tested on the host; the
//! rest (boot, traps, timer, devices, tasks) exists only for
//! `riscv64gc-unknown-none-elf`, built by `scripts/board.sh`.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod ipc;

#[cfg(target_os = "none")]
pub mod devices;
