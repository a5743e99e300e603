//! Server-level tests: a simulated memory, the spec's conformance tables
//! on the bare state machine, state-machine tests and a model-checked
//! random walk.

mod address_space;
mod attributes;
mod backing_payer;
mod byte_names;
mod chaos;
mod conformance;
pub mod fake_driver;
mod files;
mod limits;
mod mapped_ranges;
mod mapping_room;
mod proc_status;
mod property;
mod property_files;
mod reserve;
pub mod rig;
mod rng;
mod security;
mod shm_mremap;
pub mod sim;
mod tables;

// What a home confining drivers lets a driver touch (as `mapped_ranges`
// for a process).
mod backing_ranges;
