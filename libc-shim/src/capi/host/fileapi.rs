//! The file calls of the C ABI (`nommu_open`, `nommu_read`, ...), always
//! exported. A path under a server mount, and a descriptor that stands for
//! a server file, go to the memory server; everything else goes to the
//! host kernel ([`super::files`] says how that is decided). On failure a
//! call sets `errno` and returns -1, as its libc namesake does.

use super::fail;
use super::files::{self, open_on_server, route_path, Route};
use super::paths::CallerPath;
use super::process::{self, global, FDS};
use crate::capi::offset_of;
use crate::client::Client;
use crate::sys::{host, user};
use crate::transport::DaemonConnection;
use core::ffi::{c_char, c_int, c_void};
use protocol::{Errno, FileStat, DATA_CHUNK};

/// Linux's cap on one read or write (`MAX_RW_COUNT`).
const MAX_RW: usize = 0x7fff_f000;

/// `open(path, flags, mode)`: a path under a server mount opens a server
/// file (the descriptor returned stands for it), any other path a host
/// file. `mode` is read only with `O_CREAT` or `O_TMPFILE`.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_open(path: *const c_char, flags: c_int, mode: u32) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { open_at(libc::AT_FDCWD, path, flags, mode) }
}

/// `openat(dirfd, path, flags, mode)`: an absolute path is routed as by
/// [`nommu_open`]; a relative one always goes to the host.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nommu_openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: u32,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { open_at(dirfd, path, flags, mode) }
}

/// # Safety
/// `path` must be a NUL-terminated string (a pointer that cannot be read
/// fails `EFAULT`).
pub(crate) unsafe fn open_at(dirfd: c_int, path: *const c_char, flags: c_int, mode: u32) -> c_int {
    // `mode` is only there when the flags say so (the C caller passes it
    // as a variadic argument, else the register holds anything).
    let mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        mode
    } else {
        0
    };
    let path = match CallerPath::copy_in(path) {
        Ok(p) => p,
        Err(e) => return fail(e, -1),
    };
    match route_path(path.as_bytes()) {
        // SAFETY: the copy is a NUL-terminated string.
        Route::Host => unsafe { host::openat(dirfd, path.as_ptr(), flags, mode) },
        Route::Server(client, normal) => match open_on_server(client, &normal, flags, mode) {
            Ok(fd) => fd,
            Err(e) => fail(e, -1),
        },
    }
}

/// `close(fd)`.
#[no_mangle]
pub extern "C" fn nommu_close(fd: c_int) -> c_int {
    match files::close(fd) {
        Ok(()) => 0,
        Err(e) => fail(e, -1),
    }
}

/// Whether `[addr, addr+len)` lies wholly inside `client`'s arena.
fn wholly_in_arena(client: &Client<DaemonConnection>, addr: usize, len: usize) -> bool {
    let (base, size) = client.transport().arena();
    let (addr, len) = (addr as u64, len as u64);
    addr >= base && addr.checked_add(len).is_some_and(|end| end <= base + size)
}

/// Copy `data` to the caller's buffer at `to`. A buffer wholly inside the
/// arena is copied directly (the hot case: `nommu_malloc` memory); any
/// other goes through the checked copy (`EFAULT`).
fn copy_out(
    client: &'static Client<DaemonConnection>,
    to: usize,
    data: &[u8],
) -> Result<(), Errno> {
    if !wholly_in_arena(client, to, data.len()) {
        return user::copy_to_user(to as *mut c_void, data);
    }
    // SAFETY: the range lies in the arena, which is mapped read-write in
    // this process for as long as it lives (the process-wide client that
    // holds it is never dropped; a forked child keeps the mapping), so
    // the write cannot fault; `data` is a local chunk, apart from it.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), to as *mut u8, data.len()) };
    Ok(())
}

/// Copy the caller's bytes at `from` into `out`, as [`copy_out`] copies
/// the other way.
fn copy_in(
    client: &'static Client<DaemonConnection>,
    out: &mut [u8],
    from: usize,
) -> Result<(), Errno> {
    if !wholly_in_arena(client, from, out.len()) {
        return user::copy_from_user(out, from as *const c_void);
    }
    // SAFETY: as in `copy_out`: arena memory stays mapped and readable;
    // `out` is a local chunk, apart from it.
    unsafe { core::ptr::copy_nonoverlapping(from as *const u8, out.as_mut_ptr(), out.len()) };
    Ok(())
}

/// Move up to `len` bytes (at most [`MAX_RW`]) in [`DATA_CHUNK`] pieces
/// through a local chunk: `step(client, chunk, done)` moves the piece
/// after the first `done` bytes and says how many of it went. A short
/// piece ends the call with the count so far; an error fails it
/// (`errno`, -1) when nothing moved yet, else also ends it short. A zero
/// `len` still makes one step (the server checks the fd).
fn in_chunks(
    len: usize,
    mut step: impl FnMut(&'static Client<DaemonConnection>, &mut [u8], usize) -> Result<usize, Errno>,
) -> isize {
    let client = match global() {
        Ok(c) => c,
        Err(e) => return fail(e, -1),
    };
    let len = len.min(MAX_RW);
    let mut chunk = [0u8; DATA_CHUNK];
    let mut done = 0usize;
    loop {
        let want = (len - done).min(DATA_CHUNK);
        let moved = match step(client, &mut chunk[..want], done) {
            Ok(n) => n.min(want),
            Err(e) if done == 0 => return fail(e, -1),
            Err(_) => break,
        };
        done += moved;
        if moved < want || done >= len {
            break;
        }
    }
    done as isize
}

/// The whole call in one round trip when `buf` lies in the arena (the
/// nommu heap, a mapping): the server copies it (`crate::client::lease`).
/// Any other buffer longer than a frame moves through the connection's
/// bulk window, a window's worth per round trip, copied to or from the
/// caller's memory by the checked copies (`EFAULT`, or a short count after
/// some bytes, for memory that cannot be reached). `None`: take the
/// chunked path.
fn by_lease(server: i32, buf: u64, len: usize, offset: Option<u64>, write: bool) -> Option<isize> {
    let client = global().ok()?;
    let len = len.min(MAX_RW);
    let done = match client.lease(server, buf, len, offset, write) {
        Some(done) => done,
        None if write => client.write_through_window(server, len, offset, &mut |piece, at| {
            user::copy_from_user(piece, (buf as usize).wrapping_add(at) as *const c_void)
        })?,
        None => client.read_through_window(server, len, offset, &mut |piece, at| {
            user::copy_to_user((buf as usize).wrapping_add(at) as *mut c_void, piece)
        })?,
    };
    match done {
        Ok(n) => Some(n as isize),
        Err(e) => Some(fail(e, -1)),
    }
}

/// Read a server file into `buf` ([`by_lease`], else in chunks: each
/// chunk is read into a local buffer and copied out ([`copy_out`]): a
/// `buf` that cannot be written fails `EFAULT` (or ends the read short
/// after some bytes)).
fn server_read(server: i32, buf: *mut c_void, len: usize, offset: Option<u64>) -> isize {
    if let Some(n) = by_lease(server, buf as u64, len, offset, false) {
        return n;
    }
    in_chunks(len, |client, chunk, done| {
        let got = match offset {
            Some(at) => client.pread(server, chunk, at + done as u64),
            None => client.read(server, chunk),
        }?
        .min(chunk.len());
        copy_out(client, (buf as usize).wrapping_add(done), &chunk[..got])?;
        Ok(got)
    })
}

/// Write `buf` to a server file ([`by_lease`], else in chunks, each
/// copied in from the caller's memory first: `EFAULT` for bytes that
/// cannot be read; after some bytes were written, a short count).
fn server_write(server: i32, buf: *const c_void, len: usize, offset: Option<u64>) -> isize {
    if let Some(n) = by_lease(server, buf as u64, len, offset, true) {
        return n;
    }
    in_chunks(len, |client, chunk, done| {
        copy_in(client, chunk, (buf as usize).wrapping_add(done))?;
        match offset {
            Some(at) => client.pwrite(server, chunk, at + done as u64),
            None => client.write(server, chunk),
        }
    })
}

/// `read(fd, buf, len)`.
///
/// # Safety
/// `buf` must be writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn nommu_read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    match FDS.server_fd(fd) {
        Some(server) => server_read(server, buf, len, None),
        // SAFETY: the caller's contract, passed on.
        None => unsafe { host::read(fd, buf, len) },
    }
}

/// `write(fd, buf, len)`.
///
/// # Safety
/// `buf` must be readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn nommu_write(fd: c_int, buf: *const c_void, len: usize) -> isize {
    match FDS.server_fd(fd) {
        Some(server) => server_write(server, buf, len, None),
        // SAFETY: the caller's contract, passed on.
        None => unsafe { host::write(fd, buf, len) },
    }
}

/// `pread(fd, buf, len, offset)`.
///
/// # Safety
/// `buf` must be writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn nommu_pread(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    offset: libc::off_t,
) -> isize {
    match FDS.server_fd(fd) {
        Some(server) => match offset_of(offset) {
            Ok(at) => server_read(server, buf, len, Some(at)),
            Err(e) => fail(e, -1),
        },
        // SAFETY: the caller's contract, passed on.
        None => unsafe { host::pread(fd, buf, len, offset) },
    }
}

/// `pwrite(fd, buf, len, offset)`.
///
/// # Safety
/// `buf` must be readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn nommu_pwrite(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    offset: libc::off_t,
) -> isize {
    match FDS.server_fd(fd) {
        Some(server) => match offset_of(offset) {
            Ok(at) => server_write(server, buf, len, Some(at)),
            Err(e) => fail(e, -1),
        },
        // SAFETY: the caller's contract, passed on.
        None => unsafe { host::pwrite(fd, buf, len, offset) },
    }
}

/// `ftruncate(fd, len)`.
#[no_mangle]
pub extern "C" fn nommu_ftruncate(fd: c_int, len: libc::off_t) -> c_int {
    let Some(server) = FDS.server_fd(fd) else {
        return host::ftruncate(fd, len);
    };
    let result = offset_of(len).and_then(|len| global()?.ftruncate(server, len));
    match result {
        Ok(()) => 0,
        Err(e) => fail(e, -1),
    }
}

/// `lseek(fd, offset, whence)`.
#[no_mangle]
pub extern "C" fn nommu_lseek(fd: c_int, offset: libc::off_t, whence: c_int) -> libc::off_t {
    let Some(server) = FDS.server_fd(fd) else {
        return host::lseek(fd, offset, whence);
    };
    let result = u32::try_from(whence)
        .map_err(|_| Errno::EINVAL)
        .and_then(|whence| global()?.lseek(server, offset, whence));
    match result.and_then(|pos| i64::try_from(pos).map_err(|_| Errno::EOVERFLOW)) {
        Ok(pos) => pos,
        Err(e) => fail(e, -1),
    }
}

/// A host `struct stat` for what the server told.
pub(crate) fn host_stat(stat: &FileStat) -> libc::stat {
    // SAFETY: struct stat is plain integers; all zeroes is a valid value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    st.st_dev = libc::makedev(u32::from(stat.dev.0), u32::from(stat.dev.1));
    st.st_ino = stat.ino;
    st.st_mode = stat.mode;
    st.st_nlink = 1;
    st.st_uid = stat.uid;
    st.st_gid = stat.gid;
    st.st_size = i64::try_from(stat.size).unwrap_or(i64::MAX);
    st.st_blksize = 4096;
    st.st_blocks = (st.st_size + 511) / 512;
    st
}

/// `fstat(fd, st)`: a server file's attributes as the server tells them
/// (device, inode, mode with type bits, size, owner), any other descriptor
/// the host's.
///
/// # Safety
/// `st` must be writable for one `struct stat`.
#[no_mangle]
pub unsafe extern "C" fn nommu_fstat(fd: c_int, st: *mut libc::stat) -> c_int {
    let Some(server) = FDS.server_fd(fd) else {
        // SAFETY: the caller's contract, passed on.
        return unsafe { host::fstat(fd, st) };
    };
    let result = global()
        .and_then(|c| c.fstat(server))
        .and_then(|stat| user::write_to_user(st, &host_stat(&stat)));
    match result {
        Ok(()) => 0,
        Err(e) => fail(e, -1),
    }
}

/// Ask the server for its mounts again (a driver that registered after
/// this process connected); 0, or -1 with `errno` set.
#[no_mangle]
pub extern "C" fn nommu_refresh_mounts() -> c_int {
    match global() {
        Ok(client) => {
            process::refresh_mounts(client);
            0
        }
        Err(e) => fail(e, -1),
    }
}
