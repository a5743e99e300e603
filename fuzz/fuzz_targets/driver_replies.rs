//! memsrv receiving arbitrary driver replies for the operations it has
//! outstanding: a driver serves `/mnt` with storage of its own, two
//! processes call into it (open, read, write, mmap, stat, truncate, seek,
//! unlink), and every driver request the server sends is answered by
//! whatever the input says — any body under the right tag, any frame, a
//! stranger's frame, a reply twice, none at all (then time runs out) or
//! the driver's death. Invariants are checked after every step.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nommu_fuzz::Harness;
use protocol::linux::{MAP_PRIVATE, MAP_SHARED};
use protocol::{DriverRegistration, MessageKind, OffsetUnit, Path, Request, PAGE_SIZE};

const DRIVER: u64 = 0;
const USERS: [u64; 2] = [1, 2];

#[derive(Arbitrary, Debug)]
enum Call {
    Open {
        name: u8,
        flags: u16,
    },
    Read {
        fd: u8,
        len: u16,
    },
    Write {
        fd: u8,
        len: u16,
        offset: Option<u16>,
    },
    Mmap {
        fd: u8,
        pages: u8,
        pgoff: u8,
        prot: u8,
        shared: bool,
    },
    Munmap {
        addr: u8,
        pages: u8,
    },
    Fstat {
        fd: u8,
    },
    Ftruncate {
        fd: u8,
        len: u32,
    },
    Lseek {
        fd: u8,
        offset: i16,
        whence: u8,
    },
    Close {
        fd: u8,
    },
    Unlink {
        name: u8,
    },
    Exit,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Call {
        user: bool,
        call: Call,
    },
    /// Any body under the tag of an outstanding request.
    Reply {
        pick: u8,
        body: Vec<u8>,
    },
    /// The same, sent twice (the second finds nothing waiting).
    ReplyTwice {
        pick: u8,
        body: Vec<u8>,
    },
    /// A driver-reply frame with any tag.
    StrayTag {
        tag: u32,
        body: Vec<u8>,
    },
    /// Any bytes from the driver.
    Raw {
        bytes: Vec<u8>,
    },
    /// A driver reply from a connection that is not a driver.
    Stranger {
        user: bool,
        pick: u8,
        body: Vec<u8>,
    },
    Tick {
        ms: u8,
    },
    DriverDies,
}

fn path(name: u8) -> Path {
    let mut p = Path::new();
    let name = ["/mnt/a", "/mnt/b", "/mnt", "/mnt/a/b"][usize::from(name % 4)];
    let _ = p.extend_from_slice(name.as_bytes());
    p
}

fn request(h: &Harness, call: &Call) -> Request {
    let fd = |x: u8| h.value(x) as i32;
    match *call {
        Call::Open { name, flags } => Request::Open {
            path: path(name),
            flags: u32::from(flags),
            mode: 0o600,
        },
        Call::Read { fd: f, len } => Request::Read {
            fd: fd(f),
            len: u32::from(len),
            offset: None,
        },
        Call::Write { fd: f, len, offset } => Request::Write {
            fd: fd(f),
            data: protocol::Bytes::from_slice(&vec![7; usize::from(len) % 1025])
                .unwrap_or_default(),
            offset: offset.map(u64::from),
        },
        Call::Mmap {
            fd: f,
            pages,
            pgoff,
            prot,
            shared,
        } => Request::Mmap {
            addr: 0,
            len: u64::from(pages % 9) * PAGE_SIZE,
            prot: u32::from(prot & 7),
            flags: if shared { MAP_SHARED } else { MAP_PRIVATE },
            fd: fd(f),
            offset: u64::from(pgoff % 8),
            unit: OffsetUnit::Pages,
        },
        Call::Munmap { addr, pages } => Request::Munmap {
            addr: h.addr(addr),
            len: u64::from(pages % 9) * PAGE_SIZE,
        },
        Call::Fstat { fd: f } => Request::Fstat { fd: fd(f) },
        Call::Ftruncate { fd: f, len } => Request::Ftruncate {
            fd: fd(f),
            len: u64::from(len),
        },
        Call::Lseek {
            fd: f,
            offset,
            whence,
        } => Request::Lseek {
            fd: fd(f),
            offset: i64::from(offset),
            whence: u32::from(whence % 4),
        },
        Call::Close { fd: f } => Request::Close { fd: fd(f) },
        Call::Unlink { name } => Request::Unlink { path: path(name) },
        Call::Exit => Request::Exit,
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let mut h = Harness::new();
    h.connect(DRIVER, 1000, None);
    let mut mount = protocol::MountName::new();
    let _ = mount.push_str("/mnt");
    let mut name = heapless::String::new();
    let _ = name.push_str("fuzz");
    h.call(
        DRIVER,
        &Request::RegisterDriver(DriverRegistration {
            name,
            mount,
            dev: (0, 42),
            noexec: false,
            read_only: false,
        }),
    );
    // Storage the driver can name in its answers (its address is
    // remembered for `Address` replies the input writes).
    h.call(DRIVER, &Request::AllocBacking { pages: 4 });
    for (user, uid) in USERS.iter().zip([1000, 0]) {
        h.connect(*user, uid, None);
        h.call(*user, &Request::Hello { ticket: None });
    }
    for step in steps.iter().take(128) {
        match step {
            Step::Call { user, call } => {
                let request = request(&h, call);
                h.call(USERS[usize::from(*user)], &request);
            }
            Step::Reply { pick, body } => {
                if let Some(to) = h.take_outstanding(usize::from(*pick)) {
                    h.answer_body(&to, body);
                }
            }
            Step::ReplyTwice { pick, body } => {
                if let Some(to) = h.take_outstanding(usize::from(*pick)) {
                    h.answer_body(&to, body);
                    h.answer_body(&to, body);
                }
            }
            Step::StrayTag { tag, body } => {
                let frame = Harness::body_frame(MessageKind::DriverReply, *tag, body);
                h.frame(DRIVER, &frame);
            }
            Step::Raw { bytes } => h.frame(DRIVER, bytes),
            Step::Stranger { user, pick, body } => {
                let tag = h
                    .outstanding
                    .get(usize::from(*pick) % h.outstanding.len().max(1))
                    .map_or(0, |o| o.tag);
                let frame = Harness::body_frame(MessageKind::DriverReply, tag, body);
                h.frame(USERS[usize::from(*user)], &frame);
            }
            Step::Tick { ms } => h.tick(u64::from(*ms)),
            Step::DriverDies => {
                h.disconnect(DRIVER);
                h.outstanding.clear();
            }
        }
    }
});
