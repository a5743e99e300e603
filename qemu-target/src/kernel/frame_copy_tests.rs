//! Host tests of the frame copy: every source offset in a word and every
//! length up to a few words, into a word-aligned buffer, against a plain
//! byte copy; nothing past the frame's end is written.

use super::copy_to_aligned;

#[repr(C, align(8))]
struct Words([u8; 96]);

#[test]
fn every_offset_and_length_copies_exactly_the_frame() {
    let mut source = Words([0; 96]);
    for (i, b) in source.0.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    for offset in 0..8 {
        for len in 0..=64 {
            let mut dst = Words([0xee; 96]);
            let src = &source.0[offset..offset + len];
            // SAFETY: both buffers hold the ranges, do not overlap, `dst`
            // is word aligned and the source's aligned words lie inside
            // `source`.
            unsafe { copy_to_aligned(src.as_ptr(), dst.0.as_mut_ptr(), len) };
            assert_eq!(&dst.0[..len], src, "offset {offset} len {len}");
            assert!(
                dst.0[len..].iter().all(|b| *b == 0xee),
                "offset {offset} len {len}: written past the frame"
            );
        }
    }
}
