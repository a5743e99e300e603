//! The task side of the kernel: system call wrappers, task spawning,
//! console printing, and [`IpcTransport`], the shim's transport over a
//! kernel IPC connection.

use crate::heap::{self, MAILBOX_WORDS};
use crate::kernel::{ConnId, Event, Sys, NEVER};
use crate::memory;
use alloc::alloc::{alloc, dealloc, Layout};
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::arch::asm;
use core::cell::RefCell;
use core::fmt;
use core::sync::atomic::AtomicU64;
use protocol::{Errno, MAX_FRAME};

/// The raw system call: `a0..a2` back.
fn syscall(nr: Sys, args: [u64; 7]) -> (u64, u64, u64) {
    let (a0, a1, a2);
    // SAFETY: ecall enters the kernel, which reads a0..a6 and a7, touches
    // only the memory the arguments name (checked against what the
    // calling task may touch itself), writes
    // a0..a2 and restores every other register.
    unsafe {
        asm!("ecall",
            inlateout("a0") args[0] => a0, inlateout("a1") args[1] => a1,
            inlateout("a2") args[2] => a2, in("a3") args[3], in("a4") args[4],
            in("a5") args[5], in("a6") args[6], in("a7") nr as u64,
            options(nostack));
    }
    (a0, a1, a2)
}

fn result(a0: u64) -> Result<u64, Errno> {
    let v = a0 as i64;
    if (-4095..0).contains(&v) {
        Err(Errno((-v) as u16))
    } else {
        Ok(a0)
    }
}

/// A system call with raw arguments, as any task can make with `ecall`
/// (the kernel checks each: an address the caller may not touch is
/// `EFAULT`). The isolation suite names other tasks' memory with it.
pub fn raw_call(nr: Sys, args: &[u64]) -> Result<u64, Errno> {
    call0(nr, &args[..args.len().min(7)])
}

fn call0(nr: Sys, args: &[u64]) -> Result<u64, Errno> {
    let mut all = [0u64; 7];
    all[..args.len()].copy_from_slice(args);
    result(syscall(nr, all).0)
}

pub fn console(bytes: &[u8]) {
    let _ = call0(Sys::Console, &[bytes.as_ptr() as u64, bytes.len() as u64]);
}

pub fn exit(code: i64) -> ! {
    let _ = call0(Sys::Exit, &[code as u64]);
    unreachable_after_exit()
}

fn unreachable_after_exit() -> ! {
    // The kernel never resumes an exited task.
    loop {
        core::hint::spin_loop();
    }
}

/// Open a connection to `server`, as `(uid, gid)` (not (0, 0) needs a
/// privileged task).
pub fn connect(server: usize, uid: u32, gid: u32) -> Result<ConnId, Errno> {
    call0(
        Sys::Connect,
        &[server as u64, u64::from(uid), u64::from(gid)],
    )
}

pub fn close(conn: ConnId) -> Result<(), Errno> {
    call0(Sys::Close, &[conn]).map(drop)
}

/// Queue `frame` to the server; waits (yielding) while the kernel's
/// queues are full.
pub fn send(conn: ConnId, frame: &[u8]) -> Result<(), Errno> {
    loop {
        match call0(
            Sys::Send,
            &[conn, frame.as_ptr() as u64, frame.len() as u64],
        ) {
            Err(Errno::EAGAIN) => yield_now(),
            r => return r.map(drop),
        }
    }
}

/// The next frame the server sent on `conn`.
pub fn recv(conn: ConnId, buf: &mut [u8], deadline: u64) -> Result<usize, Errno> {
    let args = [conn, buf.as_mut_ptr() as u64, buf.len() as u64, deadline];
    call0(Sys::Recv, &args).map(|n| n as usize)
}

/// Send `request` and wait for the next frame on `conn`.
pub fn call(conn: ConnId, request: &[u8], reply: &mut [u8]) -> Result<usize, Errno> {
    loop {
        let args = [
            conn,
            request.as_ptr() as u64,
            request.len() as u64,
            reply.as_mut_ptr() as u64,
            reply.len() as u64,
        ];
        match call0(Sys::Call, &args) {
            Err(Errno::EAGAIN) => yield_now(),
            r => return r.map(|n| n as usize),
        }
    }
}

/// [`call`] with one buffer: the request is the first `len` bytes of
/// `frame` and the reply is written over it (the kernel takes the request
/// when it is sent, before any reply can exist). The reply's length.
/// Inlined into the transport's `exchange`, every client request's path.
#[inline(always)]
pub fn call_in_place(
    conn: ConnId,
    frame: &mut [u8; MAX_FRAME],
    len: usize,
) -> Result<usize, Errno> {
    if len > MAX_FRAME {
        return Err(Errno::EMSGSIZE);
    }
    loop {
        let args = [
            conn,
            frame.as_ptr() as u64,
            len as u64,
            frame.as_mut_ptr() as u64,
            MAX_FRAME as u64,
        ];
        match call0(Sys::Call, &args) {
            Err(Errno::EAGAIN) => yield_now(),
            r => return r.map(|n| n as usize),
        }
    }
}

/// What a server's receive produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    Frame {
        conn: ConnId,
        len: usize,
    },
    /// A frame that did not fit the buffer (or could not be copied).
    Bad {
        conn: ConnId,
        errno: Errno,
    },
    Open {
        conn: ConnId,
        uid: u32,
        gid: u32,
    },
    Hangup {
        conn: ConnId,
    },
}

pub fn receive(buf: &mut [u8], deadline: u64) -> Result<Received, Errno> {
    let (a0, a1, a2) = syscall(
        Sys::Receive,
        [
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            deadline,
            0,
            0,
            0,
            0,
        ],
    );
    received(a0, a1, a2)
}

/// Answer `frame` on `conn` (as [`reply`]) and wait for the next event
/// (as [`receive`]), in one trap: a server's usual step. A reply to a
/// client that is gone is dropped (its hang-up follows); one the kernel
/// cannot take is the error, and nothing was received. Inlined: memsrv's
/// loop makes it once a request, and out of line its arguments were
/// moved twice around the trap.
#[inline(always)]
pub fn reply_receive(
    conn: ConnId,
    frame: &[u8],
    buf: &mut [u8],
    deadline: u64,
) -> Result<Received, Errno> {
    loop {
        let (a0, a1, a2) = syscall(
            Sys::ReplyReceive,
            [
                conn,
                frame.as_ptr() as u64,
                frame.len() as u64,
                buf.as_mut_ptr() as u64,
                buf.len() as u64,
                deadline,
                0,
            ],
        );
        match received(a0, a1, a2) {
            // The client's queue is full: the reply was not taken.
            Err(Errno::EAGAIN) => yield_now(),
            r => return r,
        }
    }
}

/// A receive's registers as what it produced.
#[inline(always)]
fn received(a0: u64, a1: u64, a2: u64) -> Result<Received, Errno> {
    let conn = result(a0)?;
    Ok(match a2 {
        x if x == Event::Open as u64 => Received::Open {
            conn,
            uid: (a1 >> 32) as u32,
            gid: a1 as u32,
        },
        x if x == Event::Hangup as u64 => Received::Hangup { conn },
        _ => match result(a1) {
            Ok(len) => Received::Frame {
                conn,
                len: len as usize,
            },
            Err(errno) => Received::Bad { conn, errno },
        },
    })
}

/// Answer on `conn` (or send unasked); waits while queues are full.
pub fn reply(conn: ConnId, frame: &[u8]) -> Result<(), Errno> {
    loop {
        match call0(
            Sys::Reply,
            &[conn, frame.as_ptr() as u64, frame.len() as u64],
        ) {
            Err(Errno::EAGAIN) => yield_now(),
            r => return r.map(drop),
        }
    }
}

/// memsrv names the arena ranges the process on `conn` has mapped,
/// ascending and apart: the kernel lets that connection's client task
/// touch them and no other arena memory (`ENOMEM` if its pool has no
/// room: the task then has none). `Ok(false)`: that task is not confined
/// (it serves memory or is privileged), so its ranges need not be named
/// again.
pub fn set_regions(conn: ConnId, ranges: &[(u64, u64)]) -> Result<bool, Errno> {
    let words: Vec<u64> = ranges
        .iter()
        .flat_map(|&(s, e)| [s.to_le(), e.to_le()])
        .collect();
    let count = ranges.len() as u64;
    call0(Sys::Regions, &[conn, words.as_ptr() as u64, count]).map(|r| r == 0)
}

pub fn hangup(conn: ConnId) -> Result<(), Errno> {
    call0(Sys::Hangup, &[conn]).map(drop)
}

pub fn yield_now() {
    let _ = call0(Sys::Yield, &[]);
}

pub fn sleep_until(deadline_ms: u64) {
    let _ = call0(Sys::Sleep, &[deadline_ms]);
}

pub fn power_off(code: u64) -> ! {
    let _ = call0(Sys::PowerOff, &[code]);
    exit(code as i64)
}

/// Milliseconds since boot (`time` is readable in user mode).
pub fn now_ms() -> u64 {
    crate::arch::ticks() / crate::arch::TICKS_PER_MS
}

/// Instructions retired so far (exact under QEMU `-icount`).
pub fn instructions() -> u64 {
    let n: u64;
    // SAFETY: reading instret has no side effects; the kernel made it
    // readable in user mode.
    unsafe { asm!("rdinstret {}", out(reg) n) };
    n
}

pub const FOREVER: u64 = NEVER;

/// A user task's own heap, at least (its region is the power of two that
/// holds the heap and the stack, so often more).
pub const TASK_HEAP: usize = 64 << 10;

/// A started task: its id and its memory (freed when joined).
pub struct Task {
    pub id: usize,
    memory: TaskMemory,
}

enum TaskMemory {
    /// A server's stack, in the shared task heap (held only to be freed
    /// with the handle).
    Stack(#[allow(dead_code)] Vec<u128>),
    /// A user task's or a driver's region: its heap (from `base`) and its
    /// stack (at the top), one naturally aligned block of the region pool.
    Region { base: u64, layout: Layout },
}

impl Task {
    /// Let the task run for the rest of the machine's life (a server):
    /// its memory is never freed. Its id.
    pub fn detach(self) -> usize {
        let id = self.id;
        core::mem::forget(self);
        id
    }

    /// Wait for the task to end; its exit code.
    pub fn join(self) -> Result<i64, Errno> {
        let (a0, a1, _) = syscall(Sys::Join, [self.id as u64, NEVER, 0, 0, 0, 0, 0]);
        if let Err(e) = result(a0) {
            // Not known to have ended: its memory is never freed.
            core::mem::forget(self);
            return Err(e);
        }
        drop(self);
        Ok(a1 as i64)
    }

    /// A user task's or a driver's mailbox: words the task and its
    /// spawner both read and write (the task sees them as [`mailbox`]).
    /// `None` for a server.
    pub fn mailbox(&self) -> Option<&[AtomicU64; MAILBOX_WORDS]> {
        match self.memory {
            TaskMemory::Stack(_) => None,
            // SAFETY: the region holds a header `heap::init` made, and
            // stays until this handle is dropped (after the task ended).
            TaskMemory::Region { base, .. } => {
                Some(unsafe { &(*(base as *const heap::Header)).mailbox })
            }
        }
    }
}

impl Drop for Task {
    /// Only a joined task is dropped (an unjoined one is never freed:
    /// `join` consumes the handle, `detach` forgets it), so its memory is
    /// no one's any more.
    fn drop(&mut self) {
        if let TaskMemory::Region { base, layout } = self.memory {
            free_region(base, layout);
        }
    }
}

/// The calling task's mailbox ([`Task::mailbox`]).
pub fn mailbox() -> &'static [AtomicU64; MAILBOX_WORDS] {
    &heap::current().mailbox
}

/// Where the calling task's copy of the static at `addr` is kept while
/// another task's copy of the statics is in place (`kernel/pmp.rs`): in
/// its heap's header. `None` if `addr` is not in the statics.
pub fn saved_static_at(addr: u64) -> Option<u64> {
    let statics = crate::memory::statics();
    statics
        .contains(&addr)
        .then(|| heap::gp() + heap::STATICS_COPY_AT + (addr - statics.start))
}

type Body = Box<dyn FnOnce() -> i64 + Send>;

extern "C" fn run_body(arg: u64) -> i64 {
    // SAFETY: `arg` is the pointer `spawn_raw`'s caller made with
    // Box::into_raw of a Box<Body> in this task's heap, handed to exactly
    // this one task, which takes it back once.
    let body: Box<Body> = unsafe { Box::from_raw(arg as *mut Body) };
    body()
}

extern "C" fn task_return(code: i64) -> ! {
    exit(code)
}

/// Start `body` as a user task with a stack of `stack` bytes and a heap
/// of [`TASK_HEAP`] (privileged tasks only): it may touch its own region,
/// the mappings its processes hold and its own copy of the runtime's
/// statics, nothing else (`kernel/pmp.rs`).
pub fn spawn(
    name: &str,
    stack: usize,
    body: impl FnOnce() -> i64 + Send + Clone + 'static,
) -> Result<Task, Errno> {
    spawn_user(name, stack, TASK_HEAP, || Ok(0), body)
}

/// Start `body` as a user task in a region of its own: a naturally
/// aligned power-of-two block holding a heap of at least `heap` bytes and
/// a stack of `stack`. `tls` runs first and gives its thread pointer (0:
/// none). Both `tls` and a clone of `body` run with the child's heap as
/// theirs, so what they allocate (and what `body` captures: Strings,
/// Vecs) lies in memory the child may touch; the child frees it there. A
/// capture that points elsewhere (an `Arc` of the spawner's) would fault
/// in the child: share words through [`Task::mailbox`] instead.
pub fn spawn_user(
    name: &str,
    stack: usize,
    heap: usize,
    tls: impl FnOnce() -> Result<u64, Errno>,
    body: impl FnOnce() -> i64 + Send + Clone + 'static,
) -> Result<Task, Errno> {
    spawn_in_region(name, stack, heap, 0, tls, body)
}

/// [`spawn_user`] as a task of `role` (a spawn flag: none for a user
/// task, the driver bit for a driver).
fn spawn_in_region(
    name: &str,
    stack: usize,
    heap: usize,
    role: u64,
    tls: impl FnOnce() -> Result<u64, Errno>,
    body: impl FnOnce() -> i64 + Send + Clone + 'static,
) -> Result<Task, Errno> {
    if stack < 4096 {
        return Err(Errno::EINVAL);
    }
    // The stack pointer must stay 16-byte aligned; room for the header
    // and the task's copy of the statics.
    let stack = stack.next_multiple_of(16);
    let size = stack
        .checked_add(heap)
        .and_then(|n| n.checked_add(heap::reserved()))
        .and_then(usize::checked_next_power_of_two)
        .ok_or(Errno::ENOMEM)?;
    let layout = Layout::from_size_align(size, size).map_err(|_| Errno::ENOMEM)?;
    // From the region pool, which drivers do not reach.
    // SAFETY: a non-zero size.
    let base = heap::with_heap(memory::region_pool().start, || unsafe { alloc(layout) }) as u64;
    if base == 0 {
        return Err(Errno::ENOMEM);
    }
    // SAFETY: a fresh block of `size` bytes, this task's until freed; the
    // heap ends where the stack begins.
    unsafe { heap::init(base, (size - stack) as u64) };
    let top = base + size as u64;
    // The kernel takes [gp, top) as the child's region: gp is the child's
    // heap while it is spawned.
    let started = heap::with_heap(base, || {
        let tls = tls()?;
        let arg = Box::into_raw(Box::new(Box::new(body.clone()) as Body)) as u64;
        spawn_raw(name, stack, role, tls, arg, top)
    });
    drop(body);
    match started {
        Ok(id) => Ok(Task {
            id,
            memory: TaskMemory::Region { base, layout },
        }),
        Err(e) => {
            // Nothing runs in it: what was put there goes with it.
            free_region(base, layout);
            Err(e)
        }
    }
}

/// Give a user task's region back to the region pool.
fn free_region(base: u64, layout: Layout) {
    // SAFETY: allocated with this layout by `spawn_user` from the region
    // pool, and no task runs in it any more.
    heap::with_heap(memory::region_pool().start, || unsafe {
        dealloc(base as *mut u8, layout)
    });
}

/// Start `body` as memsrv: it may touch the task heap, the arena, the
/// devices and the flash ([`Role::Server`](crate::kernel::pmp::Role)). It
/// allocates from the shared task heap, as its spawner does.
pub fn spawn_server(
    name: &str,
    stack: usize,
    body: impl FnOnce() -> i64 + Send + 'static,
) -> Result<Task, Errno> {
    spawn_on_task_heap(name, stack, crate::kernel::task_table::SERVER, body)
}

/// Start `body` as a backing device's driver in a region of its own, as
/// [`spawn_user`] starts a user task (a heap of at least `heap` bytes, a
/// stack of `stack`; `body` cloned into that heap): it may touch its
/// region, read the flash, the one device it claims, and in the
/// arena only what memsrv names for its connection: its backing runs and
/// the page it fills for a call
/// ([`Role::Driver`](crate::kernel::pmp::Role)). Not the task heap, where
/// init and memsrv allocate, nor another driver's region.
pub fn spawn_driver(
    name: &str,
    stack: usize,
    heap: usize,
    body: impl FnOnce() -> i64 + Send + Clone + 'static,
) -> Result<Task, Errno> {
    spawn_in_region(
        name,
        stack,
        heap,
        crate::kernel::task_table::DRIVER,
        || Ok(0),
        body,
    )
}

/// Start `body` with its stack and allocations in the shared task heap,
/// as a task of `role` (a spawn flag).
fn spawn_on_task_heap(
    name: &str,
    stack: usize,
    role: u64,
    body: impl FnOnce() -> i64 + Send + 'static,
) -> Result<Task, Errno> {
    if stack < 4096 {
        return Err(Errno::EINVAL);
    }
    // u128 words: the stack pointer must stay 16-byte aligned.
    let stack_mem = vec![0u128; stack / 16];
    let stack = stack_mem.len() * 16;
    let top = stack_mem.as_ptr() as u64 + stack as u64;
    let arg = Box::into_raw(Box::new(Box::new(body) as Body)) as u64;
    let id = spawn_raw(name, stack, role, 0, arg, top)?;
    Ok(Task {
        id,
        memory: TaskMemory::Stack(stack_mem),
    })
}

/// `Spawn` of `run_body(arg)` with `role` the server or driver bit (or
/// none: a user task); on failure the body is freed.
fn spawn_raw(
    name: &str,
    stack: usize,
    role: u64,
    tls: u64,
    arg: u64,
    top: u64,
) -> Result<usize, Errno> {
    let flags = name.len().min(0xffff) as u64 | (stack as u64) << 16 | role;
    let r = call0(
        Sys::Spawn,
        &[
            run_body as *const () as usize as u64,
            arg,
            top,
            tls,
            name.as_ptr() as u64,
            flags,
            task_return as *const () as usize as u64,
        ],
    );
    if r.is_err() {
        // SAFETY: the kernel refused, so no task took the box.
        drop(unsafe { Box::from_raw(arg as *mut Body) });
    }
    r.map(|id| id as usize)
}

/// A kernel IPC connection as the shim's transport: one call at a time.
pub struct IpcTransport {
    pub conn: ConnId,
    /// The connection's frame, allocated once (a task's stack is small):
    /// a request is encoded into it and its reply received over it.
    frame: RefCell<Box<Frame>>,
}

/// A frame buffer, word aligned: the kernel copies a frame between two
/// such buffers a word at a time.
#[repr(C, align(8))]
pub struct Frame(pub [u8; MAX_FRAME]);

impl Frame {
    pub const fn new() -> Self {
        Self([0; MAX_FRAME])
    }
}

impl Default for Frame {
    fn default() -> Self {
        Self::new()
    }
}

impl IpcTransport {
    pub fn new(conn: ConnId) -> Self {
        Self {
            conn,
            frame: RefCell::new(Box::new(Frame::new())),
        }
    }
}

impl nommu::Transport for IpcTransport {
    fn call(&self, request: &[u8], reply: &mut [u8; MAX_FRAME]) -> Result<usize, Errno> {
        call(self.conn, request, reply)
    }

    fn exchange(
        &self,
        encode: &mut dyn FnMut(&mut [u8; MAX_FRAME]) -> usize,
        decode: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Errno> {
        // A call made while decoding (none is) would find the frame lent.
        let mut frame = self.frame.try_borrow_mut().map_err(|_| Errno::EBUSY)?;
        let frame = &mut frame.0;
        let len = encode(frame);
        let got = call_in_place(self.conn, frame, len)?;
        decode(frame.get(..got).ok_or(Errno::EMSGSIZE)?);
        Ok(())
    }
}

impl Drop for IpcTransport {
    fn drop(&mut self) {
        let _ = close(self.conn);
    }
}

/// Console output from a task, a line at a time.
pub struct Out {
    buf: heapless::Vec<u8, 256>,
}

impl Out {
    pub const fn new() -> Self {
        Self {
            buf: heapless::Vec::new(),
        }
    }

    pub fn flush(&mut self) {
        console(&self.buf);
        self.buf.clear();
    }
}

impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.buf.push(b).is_err() {
                self.flush();
                let _ = self.buf.push(b);
            }
        }
        Ok(())
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut out = $crate::sys::Out::new();
        let _ = writeln!(out, $($arg)*);
        out.flush();
    }};
}
