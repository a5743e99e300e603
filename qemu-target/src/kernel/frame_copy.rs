//! The kernel's frame copy: a frame from one task's memory into another
//! task's word-aligned buffer, a word at a time (the trap path's
//! [`Machine::copy`](super::Machine::copy) for the common case). Plain
//! pointer code, so the host tests check it byte for byte.

/// Copy `len` bytes from `src` to the word-aligned `dst` a word at a
/// time, then the tail byte by byte. A source that is not word aligned
/// (memsrv's replies start two bytes into a word) is read as the aligned
/// words that hold it, each destination word made of two of them.
///
/// # Safety
/// Both ranges are valid for `len` bytes and disjoint, `dst` is word
/// aligned, and the aligned words holding the source lie in the same
/// memory (task memory and the flash window have word-aligned bounds).
pub unsafe fn copy_to_aligned(src: *const u8, dst: *mut u8, len: usize) {
    let words = len / 8;
    let to = dst.cast::<u64>();
    let offset = src as usize % 8;
    if offset == 0 {
        let from = src.cast::<u64>();
        for i in 0..words {
            // SAFETY: word `i` lies within both ranges, aligned.
            unsafe { to.add(i).write(from.add(i).read()) };
        }
    } else if words > 0 {
        let shift = 8 * offset as u32;
        let from = src.wrapping_sub(offset).cast::<u64>();
        // SAFETY: the aligned word holding `src`'s first byte.
        let mut low = unsafe { from.read() };
        for i in 0..words {
            // SAFETY: the aligned word after it holds bytes of the source
            // up to `src + 8 * (i + 1)`, all below `src + len`; the
            // destination word `i` is in range and aligned.
            unsafe {
                let high = from.add(i + 1).read();
                to.add(i).write((low >> shift) | (high << (64 - shift)));
                low = high;
            }
        }
    }
    for i in words * 8..len {
        // SAFETY: byte `i` lies within both ranges.
        unsafe { dst.add(i).write(src.add(i).read()) };
    }
}

#[cfg(test)]
#[path = "frame_copy_tests.rs"]
mod tests;
