//! Lua 5.4 as a ported app on the board: the `lua-src` crate's C sources,
//! compiled for the board with picolibc, run a script with every
//! allocation going through the shim's mmap-only malloc (each heap chunk a
//! mapping memsrv gave), as a uClinux port would.
//!
//! The script is `/rom/alloc_heavy.lua`, read off the romfs image in flash
//! through memsrv (the same file the hosted test runs,
//! `hosted/tests/lua/alloc_heavy.lua`). Its output is printed between
//! `lua: output begins` and `lua: output ends`; the host test compares it
//! with the output the host's own Lua gives. The driver is a few calls of
//! Lua's C API ([`lua_api`](crate::c_runtime::lua_api)); the allocator is
//! the shim's, called directly.

use super::c_program::{as_process, left_behind};
use super::memsrv::{inspect_over, INSPECTOR_UID};
use crate::c_runtime::lua_api::Lua;
use crate::c_runtime::{self, CTask};
use crate::println;
use crate::sys::{self, IpcTransport};
use alloc::vec::Vec;
use core::ffi::c_int;
use nommu::malloc::capi::nommu_malloc_trim;
use nommu::Client;
use protocol::Errno;

const SCRIPT: &str = "/rom/alloc_heavy.lua";
const LUA_STACK: usize = 256 << 10;

/// Read the script off romfs through memsrv.
fn read_script(memsrv: usize) -> Result<Vec<u8>, Errno> {
    let client = Client::new(IpcTransport::new(sys::connect(memsrv, 0, 0)?));
    client.hello(None)?;
    let fd = client.open(SCRIPT, 0, 0)?;
    let mut script = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = client.read(fd, &mut chunk)?;
        if n == 0 {
            break;
        }
        script.extend_from_slice(&chunk[..n]);
    }
    client.close(fd)?;
    Ok(script)
}

/// The driver, in the Lua task: a state over the shim's malloc, the base,
/// string, table, math, coroutine and utf8 libraries, the script. 0 when
/// it ran to its end.
fn drive(task: &CTask, script: &[u8]) -> c_int {
    println!("lua: output begins");
    let Some(mut lua) = Lua::new(task) else {
        println!("lua: lua_newstate failed");
        return 1;
    };
    lua.open_libs();
    let status = match lua.run(script, c"@alloc_heavy.lua") {
        Ok(()) => 0,
        Err(e) => {
            println!("lua: error: {}", e.message);
            e.status
        }
    };
    drop(lua);
    // Lua's print ends every line, and the glue writes each line as it
    // ends, so the output is out before the marker.
    println!("lua: output ends");
    // After lua_close every block is free: the trim gives every segment
    // back, so nothing stays mapped (the allocator leaks nothing through
    // the server).
    nommu_malloc_trim(0);
    let stats = task.malloc_stats();
    println!(
        "lua: malloc made mmap {} munmap {} mremap {} requests; {} bytes mapped after lua_close",
        stats.mmap_calls, stats.munmap_calls, stats.mremap_calls, stats.mapped_bytes
    );
    if stats.mapped_bytes != 0 {
        println!("lua: FAILED the heap is not empty after lua_close");
        return 1;
    }
    status
}

/// Run the script as a task; the number of failures (0 or 1).
pub fn run(memsrv: usize) -> usize {
    let script = match read_script(memsrv) {
        Ok(s) => s,
        Err(e) => {
            println!("lua: FAILED reading {SCRIPT}: {e:?}");
            return 1;
        }
    };
    let Ok(inspector) = sys::connect(memsrv, INSPECTOR_UID, 0) else {
        println!("lua: FAILED no inspector connection");
        return 1;
    };
    let before = inspect_over(inspector).map(|i| i.stats);
    let started = sys::now_ms();
    let task = c_runtime::spawn("lua", LUA_STACK, move |task| {
        as_process(task, memsrv, "lua", || drive(task, &script))
    });
    let mut failed = 0;
    match task {
        Ok(task) => match task.join() {
            Ok(0) => println!("lua: PASS in {} ms", sys::now_ms() - started),
            other => {
                println!("lua: FAILED the script did not finish: {other:?}");
                failed += 1;
            }
        },
        Err(e) => {
            println!("lua: FAILED cannot start: {e:?}");
            failed += 1;
        }
    }
    match before {
        Ok(before) => {
            if let Some(left) = left_behind(inspector, &before) {
                println!("lua: FAILED memsrv not clean afterwards: {left}");
                failed += 1;
            }
        }
        Err(e) => {
            println!("lua: FAILED no counters: {e:?}");
            failed += 1;
        }
    }
    let _ = sys::close(inspector);
    failed
}
