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
//! Lua's C API, declared here (Lua 5.4's ABI), so the board needs none of
//! Lua's headers; the allocator is the shim's, called directly.

use super::c_program::{as_process, left_behind, spawn_c_task};
use super::memsrv::{inspect_over, INSPECTOR_UID};
use crate::println;
use crate::sys::{self, Channel};
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_void};
use nommu::malloc::capi::{
    nommu_free, nommu_malloc_stats, nommu_malloc_trim, nommu_realloc, NommuMallocStats,
};
use nommu::Client;
use protocol::Errno;

/// Lua's state (opaque).
#[repr(C)]
struct LuaState {
    _opaque: [u8; 0],
}

type LuaAlloc = unsafe extern "C" fn(*mut c_void, *mut c_void, usize, usize) -> *mut c_void;
type LuaCFunction = unsafe extern "C" fn(*mut LuaState) -> c_int;

extern "C" {
    fn lua_newstate(f: LuaAlloc, ud: *mut c_void) -> *mut LuaState;
    fn lua_close(l: *mut LuaState);
    fn luaL_loadbufferx(
        l: *mut LuaState,
        buff: *const c_char,
        size: usize,
        name: *const c_char,
        mode: *const c_char,
    ) -> c_int;
    fn lua_pcallk(
        l: *mut LuaState,
        nargs: c_int,
        nresults: c_int,
        errfunc: c_int,
        ctx: isize,
        k: *const c_void,
    ) -> c_int;
    fn luaL_requiref(l: *mut LuaState, name: *const c_char, open: LuaCFunction, global: c_int);
    fn lua_settop(l: *mut LuaState, index: c_int);
    fn lua_tolstring(l: *mut LuaState, index: c_int, len: *mut usize) -> *const c_char;
    fn luaopen_base(l: *mut LuaState) -> c_int;
    fn luaopen_string(l: *mut LuaState) -> c_int;
    fn luaopen_table(l: *mut LuaState) -> c_int;
    fn luaopen_math(l: *mut LuaState) -> c_int;
    fn luaopen_coroutine(l: *mut LuaState) -> c_int;
    fn luaopen_utf8(l: *mut LuaState) -> c_int;
}

const LUA_OK: c_int = 0;
const SCRIPT: &str = "/rom/alloc_heavy.lua";
const LUA_STACK: usize = 256 << 10;

/// Lua's allocator: the shim's malloc.
unsafe extern "C" fn l_alloc(
    _ud: *mut c_void,
    ptr: *mut c_void,
    _old: usize,
    new: usize,
) -> *mut c_void {
    // SAFETY: Lua hands back only blocks this function gave it.
    unsafe {
        if new == 0 {
            nommu_free(ptr);
            core::ptr::null_mut()
        } else {
            nommu_realloc(ptr, new)
        }
    }
}

/// Read the script off romfs through memsrv.
fn read_script(memsrv: usize) -> Result<Vec<u8>, Errno> {
    let client = Client::new(Channel {
        conn: sys::connect(memsrv, 0, 0)?,
    });
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
fn drive(script: &[u8]) -> c_int {
    let libs: [(&[u8], LuaCFunction); 6] = [
        (b"_G\0", luaopen_base),
        (b"string\0", luaopen_string),
        (b"table\0", luaopen_table),
        (b"math\0", luaopen_math),
        (b"coroutine\0", luaopen_coroutine),
        (b"utf8\0", luaopen_utf8),
    ];
    println!("lua: output begins");
    // SAFETY: Lua's C API as documented for 5.4; every pointer passed is
    // live for the call (NUL-terminated names, the script buffer), and the
    // state is closed once at the end.
    let status = unsafe {
        let l = lua_newstate(l_alloc, core::ptr::null_mut());
        if l.is_null() {
            println!("lua: lua_newstate failed");
            return 1;
        }
        for (name, open) in libs {
            luaL_requiref(l, name.as_ptr().cast(), open, 1);
            lua_settop(l, -2);
        }
        let mut status = luaL_loadbufferx(
            l,
            script.as_ptr().cast(),
            script.len(),
            b"@alloc_heavy.lua\0".as_ptr().cast(),
            core::ptr::null(),
        );
        if status == LUA_OK {
            status = lua_pcallk(l, 0, 0, 0, 0, core::ptr::null());
        }
        if status != LUA_OK {
            let mut len = 0;
            let msg = lua_tolstring(l, -1, &mut len);
            let text = if msg.is_null() {
                "(error object is not a string)"
            } else {
                core::str::from_utf8(core::slice::from_raw_parts(msg.cast(), len)).unwrap_or("?")
            };
            println!("lua: error: {text}");
        }
        lua_close(l);
        status
    };
    // Lua's print ends every line, and the glue writes each line as it
    // ends, so the output is out before the marker.
    println!("lua: output ends");
    let mut stats = NommuMallocStats::default();
    // After lua_close every block is free: the trim gives every segment
    // back, so nothing stays mapped (the allocator leaks nothing through
    // the server).
    nommu_malloc_trim(0);
    // SAFETY: a writable struct of the right type.
    unsafe { nommu_malloc_stats(&mut stats) };
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
    let task = spawn_c_task("lua", LUA_STACK, move || {
        as_process(memsrv, "lua", || drive(&script))
    });
    let mut failed = 0;
    match task {
        Ok((task, tls)) => {
            match task.join() {
                Ok(0) => println!("lua: PASS in {} ms", sys::now_ms() - started),
                other => {
                    println!("lua: FAILED the script did not finish: {other:?}");
                    failed += 1;
                }
            }
            drop(tls);
        }
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
