//! The C test program (`c/nommu_test.c`, linked with picolibc and the
//! shim's C ABI, `nommu::capi::board`) as tasks.
//!
//! Each C task is a process: it opens its own connection to memsrv and
//! says hello before `main` runs, and closes it (memsrv ends the process)
//! after `main` returns. Each has its own thread-local block, made from
//! the image's `.tdata`/`.tbss` template (picolibc's `errno`, the glue's
//! line buffer and connection slot) and handed to the kernel as the
//! task's `tp`. The shim finds the calling task through [`BoardHome`]: its
//! connection and `errno` are in that block, reached through the glue's
//! accessors (`c/board_libc.c`). The C tasks share the image's `.data`
//! and `.bss` (one copy, as on no-MMU without per-process data
//! segments), so per-task C state must be `__thread`.
//!
//! Two tasks run the program: `main` makes every check and at its end
//! waits on a futex in a SysV segment; `waker` attaches the same segment
//! by key and wakes it. The files they map are the conformance
//! environment's mounts (`/rom`, `/data`, `/dev/shm`), whose driver tasks
//! stay up after the conformance run, so this runs after it. Afterwards
//! memsrv's counters must be back where they were.

use super::memsrv::{inspect_over, settle, INSPECTOR_UID};
use crate::println;
use crate::sys::{self, Channel};
use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_long, c_void};
use memsrv::Stats;
use nommu::capi::board::{self as c_abi, Home};
use nommu::Client;
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

/// A C task's stack (picolibc's printf takes a few KiB).
const C_STACK: usize = 128 << 10;

/// The glue's console output: the calling task's bytes to the UART.
#[no_mangle]
extern "C" fn board_console_write(bytes: *const u8, len: usize) {
    if bytes.is_null() || len == 0 {
        return;
    }
    // SAFETY: the glue passes its line buffer and the bytes it holds.
    sys::console(unsafe { core::slice::from_raw_parts(bytes, len) });
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

static HOME: &dyn Home = &BoardHome;

/// A task's thread-local block: the `.tdata` template, then zeroed
/// `.tbss`, 16-byte aligned (`tp` points at its start on RISC-V).
pub(crate) struct TlsBlock {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the block is plain memory owned by one task at a time (made
// here, used by the task, freed after it is joined).
unsafe impl Send for TlsBlock {}

impl TlsBlock {
    fn new() -> Option<Self> {
        let start = &raw const __tdata_start as usize;
        let data_end = &raw const __tdata_end as usize;
        let end = &raw const __tbss_end as usize;
        let layout = Layout::from_size_align((end - start).max(16), 16).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: the template is the image's .tdata (start..data_end,
        // read-only here) and the block is at least that long.
        unsafe {
            core::ptr::copy_nonoverlapping(start as *const u8, ptr, data_end - start);
        }
        Some(Self { ptr, layout })
    }
}

impl Drop for TlsBlock {
    fn drop(&mut self) {
        // SAFETY: made by alloc_zeroed with this layout, freed once.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

/// Run `f` in the calling C task as a process: connect, hello, put the
/// connection in the task's slot, `f()`, flush stdout, close. Its exit
/// code (-1 if it could not become a process).
pub(crate) fn as_process(memsrv: usize, name: &str, f: impl FnOnce() -> c_int) -> i64 {
    let conn = match sys::connect(memsrv, 0, 0) {
        Ok(c) => c,
        Err(e) => {
            println!("c-program: {name}: no connection to memsrv: {e:?}");
            return -1;
        }
    };
    let client = Client::new(Channel { conn });
    if let Err(e) = client.hello(None) {
        println!("c-program: {name}: hello: {e:?}");
        return -1;
    }
    // SAFETY: this task runs with its own TLS block (tp); the slot is its
    // own.
    unsafe { *board_connection() = conn as c_long };
    let code = f();
    // SAFETY: as above.
    unsafe {
        board_stdio_flush();
        *board_connection() = -1;
    }
    // Closing the connection ends the process on memsrv.
    drop(client);
    i64::from(code)
}

/// The C program's `main(args)` as task `name`.
fn body(memsrv: usize, name: &str, args: Vec<String>) -> i64 {
    let args: Vec<CString> = args
        .into_iter()
        .filter_map(|a| CString::new(a).ok())
        .collect();
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(core::ptr::null());
    as_process(memsrv, name, || {
        // SAFETY: `argv` is a NULL-terminated array of NUL-terminated
        // strings that outlive the call.
        unsafe { main(args.len() as c_int, argv.as_ptr()) }
    })
}

/// Start `body` as a C task `name` (its own TLS block, which the caller
/// keeps until the task is joined).
pub(crate) fn spawn_c_task(
    name: &str,
    stack: usize,
    body: impl FnOnce() -> i64 + Send + 'static,
) -> Result<(sys::Task, TlsBlock), Errno> {
    c_abi::set_home(&HOME);
    let tls = TlsBlock::new().ok_or(Errno::ENOMEM)?;
    let task = sys::spawn_with_tls(name, stack, false, tls.ptr as u64, body)?;
    Ok((task, tls))
}

/// Whether memsrv is back to `before` (no mapping, file, object, segment
/// or process of the C tasks left), waiting a moment for drivers'
/// releases; what is left otherwise.
pub(crate) fn left_behind(inspector: u64, before: &Stats) -> Option<String> {
    let left = settle(inspector, |c| {
        c.mmap_copy_pages == before.mmap_copy_pages
            && c.free_pages + c.backing_pages == before.free_pages + before.backing_pages
            && c.objects == before.objects
            && c.open_files == before.open_files
            && c.pending_ops == before.pending_ops
            && c.shm_segments == before.shm_segments
            && c.shm_pages == before.shm_pages
            && c.processes == before.processes
    });
    left.map(|after| format!("before {before:?}, after {after}"))
}

/// Run the C program's two tasks and wait for them; prints
/// `c-program: PASS` or `c-program: FAILED ...` lines and returns the
/// number of failures.
pub fn run(memsrv: usize) -> usize {
    let inspector = match sys::connect(memsrv, INSPECTOR_UID, 0) {
        Ok(c) => c,
        Err(e) => {
            println!("c-program: FAILED no inspector connection: {e:?}");
            return 1;
        }
    };
    let before = match inspect_over(inspector).map(|i| i.stats) {
        Ok(c) => c,
        Err(e) => {
            println!("c-program: FAILED no counters: {e:?}");
            let _ = sys::close(inspector);
            return 1;
        }
    };
    let arena = crate::memory::arena();
    let mut failed = 0;
    let mut tasks = Vec::new();
    for role in ["main", "waker"] {
        let args = ["nommu_test", role]
            .into_iter()
            .map(String::from)
            .chain([format!("{:x}", arena.start), format!("{:x}", arena.end)])
            .collect();
        let name = format!("c:{role}");
        let task_name = name.clone();
        match spawn_c_task(&name, C_STACK, move || body(memsrv, &task_name, args)) {
            Ok((task, tls)) => tasks.push((role, task, tls)),
            Err(e) => {
                println!("c-program: FAILED cannot start {role}: {e:?}");
                failed += 1;
            }
        }
    }
    for (role, task, tls) in tasks {
        match task.join() {
            Ok(0) => println!("c-program: PASS {role}"),
            Ok(code) => {
                println!("c-program: FAILED {role} exited with {code}");
                failed += 1;
            }
            Err(e) => {
                println!("c-program: FAILED joining {role}: {e:?}");
                failed += 1;
            }
        }
        // The task has ended: nothing uses its block any more.
        drop(tls);
    }
    if let Some(left) = left_behind(inspector, &before) {
        println!("c-program: FAILED memsrv not clean afterwards: {left}");
        failed += 1;
    }
    let _ = sys::close(inspector);
    if failed == 0 {
        println!("c-program: PASS");
    }
    failed
}

/// `_exit` of the board's C programs: flush the task's output and end it.
#[no_mangle]
extern "C" fn board_task_exit(code: c_int) -> ! {
    // SAFETY: called from a C task, which has its TLS block.
    unsafe { board_stdio_flush() };
    sys::exit(i64::from(code))
}
