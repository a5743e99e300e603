//! The few calls of Lua 5.4's C API the board's Lua task makes, declared
//! here (Lua 5.4's ABI) so the board needs none of Lua's headers, and
//! wrapped safe: a [`Lua`] state lives in a C task ([`CTask`]), allocates
//! through the shim's malloc, and is closed when dropped.

use super::CTask;
use alloc::string::String;
use core::ffi::{c_char, c_int, c_void, CStr};
use core::marker::PhantomData;
use nommu::malloc::capi::{nommu_free, nommu_realloc};

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

/// A chunk that did not run to its end: Lua's status and its message.
#[derive(Debug)]
pub struct LuaError {
    pub status: c_int,
    pub message: String,
}

/// A Lua state over the shim's malloc, in the C task `'t`.
pub struct Lua<'t> {
    state: *mut LuaState,
    _task: PhantomData<&'t CTask>,
}

impl<'t> Lua<'t> {
    /// A new state (`None`: no memory for it).
    pub fn new(_task: &'t CTask) -> Option<Self> {
        // SAFETY: `l_alloc` is a valid lua_Alloc; the shim's malloc needs
        // the calling task's TLS block, which a C task has.
        let state = unsafe { lua_newstate(l_alloc, core::ptr::null_mut()) };
        (!state.is_null()).then_some(Self {
            state,
            _task: PhantomData,
        })
    }

    /// Open the base, string, table, math, coroutine and utf8 libraries
    /// as globals.
    pub fn open_libs(&mut self) {
        let libs: [(&CStr, LuaCFunction); 6] = [
            (c"_G", luaopen_base),
            (c"string", luaopen_string),
            (c"table", luaopen_table),
            (c"math", luaopen_math),
            (c"coroutine", luaopen_coroutine),
            (c"utf8", luaopen_utf8),
        ];
        for (name, open) in libs {
            // SAFETY: a live state, a NUL-terminated name and Lua's own
            // opener; settop(-2) pops the module requiref left.
            unsafe {
                luaL_requiref(self.state, name.as_ptr(), open, 1);
                lua_settop(self.state, -2);
            }
        }
    }

    /// Load `script` as chunk `name` and run it.
    pub fn run(&mut self, script: &[u8], name: &CStr) -> Result<(), LuaError> {
        // SAFETY: a live state; the script buffer and the NUL-terminated
        // name are live for the call (Lua copies what it keeps).
        let mut status = unsafe {
            luaL_loadbufferx(
                self.state,
                script.as_ptr().cast(),
                script.len(),
                name.as_ptr(),
                core::ptr::null(),
            )
        };
        if status == LUA_OK {
            // SAFETY: a live state with the loaded chunk on its stack.
            status = unsafe { lua_pcallk(self.state, 0, 0, 0, 0, core::ptr::null()) };
        }
        if status == LUA_OK {
            return Ok(());
        }
        let mut len = 0;
        // SAFETY: a live state with the error object on top of its stack.
        let msg = unsafe { lua_tolstring(self.state, -1, &mut len) };
        let message = if msg.is_null() {
            "(error object is not a string)"
        } else {
            // SAFETY: Lua's string of `len` bytes, live while it stays on
            // the stack (until the state is closed).
            core::str::from_utf8(unsafe { core::slice::from_raw_parts(msg.cast(), len) })
                .unwrap_or("?")
        };
        Err(LuaError {
            status,
            message: message.into(),
        })
    }
}

impl Drop for Lua<'_> {
    fn drop(&mut self) {
        // SAFETY: the state is live and closed once, here.
        unsafe { lua_close(self.state) };
    }
}
