//! The init task (privileged): starts memsrv on the arena, then runs what
//! the image was built for (the demo, or with feature `suite` the test
//! suites) and powers the board off with the result.

use crate::println;
use crate::sys;
use memsrv::Config;

/// memsrv's stack: building the server on a 100 MiB arena takes well over 256 KiB.
const MEMSRV_STACK: usize = 2 << 20;

pub extern "C" fn entry(_arg: u64) -> ! {
    let arena = crate::memory::arena();
    let config = Config {
        arena_base: arena.start,
        arena_size: arena.end - arena.start,
        // The conformance tables' §14.6 is the strict profile.
        strict_mremap: cfg!(feature = "suite"),
        ..Config::default()
    };
    let started = sys::now_ms();
    let memsrv = match sys::spawn("memsrv", MEMSRV_STACK, move || super::memsrv::serve(config)) {
        Ok(task) => task.detach(),
        Err(e) => {
            println!("init: cannot start memsrv: {e:?}");
            sys::power_off(10);
        }
    };
    println!(
        "init: memsrv is task {memsrv}, arena {:#x}..{:#x} ({} pages)",
        arena.start,
        arena.end,
        (arena.end - arena.start) / crate::memory::PAGE
    );
    #[cfg(feature = "suite")]
    let code = super::suite::run(memsrv);
    #[cfg(not(feature = "suite"))]
    let code = super::demo::run(memsrv, started);
    #[cfg(feature = "suite")]
    let _ = started;
    sys::power_off(code)
}
