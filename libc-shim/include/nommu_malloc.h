/*
 * nommu_malloc.h - malloc for ported programs, with all its memory from the
 * memory server's mmap (libnommu built with feature "malloc", on by
 * default: cargo rustc -p libc-shim --lib --release --features posix,malloc
 * --crate-type staticlib).
 *
 * Doug Lea's malloc (2.8.6, the Rust "dlmalloc" crate) configured
 * mmap-only: no brk/sbrk. Small blocks come from segments of at least
 * 64 KiB, each one anonymous mapping, given back with munmap when empty
 * (and on nommu_malloc_trim). Blocks of 64 KiB or more get a mapping of
 * their own: freed with munmap at once; realloc grows one with
 * mremap(MREMAP_MAYMOVE) (the server grows it in place or moves it; a
 * daemon with --strict-mremap refuses and realloc copies instead) and
 * shrinks one by unmapping its tail. Every mapping is asked with
 * MAP_PRIVATE|MAP_ANONYMOUS|MAP_UNINITIALIZED, so a server that allows it
 * (memsrvd --allow-uninitialized) skips zero-filling; calloc zeroes its
 * block itself either way.
 *
 * The names carry a nommu_ prefix so the host libc's malloc is never
 * replaced: include nommu_malloc_names.h in a port's files to use them
 * under the standard names. Blocks are 16-byte aligned; malloc(0) returns
 * a unique block; realloc(p, 0) frees p and returns NULL (as glibc); a
 * failed realloc leaves p alone. Failures return NULL with errno ENOMEM
 * (EINVAL for a bad alignment). Thread safe: one heap per process behind
 * a lock. Only blocks of this allocator may be passed to nommu_free and
 * nommu_realloc.
 */
#ifndef NOMMU_MALLOC_H
#define NOMMU_MALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void *nommu_malloc(size_t size);
void nommu_free(void *ptr);
void *nommu_calloc(size_t nmemb, size_t size);
void *nommu_realloc(void *ptr, size_t size);
/* 0, or EINVAL (align not a power of two multiple of sizeof(void *)) or
 * ENOMEM; *memptr is set only on success. */
int nommu_posix_memalign(void **memptr, size_t alignment, size_t size);
/* alignment must be a power of two (else NULL, errno EINVAL). */
void *nommu_aligned_alloc(size_t alignment, size_t size);
/* The bytes usable at ptr (>= the size asked for); 0 for NULL. */
size_t nommu_malloc_usable_size(void *ptr);

/* What the allocator asked of the memory server since the process
 * started, and the bytes it holds now (segments and large blocks). */
struct nommu_malloc_stats {
    uint64_t mmap_calls;
    uint64_t munmap_calls;
    uint64_t mremap_calls;
    uint64_t mapped_bytes;
};
void nommu_malloc_stats(struct nommu_malloc_stats *stats);

/* Give unused memory back to the server now, keeping pad bytes free at
 * the top of the heap; with no small block live, every segment goes.
 * Returns 1 if anything was released, else 0. */
int nommu_malloc_trim(size_t pad);

#ifdef __cplusplus
}
#endif

#endif /* NOMMU_MALLOC_H */
