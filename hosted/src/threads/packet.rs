//! What travels over the threads home's channels: encoded frames, held
//! inline when small so the hot path (an mmap request of ~40 bytes and its
//! ~25-byte reply) moves a few dozen bytes and allocates nothing.

use protocol::{Errno, MAX_FRAME};

/// Frames up to this many bytes travel inline; `/proc` text and other large
/// replies go on the heap.
const INLINE: usize = 120;

/// One encoded frame, exactly as memsrv or the client core produced it.
#[derive(Debug)]
pub enum Packet {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Packet {
    /// Copy `frame` into a packet; `EMSGSIZE` beyond [`MAX_FRAME`].
    pub fn copy_from(frame: &[u8]) -> Result<Self, Errno> {
        if frame.len() > MAX_FRAME {
            return Err(Errno::EMSGSIZE);
        }
        Ok(match u8::try_from(frame.len()) {
            Ok(len) if frame.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..frame.len()].copy_from_slice(frame);
                Packet::Inline { len, bytes }
            }
            _ => Packet::Heap(frame.into()),
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Packet::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Packet::Heap(bytes) => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_stay_inline_and_all_round_trip() {
        let small = Packet::copy_from(&[7; 40]).unwrap();
        assert!(matches!(small, Packet::Inline { .. }));
        assert_eq!(small.as_slice(), &[7; 40]);
        let big = Packet::copy_from(&[9; 1000]).unwrap();
        assert!(matches!(big, Packet::Heap(_)));
        assert_eq!(big.as_slice(), &[9; 1000][..]);
        assert_eq!(Packet::copy_from(&[]).unwrap().as_slice(), &[] as &[u8]);
        assert!(Packet::copy_from(&vec![0; MAX_FRAME + 1]).is_err());
    }
}
