//! The tasks the board runs: memsrv, the drivers, and the programs that
//! exercise them.

pub mod c_program;
pub mod conformance;
pub mod demo;
pub mod driver;
pub mod hardware;
pub mod init;
pub mod lua;
pub mod memsrv;
pub mod robustness;
pub mod suite;
