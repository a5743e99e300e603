/* malloc_stress: the nommu_ malloc family against memsrvd, through the
 * standard names (nommu_malloc_names.h).
 * Usage: malloc_stress move|strict
 *   - a random walk of malloc/calloc/realloc/posix_memalign/aligned_alloc/
 *     free with sizes up to 576 KiB, every byte checked (4 threads at once);
 *   - a large block grown by realloc: with "move" through mremap (the
 *     mremap count goes up and no copy is needed), with "strict" (a daemon
 *     with --strict-mremap) by copying;
 *   - calloc returns zeros even on pages that were dirty and come back
 *     uninitialized ("uninit_reuse: 1" when a freed large block's bytes
 *     were seen again through malloc, i.e. MAP_UNINITIALIZED reached a
 *     daemon that allows it);
 *   - after freeing everything and nommu_malloc_trim(0) the allocator
 *     holds nothing ("stats: ... mapped=0"), then "freed" is printed and the
 *     program waits for its standard input to close, so the test can read
 *     /proc/meminfo while it is still connected. Prints "malloc: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nommu.h"
#include "nommu_malloc_names.h"

#define CHECK_PROGRAM "malloc_stress"
#include "check.h"

#define SLOTS 48
#define STEPS 3000
#define THREADS 4

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static size_t random_size(uint64_t *s) {
    uint64_t r = next_rand(s) % 100;
    if (r < 70)
        return next_rand(s) % 300;
    if (r < 92)
        return 300 + next_rand(s) % 20000;
    if (r < 98)
        return 20000 + next_rand(s) % 100000;
    return 64 * 1024 + next_rand(s) % (512 * 1024);
}

struct slot {
    unsigned char *p;
    size_t size;
    size_t align;
    unsigned char seed;
};

static void fill(struct slot *s) {
    for (size_t i = 0; i < s->size; i++)
        s->p[i] = (unsigned char)(s->seed + i / 5);
}

static void check(const struct slot *s, size_t len) {
    if (len > s->size)
        len = s->size;
    for (size_t i = 0; i < len; i++)
        CHECK(s->p[i] == (unsigned char)(s->seed + i / 5),
              "byte %zu of %zu at %p is %u", i, s->size, (void *)s->p, s->p[i]);
}

static void check_block(const struct slot *s) {
    CHECK(s->p != NULL, "no block of %zu", s->size);
    CHECK((uintptr_t)s->p % s->align == 0, "%p not aligned to %zu", (void *)s->p,
          s->align);
    CHECK(nommu_malloc_usable_size(s->p) >= s->size, "usable %zu < %zu",
          nommu_malloc_usable_size(s->p), s->size);
}

static void *walk(void *arg) {
    uint64_t state = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
    struct slot slots[SLOTS];
    memset(slots, 0, sizeof slots);
    for (int step = 0; step < STEPS; step++) {
        struct slot *s = &slots[next_rand(&state) % SLOTS];
        unsigned char seed = (unsigned char)next_rand(&state);
        if (s->p) {
            check(s, s->size);
            if (next_rand(&state) % 3 == 0) {
                size_t size = random_size(&state) + 1;
                unsigned char *q = realloc(s->p, size);
                CHECK(q != NULL, "realloc to %zu", size);
                s->p = q;
                s->align = 16;
                size_t old = s->size;
                s->size = size;
                check(s, old);
            } else {
                free(s->p);
                s->p = NULL;
                continue;
            }
        } else {
            size_t size = random_size(&state);
            s->size = size;
            s->align = 16;
            switch (next_rand(&state) % 4) {
            case 0:
                s->p = malloc(size);
                break;
            case 1:
                s->p = calloc(1, size);
                CHECK(s->p != NULL, "calloc %zu", size);
                for (size_t i = 0; i < size; i++)
                    CHECK(s->p[i] == 0, "calloc byte %zu of %zu is %u", i, size, s->p[i]);
                break;
            case 2: {
                void *p = NULL;
                s->align = (size_t)1 << (3 + next_rand(&state) % 10);
                int rc = posix_memalign(&p, s->align, size);
                CHECK(rc == 0, "posix_memalign(%zu, %zu) = %d", s->align, size, rc);
                s->p = p;
                break;
            }
            default:
                s->align = (size_t)1 << (4 + next_rand(&state) % 8);
                s->p = aligned_alloc(s->align, size);
                break;
            }
            if (s->align < 16)
                s->align = 16;
        }
        s->seed = seed;
        check_block(s);
        fill(s);
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].p) {
            check(&slots[i], slots[i].size);
            free(slots[i].p);
        }
    }
    return NULL;
}

static struct nommu_malloc_stats stats(void) {
    struct nommu_malloc_stats st;
    nommu_malloc_stats(&st);
    return st;
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: malloc_stress move|strict");
    int strict = strcmp(argv[1], "strict") == 0;

    /* Errors. */
    void *p = NULL;
    CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == NULL, "posix_memalign 24");
    errno = 0;
    CHECK(aligned_alloc(3, 10) == NULL && errno == EINVAL, "aligned_alloc 3");
    errno = 0;
    CHECK(malloc(SIZE_MAX - 100) == NULL && errno == ENOMEM, "huge malloc");
    CHECK(calloc(SIZE_MAX / 2, 4) == NULL && errno == ENOMEM, "calloc overflow");
    free(NULL);

    /* The walk, on several threads. */
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, walk, (void *)(uintptr_t)(i + 1)) == 0,
              "pthread_create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    struct nommu_malloc_stats st = stats();
    printf("walk: mmap=%llu munmap=%llu mremap=%llu mapped=%llu\n",
           (unsigned long long)st.mmap_calls, (unsigned long long)st.munmap_calls,
           (unsigned long long)st.mremap_calls, (unsigned long long)st.mapped_bytes);

    /* A large block grown by realloc. */
    struct slot big = {malloc(128 * 1024), 128 * 1024, 16, 42};
    check_block(&big);
    fill(&big);
    uint64_t mremaps = stats().mremap_calls;
    uint64_t mmaps = stats().mmap_calls;
    for (size_t size = 256 * 1024; size <= 2 * 1024 * 1024; size *= 2) {
        unsigned char *q = realloc(big.p, size);
        CHECK(q != NULL, "realloc to %zu", size);
        big.p = q;
        check(&big, big.size);
        big.size = size;
        check_block(&big);
        fill(&big);
    }
    uint64_t grew = stats().mremap_calls - mremaps;
    uint64_t copies = stats().mmap_calls - mmaps;
    printf("grow: mremap=%llu copies=%llu\n", (unsigned long long)grew,
           (unsigned long long)copies);
    if (strict)
        CHECK(copies > 0, "strict mremap: growth copies");
    else
        CHECK(grew == 4 && copies == 0, "growth through mremap: %llu, %llu copies",
              (unsigned long long)grew, (unsigned long long)copies);
    /* Shrinking gives the tail back. */
    uint64_t before = stats().mapped_bytes;
    big.p = realloc(big.p, 100 * 1024);
    CHECK(big.p != NULL, "shrink");
    big.size = 100 * 1024;
    check(&big, big.size);
    CHECK(stats().mapped_bytes < before - 1024 * 1024, "shrink kept the tail");
    free(big.p);

    /* Dirty pages come back: calloc still zeroes, malloc may see them. */
    size_t len = 512 * 1024;
    unsigned char *dirty = malloc(len);
    CHECK(dirty != NULL, "malloc dirty");
    memset(dirty, 0xAB, len);
    free(dirty);
    unsigned char *again = malloc(len);
    CHECK(again != NULL, "malloc again");
    int seen = again[len / 2] == 0xAB && again[len - 1] == 0xAB;
    free(again);
    printf("uninit_reuse: %d\n", seen);
    for (size_t size = 100; size <= len; size *= 4) {
        unsigned char *d = malloc(size);
        CHECK(d != NULL, "malloc %zu", size);
        memset(d, 0xCD, size);
        free(d);
        unsigned char *z = calloc(size, 1);
        CHECK(z != NULL, "calloc %zu", size);
        for (size_t i = 0; i < size; i++)
            CHECK(z[i] == 0, "calloc(%zu) byte %zu is %u", size, i, z[i]);
        free(z);
    }

    /* Everything back. */
    nommu_malloc_trim(0);
    st = stats();
    printf("stats: mmap=%llu munmap=%llu mremap=%llu mapped=%llu\n",
           (unsigned long long)st.mmap_calls, (unsigned long long)st.munmap_calls,
           (unsigned long long)st.mremap_calls, (unsigned long long)st.mapped_bytes);
    CHECK(st.mapped_bytes == 0, "still mapped: %llu", (unsigned long long)st.mapped_bytes);
    printf("freed\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin))
        ;
    printf("malloc: ok\n");
    return 0;
}
