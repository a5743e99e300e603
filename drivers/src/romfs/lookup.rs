//! Path walk over the checked index: `.` and `..` by the walk itself (so
//! images without those entries work), symbolic links followed with a
//! budget, the way Linux's path walk treats them.

use super::index::{Index, Node};
use crate::flags::{open, ELOOP};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use protocol::Errno;

/// Symbolic links followed in one lookup (Linux allows 40; a romfs tree
/// needs few).
const MAX_SYMLINKS: usize = 8;
/// Longest link target followed (Linux `PATH_MAX`).
const MAX_TARGET: usize = 4096;

fn split(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|b| *b == b'/').map(<[u8]>::to_vec)
}

fn child(index: &Index, dir: u32, name: &[u8]) -> Result<u32, Errno> {
    match index.nodes.get(&dir) {
        Some(Node::Directory { children, .. }) => children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, target)| *target)
            .ok_or(Errno::ENOENT),
        _ => Err(Errno::ENOTDIR),
    }
}

/// The header offset `path` (relative to the mount) names.
pub(super) fn resolve(index: &Index, mount: &str, path: &str, flags: u32) -> Result<u32, Errno> {
    let mut parts: VecDeque<Vec<u8>> = split(path.as_bytes()).collect();
    let mut stack: Vec<u32> = alloc::vec![index.root];
    let mut links = 0usize;
    while let Some(part) = parts.pop_front() {
        let here = *stack.last().ok_or(Errno::EIO)?;
        if !matches!(index.nodes.get(&here), Some(Node::Directory { .. })) {
            return Err(Errno::ENOTDIR);
        }
        match part.as_slice() {
            b"" | b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            name => {
                let found = child(index, here, name)?;
                let last = parts.is_empty();
                match index.nodes.get(&found) {
                    Some(Node::Symlink { target }) => {
                        if last && flags & open::NOFOLLOW != 0 {
                            return Err(ELOOP);
                        }
                        links = links.saturating_add(1);
                        if links > MAX_SYMLINKS {
                            return Err(ELOOP);
                        }
                        if target.len() > MAX_TARGET {
                            return Err(Errno::ENAMETOOLONG);
                        }
                        let rest = absolute_within(target, mount)?;
                        if let Some(rest) = rest {
                            stack.truncate(1);
                            prepend(&mut parts, rest);
                        } else {
                            prepend(&mut parts, target);
                        }
                    }
                    Some(Node::Special) => return Err(Errno::ENXIO),
                    Some(_) => stack.push(found),
                    None => return Err(Errno::EIO),
                }
            }
        }
    }
    stack.last().copied().ok_or(Errno::EIO)
}

fn prepend(parts: &mut VecDeque<Vec<u8>>, path: &[u8]) {
    let new: Vec<Vec<u8>> = split(path).collect();
    for part in new.into_iter().rev() {
        parts.push_front(part);
    }
}

/// For an absolute link target: the part after the mount point (`None`
/// for a relative target). Targets outside the mount cannot be followed
/// from here: `ENOENT`.
fn absolute_within<'t>(target: &'t [u8], mount: &str) -> Result<Option<&'t [u8]>, Errno> {
    if target.first() != Some(&b'/') {
        return Ok(None);
    }
    let rest = target
        .strip_prefix(mount.trim_end_matches('/').as_bytes())
        .ok_or(Errno::ENOENT)?;
    if rest.is_empty() || rest.first() == Some(&b'/') {
        Ok(Some(rest))
    } else {
        Err(Errno::ENOENT)
    }
}

/// The error for `O_CREAT` of a missing `path`: `EROFS` when only the
/// leaf is missing, else what the walk to its directory says.
pub(super) fn create_error(index: &Index, mount: &str, path: &str) -> Errno {
    let parent = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    match resolve(index, mount, parent, 0) {
        Ok(dir) if matches!(index.nodes.get(&dir), Some(Node::Directory { .. })) => Errno::EROFS,
        Ok(_) => Errno::ENOTDIR,
        Err(e) => e,
    }
}
