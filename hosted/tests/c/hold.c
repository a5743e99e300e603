/* hold: map PAGES pages in MAPPINGS mappings, fill each with BYTE, report
 * the first address and wait to be killed.
 * Usage: hold MAPPINGS PAGES BYTE. Prints "hold <addr> <len>" then
 * "ready" on stdout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: hold MAPPINGS PAGES BYTE\n");
        return 2;
    }
    int mappings = atoi(argv[1]);
    size_t len = (size_t)atoi(argv[2]) * 4096;
    int byte = (int)strtol(argv[3], NULL, 0);
    for (int i = 0; i < mappings; i++) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            fprintf(stderr, "hold: mmap: %s\n", strerror(errno));
            return 1;
        }
        memset(p, byte, len);
        printf("hold %p %zu\n", p, len);
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
