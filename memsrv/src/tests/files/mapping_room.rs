//! A file `mmap` for an address space the home has no room for fails
//! `ENOMEM` before any driver request or copy (see
//! `tests/mapping_room.rs` for anonymous memory and segments).

use super::*;

#[test]
fn no_room_for_a_mapping_fails_a_file_mmap_with_enomem() {
    let mut r = env();
    let f = r.open(1, "/data/f", RDONLY).unwrap();
    let before = r.s.stats();
    r.s.memory_mut().refuse_mappings = true;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    assert_eq!(r.reply(1, tag), Some(Reply::Error(Errno::ENOMEM)));
    assert_eq!(r.s.stats(), before);
    r.s.memory_mut().refuse_mappings = false;
    let tag = r.send(1, Rig::mmap_req(P, R, PR, f, 0));
    assert!(matches!(r.reply(1, tag), Some(Reply::Mapped { .. })));
    r.ok();
}
