//! Host files: a file a program opened through the host libc and passes
//! to the shim's `mmap` reaches memsrv through this built-in driver,
//! mounted at [`HOST_FD_MOUNT`] (docs/backing-devices.md, "Host files").
//!
//! The shim sends the descriptor over the socket (`SCM_RIGHTS`) attached
//! to an `Open { path: "/.host-fd" }` request. The connection thread
//! ([`HostFiles::admit`]) keeps the descriptor under a fresh unguessable
//! token and rewrites the request to `Open { path: "/.host-fd/<token>" }`
//! with the descriptor's real access mode (`F_GETFL`), so memsrv applies
//! every rule of spec §2.2 to it. The driver's `Lookup` takes the
//! descriptor out of the table (each token opens once).
//!
//! It is a copy-only filesystem: regular files (and block devices) have a
//! read method and the default `COPY`; a pipe or FIFO has no mmap method
//! (`ENODEV`), a socket has one but no capabilities (`EINVAL`), anything
//! else (directories, character devices) has none (`ENODEV`). Objects are
//! keyed by (device, inode), so every process mapping one host file
//! privately and read-only shares one copy, as on any copy-only
//! filesystem (spec §3).

use drivers::methods::{self, Lookup, Methods, ReadData, ReadInto, WriteData};
use drivers::{BackingDevice, DriverHost};
use protocol::{
    Bytes, DriverOps, DriverRegistration, DriverReply, DriverRequest, Errno, ObjectInfo, ObjectKind,
};
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where the host-file driver is mounted.
pub const HOST_FD_MOUNT: &str = "/.host-fd";

/// Most descriptors waiting for their `Lookup` at once.
const MAX_PENDING: usize = 1024;
/// A descriptor whose `Lookup` never came (memsrv refused the open
/// earlier) is closed after this long.
const PENDING_TTL: Duration = Duration::from_secs(30);
/// Bytes read per `pread` when filling a copy.
const READ_CHUNK: usize = 64 << 10;

struct Pending {
    file: File,
    since: Instant,
}

/// Descriptors handed over by clients, waiting for their `Lookup`.
pub struct HostFiles {
    pending: Mutex<HashMap<String, Pending>>,
    keys: RandomState,
    counter: AtomicU64,
}

impl Default for HostFiles {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HostFiles {
    pub fn new() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            keys: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// A 128-bit token nobody can guess (SipHash under the process's
    /// random keys, over a counter).
    fn token(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let a = self.keys.hash_one((n, 0u8));
        let b = self.keys.hash_one((n, 1u8));
        format!("{a:016x}{b:016x}")
    }

    /// Keep `fd` under a new token; returns the path memsrv should open
    /// and the open flags (the descriptor's own access mode and
    /// `O_APPEND`). `EBADF` for an `O_PATH` descriptor, `EMFILE` when too
    /// many wait.
    pub fn admit(&self, fd: OwnedFd) -> Result<(String, u32), Errno> {
        // SAFETY: F_GETFL only reads the flags of a descriptor we own.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        if flags < 0 || flags & libc::O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        let flags = (flags & (libc::O_ACCMODE | libc::O_APPEND)) as u32;
        let token = self.token();
        let mut pending = lock(&self.pending);
        let now = Instant::now();
        pending.retain(|_, p| now.duration_since(p.since) < PENDING_TTL);
        if pending.len() >= MAX_PENDING {
            return Err(Errno::EMFILE);
        }
        pending.insert(
            token.clone(),
            Pending {
                file: File::from(fd),
                since: now,
            },
        );
        Ok((format!("{HOST_FD_MOUNT}/{token}"), flags))
    }

    fn take(&self, token: &str) -> Option<File> {
        lock(&self.pending).remove(token).map(|p| p.file)
    }
}

struct Object {
    file: File,
    key: (u64, u64),
}

/// The host-file driver (a [`BackingDevice`] served by a driver thread of
/// the daemon).
pub struct HostFileDriver {
    files: Arc<HostFiles>,
    objects: HashMap<u64, Object>,
    by_inode: HashMap<(u64, u64), u64>,
    next_object: u64,
}

impl HostFileDriver {
    pub fn new(files: Arc<HostFiles>) -> Self {
        Self {
            files,
            objects: HashMap::new(),
            by_inode: HashMap::new(),
            next_object: 1,
        }
    }

    fn lookup(&mut self, path: &str) -> Result<ObjectInfo, Errno> {
        if path.is_empty() {
            // `/.host-fd` itself, opened without a descriptor attached.
            return Err(Errno::EBADF);
        }
        let file = self.files.take(path).ok_or(Errno::ENOENT)?;
        let meta = file.metadata().map_err(|_| Errno::EIO)?;
        let key = (meta.dev(), meta.ino());
        let object = match self.by_inode.get(&key) {
            Some(&object) => {
                // Keep a readable descriptor: the first may have been
                // write-only.
                if let Some(known) = self.objects.get_mut(&object) {
                    if !readable(&known.file) && readable(&file) {
                        known.file = file;
                    }
                }
                object
            }
            None => {
                let object = self.next_object;
                self.next_object += 1;
                self.objects.insert(object, Object { file, key });
                self.by_inode.insert(key, object);
                object
            }
        };
        self.info(object)
    }

    fn info(&self, object: u64) -> Result<ObjectInfo, Errno> {
        let file = &self.objects.get(&object).ok_or(Errno::EBADF)?.file;
        let meta = file.metadata().map_err(|_| Errno::EIO)?;
        let ft = meta.file_type();
        let (kind, ops) = if ft.is_file() {
            (ObjectKind::RegularFile, DriverOps::MMAP | DriverOps::READ)
        } else if ft.is_block_device() {
            (ObjectKind::BlockDevice, DriverOps::MMAP | DriverOps::READ)
        } else if ft.is_fifo() {
            (ObjectKind::Fifo, 0)
        } else if ft.is_socket() {
            (ObjectKind::Socket, DriverOps::MMAP)
        } else if ft.is_dir() {
            (ObjectKind::Directory, 0)
        } else {
            (ObjectKind::CharDevice, 0)
        };
        Ok(ObjectInfo {
            object,
            ino: meta.ino(),
            kind,
            // Access was granted by the host when the program opened the
            // file; the descriptor's mode decides what it may do.
            mode: 0o666 | (meta.mode() & 0o111),
            size: meta.size(),
            caps: None,
            ops: DriverOps(ops),
            io_memory: false,
        })
    }

    fn read_into_arena(
        &self,
        object: u64,
        offset: u64,
        len: u64,
        dest: u64,
        host: &mut dyn DriverHost,
    ) -> Result<u64, Errno> {
        let file = &self.objects.get(&object).ok_or(Errno::EBADF)?.file;
        let mut buf = vec![0u8; READ_CHUNK.min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(buf.len() as u64) as usize;
            let got = match file.read_at(&mut buf[..want], offset + done) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Errno::EIO),
            };
            host.write_arena(dest + done, &buf[..got])?;
            done += got as u64;
        }
        Ok(done)
    }

    fn read_data(&self, object: u64, offset: u64, len: u32) -> Result<Bytes, Errno> {
        let file = &self.objects.get(&object).ok_or(Errno::EBADF)?.file;
        let mut buf = [0u8; protocol::DATA_CHUNK];
        let want = (len as usize).min(buf.len());
        let got = loop {
            match file.read_at(&mut buf[..want], offset) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Errno::EIO),
            }
        };
        Bytes::from_slice(&buf[..got]).map_err(|_| Errno::EIO)
    }
}

fn readable(file: &File) -> bool {
    // SAFETY: F_GETFL only reads the flags of a live descriptor.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    flags >= 0 && flags & libc::O_ACCMODE != libc::O_WRONLY
}

/// Host files' methods. Refusals (`ENOSYS` for a mapping in place,
/// `EINVAL` for a resize) come whatever the handle, so the handle check
/// passes them all.
impl Methods for HostFileDriver {
    fn check(&mut self, _object: u64) -> Result<(), Errno> {
        Ok(())
    }

    fn lookup(&mut self, _host: &mut dyn DriverHost, req: Lookup<'_>) -> Result<ObjectInfo, Errno> {
        // Its names are the ones it handed out: text.
        HostFileDriver::lookup(self, drivers::mount::text_path(req.path)?)
    }

    fn stat(&mut self, object: u64) -> Result<ObjectInfo, Errno> {
        self.info(object)
    }

    fn read_data(&mut self, _host: &mut dyn DriverHost, req: ReadData) -> Result<Bytes, Errno> {
        HostFileDriver::read_data(self, req.object, req.offset, req.len)
    }

    fn read_into(&mut self, host: &mut dyn DriverHost, req: ReadInto) -> Result<u64, Errno> {
        self.read_into_arena(req.object, req.offset, req.len, req.dest, host)
    }

    fn write_data(
        &mut self,
        _host: &mut dyn DriverHost,
        _req: WriteData<'_>,
    ) -> Result<u64, Errno> {
        Err(Errno::EINVAL)
    }

    // Host files have no names in the server's namespace: the default
    // unlink answer, `EPERM`.

    fn release(&mut self, _host: &mut dyn DriverHost, object: u64) -> Result<(), Errno> {
        if let Some(gone) = self.objects.remove(&object) {
            self.by_inode.remove(&gone.key);
        }
        Ok(())
    }
}

impl BackingDevice for HostFileDriver {
    fn registration(&self) -> DriverRegistration {
        let mut name = heapless::String::new();
        let _ = name.push_str("hostfile");
        let mut mount = heapless::String::new();
        let _ = mount.push_str(HOST_FD_MOUNT);
        DriverRegistration {
            name,
            mount,
            dev: (0, 0xfd),
            noexec: false,
            read_only: false,
        }
    }

    fn start(&mut self, _host: &mut dyn DriverHost) -> Result<(), Errno> {
        Ok(())
    }

    fn serve(&mut self, request: DriverRequest, host: &mut dyn DriverHost) -> DriverReply {
        methods::serve(self, request, host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct NoArena(Vec<(u64, Vec<u8>)>);

    impl DriverHost for NoArena {
        fn write_arena(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
            self.0.push((addr, bytes.to_vec()));
            Ok(())
        }
        fn read_arena(&mut self, _: u64, _: &mut [u8]) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
        fn alloc_backing(&mut self, _: u64) -> Result<u64, Errno> {
            Err(Errno::ENOMEM)
        }
        fn free_backing(&mut self, _: u64, _: u64) -> Result<(), Errno> {
            Ok(())
        }
        fn begin_exclusive(&mut self, _: u64) -> Result<(), Errno> {
            Ok(())
        }
        fn end_exclusive(&mut self, _: u64) -> Result<(), Errno> {
            Ok(())
        }
    }

    fn path_of(full: &str) -> protocol::Path {
        protocol::Path::try_from(full.strip_prefix("/.host-fd/").unwrap()).unwrap()
    }

    #[test]
    fn a_descriptor_opens_once_and_reads_into_the_arena() {
        let dir = std::env::temp_dir().join(format!("hostfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file_path = dir.join("f");
        std::fs::File::create(&file_path)
            .unwrap()
            .write_all(b"hello host file")
            .unwrap();
        let files = Arc::new(HostFiles::new());
        let mut driver = HostFileDriver::new(Arc::clone(&files));
        let mut host = NoArena(Vec::new());
        let fd = OwnedFd::from(std::fs::File::open(&file_path).unwrap());
        let (path, flags) = files.admit(fd).unwrap();
        assert_eq!(flags, 0);
        assert!(path.starts_with("/.host-fd/") && path.len() == 10 + 32);
        let lookup = DriverRequest::Lookup {
            path: path_of(&path),
            flags: 0,
            mode: 0,
            caller: protocol::Owner { uid: 0, gid: 0 },
        };
        let DriverReply::Opened(info) = driver.serve(lookup.clone(), &mut host) else {
            panic!("lookup failed")
        };
        assert_eq!(info.kind, ObjectKind::RegularFile);
        assert_eq!(info.size, 15);
        assert!(info.ops.has(DriverOps::READ) && info.ops.has(DriverOps::MMAP));
        // The token is used up.
        assert_eq!(
            driver.serve(lookup, &mut host),
            DriverReply::Error(Errno::ENOENT)
        );
        let read = DriverRequest::Read {
            object: info.object,
            offset: 6,
            len: 100,
            dest: 0x1000,
        };
        assert_eq!(driver.serve(read, &mut host), DriverReply::Count(9));
        assert_eq!(host.0, vec![(0x1000, b"host file".to_vec())]);
        // The same file opened again is the same object.
        let fd = OwnedFd::from(std::fs::File::open(&file_path).unwrap());
        let (path, _) = files.admit(fd).unwrap();
        let again = DriverRequest::Lookup {
            path: path_of(&path),
            flags: 0,
            mode: 0,
            caller: protocol::Owner { uid: 0, gid: 0 },
        };
        let DriverReply::Opened(second) = driver.serve(again, &mut host) else {
            panic!("second lookup failed")
        };
        assert_eq!(second.object, info.object);
        let release = DriverRequest::Release {
            object: info.object,
        };
        assert_eq!(driver.serve(release, &mut host), DriverReply::Done);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pipes_have_no_mmap_method_and_write_only_is_reported() {
        let (r, w) = std::io::pipe().unwrap();
        let files = Arc::new(HostFiles::new());
        let mut driver = HostFileDriver::new(Arc::clone(&files));
        let mut host = NoArena(Vec::new());
        let (path, flags) = files.admit(OwnedFd::from(w)).unwrap();
        assert_eq!(flags, libc::O_WRONLY as u32);
        let lookup = DriverRequest::Lookup {
            path: path_of(&path),
            flags,
            mode: 0,
            caller: protocol::Owner { uid: 0, gid: 0 },
        };
        let DriverReply::Opened(info) = driver.serve(lookup, &mut host) else {
            panic!("lookup failed")
        };
        assert_eq!(info.kind, ObjectKind::Fifo);
        assert!(!info.ops.has(DriverOps::MMAP));
        drop(r);
    }
}
