//! The C side of the board's tasks, and the only raw-pointer code they
//! need: each C task's thread-local block (made from the image's
//! `.tdata`/`.tbss` template and handed to the kernel as the task's `tp`),
//! the glue's accessors for what lives in it (`c/board_libc.c`: picolibc's
//! `errno`, the stdout line buffer, the memsrv connection slot, the
//! malloc-state word), calling a C `main`, and Lua's C API
//! ([`lua_api`]).
//!
//! Those accessors are sound only in a task that has its block, so the
//! safe wrappers take a [`CTask`], which only [`spawn`] makes, inside the
//! task it starts. The shim finds the calling task through [`BoardHome`];
//! only C tasks call the shim's C ABI.

pub mod lua_api;

use crate::sys;
use alloc::alloc::{alloc_zeroed, Layout};
use alloc::ffi::CString;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_long, c_void};
use core::marker::PhantomData;
use nommu::capi::board::Home;
use nommu::malloc::capi::{nommu_malloc_stats, NommuMallocStats};
use protocol::{Errno, MAX_FRAME};

extern "C" {
    /// The C program's `main`.
    fn main(argc: c_int, argv: *const *const c_char) -> c_int;
    /// The calling task's C `errno` (picolibc's, thread-local).
    fn board_errno() -> *mut c_int;
    /// The calling task's memsrv connection slot (-1: none).
    fn board_connection() -> *mut c_long;
    /// Write out the calling task's partial stdout line.
    fn board_stdio_flush();
    /// The calling task's malloc-state word.
    fn board_malloc_slot() -> *mut *mut c_void;
    static __tdata_start: u8;
    static __tdata_end: u8;
    static __tbss_end: u8;
}

/// The glue's console output: the calling task's bytes to the UART.
#[no_mangle]
extern "C" fn board_console_write(bytes: *const u8, len: usize) {
    if bytes.is_null() || len == 0 {
        return;
    }
    // SAFETY: the glue passes its line buffer and the bytes it holds.
    sys::console(unsafe { core::slice::from_raw_parts(bytes, len) });
}

/// `_exit` of the board's C programs: flush the task's output and end it.
#[no_mangle]
extern "C" fn board_task_exit(code: c_int) -> ! {
    // SAFETY: called from a C task, which has its TLS block.
    unsafe { board_stdio_flush() };
    sys::exit(i64::from(code))
}

/// What the shim's C ABI asks the board: the calling C task's connection
/// and `errno`, both in its thread-local block.
pub struct BoardHome;

impl Home for BoardHome {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        // SAFETY: only C tasks call the C ABI, and each has its TLS block
        // (tp) for as long as it runs; the slot is an aligned long in it.
        let conn = unsafe { *board_connection() };
        if conn < 0 {
            return Err(Errno::ENOTCONN);
        }
        sys::call(conn as u64, request, reply)
    }

    fn set_errno(&self, errno: Errno) {
        // SAFETY: as above; errno is an int in the calling task's block.
        unsafe { *board_errno() = c_int::from(errno.0) };
    }

    fn malloc_slot(&self) -> Option<*mut *mut c_void> {
        // SAFETY: only C tasks allocate; the word is in their TLS block.
        Some(unsafe { board_malloc_slot() })
    }
}

/// A thread-local block for the calling task's heap: the `.tdata`
/// template, then zeroed `.tbss`, 16-byte aligned (`tp` points at its
/// start on RISC-V). It lives as long as the heap: in a C task's region,
/// freed with it.
fn tls_block() -> Result<u64, Errno> {
    let start = &raw const __tdata_start as usize;
    let data_end = &raw const __tdata_end as usize;
    let end = &raw const __tbss_end as usize;
    let layout = Layout::from_size_align((end - start).max(16), 16).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(Errno::ENOMEM);
    }
    // SAFETY: the template is the image's .tdata (start..data_end,
    // read-only here) and the block is at least that long.
    unsafe {
        core::ptr::copy_nonoverlapping(start as *const u8, ptr, data_end - start);
    }
    Ok(ptr as u64)
}

/// Proof that the calling task is a C task: it runs with its own TLS
/// block. Only [`spawn`] makes one, inside the task it starts; it is
/// neither `Send` nor `Sync`, so it cannot reach another task.
pub struct CTask {
    _not_send: PhantomData<*const ()>,
}

impl CTask {
    /// Put `conn` (`None`: no connection) in the task's connection slot,
    /// where [`BoardHome`] finds it.
    pub fn set_connection(&self, conn: Option<u64>) {
        let slot = conn.map_or(-1, |c| c as c_long);
        // SAFETY: this task runs with its own TLS block (tp); the slot is
        // its own.
        unsafe { *board_connection() = slot };
    }

    /// Write out the task's partial stdout line.
    pub fn flush_stdout(&self) {
        // SAFETY: as above: the line buffer is in this task's block.
        unsafe { board_stdio_flush() };
    }

    /// Run the C program's `main(args)`.
    pub fn main(&self, args: &[CString]) -> c_int {
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(core::ptr::null());
        // SAFETY: `argv` is a NULL-terminated array of NUL-terminated
        // strings that outlive the call; the task has its TLS block.
        unsafe { main(args.len() as c_int, argv.as_ptr()) }
    }

    /// The task's malloc counters (the shim's malloc state is per task).
    pub fn malloc_stats(&self) -> NommuMallocStats {
        let mut stats = NommuMallocStats::default();
        // SAFETY: a writable struct of the right type.
        unsafe { nommu_malloc_stats(&mut stats) };
        stats
    }
}

/// A C task's own heap, at least: its Rust allocations (its arguments,
/// its connection's frame); C's malloc maps its memory from memsrv.
pub const C_HEAP: usize = 256 << 10;

/// Start `body` as a C task `name` (a user task) with its own TLS block
/// in its own heap.
pub fn spawn(
    name: &str,
    stack: usize,
    body: impl FnOnce(&CTask) -> i64 + Send + Clone + 'static,
) -> Result<sys::Task, Errno> {
    static HOME: &dyn Home = &BoardHome;
    nommu::capi::board::set_home(&HOME);
    sys::spawn_user(name, stack, C_HEAP, tls_block, move || {
        body(&CTask {
            _not_send: PhantomData,
        })
    })
}
