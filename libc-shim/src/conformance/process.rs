//! §14.11 Process model: fork is refused, vfork children share the
//! parent's address space, clone without `CLONE_VM` gets an empty one
//! (§10).

use super::support::{ranges_within, Process, P};
use super::{Deferred, Failure, Home, Section, Vector};
use protocol::linux::{CLONE_VFORK, CLONE_VM, SIGCHLD};
use protocol::{Errno, ProcView};

const S: Section = Section::ProcessModel;

#[rustfmt::skip]
pub const VECTORS: &[Vector] = &[
    Vector { id: 113, section: S, name: "fork is refused", run: v113_fork },
    Vector { id: 114, section: S, name: "a vfork child's mapping is the parent's", run: v114_vfork_child_maps },
    Vector { id: 115, section: S, name: "clone without CLONE_VM: empty address space", run: v115_clone_without_vm },
];

#[rustfmt::skip]
pub const DEFERRED: &[Deferred] = &[
    Deferred { id: 116, section: S, needs: "PTRACE_PEEKDATA: the protocol has attach/detach but no remote access request" },
    Deferred { id: 117, section: S, needs: "PTRACE_POKEDATA: the protocol has attach/detach but no remote access request" },
    Deferred { id: 118, section: S, needs: "brk" },
    Deferred { id: 119, section: S, needs: "execve (the loader mapping a new image)" },
];

fn v113_fork(home: &mut dyn Home) -> Result<(), Failure> {
    let p = Process::spawn(home)?;
    ensure_errno!(p.client().fork(), Errno::EINVAL, "fork()");
    Ok(())
}

fn v114_vfork_child_maps(home: &mut dyn Home) -> Result<(), Failure> {
    let home: &dyn Home = home;
    let parent = Process::spawn(home)?;
    let before = parent.mmap_copy_kb()?;
    let flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
    let (pid, ticket) = ok!(parent.client().clone_process(flags), "vfork");
    let child = Process::attach(home, ticket)?;
    ensure_eq!(child.pid(), pid, "the child's pid");
    let c = ok!(child.anon(P), "child: mmap 1 page");
    ok!(child.client().exit(), "child: _exit");
    drop(child);
    let maps = parent.maps()?;
    ensure_eq!(
        ranges_within(&maps, c, c + P)?,
        [(c, c + P)],
        "the parent's maps around the child's page"
    );
    ok!(parent.munmap(c, P), "parent: munmap of the child's page");
    ensure_eq!(parent.mc_delta(before)?, 0, "MC delta");
    Ok(())
}

fn v115_clone_without_vm(home: &mut dyn Home) -> Result<(), Failure> {
    let home: &dyn Home = home;
    let parent = Process::spawn(home)?;
    let a = ok!(parent.anon(P), "parent: mmap 1 page");
    let (pid, ticket) = ok!(parent.client().clone_process(SIGCHLD), "clone(SIGCHLD)");
    let child = Process::attach(home, ticket)?;
    ensure_eq!(child.pid(), pid, "the child's pid");
    ensure_eq!(child.maps()?, "", "/proc/<child>/maps");
    ensure_eq!(
        child.proc_text(ProcView::SelfMaps)?,
        "",
        "/proc/self/maps of the child"
    );
    ensure_errno!(
        child.munmap(a, P),
        Errno::EINVAL,
        "child: munmap of the parent's page"
    );
    ok!(child.client().exit(), "child: _exit");
    drop(child);
    ensure_eq!(
        ranges_within(&parent.maps()?, a, a + P)?,
        [(a, a + P)],
        "the parent's maps after the child exited"
    );
    Ok(())
}
