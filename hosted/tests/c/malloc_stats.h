/* malloc_stats.h: the ported apps' drivers (lua_driver.c, sqlite_driver.c)
 * end by printing the nommu allocator's counters on stderr, one line the
 * Rust test reads; a host-libc build prints nothing. */
#ifndef NOMMU_TESTS_MALLOC_STATS_H
#define NOMMU_TESTS_MALLOC_STATS_H

#include <stdio.h>

#ifdef NOMMU_MALLOC
#include "nommu_malloc.h"
#endif

static void print_malloc_stats(void) {
#ifdef NOMMU_MALLOC
    struct nommu_malloc_stats st;
    nommu_malloc_stats(&st);
    fprintf(stderr, "nommu_malloc: mmap %llu munmap %llu mremap %llu mapped %llu\n",
            (unsigned long long)st.mmap_calls, (unsigned long long)st.munmap_calls,
            (unsigned long long)st.mremap_calls, (unsigned long long)st.mapped_bytes);
#endif
}

#endif
