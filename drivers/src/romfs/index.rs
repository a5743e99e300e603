//! The whole tree of a romfs image, walked and checked once at mount, so
//! that serving never touches unchecked metadata: every directory chain,
//! hard link and data range has been verified to lie inside the image and
//! to terminate.

use super::format::{entry, superblock, EntryType, RomfsError};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// Hard links followed before giving up (genromfs links point straight at
/// the file; Linux follows without a limit).
const MAX_LINK_HOPS: usize = 16;

/// A file, directory or special file, keyed by its header offset (which
/// is also its inode number, as in Linux).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Node {
    Directory {
        exec: bool,
        /// Name → header offset of what it names (hard links resolved),
        /// in chain order; `.` and `..` left out (the walk handles them).
        children: Vec<(Vec<u8>, u32)>,
    },
    Regular {
        exec: bool,
        data: u32,
        size: u32,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// Device, socket or FIFO nodes: nothing here serves them.
    Special,
}

pub(super) struct Index {
    pub nodes: BTreeMap<u32, Node>,
    pub root: u32,
    pub volume: Vec<u8>,
}

struct Walk<'a> {
    fs: &'a [u8],
    nodes: BTreeMap<u32, Node>,
    pending_dirs: Vec<(u32, u32)>,
    /// Chain steps left: a valid image visits each header once.
    budget: usize,
}

impl Walk<'_> {
    fn spend(&mut self) -> Result<(), RomfsError> {
        self.budget = self.budget.checked_sub(1).ok_or(RomfsError::TooComplex)?;
        Ok(())
    }

    /// The header a (possibly hard-linked) entry finally names, recorded
    /// in `nodes`.
    fn resolve(&mut self, mut offset: u32) -> Result<u32, RomfsError> {
        let start = offset;
        for _ in 0..MAX_LINK_HOPS {
            if self.nodes.contains_key(&offset) {
                return Ok(offset);
            }
            self.spend()?;
            let e = entry(self.fs, offset)?;
            let node = match e.kind {
                EntryType::HardLink => {
                    offset = e.spec;
                    continue;
                }
                EntryType::Directory => {
                    self.pending_dirs.push((offset, e.spec));
                    Node::Directory {
                        exec: e.exec,
                        children: Vec::new(),
                    }
                }
                EntryType::Regular => Node::Regular {
                    exec: e.exec,
                    data: e.data,
                    size: e.size,
                },
                EntryType::Symlink => Node::Symlink {
                    target: e.data(self.fs)?.to_vec(),
                },
                _ => Node::Special,
            };
            self.nodes.insert(offset, node);
            return Ok(offset);
        }
        Err(RomfsError::HardLinkLoop { offset: start })
    }

    /// The entries of the directory whose chain starts at `first`.
    fn chain(&mut self, first: u32) -> Result<Vec<(Vec<u8>, u32)>, RomfsError> {
        let mut children = Vec::new();
        let mut seen = BTreeSet::new();
        let mut at = first;
        while at != 0 {
            if !seen.insert(at) {
                return Err(RomfsError::ChainLoop { offset: at });
            }
            self.spend()?;
            let e = entry(self.fs, at)?;
            let (name, next, spec, kind) = (e.name.to_vec(), e.next, e.spec, e.kind);
            let target = if kind == EntryType::HardLink {
                self.resolve(spec)?
            } else {
                self.resolve(at)?
            };
            if name != b"." && name != b".." {
                children.push((name, target));
            }
            at = next;
        }
        Ok(children)
    }
}

impl Index {
    pub fn build(image: &[u8]) -> Result<Self, RomfsError> {
        let sb = superblock(image)?;
        let mut walk = Walk {
            fs: sb.fs,
            nodes: BTreeMap::new(),
            pending_dirs: Vec::new(),
            budget: (sb.fs.len() / 16).saturating_add(1),
        };
        let root = walk.resolve(sb.root)?;
        if !matches!(walk.nodes.get(&root), Some(Node::Directory { .. })) {
            return Err(RomfsError::RootNotDirectory);
        }
        let mut walked = BTreeSet::new();
        while let Some((dir, first)) = walk.pending_dirs.pop() {
            if !walked.insert(dir) {
                continue;
            }
            let list = walk.chain(first)?;
            if let Some(Node::Directory { children, .. }) = walk.nodes.get_mut(&dir) {
                *children = list;
            }
        }
        Ok(Self {
            nodes: walk.nodes,
            root,
            volume: sb.volume.to_vec(),
        })
    }
}
