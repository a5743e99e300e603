/*
 * nommu_malloc_names.h - build a port uClinux-style: include this (after
 * the system headers, or with -include) and malloc, free, calloc, realloc,
 * posix_memalign and aligned_alloc in that file are the nommu_ allocator's
 * (nommu_malloc.h), all of their memory from the memory server's mmap.
 *
 * It renames calls in the files that include it only: memory that the
 * host libc allocates for itself (stdio buffers, strdup, getline, ...)
 * is still the host's and must be freed by the host's free. Pass every
 * block to the same family that allocated it.
 */
#ifndef NOMMU_MALLOC_NAMES_H
#define NOMMU_MALLOC_NAMES_H

#include <stdlib.h>
#include "nommu_malloc.h"

#define malloc nommu_malloc
#define free nommu_free
#define calloc nommu_calloc
#define realloc nommu_realloc
#define posix_memalign nommu_posix_memalign
#define aligned_alloc nommu_aligned_alloc
#define malloc_usable_size nommu_malloc_usable_size

#endif /* NOMMU_MALLOC_NAMES_H */
