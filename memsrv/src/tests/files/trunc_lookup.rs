//! `O_TRUNC` on a file of a driver without `TRUNCATE` (a host directory):
//! memsrv looks the file up again with `O_TRUNC` in the object's turn,
//! and the driver empties it there, as the fake driver does here (and a
//! host directory end to end, in the hosted `hostdir_truncate` test); the
//! first lookup never carries it.

use super::*;
use protocol::linux::O_TRUNC;

fn lookups(r: &mut Rig) -> Vec<u32> {
    r.d(DATA)
        .log
        .iter()
        .filter_map(|q| match q {
            DriverRequest::Lookup { flags, .. } => Some(*flags),
            _ => None,
        })
        .collect()
}

#[test]
fn o_trunc_on_a_driver_without_truncate_looks_the_file_up_again_with_it() {
    let mut r = env();
    assert_eq!(r.d(DATA).obj("f").info.ops.0 & DriverOps::TRUNCATE, 0);
    let fd = r.open(1, "/data/f", WRONLY | O_TRUNC).unwrap();
    let flags = lookups(&mut r);
    assert_eq!(flags.len(), 2, "found, then emptied: {flags:?}");
    assert_eq!(flags[0] & O_TRUNC, 0, "the first lookup only finds it");
    assert_ne!(flags[1] & O_TRUNC, 0, "the second empties it");
    assert_eq!(r.fstat(1, fd).map(|st| st.size), Ok(0), "emptied");
    match &r.d(DATA).obj("f").store {
        Store::Heap(bytes) => assert!(bytes.is_empty()),
        other => panic!("{other:?}"),
    }
    // Without O_TRUNC, one lookup.
    r.open(2, "/data/f", WRONLY).unwrap();
    assert_eq!(lookups(&mut r).len(), 3);
    r.ok();
}
