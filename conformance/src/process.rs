//! §14.11 Process model: fork is refused, vfork children share the
//! parent's address space, clone without `CLONE_VM` gets an empty one
//! (§10); remote access through ptrace is clipped to one mapping and
//! needs its write permission; `execve` gives a vfork child its own
//! address space.

use super::env::{data_f_byte, DATA_F, O_RDONLY, ROM_T};
use super::support::{expect_bytes, ranges, ranges_within, Process, P};
use super::{Failure, Harness};
use protocol::linux::{CLONE_VFORK, CLONE_VM, MAP_PRIVATE, PROT_READ, SIGCHLD};
use protocol::{Errno, ProcView};

pub(super) fn v113_fork(harness: &dyn Harness) -> Result<(), Failure> {
    let p = Process::spawn(harness)?;
    ensure_errno!(p.client().fork(), Errno::EINVAL, "fork()");
    Ok(())
}

pub(super) fn v114_vfork_child_maps(harness: &dyn Harness) -> Result<(), Failure> {
    let parent = Process::spawn(harness)?;
    let before = parent.mmap_copy_kb()?;
    let flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
    let child = parent.clone_child(harness, flags, "vfork")?;
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

pub(super) fn v115_clone_without_vm(harness: &dyn Harness) -> Result<(), Failure> {
    let parent = Process::spawn(harness)?;
    let a = ok!(parent.anon(P), "parent: mmap 1 page");
    let child = parent.clone_child(harness, SIGCHLD, "clone(SIGCHLD)")?;
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

/// The debugger attaches first, as `PTRACE_PEEKDATA` requires.
pub(super) fn v116_peek(harness: &dyn Harness) -> Result<(), Failure> {
    let (debugger, t) = Process::two(harness)?;
    let a = ok!(t.anon(P), "target: mmap 1 page");
    ok!(
        harness.write(a + 8, &0x1122_3344_5566_7788u64.to_ne_bytes()),
        "target: store a word"
    );
    let c = debugger.client();
    ok!(c.ptrace_attach(t.pid()), "ptrace attach");
    ensure_eq!(
        ok!(c.ptrace_peek(t.pid(), a + 8), "PEEKDATA of a word inside"),
        0x1122_3344_5566_7788,
        "the word"
    );
    ensure_errno!(
        c.ptrace_peek(t.pid(), a + P - 2),
        Errno::EIO,
        "PEEKDATA 2 bytes before the end"
    );
    ok!(t.munmap(a, P), "target: munmap");
    ensure_errno!(
        c.ptrace_peek(t.pid(), a),
        Errno::EIO,
        "PEEKDATA of an unmapped address"
    );
    ok!(c.ptrace_detach(t.pid()), "ptrace detach");
    Ok(())
}

pub(super) fn v117_poke(harness: &dyn Harness) -> Result<(), Failure> {
    let (debugger, t) = Process::two(harness)?;
    let u = Process::spawn(harness)?;
    let rom = t.open_map(ROM_T, O_RDONLY, 2 * P, PROT_READ, MAP_PRIVATE, 0)?;
    let x = t.open_map(DATA_F, O_RDONLY, 2 * P, PROT_READ, MAP_PRIVATE, 0)?;
    let y = u.open_map(DATA_F, O_RDONLY, 2 * P, PROT_READ, MAP_PRIVATE, 0)?;
    ensure_eq!(y, x, "U's address of the shared /data/f copy");
    let c = debugger.client();
    ok!(c.ptrace_attach(t.pid()), "ptrace attach");
    ensure_errno!(
        c.ptrace_poke(t.pid(), rom, 0x5a5a),
        Errno::EIO,
        "POKEDATA into the /rom/t direct mapping"
    );
    let word = 0x0102_0304_0506_0708u64;
    ok!(
        c.ptrace_poke(t.pid(), x + 16, word),
        "POKEDATA into the /data/f copy"
    );
    let mut seen = [0u8; 8];
    ok!(harness.read(y + 16, &mut seen), "U: load");
    ensure_eq!(u64::from_ne_bytes(seen), word, "U sees the poked word");
    expect_bytes(
        harness,
        x,
        16,
        data_f_byte,
        "the copy before the poked word",
    )?;
    ok!(c.ptrace_detach(t.pid()), "ptrace detach");
    Ok(())
}

pub(super) fn v119_vfork_exec(harness: &dyn Harness) -> Result<(), Failure> {
    let parent = Process::spawn(harness)?;
    let a = ok!(parent.anon(P), "parent: mmap 1 page");
    let before = parent.maps()?;
    let flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
    let child = parent.clone_child(harness, flags, "vfork")?;
    ok!(child.client().exec(), "child: execve");
    ensure_eq!(child.maps()?, "", "the child's maps right after execve");
    let c = ok!(child.anon(2 * P), "child: the new image's mapping");
    ensure_eq!(
        parent.maps()?,
        before,
        "the parent's maps after the child's execve"
    );
    ensure_eq!(
        ranges(&child.maps()?)?,
        [(c, c + 2 * P)],
        "the child's maps"
    );
    ensure_eq!(
        ranges_within(&parent.maps()?, c, c + 2 * P)?,
        [],
        "the child's mapping in the parent's maps"
    );
    ok!(parent.munmap(a, P), "parent: munmap");
    Ok(())
}
