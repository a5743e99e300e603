//! A [`FileStore`] in memory: a flat map of paths to byte vectors, with
//! inode numbers the test chooses (spec §14.0's `/data/f` is inode 37).

use super::FileStore;
use crate::flags::{available, open};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::Errno;

/// The id of the store's root directory.
pub const ROOT: u64 = 0;
/// Largest file a client can make by writing (memory is the driver's).
const MAX_FILE: u64 = 64 << 20;

struct MemFile {
    ino: u64,
    mode: u32,
    data: Vec<u8>,
}

/// Files in memory, by path relative to the mount.
pub struct MemStore {
    paths: BTreeMap<String, u64>,
    files: BTreeMap<u64, MemFile>,
    next_id: u64,
    next_ino: u64,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self {
            paths: BTreeMap::new(),
            files: BTreeMap::new(),
            next_id: ROOT.saturating_add(1),
            next_ino: 2,
        }
    }

    /// Add (or replace) the file `path` with inode number `ino`.
    pub fn add_file(&mut self, path: &str, ino: u64, data: &[u8]) -> u64 {
        let id = match self.paths.get(path) {
            Some(&id) => id,
            None => {
                let id = self.next_id;
                self.next_id = id.saturating_add(1);
                self.paths.insert(String::from(path), id);
                id
            }
        };
        self.files.insert(
            id,
            MemFile {
                ino,
                mode: 0o644,
                data: data.to_vec(),
            },
        );
        self.next_ino = self.next_ino.max(ino.saturating_add(1));
        id
    }

    /// [`MemStore::add_file`], builder style.
    pub fn with_file(mut self, path: &str, ino: u64, data: &[u8]) -> Self {
        self.add_file(path, ino, data);
        self
    }

    /// The bytes of `path`.
    pub fn contents(&self, path: &str) -> Option<&[u8]> {
        Some(&self.files.get(self.paths.get(path)?)?.data)
    }

    fn file(&self, id: u64) -> Result<&MemFile, Errno> {
        self.files.get(&id).ok_or(if id == ROOT {
            Errno::EISDIR
        } else {
            Errno::EBADF
        })
    }
}

impl FileStore for MemStore {
    fn lookup(&mut self, path: &str, flags: u32, mode: u32) -> Result<u64, Errno> {
        if path.is_empty() {
            return Ok(ROOT);
        }
        let id = match self.paths.get(path) {
            Some(&id) => {
                if open::creates_exclusively(flags) {
                    return Err(Errno::EEXIST);
                }
                if flags & open::TRUNC != 0 {
                    if let Some(file) = self.files.get_mut(&id) {
                        file.data.clear();
                    }
                }
                id
            }
            None if flags & open::CREAT != 0 => {
                let ino = self.next_ino;
                let id = self.add_file(path, ino, &[]);
                if let Some(file) = self.files.get_mut(&id) {
                    file.mode = mode & 0o7777;
                }
                id
            }
            None => return Err(Errno::ENOENT),
        };
        Ok(id)
    }

    fn size(&mut self, id: u64) -> Result<u64, Errno> {
        Ok(self.file(id)?.data.len() as u64)
    }

    fn ino(&mut self, id: u64) -> Result<u64, Errno> {
        if id == ROOT {
            return Ok(1);
        }
        Ok(self.file(id)?.ino)
    }

    fn mode(&mut self, id: u64) -> Result<u32, Errno> {
        if id == ROOT {
            return Ok(0o755);
        }
        Ok(self.file(id)?.mode)
    }

    fn is_dir(&mut self, id: u64) -> Result<bool, Errno> {
        if id == ROOT {
            return Ok(true);
        }
        self.file(id).map(|_| false)
    }

    fn read(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let data = &self.file(id)?.data;
        let n = available(offset, buf.len() as u64, data.len() as u64);
        if n == 0 {
            return Ok(0);
        }
        let start = usize::try_from(offset).map_err(|_| Errno::EIO)?;
        let n = usize::try_from(n).map_err(|_| Errno::EIO)?;
        let src = data.get(start..start.saturating_add(n)).ok_or(Errno::EIO)?;
        buf.get_mut(..n).ok_or(Errno::EIO)?.copy_from_slice(src);
        Ok(n)
    }

    fn write(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let file = self.files.get_mut(&id).ok_or(Errno::EBADF)?;
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= MAX_FILE)
            .ok_or(Errno::EFBIG)?;
        let end = usize::try_from(end).map_err(|_| Errno::EFBIG)?;
        let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        if file.data.len() < end {
            file.data.resize(end, 0);
        }
        file.data
            .get_mut(start..end)
            .ok_or(Errno::EIO)?
            .copy_from_slice(data);
        Ok(data.len())
    }
}
