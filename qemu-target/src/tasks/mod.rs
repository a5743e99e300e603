//! The tasks the board runs: memsrv, the drivers, and the programs that
//! exercise them.

pub mod init;
pub mod memsrv;
