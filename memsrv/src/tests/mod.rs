//! Server-level tests: a simulated memory, the spec's conformance vectors
//! and a model-checked random walk.

mod chaos;
mod conformance;
pub mod fake_driver;
mod files;
mod property;
mod property_files;
pub mod rig;
mod rng;
mod security;
mod shm_mremap;
pub mod sim;
