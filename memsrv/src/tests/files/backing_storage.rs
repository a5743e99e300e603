//! Backing storage drivers hold, and exclusive mode.

use super::*;

// Backing storage, exclusive mode.

#[test]
fn backing_calls_are_for_drivers_only() {
    let mut r = env();
    assert_eq!(
        r.call(1, Request::AllocBacking { pages: 1 }),
        Reply::Error(Errno::EPERM)
    );
    assert_eq!(
        r.call(
            1,
            Request::FreeBacking {
                addr: BASE,
                pages: 1
            }
        ),
        Reply::Error(Errno::EPERM)
    );
    assert_eq!(
        r.call(1, Request::BeginExclusive { object: 1 }),
        Reply::Error(Errno::EPERM)
    );
    let Reply::Mapped { addr } = r.call(TMP, Request::AllocBacking { pages: 2 }) else {
        panic!()
    };
    assert_eq!(r.s.stats().backing_pages, 10);
    // Another driver cannot free it.
    assert_eq!(
        r.call(DATA, Request::FreeBacking { addr, pages: 2 }),
        Reply::Error(Errno::EINVAL)
    );
    assert_eq!(
        r.call(TMP, Request::FreeBacking { addr, pages: 2 }),
        Reply::Done
    );
    r.ok();
}

#[test]
fn storage_under_a_mapping_cannot_be_freed() {
    let mut r = env();
    let s = r.memory_file(1, "/tmp/s", P);
    let x = r.mmap(1, P, RW, SH, s, 0).unwrap();
    assert_eq!(
        r.call(TMP, Request::FreeBacking { addr: x, pages: 1 }),
        Reply::Error(Errno::EBUSY)
    );
    r.ok();
}

#[test]
fn exclusive_mode() {
    let mut r = env();
    let s = r.memory_file(1, "/tmp/s", 2 * P);
    let obj = r.d(TMP).paths["s"];
    let x = r.mmap(1, P, R, SH, s, 0).unwrap();
    assert_eq!(begin_exclusive(&mut r, obj), Reply::Error(Errno::EBUSY));
    r.munmap(1, x, P).unwrap();
    assert_eq!(begin_exclusive(&mut r, obj), Reply::Done);
    assert_eq!(begin_exclusive(&mut r, obj), Reply::Error(Errno::EBUSY));
    // Shared → EBUSY; private → a copy read through the driver.
    assert_eq!(r.mmap(1, P, R, SH, s, 0), Err(Errno::EBUSY));
    let c = r.mmap(1, P, R, PR, s, 0).unwrap();
    assert!(r
        .d(TMP)
        .log
        .iter()
        .any(|q| matches!(q, DriverRequest::Read { dest, .. } if *dest == c)));
    assert_eq!(mc(&r), 4);
    assert_eq!(end_exclusive(&mut r, obj), Reply::Done);
    assert_eq!(end_exclusive(&mut r, obj), Reply::Error(Errno::EINVAL));
    // The copy is shareable: a later private request reuses it.
    assert_eq!(
        {
            let fd = r_open(&mut r, 2, "/tmp/s");
            r.mmap(2, P, R, PR, fd, 0)
        },
        Ok(c)
    );
    r.ok();
}

#[test]
fn ptrace_permissions() {
    let mut r = env();
    let other = r.process(3, 1001);
    let root = r.process(4, 0);
    let p1 = 1;
    assert_eq!(
        r.call(1, Request::PtraceAttach { pid: other }),
        Reply::Error(Errno::EPERM)
    );
    assert_eq!(
        r.call(1, Request::PtraceAttach { pid: 999_999 }),
        Reply::Error(Errno::ESRCH)
    );
    assert_eq!(
        r.call(1, Request::PtraceAttach { pid: p1 }),
        Reply::Error(Errno::EPERM),
        "not itself"
    );
    assert_eq!(r.call(4, Request::PtraceAttach { pid: other }), Reply::Done);
    assert_eq!(
        r.call(2, Request::PtraceAttach { pid: other }),
        Reply::Error(Errno::EPERM)
    );
    assert_eq!(
        r.call(1, Request::PtraceDetach { pid: other }),
        Reply::Error(Errno::ESRCH)
    );
    // The tracer exits: the tracee is free.
    r.call(4, Request::Exit);
    assert_eq!(
        r.call(2, Request::PtraceDetach { pid: other }),
        Reply::Error(Errno::ESRCH)
    );
    let _ = root;
    r.ok();
}

/// The `/tmp` driver asks for exclusive use of `object`.
fn begin_exclusive(r: &mut Rig, object: u64) -> Reply {
    r.call(TMP, Request::BeginExclusive { object })
}

/// The `/tmp` driver gives exclusive use of `object` back.
fn end_exclusive(r: &mut Rig, object: u64) -> Reply {
    r.call(TMP, Request::EndExclusive { object })
}
