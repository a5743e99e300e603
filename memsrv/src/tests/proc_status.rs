//! `/proc/<pid>/status`'s identity lines in each home's terms (the module
//! docs of `proc_status`): `Umask` right after `Name`, `PPid` and the four
//! `Uid:`/`Gid:` columns (real, effective, saved set, filesystem), from the
//! process's own record or from what the home's kernel holds of it.

use alloc::boxed::Box;
use alloc::string::String;

use super::sim::{hello, read_proc, server_with, user, SimMemory};
use crate::{ClientId, Credentials, KernelRecord, MemoryServer};
use protocol::linux::CLONE_VM;
use protocol::{Errno, ProcView, Reply, Request};

/// The status lines before the memory counts.
fn identity(s: &mut MemoryServer<SimMemory>, reader: u64, pid: u32) -> String {
    let text = read_proc(s, reader, ProcView::ProcessStatus { pid }).unwrap();
    let end = text.find("VmPeak:").unwrap();
    String::from(&text[..end])
}

fn line<'a>(text: &'a str, field: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(":\t"))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

fn clone(s: &mut MemoryServer<SimMemory>, c: u64) -> (u32, u64) {
    match s.handle_now(ClientId(c), Request::Clone { flags: CLONE_VM }) {
        Reply::Cloned { pid, ticket } => (pid, ticket),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_process_of_no_host_process_shows_its_record() {
    let mut s = server_with(64, |_| {});
    let parent = hello(&mut s, 1, 1000, None).unwrap();
    let text = identity(&mut s, 1, parent);
    // Linux's order: Name, then Umask (no mask applies to the modes it
    // names), State, ...; a process the home started has no parent in
    // memsrv's pid space.
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("Name:\t"));
    assert_eq!(lines.next(), Some("Umask:\t0000"));
    assert_eq!(line(&text, "PPid"), "PPid:\t0");
    assert_eq!(line(&text, "Uid"), "Uid:\t1000\t1000\t1000\t1000");
    assert_eq!(line(&text, "Gid"), "Gid:\t1000\t1000\t1000\t1000");
    // A clone child shows its parent, waiting to be claimed and after.
    let (child, ticket) = clone(&mut s, 1);
    assert_eq!(
        line(&identity(&mut s, 1, child), "PPid"),
        alloc::format!("PPid:\t{parent}")
    );
    assert_eq!(hello(&mut s, 2, 1000, Some(ticket)), Ok(child));
    assert_eq!(
        line(&identity(&mut s, 2, child), "PPid"),
        alloc::format!("PPid:\t{parent}")
    );
    // The parent gone, no parent is left to show.
    s.disconnect(ClientId(1));
    assert_eq!(line(&identity(&mut s, 2, child), "PPid"), "PPid:\t0");
    s.check_invariants().unwrap();
}

/// The record the test's "kernel" holds of host pid 4242.
const HOST: KernelRecord = KernelRecord {
    ppid: 17,
    umask: 0o027,
    uids: [0, 5, 1000],
    gids: [0, 6, 100],
};

#[test]
fn a_host_process_shows_what_the_kernel_holds_with_the_transports_effective_ids() {
    let mut s = server_with(64, |_| {});
    s.read_kernel_records(Box::new(|hp| (hp == 4242).then_some(HOST)));
    let host = Credentials {
        pid: Some(4242),
        uid: 1000,
        gid: 100,
    };
    s.connect(ClientId(1), host);
    let pid = match s.handle_now(ClientId(1), Request::Hello { ticket: None }) {
        Reply::Hello { pid, .. } => pid,
        other => panic!("{other:?}"),
    };
    assert_eq!(pid, 4242);
    let other = hello(&mut s, 2, 0, None).unwrap();
    let text = identity(&mut s, 2, pid);
    assert_eq!(line(&text, "Umask"), "Umask:\t0027");
    assert_eq!(line(&text, "PPid"), "PPid:\t17");
    // Real, effective (the transport's), saved set, filesystem.
    assert_eq!(line(&text, "Uid"), "Uid:\t0\t1000\t5\t1000");
    assert_eq!(line(&text, "Gid"), "Gid:\t0\t100\t6\t100");
    // The effective column follows the transport's word at once.
    s.set_identity(ClientId(1), 0, 0).unwrap();
    assert_eq!(
        line(&identity(&mut s, 2, pid), "Uid"),
        "Uid:\t0\t0\t5\t1000"
    );
    // A process of no host pid keeps its own record; so does one whose
    // record the kernel no longer has.
    assert_eq!(line(&identity(&mut s, 1, other), "Umask"), "Umask:\t0000");
    s.connect(
        ClientId(3),
        Credentials {
            pid: Some(7),
            ..user(1000, 1000)
        },
    );
    assert!(matches!(
        s.handle_now(ClientId(3), Request::Hello { ticket: None }),
        Reply::Hello { pid: 7, .. }
    ));
    let text = identity(&mut s, 2, 7);
    assert_eq!(line(&text, "Uid"), "Uid:\t1000\t1000\t1000\t1000");
    assert_eq!(line(&text, "PPid"), "PPid:\t0");
    assert_eq!(
        read_proc(&mut s, 2, ProcView::ProcessStatus { pid: 8 }),
        Err(Errno::ESRCH)
    );
}
