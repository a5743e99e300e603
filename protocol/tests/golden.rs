//! Golden byte vectors: one per message variant. A change here is a wire
//! format change and must bump `protocol::VERSION` and `docs/protocol.md`.

use protocol::{
    decode_driver_reply, decode_driver_request, decode_incoming, decode_reply, decode_request,
    encode_driver_reply, encode_driver_request, encode_reply, encode_request, AttributeTarget,
    DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, FileStat, Incoming,
    MemoryCall, ObjectInfo, ObjectKind, OffsetUnit, Owner, ProcView, Reply, Request, ShmStat,
    Sysctl, MAX_FRAME,
};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Header for a request (kind 1) or reply (kind 2) with tag 0x2a and the
/// given body length.
fn header(kind: u8, body_len: u8) -> String {
    format!("4e 4d 4d 55 02 00 {kind:02x} 00 2a 00 00 00 {body_len:02x} 00 00 00")
}

fn s<const N: usize>(text: &str) -> heapless::String<N> {
    heapless::String::try_from(text).unwrap()
}

fn p(text: &str) -> protocol::Path {
    protocol::Path::try_from(text).unwrap()
}

fn bytes(data: &[u8]) -> protocol::Bytes {
    heapless::Vec::from_slice(data).unwrap()
}

fn request_frame(request: &Request) -> String {
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_request(0x2a, request, &mut buf);
    let decoded = decode_request(&buf[..len]).expect("golden request decodes");
    assert_eq!(decoded.tag, 0x2a);
    assert_eq!(&decoded.message, request);
    hex(&buf[..len])
}

fn reply_frame(reply: &Reply) -> String {
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_reply(0x2a, reply, &mut buf);
    let decoded = decode_reply(&buf[..len]).expect("golden reply decodes");
    assert_eq!(decoded.tag, 0x2a);
    assert_eq!(&decoded.message, reply);
    hex(&buf[..len])
}

fn expect(frame: String, kind: u8, body: &str) {
    let body_len = body.split_whitespace().count() as u8;
    assert_eq!(
        frame,
        format!("{} {body}", header(kind, body_len)).trim_end()
    );
}

#[test]
fn requests() {
    let cases: &[(Request, &str)] = &[
        (Request::Hello { ticket: None }, "00 00"),
        (
            Request::Hello {
                ticket: Some(0x1234),
            },
            "00 01 b4 24",
        ),
        (Request::Clone { flags: 0x4111 }, "01 91 82 01"),
        (Request::Fork, "02"),
        (Request::Exit, "03"),
        (
            Request::Mmap {
                addr: 0,
                len: 8192,
                prot: 3,
                flags: 0x22,
                fd: -1,
                offset: 0,
                unit: OffsetUnit::Bytes,
            },
            "04 00 80 40 03 22 01 00 00",
        ),
        (
            Request::Mmap {
                addr: 0x1000,
                len: 1,
                prot: 1,
                flags: 2,
                fd: 3,
                offset: 5,
                unit: OffsetUnit::Pages,
            },
            "04 80 20 01 01 02 06 05 01",
        ),
        (
            Request::Munmap {
                addr: 0x2000_0000_0000,
                len: 4096,
            },
            "05 80 80 80 80 80 80 08 80 20",
        ),
        (
            Request::ReadProc {
                view: ProcView::GlobalMaps,
                offset: 0,
            },
            "06 00 00",
        ),
        (
            Request::ReadProc {
                view: ProcView::ProcessMaps { pid: 300 },
                offset: 1024,
            },
            "06 01 ac 02 80 08",
        ),
        (
            Request::ReadProc {
                view: ProcView::SelfMaps,
                offset: 0,
            },
            "06 02 00",
        ),
        (
            Request::ReadProc {
                view: ProcView::Meminfo,
                offset: 0,
            },
            "06 03 00",
        ),
        (
            Request::ReadSysctl {
                name: Sysctl::NrTrimPages,
            },
            "07 00",
        ),
        (
            Request::WriteSysctl {
                name: Sysctl::NrTrimPages,
                value: -1,
            },
            "08 00 01",
        ),
        (
            Request::Open {
                path: p("/rom/t"),
                flags: 2,
                mode: 0o600,
            },
            "09 06 2f 72 6f 6d 2f 74 02 80 03",
        ),
        (Request::Close { fd: 3 }, "0a 06"),
        (
            Request::Read {
                fd: 3,
                len: 100,
                offset: None,
            },
            "0b 06 64 00",
        ),
        (
            Request::Write {
                fd: 3,
                data: bytes(b"hi"),
                offset: Some(4096),
            },
            "0c 06 02 68 69 01 80 20",
        ),
        (Request::Ftruncate { fd: 3, len: 8192 }, "0d 06 80 40"),
        (Request::Fstat { fd: 3 }, "0e 06"),
        (
            Request::Lseek {
                fd: 3,
                offset: -1,
                whence: 2,
            },
            "0f 06 01 02",
        ),
        (
            Request::RegisterDriver(DriverRegistration {
                name: s("romfs"),
                mount: s("/rom"),
                dev: (31, 2),
                noexec: false,
                read_only: true,
            }),
            "10 05 72 6f 6d 66 73 04 2f 72 6f 6d 1f 02 00 01",
        ),
        (Request::AllocBacking { pages: 2 }, "11 02"),
        (
            Request::FreeBacking {
                addr: 0x1000,
                pages: 2,
            },
            "12 80 20 02",
        ),
        (Request::BeginExclusive { object: 7 }, "13 07"),
        (Request::EndExclusive { object: 7 }, "14 07"),
        (Request::ListMounts, "15"),
        (Request::PtraceAttach { pid: 5 }, "16 05"),
        (Request::PtraceDetach { pid: 5 }, "17 05"),
        (
            Request::Shmget {
                key: 23,
                size: 4,
                flags: 0o1666,
            },
            "18 2e 04 ec 0e",
        ),
        (
            Request::Shmat {
                shmid: 1,
                addr: 0,
                flags: 0,
            },
            "19 02 00 00",
        ),
        (Request::Shmdt { addr: 0x1000 }, "1a 80 20"),
        (Request::ShmStat { shmid: 1 }, "1b 02"),
        (
            Request::ShmSet {
                shmid: 1,
                uid: 2,
                gid: 3,
                mode: 0o600,
            },
            "1c 02 02 03 80 03",
        ),
        (Request::ShmRemove { shmid: 1 }, "1d 02"),
        (
            Request::Unlink {
                path: p("/dev/shm/a"),
            },
            "1e 0a 2f 64 65 76 2f 73 68 6d 2f 61",
        ),
        (
            Request::Futex {
                uaddr: 0x1000,
                op: 0,
                val: 0,
                timeout_ns: Some(1000),
                val2: 0,
                uaddr2: 0,
                val3: 0,
            },
            "1f 80 20 00 00 01 e8 07 00 00 00",
        ),
        (
            Request::Mremap {
                addr: 0x1000,
                old_len: 8192,
                new_len: 4096,
                flags: 1,
                new_addr: 0,
            },
            "20 80 20 80 40 80 20 01 00",
        ),
        (
            Request::MemoryCall {
                call: MemoryCall::Mincore,
                addr: 0x1000,
                len: 4096,
                arg: 0,
            },
            "21 08 80 20 80 20 00",
        ),
        (Request::Exec, "22"),
        (
            Request::PtracePeek {
                pid: 5,
                addr: 0x1000,
            },
            "23 05 80 20",
        ),
        (
            Request::PtracePoke {
                pid: 5,
                addr: 0x1000,
                word: 1,
            },
            "24 05 80 20 01",
        ),
        (
            Request::ShmLock {
                shmid: 1,
                lock: true,
            },
            "25 02 01",
        ),
        (
            Request::ShmLock {
                shmid: 1,
                lock: false,
            },
            "25 02 00",
        ),
        (Request::Identity, "26"),
        // A path is bytes, not text: encoded as a string is.
        (
            Request::Unlink {
                path: protocol::Path::try_from(&b"/dev/shm/\x80\xff"[..]).unwrap(),
            },
            "1e 0b 2f 64 65 76 2f 73 68 6d 2f 80 ff",
        ),
        (
            Request::SetAttributes {
                target: AttributeTarget::Path(p("/dev/shm/a")),
                mode: Some(0o4755),
                uid: None,
                gid: Some(1000),
            },
            "27 00 0a 2f 64 65 76 2f 73 68 6d 2f 61 01 ed 13 00 01 e8 07",
        ),
        (
            Request::SetAttributes {
                target: AttributeTarget::Fd(3),
                mode: None,
                uid: Some(0),
                gid: None,
            },
            "27 01 06 00 01 00 00",
        ),
        (
            Request::ReadProc {
                view: ProcView::SysvShm,
                offset: 0,
            },
            "06 04 00",
        ),
        (
            Request::ReadProc {
                view: ProcView::Buddyinfo,
                offset: 0,
            },
            "06 05 00",
        ),
        (
            Request::ReadProc {
                view: ProcView::Usage,
                offset: 0,
            },
            "06 06 00",
        ),
    ];
    for (request, body) in cases {
        expect(request_frame(request), 1, body);
        // A transport tells the identity-checked requests from the frame.
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_request(0x2a, request, &mut buf);
        assert_eq!(
            protocol::frame_checks_identity(&buf[..len]),
            request.checks_identity(),
            "{request:?}"
        );
    }
    assert!(!protocol::frame_checks_identity(&[0u8; 16]));
}

/// The items `ProcView::Usage` carries, one after another.
#[test]
fn usage_view_items() {
    use protocol::message::{ArenaUsage, FreeBlock, ProcessUsage};
    let mut buf = [0u8; 64];
    let head = ArenaUsage {
        arena_base: 0x1000,
        total_pages: 256,
        free_pages: 250,
        mmap_copy_pages: 5,
        backing_pages: 0,
        shm_pages: 1,
        regions: 2,
        vmas: 3,
        processes: 1,
        free_blocks: 4,
    };
    let bytes = postcard::to_slice(&head, &mut buf).unwrap();
    assert_eq!(hex(bytes), "80 20 80 02 fa 01 05 00 01 02 03 01 04");
    let process = ProcessUsage {
        pid: 300,
        mappings: 2,
        bytes: 8192,
    };
    let bytes = postcard::to_slice(&process, &mut buf).unwrap();
    assert_eq!(hex(bytes), "ac 02 02 80 40");
    let block = FreeBlock {
        start: 0x1000,
        order: 3,
    };
    let bytes = postcard::to_slice(&block, &mut buf).unwrap();
    assert_eq!(hex(bytes), "80 20 03");
}

#[test]
fn replies() {
    let text: heapless::Vec<u8, { protocol::PROC_CHUNK }> =
        heapless::Vec::from_slice(b"ab\n").unwrap();
    let cases: &[(Reply, &str)] = &[
        (Reply::Error(Errno::EINVAL), "00 16"),
        (Reply::Done, "01"),
        (
            Reply::Hello {
                pid: 7,
                arena_base: 0x8000_0000,
                arena_size: 0x10_0000,
            },
            "02 07 80 80 80 80 08 80 80 40",
        ),
        (Reply::Cloned { pid: 8, ticket: 1 }, "03 08 01"),
        (Reply::Mapped { addr: 0x8000_1000 }, "04 80 a0 80 80 08"),
        (
            Reply::ProcText {
                total: 3,
                data: text,
            },
            "05 03 03 61 62 0a",
        ),
        (Reply::Value(1), "06 02"),
        (Reply::Fd(3), "07 06"),
        (Reply::Data(bytes(b"hi")), "08 02 68 69"),
        (Reply::Count(2), "09 02"),
        (
            Reply::Stat(FileStat {
                dev: (31, 2),
                ino: 37,
                mode: 0o100644,
                size: 10000,
                uid: 0,
                gid: 0,
            }),
            "0a 1f 02 25 a4 83 02 90 4e 00 00",
        ),
        (Reply::Offset(4096), "0b 80 20"),
        (Reply::Registered { driver: 1 }, "0c 01"),
        (
            Reply::Mounts(heapless::Vec::from_slice(&[s("/rom")]).unwrap()),
            "0d 01 04 2f 72 6f 6d",
        ),
        (
            Reply::ShmStat(ShmStat {
                key: 23,
                uid: 0,
                gid: 0,
                cuid: 0,
                cgid: 0,
                mode: 0o666,
                size: 4,
                atime: 1,
                dtime: 0,
                ctime: 1,
                cpid: 7,
                lpid: 7,
                nattch: 2,
            }),
            "0e 2e 00 00 00 00 b6 03 04 01 00 01 07 07 02",
        ),
    ];
    for (reply, body) in cases {
        expect(reply_frame(reply), 2, body);
    }
}

#[test]
fn driver_requests() {
    let cases: &[(DriverRequest, &str)] = &[
        (
            DriverRequest::Lookup {
                path: p("t"),
                flags: 0,
                mode: 0,
                caller: Owner {
                    uid: 1000,
                    gid: 100,
                },
            },
            "00 01 74 00 00 e8 07 64",
        ),
        (
            DriverRequest::Read {
                object: 7,
                offset: 0,
                len: 8192,
                dest: 0x1000,
            },
            "01 07 00 80 40 80 20",
        ),
        (
            DriverRequest::ReadData {
                object: 7,
                offset: 0,
                len: 100,
            },
            "02 07 00 64",
        ),
        (
            DriverRequest::WriteData {
                object: 7,
                offset: 0,
                data: bytes(b"hi"),
            },
            "03 07 00 02 68 69",
        ),
        (
            DriverRequest::GetUnmappedArea {
                object: 7,
                len: 8192,
                pgoff: 0,
                flags: 2,
            },
            "04 07 80 40 00 02",
        ),
        (
            DriverRequest::Mmap {
                object: 7,
                start: 0x1000,
                len: 8192,
                pgoff: 0,
                vm_flags: 0x275,
            },
            "05 07 80 20 80 40 00 f5 04",
        ),
        (
            DriverRequest::CloseVma {
                object: 7,
                start: 0x1000,
                len: 8192,
            },
            "06 07 80 20 80 40",
        ),
        (
            DriverRequest::Truncate {
                object: 7,
                size: 8192,
            },
            "07 07 80 40",
        ),
        (DriverRequest::Stat { object: 7 }, "08 07"),
        (DriverRequest::Release { object: 7 }, "09 07"),
        (
            DriverRequest::Unlink {
                path: p("a"),
                caller: Owner { uid: 0, gid: 0 },
            },
            "0a 01 61 00 00",
        ),
        (
            DriverRequest::SetAttributes {
                object: 7,
                mode: 0o1777,
                owner: Owner { uid: 65534, gid: 5 },
            },
            "0b 07 ff 07 fe ff 03 05",
        ),
    ];
    let mut buf = [0u8; MAX_FRAME];
    for (request, body) in cases {
        let len = encode_driver_request(0x2a, request, &mut buf);
        assert_eq!(
            &decode_driver_request(&buf[..len]).unwrap().message,
            request
        );
        expect(hex(&buf[..len]), 3, body);
    }
}

#[test]
fn driver_replies() {
    let info = ObjectInfo {
        object: 7,
        ino: 37,
        kind: ObjectKind::RegularFile,
        mode: 0o644,
        size: 10000,
        caps: None,
        ops: DriverOps(DriverOps::MMAP | DriverOps::READ),
        io_memory: false,
    };
    let cases: &[(DriverReply, &str)] = &[
        (DriverReply::Error(Errno::ENOSYS), "00 26"),
        (DriverReply::Done, "01"),
        (
            DriverReply::Opened(info),
            "02 07 25 00 a4 03 90 4e 00 03 00",
        ),
        (DriverReply::Count(8192), "03 80 40"),
        (DriverReply::Data(bytes(b"hi")), "04 02 68 69"),
        (DriverReply::Address(0x4000_1230), "05 b0 a4 80 80 04"),
        (
            DriverReply::Owned {
                info,
                owner: Owner {
                    uid: 1000,
                    gid: 1000,
                },
            },
            "06 07 25 00 a4 03 90 4e 00 03 00 e8 07 e8 07",
        ),
    ];
    let mut buf = [0u8; MAX_FRAME];
    for (reply, body) in cases {
        let len = encode_driver_reply(0x2a, reply, &mut buf);
        assert_eq!(&decode_driver_reply(&buf[..len]).unwrap().message, reply);
        // The server's decoder tells a driver reply from a client request.
        match decode_incoming(&buf[..len]).unwrap() {
            Incoming::DriverReply(frame) => assert_eq!(&frame.message, reply),
            other => panic!("decoded as {other:?}"),
        }
        expect(hex(&buf[..len]), 4, body);
    }
}
