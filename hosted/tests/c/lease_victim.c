/* lease_victim: move a file's bytes by lease until killed.
 * Usage: lease_victim PATH
 * Opens PATH (created if need be) and, forever, writes then reads back
 * three lease steps (768 KiB) at offset 1: from an anonymous mapping (in
 * the arena: the lease names it) and from the C heap (outside it: through
 * the connection's bulk window). Prints "READY" after the first round and
 * exits 1 if any byte comes back wrong. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "lease_victim"
#include "check.h"

#define LEN (3 * 256 * 1024)

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: lease_victim PATH");
    int fd = open(argv[1], O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0, "open %s", argv[1]);
    unsigned char *mapped = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mapped != MAP_FAILED, "mmap");
    unsigned char *heap = malloc(LEN);
    CHECK(heap != NULL, "malloc");
    for (size_t i = 0; i < LEN; i++)
        mapped[i] = (unsigned char)(i * 31 + i / 4096);
    for (int round = 0;; round++) {
        CHECK(pwrite(fd, mapped, LEN, 1) == LEN, "pwrite from the mapping");
        CHECK(pread(fd, heap, LEN, 1) == LEN, "pread into the heap");
        CHECK(memcmp(heap, mapped, LEN) == 0, "bytes differ (heap)");
        CHECK(pwrite(fd, heap, LEN, 1) == LEN, "pwrite from the heap");
        CHECK(pread(fd, mapped, LEN, 1) == LEN, "pread into the mapping");
        CHECK(memcmp(heap, mapped, LEN) == 0, "bytes differ (mapping)");
        if (round == 0) {
            printf("READY\n");
            fflush(stdout);
        }
    }
}
