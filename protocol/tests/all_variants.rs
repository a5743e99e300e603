//! The `ALL` lists of the protocol's small enums: each holds every variant
//! once, in wire order (entry `i` encodes as variant index `i`, and no
//! index past the list decodes), so code
//! that picks a variant by number picks the one the wire means.

use protocol::{MemoryCall, ObjectKind};
use serde::Serialize;

fn variant_index(value: &impl Serialize) -> u8 {
    let mut buf = [0u8; 8];
    let bytes = postcard::to_slice(value, &mut buf).expect("a unit variant encodes");
    assert_eq!(bytes.len(), 1, "a unit variant is one varint byte");
    bytes[0]
}

#[test]
fn memory_call_all_is_in_wire_order() {
    for (i, call) in MemoryCall::ALL.iter().enumerate() {
        assert_eq!(usize::from(variant_index(call)), i, "{call:?}");
    }
    let past = [MemoryCall::ALL.len() as u8];
    assert!(
        postcard::from_bytes::<MemoryCall>(&past).is_err(),
        "a call missing from ALL"
    );
}

#[test]
fn object_kind_all_is_in_wire_order() {
    for (i, kind) in ObjectKind::ALL.iter().enumerate() {
        assert_eq!(usize::from(variant_index(kind)), i, "{kind:?}");
    }
    let past = [ObjectKind::ALL.len() as u8];
    assert!(
        postcard::from_bytes::<ObjectKind>(&past).is_err(),
        "a kind missing from ALL"
    );
}
