//! memsrv driven by arbitrary sequences of steps from several connections:
//! clients connecting, calling (structured requests aimed at live
//! addresses, descriptors and ids, or arbitrary bodies and raw bytes) and
//! closing; drivers registering, taking storage and answering the
//! server's requests with arbitrary replies; the clock ticking. The
//! server's invariant checker runs after every step.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nommu_fuzz::{Harness, CLIENTS};
use protocol::linux::*;
use protocol::{
    DriverOps, DriverRegistration, DriverReply, Errno, MemoryCall, MessageKind, ObjectInfo,
    ObjectKind, OffsetUnit, Path, ProcView, Request, Sysctl, PAGE_SIZE,
};

const MOUNTS: [&str; 4] = ["/mnt", "/dev/shm", "/dev/fb0", "/mnt/sub"];
/// Names, bytes as a path's are: text, a separator, a parent, bytes that
/// are not UTF-8 and a NUL no C caller could send.
const NAMES: [&[u8]; 6] = [b"", b"a", b"b/c", b"../x", b"\x80\xff\n", b"a\0b"];

#[derive(Arbitrary, Debug)]
enum Len {
    Pages(u8),
    Bytes(u16),
    Raw(u64),
}

impl Len {
    fn get(&self) -> u64 {
        match *self {
            Len::Pages(p) => u64::from(p % 17) * PAGE_SIZE,
            Len::Bytes(b) => u64::from(b),
            Len::Raw(r) => r,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Call {
    Hello {
        ticket: Option<u8>,
    },
    Clone {
        vm: bool,
        vfork: bool,
    },
    Fork,
    Exit,
    Exec,
    Mmap {
        addr: u8,
        len: Len,
        prot: u8,
        flags: u8,
        fd: u8,
        pgoff: u8,
        pages: bool,
    },
    Munmap {
        addr: u8,
        len: Len,
    },
    Mremap {
        addr: u8,
        old: Len,
        new: Len,
        flags: u8,
        new_addr: u8,
    },
    MemoryCall {
        call: u8,
        addr: u8,
        len: Len,
        arg: u8,
    },
    ReadProc {
        view: u8,
        pid: u8,
        offset: u16,
    },
    Sysctl {
        value: Option<i8>,
    },
    Open {
        mount: u8,
        name: u8,
        flags: u16,
        mode: u16,
    },
    Close {
        fd: u8,
    },
    Read {
        fd: u8,
        len: u16,
        offset: Option<u16>,
    },
    Write {
        fd: u8,
        len: u16,
        offset: Option<u16>,
    },
    Ftruncate {
        fd: u8,
        len: Len,
    },
    Fstat {
        fd: u8,
    },
    Lseek {
        fd: u8,
        offset: i16,
        whence: u8,
    },
    Unlink {
        mount: u8,
        name: u8,
    },
    Register {
        mount: u8,
        noexec: bool,
        read_only: bool,
    },
    AllocBacking {
        pages: u8,
    },
    FreeBacking {
        addr: u8,
        pages: u8,
    },
    Exclusive {
        begin: bool,
        object: u8,
    },
    ListMounts,
    Ptrace {
        op: u8,
        pid: u8,
        addr: u8,
        word: u64,
    },
    Shmget {
        key: u8,
        size: Len,
        flags: u16,
    },
    Shmat {
        id: u8,
        addr: u8,
        flags: u16,
    },
    Shmdt {
        addr: u8,
    },
    Shmctl {
        op: u8,
        id: u8,
        mode: u16,
    },
    Futex {
        uaddr: u8,
        op: u8,
        val: u8,
        timeout: Option<u16>,
        val2: u8,
        uaddr2: u8,
        val3: u8,
    },
    SetAttributes {
        mount: u8,
        name: u8,
        fd: Option<u8>,
        mode: Option<u16>,
        uid: Option<u8>,
        gid: Option<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Answer {
    Error(u8),
    Done,
    Opened {
        object: u8,
        kind: u8,
        mode: u16,
        size: Len,
        caps: Option<u8>,
        ops: u8,
        io: bool,
    },
    Count(Len),
    Data(u16),
    Address {
        addr: u8,
        offset: u16,
    },
    /// The request's own natural answer, roughly right, to get flows on.
    Plausible {
        object: u8,
    },
    /// A memory filesystem's answer with an owner.
    Owned {
        object: u8,
        mode: u16,
        uid: u8,
        gid: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum Step {
    Connect {
        client: u8,
        uid: u8,
        host_pid: Option<u8>,
    },
    Disconnect {
        client: u8,
    },
    Call {
        client: u8,
        call: Call,
    },
    Body {
        client: u8,
        tag: u16,
        body: Vec<u8>,
    },
    Raw {
        client: u8,
        bytes: Vec<u8>,
    },
    Answer {
        pick: u8,
        answer: Answer,
    },
    AnswerBody {
        pick: u8,
        body: Vec<u8>,
    },
    Tick {
        ms: u8,
    },
}

fn path(mount: u8, name: u8) -> Path {
    let m = MOUNTS[usize::from(mount) % MOUNTS.len()];
    let n = NAMES[usize::from(name) % NAMES.len()];
    let mut p = Path::new();
    let _ = p.extend_from_slice(m.as_bytes());
    if !n.is_empty() {
        let _ = p.extend_from_slice(b"/");
        let _ = p.extend_from_slice(n);
    }
    p
}

fn request(h: &Harness, call: &Call) -> Request {
    let fd = |x: u8| h.value(x) as i32;
    match *call {
        Call::Hello { ticket } => Request::Hello {
            ticket: ticket.map(|t| h.value(t) as u64),
        },
        Call::Clone { vm, vfork } => Request::Clone {
            flags: SIGCHLD | if vm { CLONE_VM } else { 0 } | if vfork { CLONE_VFORK } else { 0 },
        },
        Call::Fork => Request::Fork,
        Call::Exit => Request::Exit,
        Call::Exec => Request::Exec,
        Call::Mmap {
            addr,
            ref len,
            prot,
            flags,
            fd: f,
            pgoff,
            pages,
        } => {
            let kind = [MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, 0][usize::from(flags & 3)];
            let extra = [
                0,
                MAP_ANONYMOUS,
                MAP_FIXED,
                MAP_UNINITIALIZED | MAP_ANONYMOUS,
            ][usize::from((flags >> 2) & 3)]
                | if flags & 0x10 != 0 { MAP_GROWSDOWN } else { 0 }
                | if flags & 0x20 != 0 {
                    MAP_FIXED_NOREPLACE
                } else {
                    0
                }
                | if flags & 0x40 != 0 { MAP_ANONYMOUS } else { 0 };
            Request::Mmap {
                addr: if flags & 0x80 != 0 { h.addr(addr) } else { 0 },
                len: len.get(),
                prot: u32::from(prot & 7),
                flags: kind | extra,
                fd: fd(f),
                offset: if pages {
                    u64::from(pgoff)
                } else {
                    u64::from(pgoff) * PAGE_SIZE
                },
                unit: if pages {
                    OffsetUnit::Pages
                } else {
                    OffsetUnit::Bytes
                },
            }
        }
        Call::Munmap { addr, ref len } => Request::Munmap {
            addr: h.addr(addr),
            len: len.get(),
        },
        Call::Mremap {
            addr,
            ref old,
            ref new,
            flags,
            new_addr,
        } => Request::Mremap {
            addr: h.addr(addr),
            old_len: old.get(),
            new_len: new.get(),
            flags: u32::from(flags & 7),
            new_addr: h.addr(new_addr),
        },
        Call::MemoryCall {
            call,
            addr,
            ref len,
            arg,
        } => Request::MemoryCall {
            call: MemoryCall::ALL[usize::from(call % 9)],
            addr: h.addr(addr),
            len: len.get(),
            arg: u32::from(arg),
        },
        Call::ReadProc { view, pid, offset } => Request::ReadProc {
            view: match view % 5 {
                0 => ProcView::GlobalMaps,
                1 => ProcView::ProcessMaps {
                    pid: h.value(pid) as u32,
                },
                2 => ProcView::SelfMaps,
                3 => ProcView::Meminfo,
                _ => ProcView::SysvShm,
            },
            offset: u32::from(offset),
        },
        Call::Sysctl { value } => match value {
            None => Request::ReadSysctl {
                name: Sysctl::NrTrimPages,
            },
            Some(v) => Request::WriteSysctl {
                name: Sysctl::NrTrimPages,
                value: i64::from(v),
            },
        },
        Call::Open {
            mount,
            name,
            flags,
            mode,
        } => Request::Open {
            path: path(mount, name),
            flags: u32::from(flags),
            mode: u32::from(mode),
        },
        Call::Close { fd: f } => Request::Close { fd: fd(f) },
        Call::Read { fd: f, len, offset } => Request::Read {
            fd: fd(f),
            len: u32::from(len),
            offset: offset.map(u64::from),
        },
        Call::Write { fd: f, len, offset } => {
            let n = usize::from(len) % (protocol::DATA_CHUNK + 1);
            Request::Write {
                fd: fd(f),
                data: protocol::Bytes::from_slice(&vec![0x5a; n]).unwrap_or_default(),
                offset: offset.map(u64::from),
            }
        }
        Call::Ftruncate { fd: f, ref len } => Request::Ftruncate {
            fd: fd(f),
            len: len.get(),
        },
        Call::Fstat { fd: f } => Request::Fstat { fd: fd(f) },
        Call::Lseek {
            fd: f,
            offset,
            whence,
        } => Request::Lseek {
            fd: fd(f),
            offset: i64::from(offset),
            whence: u32::from(whence % 5),
        },
        Call::Unlink { mount, name } => Request::Unlink {
            path: path(mount, name),
        },
        Call::Register {
            mount,
            noexec,
            read_only,
        } => {
            let mut name = heapless::String::new();
            let _ = name.push_str("fuzz");
            let mut m = protocol::MountName::new();
            let _ = m.push_str(MOUNTS[usize::from(mount) % MOUNTS.len()]);
            Request::RegisterDriver(DriverRegistration {
                name,
                mount: m,
                dev: (1, mount),
                noexec,
                read_only,
            })
        }
        Call::AllocBacking { pages } => Request::AllocBacking {
            pages: u64::from(pages % 9),
        },
        Call::FreeBacking { addr, pages } => Request::FreeBacking {
            addr: h.addr(addr),
            pages: u64::from(pages % 9),
        },
        Call::Exclusive { begin, object } => {
            let object = u64::from(object % 8);
            if begin {
                Request::BeginExclusive { object }
            } else {
                Request::EndExclusive { object }
            }
        }
        Call::ListMounts => Request::ListMounts,
        Call::Ptrace {
            op,
            pid,
            addr,
            word,
        } => {
            let pid = h.value(pid) as u32;
            let addr = h.addr(addr).wrapping_add(u64::from(op >> 2) * 4);
            match op % 4 {
                0 => Request::PtraceAttach { pid },
                1 => Request::PtraceDetach { pid },
                2 => Request::PtracePeek { pid, addr },
                _ => Request::PtracePoke { pid, addr, word },
            }
        }
        Call::Shmget {
            key,
            ref size,
            flags,
        } => Request::Shmget {
            key: i32::from(key % 4),
            size: size.get(),
            flags: i32::from(flags & 0o7777),
        },
        Call::Shmat { id, addr, flags } => Request::Shmat {
            shmid: h.value(id) as i32,
            addr: if flags & 1 != 0 { h.addr(addr) } else { 0 },
            flags: i32::from(flags) & (SHM_RDONLY | SHM_RND | SHM_REMAP | SHM_EXEC),
        },
        Call::Shmdt { addr } => Request::Shmdt { addr: h.addr(addr) },
        Call::Shmctl { op, id, mode } => {
            let shmid = h.value(id) as i32;
            match op % 5 {
                0 => Request::ShmStat { shmid },
                1 => Request::ShmSet {
                    shmid,
                    uid: u32::from(mode >> 12) * 1000,
                    gid: 0,
                    mode: u32::from(mode & 0o777),
                },
                2 => Request::ShmRemove { shmid },
                3 => Request::ShmLock { shmid, lock: true },
                _ => Request::ShmLock { shmid, lock: false },
            }
        }
        Call::SetAttributes {
            mount,
            name,
            fd: f,
            mode,
            uid,
            gid,
        } => Request::SetAttributes {
            target: match f {
                Some(f) => protocol::AttributeTarget::Fd(fd(f)),
                None => protocol::AttributeTarget::Path(path(mount, name)),
            },
            mode: mode.map(u32::from),
            // Ids 0 (root) and 1000, 1001: the users the harness connects.
            uid: uid.map(|u| [0, 1000, 1001][usize::from(u % 3)]),
            gid: gid.map(|g| [0, 1000, 1001][usize::from(g % 3)]),
        },
        Call::Futex {
            uaddr,
            op,
            val,
            timeout,
            val2,
            uaddr2,
            val3,
        } => Request::Futex {
            uaddr: h.addr(uaddr).wrapping_add(u64::from(val3 & 3) * 4),
            op: u32::from(op % 11)
                | if op & 0x80 != 0 {
                    FUTEX_PRIVATE_FLAG
                } else {
                    0
                },
            val: u32::from(val),
            timeout_ns: timeout.map(|t| u64::from(t) * 1_000_000),
            val2: u32::from(val2),
            uaddr2: h.addr(uaddr2),
            val3: if val3 & 0x80 != 0 {
                FUTEX_BITSET_MATCH_ANY
            } else {
                u32::from(val3)
            },
        },
    }
}

fn driver_reply(h: &Harness, request: &protocol::DriverRequest, answer: &Answer) -> DriverReply {
    use protocol::DriverRequest as D;
    let opened = |object: u64, size: u64| {
        DriverReply::Opened(ObjectInfo {
            object,
            ino: object,
            kind: ObjectKind::MemoryFile,
            mode: 0o644,
            size,
            caps: None,
            ops: DriverOps(0x3f),
            io_memory: false,
        })
    };
    match *answer {
        Answer::Error(e) => DriverReply::Error(Errno(u16::from(e))),
        Answer::Done => DriverReply::Done,
        Answer::Opened {
            object,
            kind,
            mode,
            ref size,
            caps,
            ops,
            io,
        } => DriverReply::Opened(ObjectInfo {
            object: u64::from(object % 8),
            ino: u64::from(object),
            kind: ObjectKind::ALL[usize::from(kind % 7)],
            mode: u32::from(mode),
            size: size.get(),
            caps,
            ops: DriverOps(ops),
            io_memory: io,
        }),
        Answer::Count(ref n) => DriverReply::Count(n.get()),
        Answer::Data(n) => {
            let n = usize::from(n) % (protocol::DATA_CHUNK + 1);
            DriverReply::Data(protocol::Bytes::from_slice(&vec![0xa5; n]).unwrap_or_default())
        }
        Answer::Address { addr, offset } => {
            DriverReply::Address(h.addr(addr).wrapping_add(u64::from(offset)))
        }
        Answer::Owned {
            object,
            mode,
            uid,
            gid,
        } => {
            let DriverReply::Opened(mut info) = opened(u64::from(object % 8), PAGE_SIZE) else {
                return DriverReply::Done;
            };
            info.mode = u32::from(mode);
            let owner = protocol::Owner {
                uid: [0, 1000, 1001][usize::from(uid % 3)],
                gid: [0, 1000, 1001][usize::from(gid % 3)],
            };
            DriverReply::Owned { info, owner }
        }
        Answer::Plausible { object } => match request {
            D::Lookup { .. } => opened(u64::from(object % 8), u64::from(object) * 512),
            D::Stat { object } => opened(*object, 4 * PAGE_SIZE),
            D::Read { len, .. } => DriverReply::Count(*len),
            D::ReadData { len, .. } => {
                let n = (*len as usize).min(protocol::DATA_CHUNK);
                DriverReply::Data(protocol::Bytes::from_slice(&vec![1; n]).unwrap_or_default())
            }
            D::WriteData { data, .. } => DriverReply::Count(data.len() as u64),
            D::GetUnmappedArea { .. } => DriverReply::Address(h.addr(object)),
            D::SetAttributes { object, .. } => opened(*object, PAGE_SIZE),
            _ => DriverReply::Done,
        },
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let mut h = Harness::new();
    // Every connection starts open (root and two users); steps may close
    // and reopen them.
    for c in 0..CLIENTS {
        h.connect(c, [0, 1000, 1001][c as usize % 3], None);
    }
    for step in steps.iter().take(256) {
        match step {
            Step::Connect {
                client,
                uid,
                host_pid,
            } => h.connect(
                u64::from(*client) % CLIENTS,
                [0, 1000, 1001][usize::from(*uid % 3)],
                host_pid.map(|p| 100 + u32::from(p % 4)),
            ),
            Step::Disconnect { client } => h.disconnect(u64::from(*client) % CLIENTS),
            Step::Call { client, call } => {
                let request = request(&h, call);
                h.call(u64::from(*client) % CLIENTS, &request);
            }
            Step::Body { client, tag, body } => {
                let frame = Harness::body_frame(MessageKind::Request, u32::from(*tag), body);
                h.frame(u64::from(*client) % CLIENTS, &frame);
            }
            Step::Raw { client, bytes } => h.frame(u64::from(*client) % CLIENTS, bytes),
            Step::Answer { pick, answer } => {
                if let Some(to) = h.take_outstanding(usize::from(*pick)) {
                    let reply = driver_reply(&h, &to.request, answer);
                    h.answer(&to, &reply);
                }
            }
            Step::AnswerBody { pick, body } => {
                if let Some(to) = h.take_outstanding(usize::from(*pick)) {
                    h.answer_body(&to, body);
                }
            }
            Step::Tick { ms } => h.tick(u64::from(*ms)),
        }
    }
});
