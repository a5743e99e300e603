/* mremap: resize a private anonymous mapping of the server.
 * Usage: mremap move|strict
 * Map 4 pages and fill them; shrink to 1 page and grow back to 4 in place
 * (the same address, the bytes kept); growing past 4 pages without
 * MREMAP_MAYMOVE fails ENOMEM; with MREMAP_MAYMOVE it moves (bytes kept,
 * "moved: 1") when the daemon allows moves, and fails ENOMEM under
 * --strict-mremap ("moved: 0"). A mapping of the host (the stack) is the
 * host's. Prints "mremap: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "mremap"
#include "check.h"

#define PG 4096

static void check_fill(const unsigned char *p, size_t pages) {
    for (size_t i = 0; i < pages * PG; i++)
        CHECK(p[i] == (unsigned char)(i / PG + 1), "byte %zu is %u", i, p[i]);
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: mremap move|strict");
    int strict = strcmp(argv[1], "strict") == 0;
    unsigned char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    void *base = NULL;
    size_t size = 0;
    CHECK(nommu_arena(&base, &size) == 0, "nommu_arena");
    CHECK((unsigned char *)base <= p && p < (unsigned char *)base + size, "not in arena");
    for (size_t i = 0; i < 4 * PG; i++)
        p[i] = (unsigned char)(i / PG + 1);

    unsigned char *q = mremap(p, 4 * PG, PG, 0);
    CHECK(q == p, "shrink gave %p for %p", (void *)q, (void *)p);
    q = mremap(p, PG, 4 * PG, 0);
    CHECK(q == p, "grow back gave %p for %p", (void *)q, (void *)p);
    check_fill(p, 1);

    errno = 0;
    q = mremap(p, 4 * PG, 16 * PG, 0);
    CHECK(q == MAP_FAILED && errno == ENOMEM, "grow without MAYMOVE");

    errno = 0;
    q = mremap(p, 4 * PG, 16 * PG, MREMAP_MAYMOVE);
    if (strict) {
        CHECK(q == MAP_FAILED && errno == ENOMEM, "strict grow with MAYMOVE");
        printf("moved: 0\n");
        CHECK(munmap(p, 4 * PG) == 0, "munmap");
    } else {
        CHECK(q != MAP_FAILED, "grow with MAYMOVE");
        CHECK((unsigned char *)base <= q && q < (unsigned char *)base + size,
              "moved outside the arena");
        check_fill(q, 1);
        for (size_t i = 4 * PG; i < 16 * PG; i++)
            q[i] = 7;
        printf("moved: %d\n", q != p);
        CHECK(munmap(q, 16 * PG) == 0, "munmap");
    }
    /* Invalid: not a mapping start. */
    errno = 0;
    CHECK(mremap(p + 1, PG, PG, 0) == MAP_FAILED && errno == EINVAL, "unaligned");

    /* Host memory stays the host's. */
    unsigned char *h = (unsigned char *)(long)syscall(9 /* SYS_mmap */, 0L, (long)PG,
                                                       (long)(PROT_READ | PROT_WRITE),
                                                       (long)(MAP_PRIVATE | MAP_ANONYMOUS),
                                                       -1L, 0L);
    CHECK(h != MAP_FAILED, "host mmap");
    CHECK(mprotect(h, PG, PROT_READ) == 0, "host mprotect");
    unsigned char vec[1] = {0};
    CHECK(mincore(h, PG, vec) == 0, "host mincore");
    printf("mremap: ok\n");
    return 0;
}
