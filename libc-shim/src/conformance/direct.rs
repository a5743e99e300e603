//! §14.2 Direct versus copy: only vector 44 (anonymous `MAP_SHARED` is
//! plain private memory) needs no backing; the rest of the section waits
//! for files and devices and is not listed here.

use super::support::{expect_filled, Process, P, RW};
use super::{Failure, Home, Section, Vector};
use protocol::linux::{MAP_ANONYMOUS, MAP_SHARED};

const S: Section = Section::DirectCopy;

pub const VECTORS: &[Vector] = &[Vector {
    id: 44,
    section: S,
    name: "anonymous MAP_SHARED is not shared between processes",
    run: v44_shared_anon_is_private,
}];

fn v44_shared_anon_is_private(home: &mut dyn Home) -> Result<(), Failure> {
    let home: &dyn Home = home;
    let a = Process::spawn(home)?;
    let b = Process::spawn(home)?;
    let shared_anon = MAP_SHARED | MAP_ANONYMOUS;
    let x = ok!(a.mmap(0, P, RW, shared_anon), "A: mmap SHARED|ANON");
    ok!(home.write(x, &1u32.to_ne_bytes()), "A: store 1 at {x:#x}");
    let y = ok!(b.mmap(0, P, RW, shared_anon), "B: mmap SHARED|ANON");
    ensure!(y != x, "B got A's address {x:#x}");
    expect_filled(home, y, P, 0, "B's page")?;
    let mut word = [0u8; 4];
    ok!(home.read(x, &mut word), "A: load {x:#x}");
    ensure_eq!(u32::from_ne_bytes(word), 1, "A's word after B mapped");
    Ok(())
}
