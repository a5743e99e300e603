//! The little the kernel reads from the flattened device tree QEMU hands
//! it at reset (in `a1`): whether the boot hart has Zicboz (`cbo.zero`)
//! and the size of the block it zeroes. Plain code over the blob's bytes,
//! every read bounds-checked, so a blob that is short or malformed gives
//! `None`, never a fault.

/// `FDT_MAGIC`, the header's first word.
const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;

/// The largest blob the kernel reads (QEMU's virt board writes about 5 KiB).
pub const MAX_BLOB: usize = 64 << 10;

/// The blob's length as its header says (`totalsize`), if it begins with
/// the device tree's magic: what the kernel should read at all.
pub fn total_size(header: &[u8; 8]) -> Option<usize> {
    let [m0, m1, m2, m3, s0, s1, s2, s3] = *header;
    if u32::from_be_bytes([m0, m1, m2, m3]) != MAGIC {
        return None;
    }
    usize::try_from(u32::from_be_bytes([s0, s1, s2, s3])).ok()
}

/// The bytes one `cbo.zero` clears on hart `hart`, if the device tree says
/// the hart has Zicboz (`zicboz` in `riscv,isa-extensions`, or an `_zicboz`
/// extension in `riscv,isa`) and gives `riscv,cboz-block-size` as a power
/// of two from 16 bytes to a page (so whole pages are whole blocks).
pub fn cboz_block_size(blob: &[u8], hart: u64) -> Option<u64> {
    if word(blob, 0)? != MAGIC {
        return None;
    }
    let structs = usize::try_from(word(blob, 8)?).ok()?;
    let strings = usize::try_from(word(blob, 12)?).ok()?;
    let mut at = structs;
    // Depth 1 is the root, 2 its children; a cpu is `/cpus/cpu@N`, depth 3.
    let mut depth = 0usize;
    let mut in_cpus = false;
    let mut cpu = Cpu::default();
    loop {
        let token = word(blob, at)?;
        at = at.checked_add(4)?;
        match token {
            BEGIN_NODE => {
                let name = c_str(blob, at)?;
                at = aligned(at.checked_add(name.len() + 1)?)?;
                depth += 1;
                if depth == 2 {
                    in_cpus = name == b"cpus";
                } else if depth == 3 && in_cpus && name.starts_with(b"cpu@") {
                    cpu = Cpu {
                        open: true,
                        ..Cpu::default()
                    };
                }
            }
            END_NODE => {
                if depth == 3 && cpu.open {
                    if cpu.hart == Some(hart) {
                        return cpu.block.filter(|_| cpu.zicboz);
                    }
                    cpu = Cpu::default();
                }
                depth = depth.checked_sub(1)?;
            }
            PROP => {
                let len = usize::try_from(word(blob, at)?).ok()?;
                let name = c_str(
                    blob,
                    strings.checked_add(usize::try_from(word(blob, at + 4)?).ok()?)?,
                )?;
                let value = blob.get(at + 8..at.checked_add(8)?.checked_add(len)?)?;
                at = aligned(at + 8 + len)?;
                if depth == 3 && cpu.open {
                    cpu.read(name, value);
                }
            }
            NOP => {}
            // END, or a token no device tree has: the hart was not found.
            _ => return None,
        }
    }
}

/// What a cpu node said so far.
#[derive(Default)]
struct Cpu {
    open: bool,
    hart: Option<u64>,
    zicboz: bool,
    block: Option<u64>,
}

impl Cpu {
    fn read(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b"reg" => self.hart = number(value),
            b"riscv,isa-extensions" => {
                self.zicboz |= value.split(|&b| b == 0).any(|ext| ext == b"zicboz");
            }
            // "rv64imafdc_zicbom_zicboz_...": the multi-letter extensions
            // follow the single letters, each after an underscore.
            b"riscv,isa" => {
                let isa = value.split(|&b| b == 0).next().unwrap_or_default();
                self.zicboz |= isa
                    .split(|&b| b == b'_')
                    .skip(1)
                    .any(|ext| ext == b"zicboz");
            }
            b"riscv,cboz-block-size" => {
                self.block =
                    number(value).filter(|b| b.is_power_of_two() && (16..=4096).contains(b));
            }
            _ => {}
        }
    }
}

/// A one- or two-cell big-endian number.
fn number(value: &[u8]) -> Option<u64> {
    match *value {
        [a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d]).into()),
        [a, b, c, d, e, f, g, h] => Some(u64::from_be_bytes([a, b, c, d, e, f, g, h])),
        _ => None,
    }
}

/// The big-endian word at `at`.
fn word(blob: &[u8], at: usize) -> Option<u32> {
    let bytes = blob.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The NUL-terminated string at `at`, without its NUL.
fn c_str(blob: &[u8], at: usize) -> Option<&[u8]> {
    let rest = blob.get(at..)?;
    rest.get(..rest.iter().position(|&b| b == 0)?)
}

fn aligned(at: usize) -> Option<usize> {
    at.checked_next_multiple_of(4)
}

#[cfg(test)]
#[path = "device_tree_tests.rs"]
mod tests;
