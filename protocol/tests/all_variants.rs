//! The `ALL` lists of the protocol's small enums: each holds every variant
//! once, in wire order (entry `i` encodes as variant index `i`, and no
//! index past the list decodes), so code that picks a variant by number
//! picks the one the wire means.

use core::fmt::Debug;
use protocol::{MemoryCall, ObjectKind};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Check that `all` is every variant of `T` in wire order.
fn assert_wire_order<T: Serialize + DeserializeOwned + Debug>(all: &[T]) {
    for (i, variant) in all.iter().enumerate() {
        let mut buf = [0u8; 8];
        let bytes = postcard::to_slice(variant, &mut buf).expect("a unit variant encodes");
        assert_eq!(bytes, [i as u8], "{variant:?}: one varint byte, its index");
    }
    let past = [all.len() as u8];
    assert!(
        postcard::from_bytes::<T>(&past).is_err(),
        "a variant missing from {}::ALL",
        core::any::type_name::<T>()
    );
}

#[test]
fn memory_call_all_is_in_wire_order() {
    assert_wire_order(&MemoryCall::ALL);
}

#[test]
fn object_kind_all_is_in_wire_order() {
    assert_wire_order(&ObjectKind::ALL);
}
