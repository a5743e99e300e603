/* peek: check that LEN bytes at ADDR (an address another process got from
 * mmap) read as BYTE here too: the arena is at the same address in every
 * process. Usage: peek ADDR LEN BYTE. Exit 0 if every byte matches. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nommu.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: peek ADDR LEN BYTE\n");
        return 2;
    }
    uintptr_t addr = (uintptr_t)strtoull(argv[1], NULL, 0);
    size_t len = (size_t)strtoull(argv[2], NULL, 0);
    unsigned char byte = (unsigned char)strtol(argv[3], NULL, 0);
    void *base;
    size_t size;
    if (nommu_arena(&base, &size) != 0) {
        fprintf(stderr, "peek: nommu_arena: %s\n", strerror(errno));
        return 1;
    }
    if (addr < (uintptr_t)base || addr + len > (uintptr_t)base + size) {
        fprintf(stderr, "peek: %#lx+%zu is outside the arena %p+%#zx\n",
                (unsigned long)addr, len, base, size);
        return 1;
    }
    const unsigned char *p = (const unsigned char *)addr;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != byte) {
            fprintf(stderr, "peek: byte %zu is %#x, not %#x\n", i, p[i], byte);
            return 1;
        }
    }
    printf("peek: %zu bytes at %#lx match\n", len, (unsigned long)addr);
    return 0;
}
