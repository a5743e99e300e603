//! Memory a C caller hands the shim, read and written the way the kernel
//! reaches user memory: through a system call that checks every page
//! (`process_vm_readv`/`process_vm_writev` on this process; where those are
//! refused, through a pipe: `write` of the caller's bytes, `read` into
//! them). A pointer the kernel would reject (unmapped, not readable, not
//! writable) gives `EFAULT`, never a fault in the shim.

use core::ffi::c_void;
use protocol::Errno;

/// The smallest page size of the hosts the library builds for; a string
/// is read a page at a time so no read crosses past its NUL into a page
/// that may not be mapped.
const PAGE: usize = 4096;

/// The outcome of one `process_vm_*` transfer.
enum Vm {
    /// This many bytes moved (fewer than asked: the rest faulted).
    Moved(usize),
    /// The calls are not available here (seccomp, an old kernel).
    Unavailable,
}

fn process_vm(write: bool, local: *mut c_void, remote: usize, len: usize) -> Vm {
    let local = libc::iovec {
        iov_base: local,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: remote as *mut c_void,
        iov_len: len,
    };
    let nr = if write {
        libc::SYS_process_vm_writev
    } else {
        libc::SYS_process_vm_readv
    };
    // SAFETY: both iovecs are live locals; the kernel checks the remote
    // range itself (it is the caller's pointer, possibly bad) and only
    // touches `local` for `len` bytes, which the callers below own.
    let ret = unsafe {
        libc::syscall(
            nr,
            libc::getpid(),
            &local as *const libc::iovec,
            1usize,
            &remote as *const libc::iovec,
            1usize,
            0usize,
        )
    };
    match usize::try_from(ret) {
        Ok(n) => Vm::Moved(n),
        Err(_) => match super::last_errno() {
            e if e == Errno::EFAULT || e == Errno::ENOMEM || e == Errno::EINVAL => Vm::Moved(0),
            _ => Vm::Unavailable,
        },
    }
}

/// A pipe for the fallback, closed on drop.
struct Pipe([libc::c_int; 2]);

impl Pipe {
    fn new() -> Result<Self, Errno> {
        let mut fds = [-1; 2];
        // SAFETY: the kernel writes two descriptors into a live local.
        let ret = unsafe { libc::syscall(libc::SYS_pipe2, fds.as_mut_ptr(), libc::O_CLOEXEC) };
        if ret < 0 {
            return Err(super::last_errno());
        }
        Ok(Self(fds))
    }

    /// Move at most one pipe's worth (`len` capped at 4096, which a pipe
    /// always holds) from `from` to `to`; either may be the caller's.
    fn pass(&self, from: usize, to: usize, len: usize) -> Result<usize, Errno> {
        let len = len.min(4096);
        // SAFETY: the kernel reads `len` bytes at `from`, checking them
        // (EFAULT, nothing written, if not readable).
        let put = unsafe { libc::syscall(libc::SYS_write, self.0[1], from, len) };
        let put = usize::try_from(put).map_err(|_| super::last_errno())?;
        // SAFETY: the kernel writes `put` bytes at `to`, checking them.
        let got = unsafe { libc::syscall(libc::SYS_read, self.0[0], to, put) };
        let got = usize::try_from(got).map_err(|_| super::last_errno())?;
        Ok(got)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        for fd in self.0 {
            // SAFETY: descriptors this pipe owns.
            unsafe { libc::syscall(libc::SYS_close, fd) };
        }
    }
}

fn copy(write: bool, local: *mut c_void, user: usize, len: usize) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    if user.checked_add(len).is_none() {
        return Err(Errno::EFAULT);
    }
    match process_vm(write, local, user, len) {
        Vm::Moved(n) if n == len => Ok(()),
        Vm::Moved(_) => Err(Errno::EFAULT),
        Vm::Unavailable => copy_through_pipe(write, local, user, len),
    }
}

/// [`copy`] where `process_vm_*` are refused: through a pipe, at most
/// one pipe's worth at a time.
fn copy_through_pipe(
    write: bool,
    local: *mut c_void,
    user: usize,
    len: usize,
) -> Result<(), Errno> {
    let pipe = Pipe::new()?;
    let mut done = 0;
    while done < len {
        let (from, to) = if write {
            (local as usize + done, user + done)
        } else {
            (user + done, local as usize + done)
        };
        match pipe.pass(from, to, len - done) {
            Ok(0) | Err(_) => return Err(Errno::EFAULT),
            Ok(n) => done += n,
        }
    }
    Ok(())
}

/// Copy `out.len()` bytes from the caller's memory at `user` into `out`;
/// `EFAULT` if any of it cannot be read.
pub fn copy_from_user(out: &mut [u8], user: *const c_void) -> Result<(), Errno> {
    copy(false, out.as_mut_ptr().cast(), user as usize, out.len())
}

/// Copy `data` into the caller's memory at `user`; `EFAULT` if any of it
/// cannot be written (bytes before the fault may have been written, as
/// with the kernel's own copy).
pub fn copy_to_user(user: *mut c_void, data: &[u8]) -> Result<(), Errno> {
    copy(
        true,
        data.as_ptr().cast_mut().cast(),
        user as usize,
        data.len(),
    )
}

/// Read one `T` from the caller's memory at `user` (`EFAULT` if it
/// cannot be read, null included).
///
/// # Safety
/// Every bit pattern of `size_of::<T>()` bytes must be a valid `T` (plain
/// C data: integers, arrays of them).
pub unsafe fn read_from_user<T>(user: *const T) -> Result<T, Errno> {
    let mut value = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: a zeroed T of plain data is initialised bytes; they are
    // only overwritten.
    let bytes =
        unsafe { core::slice::from_raw_parts_mut(value.as_mut_ptr().cast::<u8>(), size_of::<T>()) };
    copy_from_user(bytes, user.cast())?;
    // SAFETY: every byte was written from the caller's T, and any bit
    // pattern is a valid T (this function's contract).
    Ok(unsafe { value.assume_init() })
}

/// Write one `T` to the caller's memory at `user` (`EFAULT` if it cannot
/// be written, null included).
pub fn write_to_user<T: Copy>(user: *mut T, value: &T) -> Result<(), Errno> {
    // SAFETY: a live `T` viewed as its bytes; `T: Copy` plain C data
    // whose padding the callers zero (they build it from `zeroed()`).
    let bytes =
        unsafe { core::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) };
    copy_to_user(user.cast(), bytes)
}

/// Copy the caller's NUL-terminated string at `user` into `out` (with its
/// NUL); returns its length without the NUL. `EFAULT` for a pointer that
/// cannot be read before the NUL, `ENAMETOOLONG` when no NUL is found in
/// `out.len()` bytes. Reads never cross into a page past the NUL.
pub fn copy_string_from_user(out: &mut [u8], user: *const c_void) -> Result<usize, Errno> {
    let mut at = user as usize;
    let mut done = 0;
    while done < out.len() {
        let to_page_end = PAGE - at % PAGE;
        let want = to_page_end.min(out.len() - done);
        copy_from_user(&mut out[done..done + want], at as *const c_void)?;
        if let Some(nul) = out[done..done + want].iter().position(|b| *b == 0) {
            return Ok(done + nul);
        }
        done += want;
        at += want;
    }
    Err(Errno::ENAMETOOLONG)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of this process's own, unmapped again on drop; `None`
    /// protection leaves it inaccessible.
    struct Page(usize);

    impl Page {
        fn new(prot: i32) -> Self {
            // SAFETY: a fresh anonymous mapping anywhere.
            let addr = unsafe {
                libc::syscall(
                    libc::SYS_mmap,
                    0usize,
                    PAGE,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0usize,
                )
            };
            assert!(addr > 0, "mmap");
            Self(addr as usize)
        }
    }

    impl Drop for Page {
        fn drop(&mut self) {
            // SAFETY: the page mapped in `new`, used by nobody else.
            unsafe { super::super::unmap(self.0, PAGE) };
        }
    }

    #[test]
    fn good_memory_is_copied_both_ways() {
        let page = Page::new(libc::PROT_READ | libc::PROT_WRITE);
        let at = (page.0 + PAGE - 4) as *mut c_void;
        copy_to_user(at, b"abcd").unwrap();
        let mut back = [0u8; 4];
        copy_from_user(&mut back, at).unwrap();
        assert_eq!(&back, b"abcd");
        let mut name = [0u8; 16];
        assert_eq!(
            copy_string_from_user(&mut name, c"/x".as_ptr().cast()),
            Ok(2)
        );
        assert_eq!(&name[..3], b"/x\0");
    }

    #[test]
    fn bad_memory_is_efault() {
        let none = Page::new(libc::PROT_NONE);
        let read_only = Page::new(libc::PROT_READ);
        let mut buf = [0u8; 8];
        for bad in [8usize, none.0, usize::MAX - 3] {
            assert_eq!(
                copy_from_user(&mut buf, bad as *const c_void),
                Err(Errno::EFAULT)
            );
            assert_eq!(copy_to_user(bad as *mut c_void, &buf), Err(Errno::EFAULT));
        }
        assert_eq!(
            copy_to_user(read_only.0 as *mut c_void, &buf),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            copy_string_from_user(&mut buf, 8 as *const c_void),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            // SAFETY: any bit pattern is a valid u64.
            unsafe { read_from_user(none.0 as *const u64) },
            Err(Errno::EFAULT)
        );
        assert_eq!(write_to_user(none.0 as *mut u64, &1), Err(Errno::EFAULT));
    }

    #[test]
    fn a_string_is_read_up_to_its_nul_only() {
        // A name that ends in the last byte of a page followed by an
        // inaccessible one.
        let page = Page::new(libc::PROT_READ | libc::PROT_WRITE);
        let _after = Page::new(libc::PROT_NONE);
        let at = page.0 + PAGE - 3;
        copy_to_user(at as *mut c_void, b"ab\0").unwrap();
        let mut name = [0xffu8; 64];
        let got = copy_string_from_user(&mut name, at as *const c_void);
        // The next mapping may not follow this page directly; either way
        // the string ends before the page does.
        assert_eq!(got, Ok(2));
        let mut short = [0u8; 2];
        assert_eq!(
            copy_string_from_user(&mut short, at as *const c_void),
            Err(Errno::ENAMETOOLONG)
        );
    }

    #[test]
    fn the_pipe_fallback_copies_and_faults_alike() {
        let page = Page::new(libc::PROT_READ | libc::PROT_WRITE);
        let read_only = Page::new(libc::PROT_READ);
        let mut data = *b"0123456789";
        assert_eq!(
            copy_through_pipe(true, data.as_mut_ptr().cast(), page.0, data.len()),
            Ok(())
        );
        let mut back = [0u8; 10];
        assert_eq!(
            copy_through_pipe(false, back.as_mut_ptr().cast(), page.0, back.len()),
            Ok(())
        );
        assert_eq!(back, data);
        // A whole page (the most one pass moves).
        let mut big = vec![7u8; PAGE];
        assert_eq!(
            copy_through_pipe(false, big.as_mut_ptr().cast(), page.0, PAGE),
            Ok(())
        );
        assert_eq!(&big[..10], b"0123456789");
        assert_eq!(
            copy_through_pipe(false, back.as_mut_ptr().cast(), 8, back.len()),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            copy_through_pipe(true, data.as_mut_ptr().cast(), read_only.0, data.len()),
            Err(Errno::EFAULT)
        );
    }
}
