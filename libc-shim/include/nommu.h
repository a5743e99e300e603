/*
 * nommu.h - C interface of libnommu, the client library of the nommu
 * memory server (memsrvd).
 *
 * A program linking libnommu gets the memory server's mmap/munmap in place
 * of the host kernel's. scripts/install.sh PREFIX installs libnommu.a,
 * libnommu.so, these headers and nommu.pc; then
 *
 *   cc prog.c $(pkg-config --cflags --libs nommu)
 *
 * (the library alone: cargo rustc -p libc-shim --lib --release
 * --features posix --crate-type staticlib, then
 * cc prog.c path/to/libnommu.a -lpthread -ldl -lm).
 *
 * The library finds the daemon through the environment variable
 * NOMMU_SOCKET (default /tmp/nommu.sock) and connects lazily, once, on the
 * first call from any thread. Connecting never puts the thread to sleep (it
 * waits for the daemon's welcome polling and yielding), so a first call acts
 * as any other: a FUTEX_WAIT that connects does not look asleep before its
 * wait is queued. The connection hands over the arena, which is
 * mapped at the same address in this process as in the daemon and every
 * other client: an address returned by mmap means the same bytes in every
 * process, as on a machine without an MMU. The arena's address range must
 * be free in this process (else the first call fails with EEXIST).
 *
 * Every call is thread safe. On failure a call sets errno to the Linux
 * value the server returned (or ENOENT / ECONNREFUSED and the like when the
 * daemon cannot be reached, ENOTCONN when it went away) and returns
 * MAP_FAILED or -1. NOMMU_TRANSPORT=socket makes requests travel over the
 * socket instead of the shared channel page (for comparison only).
 *
 * Pointers. Every pointer the library reads or writes for its caller (a
 * struct shmid_ds, struct stat, struct flock, futex timeout, read/write
 * buffer, path string, ...) is reached the way the kernel reaches user
 * memory, through a system call that checks it (process_vm_readv/
 * process_vm_writev on this process, else a pipe): one the kernel would
 * reject (unmapped, read-only for a write) fails EFAULT, never a crash.
 *
 * The library itself never calls the symbols it exports (it reaches the host
 * kernel with syscall()), so exporting them cannot recurse; the one
 * exception is close() of a descriptor the library owns, which its own
 * close() hands straight to the host.
 *
 * fork(). A child made by fork() never speaks for its parent: the library's
 * pthread_atfork handlers (registered when it first connects) close the
 * child's copies of the parent's connections and server files (those
 * descriptors fail EBADF in the child), and the child's next call connects
 * anew, as a new process of the server with an empty address space (as
 * clone without CLONE_VM gives) and the child's own pid and credentials (a
 * child that setuid()s first acts as the new user). The arena stays
 * mapped: memory the parent shares (a SysV segment, a MAP_SHARED server
 * file) is the same bytes in the child once it attaches it. A child made
 * by a raw clone system call, which runs no atfork handlers, is not seen.
 *
 * Files. The daemon serves files and devices through backing-device
 * drivers mounted at paths (memsrvd --mount, e.g. /rom, /dev/shm, /data,
 * /dev/fb0); the library asks for that list once, when it connects
 * (nommu_refresh_mounts() asks again). open() of an absolute path under one
 * of those mounts opens a server file; every other path (relative ones
 * too) is opened by the host kernel as usual. The test is lexical: "//"
 * and "." are dropped and ".." removes the component before it. A server
 * file is named by an ordinary host descriptor (a close-on-exec descriptor
 * of /dev/null, reserved so numbers never collide); read, write, pread,
 * pwrite, lseek, ftruncate, fstat, fcntl, fsync, fdatasync, fchmod,
 * fchown, close and mmap on it go to the server (or are answered by the
 * library), and on any other descriptor to the host. Only those calls know
 * server files: dup(), stdio's fdopen() and the like see /dev/null.
 *
 * fcntl on a server file: F_GETLK, F_SETLK, F_SETLKW are POSIX record
 * locks of this process only. A process's own locks never conflict with
 * each other, so they are checked as Linux checks them (EINVAL for a bad
 * l_type, l_whence or range, EBADF for a read lock without read access or
 * a write lock without write access, EFAULT for a bad struct flock), then
 * F_SETLK/F_SETLKW succeed and F_GETLK answers F_UNLCK. The server keeps
 * no locks: locks do NOT exclude other processes (two processes writing
 * one SQLite database on a server file corrupt it). F_OFD_* fail EINVAL.
 * F_GETFL answers the open flags; F_SETFL changes O_NONBLOCK, O_ASYNC,
 * O_DIRECT, O_NOATIME, not O_APPEND (EINVAL); F_GETFD/F_SETFD act on the
 * stand-in, which keeps FD_CLOEXEC (a server file does not survive exec);
 * other commands reach the stand-in. The third argument is taken as a
 * pointer-sized value: glibc reads it as void *, and on x86-64 and
 * AArch64 Linux a variadic argument travels where a fixed one would.
 * fsync/fdatasync of a server file are the server's: a driver that keeps
 * the bytes in a cache (a host directory: the host's page cache) is asked
 * to flush them and its error (EIO, ENOSPC) is returned; a memory
 * filesystem's file succeeds at once; a pipe, a socket or a character
 * device without an fsync method fails EINVAL. fchmod/fchown of a server file
 * are the server's: it judges them as Linux does (chmod by the owner or
 * root, chown by root, chgrp by the owner to a group it is in, else
 * EPERM; S_ISUID/S_ISGID dropped as Linux drops them); the memory
 * filesystem keeps each file's mode and owner, a device answers EPERM.
 *
 * chmod, fchmodat, chown, lchown and fchownat of an absolute path under a
 * mount go to the server the same way (EROFS on a read-only mount, after
 * ENOENT); server files have no symbolic links, so lchown is chown there
 * and fchmodat(AT_SYMLINK_NOFOLLOW) fails EOPNOTSUPP. /dev/shm and the
 * memory filesystem's root are sticky (01777): only a file's owner, the
 * directory's owner or root may unlink it (EPERM).
 *
 * stat, lstat (and stat64, lstat64), access and unlink of an absolute
 * path under a mount go to the server: stat opens the path (read-only, or
 * write-only when reading is refused), fstats and closes it (server files
 * are never symbolic links, so lstat answers alike); access opens it with
 * the access asked (X_OK looks at the mode bits); unlink is the server's
 * (ramfs removes the name; drivers without names to remove, e.g. the
 * copy-only host directory, answer EPERM). Other paths go to the host.
 *
 * mmap() of a host descriptor (a file the program opened outside the
 * server's mounts) hands the descriptor to the daemon (SCM_RIGHTS), which
 * serves it as a file of a copy-only filesystem: MAP_PRIVATE gives a
 * private copy of the file's bytes (shared read-only with other processes
 * mapping the same range of the same file, as on no-MMU Linux), MAP_SHARED
 * fails ENODEV, a pipe ENODEV, a socket EINVAL, a write-only descriptor
 * EACCES. Later writes to the file do not reach the copy.
 *
 * Shared memory, futexes, mremap and the small memory calls. SysV shm
 * (shmget/shmat/shmdt/shmctl) is always the server's: a segment is one
 * contiguous block and every shmat of it, in any process, returns the same
 * address. shmctl knows IPC_STAT (fills a real struct shmid_ds; mode has
 * SHM_DEST once removal is pending), IPC_SET (uid, gid, mode bits) and
 * IPC_RMID; other commands fail EINVAL. shm_open(name) opens
 * "/dev/shm/NAME" with O_NOFOLLOW|O_CLOEXEC added (leading '/'s dropped;
 * an empty name, "." / "..", or another '/' fail EINVAL; longer than 255
 * ENAMETOOLONG) through open(): when the server has a /dev/shm mount
 * (memsrvd --mount /dev/shm=ramfs) the object is a server file that
 * MAP_SHARED maps for every process alike; without that mount the host's
 * /dev/shm is used, like any path outside the server's mounts (and mmap of
 * it gives private copies only). shm_unlink follows the same rule.
 *
 * futex(), mremap(), msync(), mprotect(), madvise(), mlock(), mlock2(),
 * munlock() and mincore() on an address inside the arena go to the server;
 * on any other address (the stack, static data, host-libc memory) to the
 * host kernel. mlockall()/munlockall() concern the server's mappings only.
 * mremap() with MREMAP_MAYMOVE may move a private anonymous mapping (or
 * private writable copy) that cannot grow in place - an extension; a daemon
 * started with --strict-mremap keeps Linux's rule (ENOMEM past the first
 * size). mincore() reports every page resident.
 *
 * Futex waits and threads. A FUTEX_WAIT or FUTEX_WAIT_BITSET is answered
 * by the server only when the word is woken or the wait times out, and a
 * connection carries one call at a time. So a waiting thread never holds
 * the process's main connection: it borrows a secondary connection from a
 * small pool (making one on its first wait), waits on it and returns it.
 * A secondary connection speaks for the same process (the daemon binds a
 * connection from the same host pid to the live process), so waiters and
 * wakers of one address space meet as threads do; other threads keep
 * calling freely meanwhile. Each idle pooled connection keeps one daemon
 * thread. Timeouts: relative for FUTEX_WAIT, absolute CLOCK_MONOTONIC (or
 * CLOCK_REALTIME with FUTEX_CLOCK_REALTIME) for FUTEX_WAIT_BITSET; for
 * FUTEX_REQUEUE/FUTEX_CMP_REQUEUE the timeout argument carries val2 as a
 * number, as Linux reads it. A wait in the server is not interrupted by a
 * signal (the handler runs, the wait goes on). If the process dies while
 * waiting, its connections close and the server drops its waiters.
 */
#ifndef NOMMU_H
#define NOMMU_H

#include <stddef.h>
#include <sys/types.h>

struct stat;
struct stat64;
struct shmid_ds;
struct timespec;

#ifdef __cplusplus
extern "C" {
#endif

/* Exported with feature "posix" (libnommu.a): the POSIX calls, served by
 * memsrvd with no-MMU semantics. Same signatures as <sys/mman.h>. Every
 * mapping comes from the server: fd is a server file, or a host descriptor
 * handed to the daemon as described under "Files" above; memory the host
 * libc maps for itself (malloc arenas, thread stacks, libraries) never
 * passes through here. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
int munmap(void *addr, size_t len);

/* The file calls, also exported with feature "posix" (same signatures as
 * <fcntl.h>, <unistd.h> and <sys/stat.h>; see "Files" above). */
int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);
int openat(int dirfd, const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...);
int close(int fd);
ssize_t read(int fd, void *buf, size_t len);
ssize_t write(int fd, const void *buf, size_t len);
ssize_t pread(int fd, void *buf, size_t len, off_t offset);
ssize_t pread64(int fd, void *buf, size_t len, off_t offset);
ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset);
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t offset);
int ftruncate(int fd, off_t len);
int ftruncate64(int fd, off_t len);
off_t lseek(int fd, off_t offset, int whence);
off_t lseek64(int fd, off_t offset, int whence);
int fstat(int fd, struct stat *st);
int fstat64(int fd, struct stat64 *st);
int fcntl(int fd, int cmd, ...);
int fcntl64(int fd, int cmd, ...);
int stat(const char *path, struct stat *st);
int stat64(const char *path, struct stat64 *st);
int lstat(const char *path, struct stat *st);
int lstat64(const char *path, struct stat64 *st);
int access(const char *path, int mode);
int unlink(const char *path);
int fsync(int fd);
int fdatasync(int fd);
int fchmod(int fd, mode_t mode);
int fchown(int fd, uid_t uid, gid_t gid);
int chmod(const char *path, mode_t mode);
int fchmodat(int dirfd, const char *path, mode_t mode, int flags);
int chown(const char *path, uid_t uid, gid_t gid);
int lchown(const char *path, uid_t uid, gid_t gid);
int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags);

/* Shared memory, futexes, mremap and the small memory calls, also exported
 * with feature "posix" (signatures of <sys/shm.h>, <sys/mman.h>; futex has
 * the system call's shape - glibc has no such function). */
int shmget(key_t key, size_t size, int shmflg);
void *shmat(int shmid, const void *shmaddr, int shmflg);
int shmdt(const void *shmaddr);
int shmctl(int shmid, int cmd, struct shmid_ds *buf);
int shm_open(const char *name, int oflag, mode_t mode);
int shm_unlink(const char *name);
int futex(int *uaddr, int op, int val, const struct timespec *timeout,
          int *uaddr2, int val3);
void *mremap(void *old_address, size_t old_size, size_t new_size, int flags, ...);
int msync(void *addr, size_t len, int flags);
int mprotect(void *addr, size_t len, int prot);
int madvise(void *addr, size_t len, int advice);
int mlock(const void *addr, size_t len);
int mlock2(const void *addr, size_t len, unsigned int flags);
int munlock(const void *addr, size_t len);
int mlockall(int flags);
int munlockall(void);
int mincore(void *addr, size_t len, unsigned char *vec);

/* Always exported: the same calls under names that never clash with the
 * host libc. */
void *nommu_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
int nommu_munmap(void *addr, size_t len);
int nommu_open(const char *path, int flags, mode_t mode);
int nommu_openat(int dirfd, const char *path, int flags, mode_t mode);
int nommu_close(int fd);
ssize_t nommu_read(int fd, void *buf, size_t len);
ssize_t nommu_write(int fd, const void *buf, size_t len);
ssize_t nommu_pread(int fd, void *buf, size_t len, off_t offset);
ssize_t nommu_pwrite(int fd, const void *buf, size_t len, off_t offset);
int nommu_ftruncate(int fd, off_t len);
off_t nommu_lseek(int fd, off_t offset, int whence);
int nommu_fstat(int fd, struct stat *st);
/* arg: the third fcntl argument (an integer or a pointer, as a long). */
int nommu_fcntl(int fd, int cmd, unsigned long arg);
int nommu_stat(const char *path, struct stat *st);
int nommu_lstat(const char *path, struct stat *st);
int nommu_access(const char *path, int mode);
int nommu_unlink(const char *path);
int nommu_fsync(int fd);
int nommu_fdatasync(int fd);
int nommu_fchmod(int fd, mode_t mode);
int nommu_fchown(int fd, uid_t uid, gid_t gid);
int nommu_chmod(const char *path, mode_t mode);
int nommu_fchmodat(int dirfd, const char *path, mode_t mode, int flags);
int nommu_chown(const char *path, uid_t uid, gid_t gid);
int nommu_lchown(const char *path, uid_t uid, gid_t gid);
int nommu_fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags);
int nommu_shmget(key_t key, size_t size, int shmflg);
void *nommu_shmat(int shmid, const void *shmaddr, int shmflg);
int nommu_shmdt(const void *shmaddr);
int nommu_shmctl(int shmid, int cmd, struct shmid_ds *buf);
int nommu_shm_open(const char *name, int oflag, mode_t mode);
int nommu_shm_unlink(const char *name);
int nommu_futex(int *uaddr, int op, int val, const struct timespec *timeout,
                int *uaddr2, int val3);
/* new_address is read only with MREMAP_FIXED. */
void *nommu_mremap(void *old_address, size_t old_size, size_t new_size, int flags,
                   void *new_address);
int nommu_msync(void *addr, size_t len, int flags);
int nommu_mprotect(void *addr, size_t len, int prot);
int nommu_madvise(void *addr, size_t len, int advice);
int nommu_mlock(const void *addr, size_t len);
int nommu_mlock2(const void *addr, size_t len, unsigned int flags);
int nommu_munlock(const void *addr, size_t len);
int nommu_mlockall(int flags);
int nommu_munlockall(void);
int nommu_mincore(void *addr, size_t len, unsigned char *vec);

/* Ask the server for its mounts again (a driver registered after this
 * process connected). Returns 0, or -1 with errno set. */
int nommu_refresh_mounts(void);

/*
 * Read a /proc text of the memory server into buf. view is one of
 *   "maps"        every region in the system (/proc/maps)
 *   "self/maps"   this process's mappings
 *   "<pid>/maps"  the mappings of process <pid>
 *   "self/status", "<pid>/status"   /proc/<pid>/status (Linux's format;
 *                 ESRCH for a process the server does not know)
 *   "meminfo"     /proc/meminfo
 * (a leading "/proc/" is accepted). At most len-1 bytes are copied and a
 * NUL is written after them (when len > 0). Returns the length of the whole
 * text, like snprintf (so a result >= len means it was cut), or -1 with
 * errno set (EINVAL for an unknown view).
 */
ssize_t nommu_read_proc(const char *view, char *buf, size_t len);

/* The pid the memory server knows this process by (the host pid), or -1. */
int nommu_pid(void);

/* The arena's first address and size (either pointer may be NULL).
 * Returns 0, or -1 with errno set. */
int nommu_arena(void **base, size_t *size);

#ifdef __cplusplus
}
#endif

#endif /* NOMMU_H */
