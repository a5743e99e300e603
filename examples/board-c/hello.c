/*
 * hello.c - a C program for the bare-metal board:
 *
 *   scripts/board.sh run --c examples/board-c/hello.c
 *
 * It maps anonymous memory from the memory server, writes a message into
 * it, prints it, unmaps it, and returns 0 (the board prints
 * "board: hello.c exited 0" and powers off with a pass). stdio is
 * picolibc's; mmap and munmap are the shim's C ABI, declared in
 * nommu_board.h with Linux's constants.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nommu_board.h"

int main(int argc, char **argv)
{
    const char *name = argc > 0 ? argv[0] : "hello.c";
    size_t len = 2 * 4096;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("%s: mmap failed (errno %d)\n", name, errno);
        return 1;
    }
    /* Anonymous memory comes zeroed, even without an MMU. */
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            printf("%s: byte %zu of the mapping is not zero\n", name, i);
            return 2;
        }
    }
    snprintf(p, len, "hello from %s in mapped memory at %p", name, (void *)p);
    printf("%s\n", p);
    if (munmap(p, len) != 0) {
        printf("%s: munmap failed (errno %d)\n", name, errno);
        return 3;
    }
    printf("%s: unmapped %zu bytes\n", name, len);
    return 0;
}
