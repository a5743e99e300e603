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
 * The library itself never calls the mmap/munmap symbols, so exporting them
 * cannot recurse. A fork()ed child inherits the parent's connection and
 * would speak for the parent: on no-MMU there is no fork, use vfork+exec.
 */
#ifndef NOMMU_H
#define NOMMU_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported with feature "posix" (libnommu.a): the POSIX calls, served by
 * memsrvd with no-MMU semantics. Same signatures as <sys/mman.h>. Every
 * call goes to the server: fd names a file of the server's own (host file
 * descriptors mean nothing there), and memory the host libc maps for itself
 * (malloc arenas, thread stacks, libraries) never passes through here. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
int munmap(void *addr, size_t len);

/* Always exported: the same calls under names that never clash with the
 * host libc. */
void *nommu_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
int nommu_munmap(void *addr, size_t len);

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
