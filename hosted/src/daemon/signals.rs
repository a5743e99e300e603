//! SIGINT and SIGTERM as a descriptor the accept loop polls, so the daemon
//! can remove its socket and exit cleanly instead of dying mid-step.

use nommu::sys::last_errno;
use protocol::Errno;
use std::os::fd::{FromRawFd, OwnedFd};

/// Block SIGINT and SIGTERM in this thread (and the threads it spawns
/// later) and return a signalfd that becomes readable when one arrives.
/// Also ignores SIGPIPE: a peer that hangs up must not kill the daemon.
pub fn stop_signals() -> Result<OwnedFd, Errno> {
    // SAFETY: `set` is a live sigset_t initialised by sigemptyset before
    // use; the calls only read or write it and the thread's signal mask.
    let fd = unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) != 0 {
            return Err(Errno::EINVAL);
        }
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
