/* basic: map, write, read back and unmap anonymous memory through memsrvd
 * with plain mmap/munmap (libnommu exports them); print /proc views.
 * Usage: basic [ROUNDS]. Exit 0 on success. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "basic: %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static char text[64 * 1024];

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 8;
    void *base;
    size_t size;
    CHECK(nommu_arena(&base, &size) == 0, "nommu_arena: %s", strerror(errno));
    printf("arena %p+%#zx pid %d\n", base, size, nommu_pid());

    for (int round = 0; round < rounds; round++) {
        size_t len = (size_t)(round % 4 + 1) * 4096 + (size_t)(round % 3) * 100;
        unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(p != MAP_FAILED, "mmap(%zu): %s", len, strerror(errno));
        CHECK((uintptr_t)p % 4096 == 0, "unaligned address %p", (void *)p);
        CHECK((char *)p >= (char *)base && (char *)p + len <= (char *)base + size,
              "%p outside the arena", (void *)p);
        for (size_t i = 0; i < len; i++)
            CHECK(p[i] == 0, "byte %zu of a new mapping is %#x", i, p[i]);
        for (size_t i = 0; i < len; i++)
            p[i] = (unsigned char)(i * 7 + round);
        for (size_t i = 0; i < len; i++)
            CHECK(p[i] == (unsigned char)(i * 7 + round), "read back byte %zu", i);
        if (round == 0) {
            ssize_t n = nommu_read_proc("self/maps", text, sizeof text);
            CHECK(n >= 0, "self/maps: %s", strerror(errno));
            printf("--- self/maps\n%s", text);
            char want[32];
            snprintf(want, sizeof want, "%08lx", (unsigned long)(uintptr_t)p);
            CHECK(strstr(text, want) != NULL, "self/maps lacks %s", want);
        }
        CHECK(munmap(p, len) == 0, "munmap: %s", strerror(errno));
    }

    /* Errors come back as errno. */
    errno = 0;
    CHECK(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED
              && errno == EINVAL,
          "mmap of length 0 should fail with EINVAL (errno %d)", errno);
    errno = 0;
    CHECK(munmap((char *)base + 1, 4096) == -1 && errno == EINVAL,
          "munmap of an unaligned address should fail with EINVAL (errno %d)", errno);
    errno = 0;
    CHECK(nommu_read_proc("bogus", text, sizeof text) == -1 && errno == EINVAL,
          "an unknown view should fail with EINVAL");

    ssize_t n = nommu_read_proc("maps", text, sizeof text);
    CHECK(n >= 0, "maps: %s", strerror(errno));
    printf("--- maps\n%s", text);
    n = nommu_read_proc("meminfo", text, sizeof text);
    CHECK(n >= 0, "meminfo: %s", strerror(errno));
    printf("--- meminfo\n%s", text);
    printf("basic: ok\n");
    return 0;
}
