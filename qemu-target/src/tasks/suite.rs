//! The board's test run (feature `suite`): every suite prints its lines
//! and the run ends with `board: PASS` or `board: FAIL` and the matching
//! exit status, which the host test reads.

use crate::println;

pub fn run(memsrv: usize) -> u64 {
    let mut failed = 0;
    let conformance = super::conformance::run(memsrv);
    failed += conformance;
    failed += super::hardware::run(memsrv);
    failed += super::robustness::run(memsrv);
    failed += super::c_program::run(memsrv);
    failed += super::lua::run(memsrv);
    if failed == 0 {
        println!("board: PASS");
        0
    } else {
        println!("board: FAIL ({failed} failures)");
        1
    }
}
