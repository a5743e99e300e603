//! A host directory as a [`FileStore`]: the files of a copy-only
//! filesystem (`memsrvd --mount /data=hostdir:DIR`) are the host files
//! under `DIR`.
//!
//! Ids are the store's own and follow the host's (device, inode), so the
//! same file — by any name — is one object, and the inode numbers `fstat`
//! and `/proc/<pid>/maps` show are the host's. A file is opened once, when
//! first looked up, and kept open until the server releases it. Lookups
//! stay inside `DIR`: `..` components are refused, and a name that
//! resolves (through symbolic links) outside it fails `EACCES`.
//! `fsync`/`fdatasync` are the host's, on the descriptor kept.

use drivers::copyfs::FileStore;
use drivers::flags::open;
use protocol::Errno;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// The id of the directory itself (the lookup path `""`).
pub const ROOT: u64 = 0;

/// Largest file a store grows (the protocol's sizes are 64-bit, the host
/// may have less).
const MAX_FILE: u64 = 1 << 40;

struct Entry {
    file: File,
    key: (u64, u64),
    /// Whether it is a directory: an open file's type never changes, and
    /// every lease step asks (one `statx` saved per step).
    dir: bool,
}

/// A copy-only filesystem's files in a host directory.
pub struct HostDir {
    root: PathBuf,
    root_file: File,
    entries: HashMap<u64, Entry>,
    by_inode: HashMap<(u64, u64), u64>,
    next_id: u64,
}

/// The errno for a host I/O error.
fn errno(e: &std::io::Error) -> Errno {
    match e.raw_os_error() {
        Some(raw) => u16::try_from(raw).map(Errno).unwrap_or(Errno::EIO),
        None => match e.kind() {
            ErrorKind::NotFound => Errno::ENOENT,
            ErrorKind::PermissionDenied => Errno::EACCES,
            ErrorKind::AlreadyExists => Errno::EEXIST,
            _ => Errno::EIO,
        },
    }
}

/// Repeat `step` (one `read_at` or `write_at` from byte `done` of the
/// request on) until `len` bytes moved or the file ends; retried when
/// interrupted. A failure after some bytes moved ends the run short, as a
/// short `read`/`write` does; a failure before any is the error.
fn repeat_io(
    len: usize,
    mut step: impl FnMut(usize) -> std::io::Result<usize>,
) -> Result<usize, Errno> {
    let mut done = 0;
    while done < len {
        match step(done) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if done == 0 => return Err(errno(&e)),
            Err(_) => break,
        }
    }
    Ok(done)
}

impl HostDir {
    /// Serve the directory `dir` (which must exist).
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, String> {
        let dir = dir.as_ref();
        let root = std::fs::canonicalize(dir)
            .map_err(|e| format!("cannot use directory {}: {e}", dir.display()))?;
        let root_file =
            File::open(&root).map_err(|e| format!("cannot open {}: {e}", root.display()))?;
        if !root_file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(format!("{} is not a directory", root.display()));
        }
        Ok(Self {
            root,
            root_file,
            entries: HashMap::new(),
            by_inode: HashMap::new(),
            next_id: ROOT + 1,
        })
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path for a lookup path, refusing any way out of the root.
    fn host_path(&self, path: &str) -> Result<PathBuf, Errno> {
        let relative = Path::new(path);
        let mut full = self.root.clone();
        for component in relative.components() {
            match component {
                Component::Normal(name) => full.push(name),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(Errno::EACCES)
                }
            }
        }
        // Symbolic links may point anywhere: what exists must resolve to a
        // place inside the root (a new file's directory must).
        let existing = match std::fs::canonicalize(&full) {
            Ok(real) => Some(real),
            Err(_) => full.parent().and_then(|p| std::fs::canonicalize(p).ok()),
        };
        match existing {
            Some(real) if real.starts_with(&self.root) => Ok(full),
            Some(_) => Err(Errno::EACCES),
            None => Err(Errno::ENOENT),
        }
    }

    fn open_host(&self, full: &Path, flags: u32, mode: u32) -> Result<File, Errno> {
        let create = flags & open::CREAT != 0;
        let exclusive = create && flags & open::EXCL != 0;
        let mut options = OpenOptions::new();
        options.read(true).mode(mode & 0o7777);
        if exclusive {
            options.write(true).create_new(true);
        } else if create {
            options.write(true).create(true);
        }
        // Read-write where the host allows it (the server writes through
        // the one descriptor it keeps); the server has already judged the
        // client's access against the mode bits.
        let mut rw = options.clone();
        rw.write(true);
        match rw.open(full) {
            Ok(file) => Ok(file),
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                File::open(full).map_err(|e| errno(&e))
            }
            Err(e) if e.kind() == ErrorKind::PermissionDenied && !create => {
                File::open(full).map_err(|e| errno(&e))
            }
            Err(e) => Err(errno(&e)),
        }
    }

    fn entry(&self, id: u64) -> Result<&File, Errno> {
        if id == ROOT {
            return Ok(&self.root_file);
        }
        self.entries.get(&id).map(|e| &e.file).ok_or(Errno::EBADF)
    }

    fn meta(&self, id: u64) -> Result<std::fs::Metadata, Errno> {
        self.entry(id)?.metadata().map_err(|e| errno(&e))
    }
}

impl FileStore for HostDir {
    fn lookup(&mut self, path: &str, flags: u32, mode: u32) -> Result<u64, Errno> {
        if path.is_empty() {
            return Ok(ROOT);
        }
        let full = self.host_path(path)?;
        let file = self.open_host(&full, flags, mode)?;
        let meta = file.metadata().map_err(|e| errno(&e))?;
        if flags & open::TRUNC != 0 && meta.is_file() && open::wants_write(flags) {
            file.set_len(0).map_err(|e| errno(&e))?;
        }
        let key = (meta.dev(), meta.ino());
        if let Some(&id) = self.by_inode.get(&key) {
            // Already open: keep the descriptor we have.
            return Ok(id);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                file,
                key,
                dir: meta.is_dir(),
            },
        );
        self.by_inode.insert(key, id);
        Ok(id)
    }

    fn size(&mut self, id: u64) -> Result<u64, Errno> {
        Ok(self.meta(id)?.size())
    }

    fn ino(&mut self, id: u64) -> Result<u64, Errno> {
        Ok(self.meta(id)?.ino())
    }

    fn mode(&mut self, id: u64) -> Result<u32, Errno> {
        Ok(self.meta(id)?.mode() & 0o7777)
    }

    fn is_dir(&mut self, id: u64) -> Result<bool, Errno> {
        if id == ROOT {
            // Checked when the store was made.
            return Ok(true);
        }
        self.entries.get(&id).map(|e| e.dir).ok_or(Errno::EBADF)
    }

    fn read(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let file = self.entry(id)?;
        let len = buf.len();
        repeat_io(len, |done| {
            file.read_at(&mut buf[done..], offset.saturating_add(done as u64))
        })
    }

    fn write(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let fits = offset
            .checked_add(data.len() as u64)
            .is_some_and(|end| end <= MAX_FILE);
        if !fits {
            return Err(Errno::EFBIG);
        }
        let file = self.entry(id)?;
        repeat_io(data.len(), |done| {
            file.write_at(&data[done..], offset + done as u64)
        })
    }

    /// The host's `fsync` (`fdatasync` with `data_only`) of the file or
    /// the directory: what `pwrite` left in the host's page cache reaches
    /// its disk; the host's error (`EIO`, `ENOSPC`) is the answer.
    fn sync(&mut self, id: u64, data_only: bool) -> Result<(), Errno> {
        let file = self.entry(id)?;
        let synced = if data_only {
            file.sync_data()
        } else {
            file.sync_all()
        };
        synced.map_err(|e| errno(&e))
    }

    fn release(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            self.by_inode.remove(&entry.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hostdir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn files_are_host_files_with_host_inodes() {
        let dir = scratch("files");
        std::fs::write(dir.join("f"), b"0123456789").unwrap();
        let mut store = HostDir::new(&dir).unwrap();
        let id = store.lookup("f", open::RDONLY, 0).unwrap();
        assert_eq!(store.size(id), Ok(10));
        let host_ino = std::fs::metadata(dir.join("f")).unwrap().ino();
        assert_eq!(store.ino(id), Ok(host_ino));
        let mut buf = [0u8; 4];
        assert_eq!(store.read(id, 8, &mut buf), Ok(2));
        assert_eq!(&buf[..2], b"89");
        assert_eq!(store.lookup("./f", open::RDONLY, 0), Ok(id));
        assert_eq!(store.write(id, 10, b"ab"), Ok(2));
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"0123456789ab");
        assert_eq!(store.is_dir(ROOT), Ok(true));
        assert_eq!(store.lookup("", 0, 0), Ok(ROOT));
        store.release(id);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sync_is_the_hosts_on_files_and_the_directory() {
        let dir = scratch("sync");
        let mut store = HostDir::new(&dir).unwrap();
        let id = store.lookup("f", open::RDWR | open::CREAT, 0o600).unwrap();
        store.write(id, 0, b"durable").unwrap();
        assert_eq!(store.sync(id, false), Ok(()));
        assert_eq!(store.sync(id, true), Ok(()));
        assert_eq!(store.sync(ROOT, false), Ok(()));
        assert_eq!(store.sync(id + 1, false), Err(Errno::EBADF));
        store.release(id);
        assert_eq!(store.sync(id, false), Err(Errno::EBADF));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn create_truncate_and_escape() {
        let dir = scratch("create");
        let mut store = HostDir::new(&dir).unwrap();
        assert_eq!(store.lookup("new", open::RDWR, 0), Err(Errno::ENOENT));
        let id = store
            .lookup("new", open::RDWR | open::CREAT, 0o600)
            .unwrap();
        assert_eq!(store.mode(id), Ok(0o600));
        assert_eq!(
            store.lookup("new", open::RDWR | open::CREAT | open::EXCL, 0o600),
            Err(Errno::EEXIST)
        );
        store.write(id, 0, b"data").unwrap();
        assert_eq!(store.lookup("new", open::RDWR | open::TRUNC, 0), Ok(id));
        assert_eq!(store.size(id), Ok(0));
        assert_eq!(store.lookup("../etc/passwd", 0, 0), Err(Errno::EACCES));
        std::os::unix::fs::symlink("/etc", dir.join("out")).unwrap();
        assert_eq!(store.lookup("out/passwd", 0, 0), Err(Errno::EACCES));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
