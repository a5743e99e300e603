//! The init task: starts memsrv, then runs what the board was built to
//! run, and powers the board off with the result.

use crate::println;
use crate::sys::{self, Channel};
use memsrv::Config;
use nommu::Client;
use protocol::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use protocol::ProcView;

/// memsrv's task id, for everyone who connects.
pub static MEMSRV: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

pub extern "C" fn entry(_arg: u64) -> ! {
    let arena = crate::memory::arena();
    let config = Config {
        arena_base: arena.start,
        arena_size: arena.end - arena.start,
        ..Config::default()
    };
    let server = match sys::spawn("memsrv", 256 << 10, move || super::memsrv::serve(config)) {
        Ok(task) => task,
        Err(e) => {
            println!("init: cannot start memsrv: {e:?}");
            sys::power_off(10);
        }
    };
    MEMSRV.store(server.id, core::sync::atomic::Ordering::Relaxed);
    core::mem::forget(server);
    let code = demo();
    sys::power_off(code)
}

fn demo() -> u64 {
    let conn = match sys::connect(MEMSRV.load(core::sync::atomic::Ordering::Relaxed), 0, 0) {
        Ok(c) => c,
        Err(e) => {
            println!("init: connect: {e:?}");
            return 11;
        }
    };
    let client = Client::new(Channel { conn });
    let welcome = match client.hello(None) {
        Ok(w) => w,
        Err(e) => {
            println!("init: hello: {e:?}");
            return 12;
        }
    };
    println!("init: pid {} arena {:#x} + {:#x}", welcome.pid, welcome.arena_base, welcome.arena_size);
    let t0 = sys::now_ms();
    let addr = client.mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    println!("init: mmap -> {addr:x?} after {} ms", t0);
    let mut text = [0u8; 1024];
    if let Ok(n) = client.read_proc(ProcView::SelfMaps, &mut text) {
        println!("{}", core::str::from_utf8(&text[..n.min(text.len())]).unwrap_or("?"));
    }
    0
}
