//! The C functions every build of the host library exports (`nommu_*`),
//! over one process-wide connection made lazily on first use.
//!
//! The connection is found through `$NOMMU_SOCKET` (else
//! [`super::DEFAULT_SOCKET`]) and made once, under a lock, by whichever
//! thread calls first; after that a call takes no lock but the
//! connection's own and allocates nothing.

use super::connection::{ConnectOptions, Connection, DEFAULT_SOCKET};
use super::files::FDS;
use super::sys::set_errno;
use crate::abi::MAP_FAILED;
use crate::client::Client;
use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicU32, Ordering};
use protocol::linux::MAP_ANONYMOUS;
use protocol::{
    decode_reply, encode_request, Errno, ProcView, Reply, Request, MAX_FRAME, PAGE_SIZE,
};
use std::os::fd::BorrowedFd;
use std::sync::{Mutex, OnceLock};

static GLOBAL: OnceLock<Client<Connection>> = OnceLock::new();
static CONNECTING: Mutex<()> = Mutex::new(());

/// The process-wide client, connecting on first use. A failed attempt is
/// not remembered: the next call tries again.
pub fn global() -> Result<&'static Client<Connection>, Errno> {
    if let Some(client) = GLOBAL.get() {
        return Ok(client);
    }
    let _guard = CONNECTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = GLOBAL.get() {
        return Ok(client);
    }
    let connection = open_connection()?;
    Ok(GLOBAL.get_or_init(|| Client::new(connection)))
}

/// A new connection to the daemon named by `$NOMMU_SOCKET` (else
/// [`DEFAULT_SOCKET`]). Made without a ticket, it speaks for the process
/// the daemon knows by this host pid: the first one makes the process, a
/// later one (a futex waiter's, see [`super::ipc`]) joins it.
pub(crate) fn open_connection() -> Result<Connection, Errno> {
    // SAFETY: getenv returns null or a NUL-terminated string owned by the
    // environment; it is copied into the connection's path at once.
    let path = unsafe {
        let raw = libc::getenv(c"NOMMU_SOCKET".as_ptr());
        if raw.is_null() {
            DEFAULT_SOCKET.as_bytes()
        } else {
            CStr::from_ptr(raw).to_bytes()
        }
    };
    let options = ConnectOptions {
        // NOMMU_TRANSPORT=socket turns the shared channel off (to compare).
        fast_path: std::env::var_os("NOMMU_TRANSPORT").is_none_or(|v| v != "socket"),
        ticket: None,
    };
    Connection::open(path, options).map_err(|e| e.errno())
}

/// Where the daemon's host-file driver sits; an `Open` of exactly this
/// path must carry the descriptor.
const HOST_FD_PATH: &str = "/.host-fd";

/// `mmap` through the memory server. Sets `errno` and returns `MAP_FAILED`
/// on failure.
///
/// `fd` may be a server file (one `nommu_open`/`open` gave for a path
/// under a server mount) or a host descriptor: a host file is handed to
/// the daemon over the socket, opened there through its host-file driver
/// (a copy-only filesystem: `MAP_PRIVATE` gives a copy, `MAP_SHARED`
/// `ENODEV`, a pipe `ENODEV`, a socket `EINVAL`, a write-only descriptor
/// `EACCES`), mapped, and closed again on the server.
#[no_mangle]
pub extern "C" fn nommu_mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: libc::off_t,
) -> *mut c_void {
    let result = u64::try_from(offset)
        .map_err(|_| Errno::EINVAL)
        .and_then(|offset| {
            map(
                addr as u64,
                len as u64,
                prot as u32,
                flags as u32,
                fd,
                offset,
            )
        });
    match result {
        Ok(mapped) => mapped as usize as *mut c_void,
        Err(e) => {
            set_errno(e);
            MAP_FAILED
        }
    }
}

fn map(addr: u64, len: u64, prot: u32, flags: u32, fd: c_int, offset: u64) -> Result<u64, Errno> {
    let client = global()?;
    if flags & MAP_ANONYMOUS != 0 || fd < 0 {
        return client.mmap(addr, len, prot, flags, fd, offset);
    }
    if let Some(server) = FDS.server_fd(fd) {
        return client.mmap(addr, len, prot, flags, server, offset);
    }
    // Spec §2.1: an unaligned byte offset fails before the descriptor is
    // looked at.
    if !offset.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let server = open_host_file(client, fd)?;
    let mapped = client.mmap(addr, len, prot, flags, server, offset);
    let _ = client.close(server);
    mapped
}

/// Tags of host-file opens, apart from the client's own numbering.
static HOST_FILE_TAG: AtomicU32 = AtomicU32::new(0x8000_0000);

/// Hand host descriptor `fd` to the daemon; returns the server descriptor
/// it was opened as (the caller closes it).
fn open_host_file(client: &Client<Connection>, fd: c_int) -> Result<i32, Errno> {
    let tag = HOST_FILE_TAG.fetch_add(1, Ordering::Relaxed) | 0x8000_0000;
    let open = Request::Open {
        path: protocol::Path::try_from(HOST_FD_PATH).map_err(|_| Errno::ENAMETOOLONG)?,
        flags: 0,
        mode: 0,
    };
    let mut frame = [0u8; MAX_FRAME];
    let len = encode_request(tag, &open, &mut frame);
    let mut back = [0u8; MAX_FRAME];
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    // SAFETY: the descriptor is only passed to sendmsg for the duration of
    // the call; if the program closes it meanwhile, sendmsg fails EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let got = client
        .transport()
        .call_with_fd(&frame[..len], borrowed, &mut back)?;
    let reply = decode_reply(&back[..got]).map_err(|e| e.errno())?;
    if reply.tag != tag {
        return Err(Errno::EPROTO);
    }
    match reply.message.into_result()? {
        Reply::Fd(server) => Ok(server),
        _ => Err(Errno::EPROTO),
    }
}

/// `munmap` through the memory server. Sets `errno` and returns -1 on
/// failure.
#[no_mangle]
pub extern "C" fn nommu_munmap(addr: *mut c_void, len: usize) -> c_int {
    match global().and_then(|c| c.munmap(addr as u64, len as u64)) {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// Which view a `/proc` name means: "maps", "self/maps", "<pid>/maps",
/// "meminfo", "buddyinfo" (a leading "/proc/" is allowed).
pub fn parse_view(name: &[u8]) -> Option<ProcView> {
    let name = name.strip_prefix(b"/proc/").unwrap_or(name);
    match name {
        b"maps" => Some(ProcView::GlobalMaps),
        b"self/maps" => Some(ProcView::SelfMaps),
        b"meminfo" => Some(ProcView::Meminfo),
        b"buddyinfo" => Some(ProcView::Buddyinfo),
        _ => {
            let pid = name.strip_suffix(b"/maps")?;
            let pid = core::str::from_utf8(pid).ok()?.parse().ok()?;
            Some(ProcView::ProcessMaps { pid })
        }
    }
}

/// Copy the `/proc` text `view` into `buf` (at most `len - 1` bytes, then a
/// NUL) and return the whole text's length, as `snprintf` does; -1 and
/// `errno` on failure (`EINVAL` for an unknown view).
///
/// # Safety
/// `view` must be a NUL-terminated string and `buf` writable for `len`
/// bytes (or null with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn nommu_read_proc(
    view: *const c_char,
    buf: *mut c_char,
    len: usize,
) -> isize {
    if view.is_null() || (buf.is_null() && len != 0) {
        set_errno(Errno::EFAULT);
        return -1;
    }
    // SAFETY: the caller passes a NUL-terminated string (contract above).
    let name = unsafe { CStr::from_ptr(view) }.to_bytes();
    let Some(view) = parse_view(name) else {
        set_errno(Errno::EINVAL);
        return -1;
    };
    let out: &mut [u8] = if len == 0 {
        &mut []
    } else {
        // SAFETY: the caller passes `len` writable bytes at `buf`.
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) }
    };
    let room = out.len().saturating_sub(1);
    match global().and_then(|c| c.read_proc(view, &mut out[..room])) {
        Ok(total) => {
            if let Some(end) = out.get_mut(total.min(room)) {
                *end = 0;
            }
            total as isize
        }
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// The pid the memory server knows this process by, connecting if need
/// be; -1 and `errno` on failure.
#[no_mangle]
pub extern "C" fn nommu_pid() -> c_int {
    match global() {
        Ok(client) => client.transport().welcome().pid as c_int,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// The arena's first address and size, connecting if need be; 0 on
/// success, -1 and `errno` on failure.
///
/// # Safety
/// `base` and `size` must each be null or writable.
#[no_mangle]
pub unsafe extern "C" fn nommu_arena(base: *mut *mut c_void, size: *mut usize) -> c_int {
    match global() {
        Ok(client) => {
            let (b, s) = client.transport().arena();
            // SAFETY: the caller passes null or writable pointers.
            unsafe {
                if !base.is_null() {
                    *base = b as usize as *mut c_void;
                }
                if !size.is_null() {
                    *size = s as usize;
                }
            }
            0
        }
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}
