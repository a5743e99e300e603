//! What `nommu-run` needs of the library it preloads into an unmodified
//! program (feature `posix`): a count of every call the memory server
//! served or refused, a trace line per answered request with the no-MMU
//! reason for a refusal, the report handed back at exit (the counts and
//! the process's `/proc/<pid>/maps` as the server sees it), `fork` refused
//! as no-MMU Linux refuses it, and the calls passed to the host kernel
//! that the server must not take (a stack that grows down, a file placed
//! over the program's own host mappings, unmapping host memory). The
//! exported names (`fork`, and `mmap`, ... in `super::posix`) and the
//! report at exit come with feature `posix`.
//!
//! Each is switched on by an environment variable `nommu-run` sets; a
//! program linking `libnommu.a` without them sees only the counting.
//! * `NOMMU_RUN_REPORT=DIR`: at exit write `DIR/<host pid>` (see
//!   [`write_report`]) and pass host-only calls through.
//! * `NOMMU_TRACE=1`: one line per request on standard error.
//! * `NOMMU_REFUSE_FORK=1`: `fork` fails `ENOSYS`.

use super::files::{route_path, Route};
use super::memory::in_arena;
use super::process::FDS;
use crate::abi::MAP_FAILED;
use crate::sys::{getenv, host, last_errno, set_errno};
use core::ffi::{c_char, c_int, c_void, CStr};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicU64, Ordering};
use protocol::linux::{
    MAP_ANONYMOUS, MAP_FIXED, MAP_GROWSDOWN, MAP_PRIVATE, MAP_SHARED, MAP_STACK, PROT_EXEC,
    PROT_READ, PROT_WRITE,
};
use protocol::Errno;

/// A kind of call the report counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Mmap,
    Munmap,
    Mremap,
    Shmget,
    Shmat,
    Shmdt,
    Shmctl,
    ShmOpen,
    ShmUnlink,
    Futex,
    /// `open`/`openat` of a path under a server mount.
    Open,
    Fork,
}

/// Every kind, in the report's order.
pub const CALLS: [Call; 12] = [
    Call::Mmap,
    Call::Munmap,
    Call::Mremap,
    Call::Shmget,
    Call::Shmat,
    Call::Shmdt,
    Call::Shmctl,
    Call::ShmOpen,
    Call::ShmUnlink,
    Call::Futex,
    Call::Open,
    Call::Fork,
];

impl Call {
    /// The C name.
    pub fn name(self) -> &'static str {
        match self {
            Call::Mmap => "mmap",
            Call::Munmap => "munmap",
            Call::Mremap => "mremap",
            Call::Shmget => "shmget",
            Call::Shmat => "shmat",
            Call::Shmdt => "shmdt",
            Call::Shmctl => "shmctl",
            Call::ShmOpen => "shm_open",
            Call::ShmUnlink => "shm_unlink",
            Call::Futex => "futex",
            Call::Open => "open",
            Call::Fork => "fork",
        }
    }
}

static SERVED: [AtomicU64; CALLS.len()] = [const { AtomicU64::new(0) }; CALLS.len()];
static REFUSED: [AtomicU64; CALLS.len()] = [const { AtomicU64::new(0) }; CALLS.len()];

/// Count one answer to `call`.
fn count(call: Call, refused: bool) {
    let table = if refused { &REFUSED } else { &SERVED };
    table[call as usize].fetch_add(1, Ordering::Relaxed);
}

/// How many `call`s were served and refused so far.
pub fn counts(call: Call) -> (u64, u64) {
    (
        SERVED[call as usize].load(Ordering::Relaxed),
        REFUSED[call as usize].load(Ordering::Relaxed),
    )
}

fn env_set(name: &CStr) -> bool {
    getenv(name).is_some_and(|v| !v.is_empty() && v != b"0")
}

/// Whether the program runs under `nommu-run`.
fn under_run() -> bool {
    getenv(c"NOMMU_RUN_REPORT").is_some_and(|v| !v.is_empty())
}

/// Why no-MMU refuses `call` with `errno` (`flags`: the call's flags where
/// they decide the reason), for the trace.
pub fn reason(call: Call, errno: Errno, flags: u32) -> &'static str {
    match (call, errno) {
        (Call::Mmap, Errno::EINVAL) if flags & MAP_FIXED != 0 => {
            "MAP_FIXED cannot be honoured without an MMU: no page tables to place a mapping at a chosen address"
        }
        (Call::Mmap, Errno::ENODEV) if flags & MAP_SHARED != 0 && flags & MAP_PRIVATE == 0 => {
            "a regular file cannot be shared without an MMU"
        }
        (Call::Mmap, Errno::ENODEV) => "this file's backing device cannot be mapped without an MMU",
        (Call::Mmap, Errno::ENOMEM) | (Call::Shmget, Errno::ENOMEM) => {
            "no free block of the arena is large enough: without an MMU a mapping needs contiguous memory"
        }
        (Call::Mmap, Errno::EACCES) => "the descriptor's open mode does not allow this protection",
        (Call::Mmap, Errno::EINVAL) => "bad length, offset or flags for a no-MMU mapping",
        (Call::Munmap, Errno::EINVAL) => {
            "without an MMU only whole mappings can be unmapped: the range must match one exactly"
        }
        (Call::Mremap, Errno::ENOMEM) => {
            "the mapping cannot grow in place and no-MMU does not move it"
        }
        (Call::Mremap, Errno::EINVAL) => "no-MMU resizes whole mappings only, at their own address",
        (Call::Shmat, Errno::EINVAL) => {
            "a segment has one address in every process: it cannot be attached elsewhere"
        }
        (Call::Fork, Errno::ENOSYS) => {
            "fork needs an MMU to copy the address space: use vfork + exec or posix_spawn"
        }
        (_, Errno::ENOENT) => "no such file or segment on the server",
        _ => "",
    }
}

/// The names of the `PROT_*` bits in `prot`.
pub fn prot_names(prot: u32) -> String {
    let mut names: Vec<&str> = [
        (PROT_READ, "PROT_READ"),
        (PROT_WRITE, "PROT_WRITE"),
        (PROT_EXEC, "PROT_EXEC"),
    ]
    .into_iter()
    .filter(|(bit, _)| prot & bit != 0)
    .map(|(_, name)| name)
    .collect();
    if names.is_empty() {
        names.push("PROT_NONE");
    }
    names.join("|")
}

/// The names of the `MAP_*` bits in `flags` (unknown bits in hex).
pub fn map_names(flags: u32) -> String {
    const BITS: [(u32, &str); 6] = [
        (MAP_FIXED, "MAP_FIXED"),
        (MAP_ANONYMOUS, "MAP_ANONYMOUS"),
        (MAP_GROWSDOWN, "MAP_GROWSDOWN"),
        (MAP_STACK, "MAP_STACK"),
        (protocol::linux::MAP_POPULATE, "MAP_POPULATE"),
        (protocol::linux::MAP_UNINITIALIZED, "MAP_UNINITIALIZED"),
    ];
    let mut names = vec![match flags & protocol::linux::MAP_TYPE {
        MAP_SHARED => "MAP_SHARED".to_string(),
        MAP_PRIVATE => "MAP_PRIVATE".to_string(),
        other => format!("{other:#x}"),
    }];
    let mut rest = flags & !protocol::linux::MAP_TYPE;
    for (bit, name) in BITS {
        if rest & bit != 0 {
            names.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names.join("|")
}

/// What host descriptor `fd` names (its `/proc/self/fd` link).
fn fd_target(fd: c_int) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// With `NOMMU_TRACE`, print `request = answer[: reason]` to standard
/// error (by system call; the program's `errno` is kept).
fn trace(call: Call, request: impl FnOnce() -> String, answer: Result<String, Errno>, flags: u32) {
    if !env_set(c"NOMMU_TRACE") {
        return;
    }
    let saved = last_errno();
    let mut line = format!("nommu-run[{}]: {}", std::process::id(), request());
    match answer {
        Ok(value) => {
            let _ = write!(line, " = {value}");
        }
        Err(e) => {
            let _ = write!(line, " = {e:?}");
            let why = reason(call, e, flags);
            if !why.is_empty() {
                let _ = write!(line, ": {why}");
            }
        }
    }
    line.push('\n');
    // SAFETY: `line` is readable for its length.
    unsafe { host::write(2, line.as_ptr().cast(), line.len()) };
    set_errno(saved);
}

/// The answer of a call returning a pointer (`MAP_FAILED` or null on
/// failure, as `failed` says): its address or the errno it left.
fn pointer_answer(ptr: *mut c_void, failed: bool) -> Result<String, Errno> {
    if failed {
        Err(last_errno())
    } else {
        Ok(format!("{:#x}", ptr as usize))
    }
}

/// The answer of a call returning an integer (-1 on failure).
fn int_answer(value: i64) -> Result<String, Errno> {
    if value < 0 {
        Err(last_errno())
    } else {
        Ok(value.to_string())
    }
}

/// Whether `mmap` should go to the host kernel, not the server: under
/// `nommu-run` a stack that grows down (the server cannot grow one), and
/// a host file placed with `MAP_FIXED` outside the arena (a loader laying
/// a library over the reservation it made).
pub fn mmap_for_host(addr: u64, len: u64, flags: u32, fd: c_int) -> bool {
    if !under_run() {
        return false;
    }
    if flags & MAP_GROWSDOWN != 0 {
        return true;
    }
    let host_file = flags & MAP_ANONYMOUS == 0 && fd >= 0 && FDS.server_fd(fd).is_none();
    host_file && flags & MAP_FIXED != 0 && in_arena(addr, len).is_none()
}

/// Whether `munmap` should go to the host kernel: under `nommu-run`,
/// memory outside the arena (which the host mapped).
pub fn munmap_for_host(addr: u64, len: u64) -> bool {
    under_run() && in_arena(addr, len).is_none()
}

/// What `mmap`'s descriptor argument names, for the trace: `-1` for an
/// anonymous mapping, else the descriptor and its file.
pub fn mmap_target(flags: c_int, fd: c_int) -> String {
    if flags as u32 & MAP_ANONYMOUS != 0 || fd < 0 {
        String::from("-1")
    } else {
        format!("fd {fd} → {}", fd_target(fd))
    }
}

/// Count and trace a call that returns an integer (-1 on failure).
pub fn int_call(call: Call, request: impl FnOnce() -> String, rc: i64) -> i64 {
    count(call, rc < 0);
    trace(call, request, int_answer(rc), 0);
    rc
}

/// Count and trace a call that returns a pointer (`MAP_FAILED` on
/// failure); `flags` as [`reason`] takes them.
pub fn pointer_call(
    call: Call,
    request: impl FnOnce() -> String,
    got: *mut c_void,
    flags: u32,
) -> *mut c_void {
    let failed = got == MAP_FAILED;
    count(call, failed);
    trace(call, request, pointer_answer(got, failed), flags);
    got
}

/// The text of C string `text` (null shows as `NULL`), for the trace.
///
/// # Safety
/// `text` must be null or a NUL-terminated string.
pub unsafe fn c_text(text: *const c_char) -> String {
    if text.is_null() {
        return "NULL".into();
    }
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// Count and trace an `open` of `path` that gave `fd`, if the path is the
/// server's.
///
/// # Safety
/// `path` must be null or a NUL-terminated string.
pub unsafe fn opened(path: *const c_char, fd: c_int) -> c_int {
    // A path the call refused EFAULT is not the caller's to read: look at
    // it only once the open itself has read it.
    if path.is_null() || (fd < 0 && last_errno() == Errno::EFAULT) {
        return fd;
    }
    // SAFETY: the caller's contract: a NUL-terminated string, and the open
    // above read it without a fault.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    let served = if fd >= 0 {
        FDS.server_fd(fd).is_some()
    } else {
        let saved = last_errno();
        let server = matches!(route_path(bytes), Route::Server(..));
        set_errno(saved);
        server
    };
    if served {
        int_call(
            Call::Open,
            || format!("open(\"{}\")", String::from_utf8_lossy(bytes)),
            fd.into(),
        );
    }
    fd
}

#[cfg(feature = "posix")]
/// `pid_t fork(void)`: refused `ENOSYS` under `NOMMU_REFUSE_FORK` (a
/// no-MMU kernel has no fork: the child would share the parent's memory);
/// otherwise the host C library's own `fork`.
#[no_mangle]
pub extern "C" fn fork() -> libc::pid_t {
    if env_set(c"NOMMU_REFUSE_FORK") {
        set_errno(Errno::ENOSYS);
        return int_call(Call::Fork, || "fork()".into(), -1) as libc::pid_t;
    }
    let next = crate::sys::next_symbol(c"fork");
    if next.is_null() {
        set_errno(Errno::ENOSYS);
        return -1;
    }
    // SAFETY: the next `fork` in lookup order is the C library's, of this
    // type.
    let next: extern "C" fn() -> libc::pid_t = unsafe { core::mem::transmute(next) };
    next()
}

/// At exit under `nommu-run`: write `NOMMU_RUN_REPORT/<host pid>` with one
/// line `call NAME SERVED REFUSED` per kind, then `maps` and the text of
/// `/proc/<pid>/maps` the server holds for this process (nothing if the
/// process never connected).
#[cfg(feature = "posix")]
fn write_report() {
    let Some(dir) = getenv(c"NOMMU_RUN_REPORT").filter(|d| !d.is_empty()) else {
        return;
    };
    let dir = String::from_utf8_lossy(dir).into_owned();
    let mut text = String::new();
    for call in CALLS {
        let (served, refused) = counts(call);
        let _ = writeln!(text, "call {} {served} {refused}", call.name());
    }
    text.push_str("maps\n");
    if super::process::connected() {
        if let Ok(client) = super::process::global() {
            let mut buf = vec![0u8; 256 * 1024];
            if let Ok(total) = client.read_proc(protocol::ProcView::SelfMaps, &mut buf) {
                text.push_str(&String::from_utf8_lossy(&buf[..total.min(buf.len())]));
            }
        }
    }
    // By system call: the exported `open` would route the path, and a
    // process that never connected must not connect now.
    let Ok(path) = std::ffi::CString::new(format!("{dir}/{}", std::process::id())) else {
        return;
    };
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { host::openat(libc::AT_FDCWD, path.as_ptr(), flags, 0o600) };
    if fd < 0 {
        return;
    }
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        // SAFETY: `rest` is readable for its length.
        let wrote = unsafe { host::write(fd, rest.as_ptr().cast(), rest.len()) };
        if wrote <= 0 {
            break;
        }
        rest = &rest[wrote as usize..];
    }
    host::close(fd);
}

#[cfg(feature = "posix")]
extern "C" fn at_exit() {
    write_report();
}

/// Run [`write_report`] when the program exits (the C library calls the
/// `.fini_array` functions of every loaded object at `exit`, after the
/// program's own `atexit` handlers).
#[cfg(feature = "posix")]
#[used]
#[link_section = ".fini_array"]
static AT_EXIT: extern "C" fn() = at_exit;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_counts_in_its_own_slot() {
        for (slot, call) in CALLS.iter().enumerate() {
            assert_eq!(*call as usize, slot, "{call:?}");
        }
    }

    #[test]
    fn refusals_have_their_no_mmu_reasons() {
        assert_eq!(
            reason(Call::Mmap, Errno::ENODEV, MAP_SHARED),
            "a regular file cannot be shared without an MMU"
        );
        assert!(reason(Call::Mmap, Errno::EINVAL, MAP_PRIVATE | MAP_FIXED).starts_with("MAP_FIXED"));
        assert!(reason(Call::Fork, Errno::ENOSYS, 0).contains("vfork"));
        assert_eq!(reason(Call::Shmdt, Errno::EPERM, 0), "");
    }

    #[test]
    fn flags_are_named() {
        assert_eq!(
            map_names(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED),
            "MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS"
        );
        assert_eq!(map_names(MAP_SHARED | 0x8000_0000), "MAP_SHARED|0x80000000");
        assert_eq!(prot_names(PROT_READ | PROT_WRITE), "PROT_READ|PROT_WRITE");
        assert_eq!(prot_names(0), "PROT_NONE");
    }
}
