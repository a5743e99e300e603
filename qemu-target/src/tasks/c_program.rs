//! The C test program (`c/nommu_test.c`, linked with picolibc and the
//! shim's C ABI, `nommu::capi::board`) as tasks.
//!
//! Each C task is a process: it opens its own connection to memsrv and
//! says hello before `main` runs, and closes it (memsrv ends the process)
//! after `main` returns. Each has its own thread-local block, where the
//! shim finds its connection and `errno` ([`c_runtime`], which owns the
//! raw side of C tasks). Each C task has its own copy of the image's
//! `.data` and `.bss` (`kernel/pmp.rs`), so the two tasks below share
//! words only through memsrv's mappings.
//!
//! Two tasks run the program: `main` makes every check and at its end
//! waits on a futex in a SysV segment; `waker` attaches the same segment
//! by key and wakes it. The files they map are the conformance
//! environment's mounts (`/rom`, `/data`, `/dev/shm`), whose driver tasks
//! stay up after the conformance run, so this runs after it. Afterwards
//! memsrv's counters must be back where they were.

use super::memsrv::{inspect_over, settle, INSPECTOR_UID};
use crate::c_runtime::{self, CTask};
use crate::println;
use crate::sys::{self, IpcTransport};
use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_int;
use memsrv::Stats;
use nommu::Client;

/// A C task's stack (picolibc's printf takes a few KiB).
const C_STACK: usize = 128 << 10;

/// Run `f` in the calling C task as a process: connect, hello, put the
/// connection in the task's slot, `f()`, flush stdout, close. Its exit
/// code (-1 if it could not become a process).
pub(crate) fn as_process(
    task: &CTask,
    memsrv: usize,
    name: &str,
    f: impl FnOnce() -> c_int,
) -> i64 {
    let conn = match sys::connect(memsrv, 0, 0) {
        Ok(c) => c,
        Err(e) => {
            println!("c-program: {name}: no connection to memsrv: {e:?}");
            return -1;
        }
    };
    let client = Client::new(IpcTransport::new(conn));
    if let Err(e) = client.hello(None) {
        println!("c-program: {name}: hello: {e:?}");
        return -1;
    }
    task.set_connection(Some(conn));
    let code = f();
    task.flush_stdout();
    task.set_connection(None);
    // Closing the connection ends the process on memsrv.
    drop(client);
    i64::from(code)
}

/// The C program's `main(args)` as task `name`.
fn body(task: &CTask, memsrv: usize, name: &str, args: Vec<String>) -> i64 {
    let args: Vec<CString> = args
        .into_iter()
        .filter_map(|a| CString::new(a).ok())
        .collect();
    as_process(task, memsrv, name, || task.main(&args))
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
        match c_runtime::spawn(&name, C_STACK, move |task| {
            body(task, memsrv, &task_name, args)
        }) {
            Ok(task) => tasks.push((role, task)),
            Err(e) => {
                println!("c-program: FAILED cannot start {role}: {e:?}");
                failed += 1;
            }
        }
    }
    for (role, task) in tasks {
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
