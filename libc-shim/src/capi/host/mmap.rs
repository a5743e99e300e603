//! `mmap` and `munmap` of the host C surface (`nommu_*`, always
//! exported), and what a program may ask about its place in the server:
//! its `/proc` views, its pid and the arena. The connection they use is
//! the process-wide one of [`super::process`].

use super::host_files::Identity;
use super::paths::CallerPath;
use super::process::{global, next_host_file_tag, FDS, HOST_FILES};
use crate::abi::MAP_FAILED;
use crate::capi::offset_of;
use crate::capi::signatures::c_fn;
use crate::client::Client;
use crate::sys::{set_errno, user};
use crate::transport::DaemonConnection;
use core::ffi::{c_char, c_int, c_void};
use protocol::linux::MAP_ANONYMOUS;
use protocol::{
    decode_reply, encode_request, Errno, ProcView, Reply, Request, MAX_FRAME, PAGE_SIZE,
};
use std::os::fd::BorrowedFd;

/// Where the daemon's host-file driver sits; an `Open` of exactly this
/// path must carry the descriptor.
const HOST_FD_PATH: &str = "/.host-fd";

c_fn! {
    /// `mmap` through the memory server. Sets `errno` and returns `MAP_FAILED`
    /// on failure.
    ///
    /// `fd` may be a server file (one `nommu_open`/`open` gave for a path
    /// under a server mount) or a host descriptor: a host file is handed to
    /// the daemon over the socket, opened there through its host-file driver
    /// (a copy-only filesystem: `MAP_PRIVATE` gives a copy, `MAP_SHARED`
    /// `ENODEV`, a pipe `ENODEV`, a socket `EINVAL`, a write-only descriptor
    /// `EACCES`) and mapped; the server descriptor is kept for the next
    /// mapping of the same unchanged file ([`super::host_files`]).
    #[no_mangle]
    pub [extern "C"] fn nommu_mmap as mmap(addr, len, prot, flags, fd, offset) {
        let result = offset_of(offset).and_then(|offset| {
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
}

// `off_t` is the `i64` the signature takes.
const _: () = assert!(size_of::<libc::off_t>() == size_of::<i64>());

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
    let identity = Identity::of(fd)?;
    let owner = client.transport().welcome().pid;
    let server = match HOST_FILES.take(owner, fd, &identity) {
        Ok(server) => server,
        Err(stale) => {
            if let Some(stale) = stale {
                let _ = client.close(stale);
            }
            open_host_file(client, fd)?
        }
    };
    let mapped = client.mmap(addr, len, prot, flags, server, offset);
    // Kept under the identity seen before the open: a file that changed
    // since (even while it was being opened) no longer matches it.
    if let Some(released) = HOST_FILES.put(owner, fd, identity, server) {
        let _ = client.close(released);
    }
    mapped
}

/// Hand host descriptor `fd` to the daemon; returns the server descriptor
/// it was opened as (the caller closes it).
fn open_host_file(client: &Client<DaemonConnection>, fd: c_int) -> Result<i32, Errno> {
    let tag = next_host_file_tag();
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

/// Which view a `/proc` name means: "maps", "self/maps", "`<pid>`/maps",
/// "self/status", "`<pid>`/status", "meminfo", "buddyinfo" (a leading
/// "/proc/" is allowed).
pub fn parse_view(name: &[u8]) -> Option<ProcView> {
    let name = name.strip_prefix(b"/proc/").unwrap_or(name);
    match name {
        b"maps" => Some(ProcView::GlobalMaps),
        b"self/maps" => Some(ProcView::SelfMaps),
        b"self/status" => Some(ProcView::SelfStatus),
        b"meminfo" => Some(ProcView::Meminfo),
        b"buddyinfo" => Some(ProcView::Buddyinfo),
        _ => {
            let (pid, file) = name.split_at(name.iter().position(|&b| b == b'/')?);
            let pid = core::str::from_utf8(pid).ok()?.parse().ok()?;
            match file {
                b"/maps" => Some(ProcView::ProcessMaps { pid }),
                b"/status" => Some(ProcView::ProcessStatus { pid }),
                _ => None,
            }
        }
    }
}

/// Copy the `/proc` text `view` into `buf` (at most `len - 1` bytes, then a
/// NUL) and return the whole text's length, as `snprintf` does; -1 and
/// `errno` on failure (`EINVAL` for an unknown view, `EFAULT` for a
/// pointer that cannot be read or written).
#[no_mangle]
pub extern "C" fn nommu_read_proc(view: *const c_char, buf: *mut c_char, len: usize) -> isize {
    let result = CallerPath::copy_in(view).and_then(|name| {
        let view = parse_view(name.as_bytes()).ok_or(Errno::EINVAL)?;
        let client = global()?;
        // Room for the text as it is now (and some growth), never more
        // than the caller's `len`: a huge `len` allocates nothing extra.
        let now = client.read_proc(view, &mut [])?;
        let mut text = vec![0u8; len.min(now.saturating_add(PAGE_SIZE as usize))];
        let room = text.len().saturating_sub(1);
        let total = client.read_proc(view, &mut text[..room])?;
        if let Some(end) = text.get_mut(total.min(room)) {
            *end = 0;
        }
        let shown = (total.min(room) + 1).min(text.len());
        user::copy_to_user(buf.cast(), &text[..shown])?;
        Ok(total)
    });
    match result {
        Ok(total) => total as isize,
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
/// success, -1 and `errno` on failure. `base` and `size` may each be null
/// (not written); a pointer that cannot be written fails `EFAULT`.
#[no_mangle]
pub extern "C" fn nommu_arena(base: *mut *mut c_void, size: *mut usize) -> c_int {
    let result = global().and_then(|client| {
        let (b, s) = client.transport().arena();
        if !base.is_null() {
            user::write_to_user(base, &(b as usize as *mut c_void))?;
        }
        if !size.is_null() {
            user::write_to_user(size, &(s as usize))?;
        }
        Ok(())
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}
