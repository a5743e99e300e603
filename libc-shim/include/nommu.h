/*
 * nommu.h - C interface of libnommu, the client library of the nommu
 * memory server (memsrvd).
 *
 * A program linking libnommu.a (built with
 *   cargo build -p libc-shim --release --features posix
 * ) gets the memory server's mmap/munmap in place of the host kernel's:
 *
 *   cc prog.c path/to/libnommu.a -lpthread -ldl -lm
 *
 * The library finds the daemon through the environment variable
 * NOMMU_SOCKET (default /tmp/nommu.sock) and connects lazily, once, on the
 * first call from any thread. The connection hands over the arena, which is
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
 * The library itself never calls the symbols it exports (it reaches the host
 * kernel with syscall()), so exporting them cannot recurse. A fork()ed child
 * inherits the parent's connection and would speak for the parent: on
 * no-MMU there is no fork, use vfork+exec.
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
 * pwrite, lseek, ftruncate, fstat, close and mmap on it go to the server,
 * and on any other descriptor to the host. Only those calls know server
 * files: dup(), fcntl(), stdio's fdopen() and the like see /dev/null.
 *
 * mmap() of a host descriptor (a file the program opened outside the
 * server's mounts) hands the descriptor to the daemon (SCM_RIGHTS), which
 * serves it as a file of a copy-only filesystem: MAP_PRIVATE gives a
 * private copy of the file's bytes (shared read-only with other processes
 * mapping the same range of the same file, as on no-MMU Linux), MAP_SHARED
 * fails ENODEV, a pipe ENODEV, a socket EINVAL, a write-only descriptor
 * EACCES. Later writes to the file do not reach the copy.
 */
#ifndef NOMMU_H
#define NOMMU_H

#include <stddef.h>
#include <sys/types.h>

struct stat;
struct stat64;

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

/* Ask the server for its mounts again (a driver registered after this
 * process connected). Returns 0, or -1 with errno set. */
int nommu_refresh_mounts(void);

/*
 * Read a /proc text of the memory server into buf. view is one of
 *   "maps"        every region in the system (/proc/maps)
 *   "self/maps"   this process's mappings
 *   "<pid>/maps"  the mappings of process <pid>
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
