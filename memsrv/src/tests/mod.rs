//! Server-level tests: a simulated memory, the spec's conformance vectors
//! and a model-checked random walk.

mod conformance;
mod property;
pub mod sim;
