//! `SOCK_SEQPACKET` Unix sockets: one frame per datagram, descriptors
//! passed with `SCM_RIGHTS`, peer credentials with `SO_PEERCRED` (at
//! connect time) and `SCM_CREDENTIALS` (per message, checked by the
//! kernel: a sender without privilege can claim only its own ids). Both the
//! shim (client side) and the `memsrvd` daemon use these wrappers.

use super::{last_errno, poll};
use protocol::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Most descriptors one message carries (the daemon's welcome passes three).
pub const MAX_FDS: usize = 4;

/// Room for one `SCM_RIGHTS` message of [`MAX_FDS`] descriptors and one
/// `SCM_CREDENTIALS` message, aligned as `cmsghdr` requires.
#[repr(C, align(8))]
struct ControlBuf([u8; CONTROL_LEN]);

const CONTROL_LEN: usize = 128;

const _: () = assert!(
    2 * core::mem::size_of::<libc::cmsghdr>()
        + MAX_FDS * 4
        + core::mem::size_of::<libc::ucred>()
        + 16
        <= CONTROL_LEN,
    "ControlBuf too small for MAX_FDS and credentials"
);

/// What the peer is, as the kernel saw it at `connect` time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One datagram as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// `copied` bytes landed in the buffer; the datagram was `len` long
    /// (more than `copied` if it did not fit).
    Frame { copied: usize, len: usize },
    /// The peer hung up (or sent an empty datagram, which no frame is).
    Closed,
}

/// A connected `SOCK_SEQPACKET` Unix socket.
#[derive(Debug)]
pub struct SeqPacket {
    fd: OwnedFd,
}

impl AsFd for SeqPacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A `sockaddr_un` for `path`; `ENAMETOOLONG` if it does not fit.
pub fn unix_address(path: &[u8]) -> Result<(libc::sockaddr_un, libc::socklen_t), Errno> {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.is_empty() || path.len() >= addr.sun_path.len() || path.contains(&0) {
        return Err(Errno(libc::ENAMETOOLONG as u16));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(path) {
        *dst = *src as libc::c_char;
    }
    let len = core::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// A new, unconnected `SOCK_SEQPACKET` Unix socket (close-on-exec).
pub fn new_socket() -> Result<OwnedFd, Errno> {
    // SAFETY: plain call; the result is checked before it is owned.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Run `call` (a system call returning -1 on error) until it is not
/// interrupted: its non-negative result, or the errno it failed with.
fn retrying_eintr(mut call: impl FnMut() -> isize) -> Result<usize, Errno> {
    loop {
        let ret = call();
        if ret >= 0 {
            return Ok(ret as usize);
        }
        let e = last_errno();
        if i32::from(e.0) != libc::EINTR {
            return Err(e);
        }
    }
}

/// What a receive of `len` bytes (`MSG_TRUNC`: the datagram's whole
/// length) into a buffer of `room` bytes got.
fn datagram(len: usize, room: usize) -> Datagram {
    if len == 0 {
        Datagram::Closed
    } else {
        Datagram::Frame {
            copied: len.min(room),
            len,
        }
    }
}

impl SeqPacket {
    /// Connect to the socket at `path`.
    pub fn connect(path: &[u8]) -> Result<Self, Errno> {
        let fd = new_socket()?;
        let (addr, len) = unix_address(path)?;
        // SAFETY: `addr` is a live sockaddr_un of `len` valid bytes.
        retrying_eintr(|| unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            ) as isize
        })?;
        Ok(Self { fd })
    }

    /// A connected pair (close-on-exec): one end for each side of an
    /// in-process connection.
    pub fn pair() -> Result<(Self, Self), Errno> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a live array of two ints for socketpair to fill.
        let ret = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if ret != 0 {
            return Err(last_errno());
        }
        // SAFETY: both descriptors are fresh and each is owned once here.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((Self { fd: a }, Self { fd: b }))
    }

    /// Wrap an already connected socket (one `accept` returned).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The peer's pid, uid and gid as the kernel recorded them.
    pub fn peer_credentials(&self) -> Result<PeerCred, Errno> {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = core::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are live locals of the sizes passed.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        if ret != 0 {
            return Err(last_errno());
        }
        Ok(PeerCred {
            pid: cred.pid as u32,
            uid: cred.uid,
            gid: cred.gid,
        })
    }

    /// The peer's supplementary groups as the kernel recorded them at
    /// `connect` time (`SO_PEERGROUPS`).
    pub fn peer_groups(&self) -> Result<Vec<u32>, Errno> {
        let mut groups: Vec<libc::gid_t> = vec![0; 32];
        loop {
            let mut len = (groups.len() * core::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
            // SAFETY: `groups` is live and writable for `len` bytes, `len`
            // a live local.
            let ret = unsafe {
                libc::getsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_PEERGROUPS,
                    groups.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            let count = len as usize / core::mem::size_of::<libc::gid_t>();
            if ret == 0 {
                groups.truncate(count);
                return Ok(groups);
            }
            let e = last_errno();
            // ERANGE: `len` now says how much room the list needs.
            if i32::from(e.0) != libc::ERANGE || count <= groups.len() {
                return Err(e);
            }
            groups.resize(count, 0);
        }
    }

    /// Have the kernel attach each incoming message's sender credentials
    /// (`SO_PASSCRED`): the ones the sender claimed with
    /// [`Self::send_credentials`] once the kernel checked them, else its
    /// real ids.
    pub fn pass_credentials(&self) -> Result<(), Errno> {
        let on: libc::c_int = 1;
        // SAFETY: `on` is a live int of the size passed.
        let ret = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&on as *const libc::c_int).cast(),
                core::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if ret != 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    /// Send one frame with this process's `uid`/`gid` claimed as
    /// `SCM_CREDENTIALS`. The kernel refuses (`EPERM`) ids that are not the
    /// sender's real, effective or saved ones, unless it may set ids.
    pub fn send_credentials(&self, frame: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
        let cred = libc::ucred {
            // SAFETY: getpid cannot fail and touches no memory.
            pid: unsafe { libc::getpid() },
            uid,
            gid,
        };
        let payload = core::mem::size_of::<libc::ucred>();
        self.send_frame(frame, libc::SCM_CREDENTIALS, payload, |data| {
            // SAFETY: `data` has room for one ucred (see `send_frame`).
            unsafe { data.cast::<libc::ucred>().write_unaligned(cred) }
        })
    }

    /// Send one frame as one datagram (never raising SIGPIPE).
    pub fn send(&self, frame: &[u8]) -> Result<(), Errno> {
        self.send_with_fds(frame, &[])
    }

    /// Send one frame with descriptors attached (`SCM_RIGHTS`).
    pub fn send_with_fds(&self, frame: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        if fds.len() > MAX_FDS {
            return Err(Errno::EINVAL);
        }
        let payload = core::mem::size_of_val(fds);
        self.send_frame(frame, libc::SCM_RIGHTS, payload, |data| {
            let data = data.cast::<libc::c_int>();
            for (i, fd) in fds.iter().enumerate() {
                // SAFETY: `data` has room for `fds.len()` ints (see
                // `send_frame`).
                unsafe { data.add(i).write_unaligned(fd.as_raw_fd()) };
            }
        })
    }

    /// Send `frame` as one datagram (never raising SIGPIPE) with one
    /// `SOL_SOCKET` control message of type `cmsg_type` whose `payload`
    /// bytes `fill` writes at the pointer it gets; no control message when
    /// `payload` is 0. Callers keep `payload` within one header's room in
    /// [`ControlBuf`] (at most [`MAX_FDS`] descriptors or one `ucred`).
    fn send_frame(
        &self,
        frame: &[u8],
        cmsg_type: libc::c_int,
        payload: usize,
        fill: impl FnOnce(*mut u8),
    ) -> Result<(), Errno> {
        let mut iov = libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        };
        let mut control = ControlBuf([0; CONTROL_LEN]);
        // SAFETY: msghdr is plain data; all zeroes is a valid value.
        let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if payload != 0 {
            let payload = payload as u32;
            msg.msg_control = control.0.as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE is pure arithmetic.
            msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as _;
            // SAFETY: the control buffer is aligned for cmsghdr and large
            // enough for one header and MAX_FDS descriptors or a ucred
            // (checked at compile time above), so the first header and its
            // data lie inside it.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = cmsg_type;
                (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
                fill(libc::CMSG_DATA(cmsg));
            }
        }
        // SAFETY: `msg` points at live buffers (the frame, `iov`, `control`)
        // for the duration of the call.
        retrying_eintr(|| unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
            .map(|_| ())
    }

    /// Receive one datagram into `buf`, blocking. Descriptors a peer
    /// attaches are refused (the kernel closes them: no control buffer).
    pub fn recv(&self, buf: &mut [u8]) -> Result<Datagram, Errno> {
        // SAFETY: `buf` is live and writable for `buf.len()` bytes.
        let received = retrying_eintr(|| unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        });
        match received {
            Ok(len) => Ok(datagram(len, buf.len())),
            Err(e) if i32::from(e.0) == libc::ECONNRESET => Ok(Datagram::Closed),
            Err(e) => Err(e),
        }
    }

    /// Receive one datagram and up to [`MAX_FDS`] descriptors passed with
    /// it; returns the datagram and how many of `fds` were filled.
    pub fn recv_with_fds(
        &self,
        buf: &mut [u8],
        fds: &mut [Option<OwnedFd>; MAX_FDS],
    ) -> Result<(Datagram, usize), Errno> {
        self.recv_with_ancillary(buf, fds)
            .map(|(datagram, count, _)| (datagram, count))
    }

    /// [`Self::recv_with_fds`], also returning the sender's credentials
    /// as the kernel checked them (`SCM_CREDENTIALS`: only with
    /// [`Self::pass_credentials`] on).
    pub fn recv_with_ancillary(
        &self,
        buf: &mut [u8],
        fds: &mut [Option<OwnedFd>; MAX_FDS],
    ) -> Result<(Datagram, usize, Option<PeerCred>), Errno> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = ControlBuf([0; CONTROL_LEN]);
        // SAFETY: msghdr is plain data; all zeroes is a valid value.
        let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        // SAFETY: `msg` points at live, writable buffers for the call.
        let ret = retrying_eintr(|| unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_TRUNC | libc::MSG_CMSG_CLOEXEC,
            )
        })?;
        let mut count = 0;
        let mut cred = None;
        // SAFETY: the kernel filled `control` with `msg_controllen` bytes of
        // well-formed cmsg headers; CMSG_FIRSTHDR/NXTHDR stay inside it, and
        // each SCM_RIGHTS payload holds `(cmsg_len - CMSG_LEN(0)) / 4`
        // descriptors that are now ours (each is owned exactly once below);
        // an SCM_CREDENTIALS payload is one `ucred`, read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let full = (*cmsg).cmsg_len as usize
                    >= libc::CMSG_LEN(core::mem::size_of::<libc::ucred>() as u32) as usize;
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS
                    && full
                {
                    let u = libc::CMSG_DATA(cmsg).cast::<libc::ucred>().read_unaligned();
                    cred = Some(PeerCred {
                        pid: u.pid as u32,
                        uid: u.uid,
                        gid: u.gid,
                    });
                }
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                    for i in 0..bytes / core::mem::size_of::<libc::c_int>() {
                        let fd = OwnedFd::from_raw_fd(data.add(i).read_unaligned());
                        if count < MAX_FDS {
                            fds[count] = Some(fd);
                            count += 1;
                        }
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        let datagram = datagram(ret, buf.len());
        Ok((datagram, count, cred))
    }

    /// Wait up to `budget` for a datagram (or a hang-up) without sleeping:
    /// poll without a timeout, yielding the CPU between polls, so the
    /// thread stays runnable throughout. `false` when the budget ran out.
    pub fn wait_readable_awake(&self, budget: Duration) -> bool {
        let deadline = Instant::now() + budget;
        loop {
            let mut fds = [libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if !matches!(poll(&mut fds, 0), Ok(0)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Whether the peer has hung up, without waiting.
    pub fn hung_up(&self) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        }];
        match poll(&mut fds, 0) {
            Ok(_) => fds[0].revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR) != 0,
            Err(_) => true,
        }
    }

    /// Shut both directions down: the peer (and any thread of ours polling
    /// this socket) sees a hang-up at once.
    pub fn shutdown(&self) {
        // SAFETY: plain call on a descriptor we own.
        unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_RDWR) };
    }
}
