//! The tasks the board runs: memsrv, the drivers, and the programs that
//! exercise them. Safe code only: raw memory is [`memory`](crate::memory)'s,
//! the C side of C tasks is [`c_runtime`](crate::c_runtime)'s.
#![deny(unsafe_code)]

pub mod c_program;
// Its /dev/mem window is raw memory from the allocator (`alloc_zeroed`).
#[allow(unsafe_code)]
pub mod conformance;
pub mod demo;
pub mod driver;
pub mod hardware;
pub mod init;
pub mod isolation;
pub mod isolation_clone_vm;
pub mod isolation_devices;
pub mod isolation_dma;
pub mod isolation_driver_regions;
pub mod isolation_drivers;
pub mod isolation_lent;
pub mod isolation_range_pool;
pub mod isolation_ranges;
pub mod isolation_regions;
pub mod isolation_statics;
pub mod lua;
pub mod memsrv;
pub mod robustness;
pub mod suite;
pub mod user_program;
