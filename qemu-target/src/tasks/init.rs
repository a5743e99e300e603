//! The init task (privileged): starts memsrv on the arena, then runs what
//! the image was built for (the demo; with feature `suite` the test
//! suites; with feature `user-c` a user's C program) and powers the board
//! off with the result.

use crate::println;
use crate::sys;
use memsrv::Config;

/// memsrv's stack: building the server on a 100 MiB arena takes well over 256 KiB.
const MEMSRV_STACK: usize = 2 << 20;

/// A secret for clone tickets, different every boot: the board has no
/// random device, so it takes timer jitter. QEMU's `cycle` counter follows
/// the host's cycle counter and `time` the host clock, and how long each
/// round of the loop below takes depends on the host's caches and
/// scheduling; every reading's low bits are mixed in.
fn boot_entropy() -> u64 {
    let mut pool = 0u64;
    for round in 0..256u64 {
        let start = crate::arch::cycles();
        // Work whose duration varies with the host, not the guest.
        let mut spin = pool | 1;
        for _ in 0..(pool & 0x3f) + 16 {
            spin = spin.rotate_left(7) ^ round;
        }
        let elapsed = crate::arch::cycles().wrapping_sub(start);
        pool = mix(pool ^ elapsed ^ crate::arch::ticks().rotate_left(32) ^ spin);
    }
    pool
}

/// splitmix64's finaliser: every input bit reaches every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub extern "C" fn entry(_arg: u64) -> ! {
    let arena = crate::memory::arena();
    let config = Config {
        arena_base: arena.start,
        arena_size: arena.end - arena.start,
        // The conformance tables' §14.6 is the strict profile.
        strict_mremap: cfg!(feature = "suite"),
        ticket_secret: boot_entropy(),
        ..Config::default()
    };
    let started = sys::now_ms();
    let memsrv =
        match sys::spawn_server("memsrv", MEMSRV_STACK, move || super::memsrv::serve(config)) {
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
    #[cfg(all(feature = "user-c", not(feature = "suite")))]
    let code = super::user_program::run(memsrv);
    #[cfg(not(any(feature = "suite", feature = "user-c")))]
    let code = super::demo::run(memsrv, started);
    #[cfg(any(feature = "suite", feature = "user-c"))]
    let _ = started;
    sys::power_off(code)
}
