//! The device tree reader against the blobs QEMU 10's virt board hands
//! the kernel (`-machine virt,dumpdtb=FILE -m 128M -bios none`, default
//! cpu, and again with `-cpu rv64,zicboz=false`) and against hand-made ones.

use super::{cboz_block_size, total_size};
use std::vec::Vec;

const VIRT: &[u8] = include_bytes!("tests/virt-rv64.dtb");
const VIRT_NO_ZICBOZ: &[u8] = include_bytes!("tests/virt-rv64-no-zicboz.dtb");

fn header(blob: &[u8]) -> [u8; 8] {
    blob[..8].try_into().unwrap()
}

#[test]
fn qemus_virt_board_names_zicboz_with_64_byte_blocks() {
    assert_eq!(total_size(&header(VIRT)), Some(VIRT.len()));
    assert_eq!(cboz_block_size(VIRT, 0), Some(64));
    // No hart 1 on a one-hart board.
    assert_eq!(cboz_block_size(VIRT, 1), None);
}

#[test]
fn a_hart_without_zicboz_has_no_block() {
    assert_eq!(
        total_size(&header(VIRT_NO_ZICBOZ)),
        Some(VIRT_NO_ZICBOZ.len())
    );
    assert_eq!(cboz_block_size(VIRT_NO_ZICBOZ, 0), None);
}

#[test]
fn a_cut_or_damaged_blob_gives_nothing_and_does_not_fault() {
    // Cut anywhere: no answer until the cpu node is whole, the right one
    // from there on.
    let answers: Vec<_> = (0..VIRT.len())
        .map(|len| cboz_block_size(&VIRT[..len], 0))
        .collect();
    let first = answers.iter().position(Option::is_some).unwrap();
    assert!(first > 40, "answered from the header alone");
    assert!(answers[first..].iter().all(|a| *a == Some(64)));
    let mut bad = VIRT.to_vec();
    bad[0] ^= 1;
    assert_eq!(total_size(&header(&bad)), None);
    assert_eq!(cboz_block_size(&bad, 0), None);
    // Every word of the structure block overwritten in turn with values
    // that break lengths and offsets: never a panic.
    for at in (40..VIRT.len() - 4).step_by(4) {
        for junk in [u32::MAX, 0x8000_0000, 3, 2] {
            let mut bad = VIRT.to_vec();
            bad[at..at + 4].copy_from_slice(&junk.to_be_bytes());
            let _ = cboz_block_size(&bad, 0);
        }
    }
}

/// Zeros up to the next word, as the structure block's strings and values.
fn pad(bytes: &mut Vec<u8>) {
    bytes.resize(bytes.len().next_multiple_of(4), 0);
}

/// A blob with one cpu node holding `props` (name, value).
fn blob_with_cpu(props: &[(&str, &[u8])]) -> Vec<u8> {
    let mut strings = Vec::new();
    let mut structs = Vec::new();
    let token = |s: &mut Vec<u8>, t: u32| s.extend_from_slice(&t.to_be_bytes());
    let node = |s: &mut Vec<u8>, name: &str| {
        token(s, 1);
        s.extend_from_slice(name.as_bytes());
        s.push(0);
        pad(s);
    };
    node(&mut structs, "");
    node(&mut structs, "cpus");
    node(&mut structs, "cpu@0");
    for (name, value) in props {
        token(&mut structs, 3);
        token(&mut structs, value.len() as u32);
        token(&mut structs, strings.len() as u32);
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        structs.extend_from_slice(value);
        pad(&mut structs);
    }
    for _ in 0..3 {
        token(&mut structs, 2);
    }
    token(&mut structs, 9);
    let mut blob = Vec::new();
    let off_structs = 40u32;
    let off_strings = off_structs + structs.len() as u32;
    let total = off_strings + strings.len() as u32;
    for w in [
        0xd00d_feed,
        total,
        off_structs,
        off_strings,
        0,
        17,
        16,
        0,
        strings.len() as u32,
        structs.len() as u32,
    ] {
        token(&mut blob, w);
    }
    blob.extend_from_slice(&structs);
    blob.extend_from_slice(&strings);
    blob
}

#[test]
fn the_isa_string_alone_is_enough_and_only_a_whole_extension_counts() {
    let reg: &[u8] = &0u32.to_be_bytes();
    let block: &[u8] = &64u32.to_be_bytes();
    let with_isa = |isa: &'static str| {
        blob_with_cpu(&[
            ("reg", reg),
            ("riscv,isa", isa.as_bytes()),
            ("riscv,cboz-block-size", block),
        ])
    };
    assert_eq!(
        cboz_block_size(&with_isa("rv64imac_zicbom_zicboz\0"), 0),
        Some(64)
    );
    assert_eq!(cboz_block_size(&with_isa("rv64imac_zicboza\0"), 0), None);
    assert_eq!(cboz_block_size(&with_isa("rv64imac_zicbom\0"), 0), None);
}

#[test]
fn a_block_size_that_does_not_divide_a_page_is_refused() {
    let reg: &[u8] = &0u32.to_be_bytes();
    let exts: &[u8] = b"i\0m\0zicboz\0";
    for (size, expect) in [
        (64u32, Some(64)),
        (4096, Some(4096)),
        (48, None),
        (8, None),
        (8192, None),
        (0, None),
    ] {
        let block = size.to_be_bytes();
        let blob = blob_with_cpu(&[
            ("reg", reg),
            ("riscv,isa-extensions", exts),
            ("riscv,cboz-block-size", &block),
        ]);
        assert_eq!(cboz_block_size(&blob, 0), expect, "block {size}");
    }
    // Zicboz named but no block size: nothing to zero with.
    let blob = blob_with_cpu(&[("reg", reg), ("riscv,isa-extensions", exts)]);
    assert_eq!(cboz_block_size(&blob, 0), None);
}
