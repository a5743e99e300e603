/* mapfile: open PATH with plain open() (a server file under a mount, or a
 * host file), map LEN bytes at page OFFSET and report what came back.
 * Usage: mapfile PATH LEN r|rw|rx private|shared [PGOFF] [hold]
 * Prints "size N" (fstat), then "addr 0x..." and "sum HEX" (FNV-1a of the
 * mapped bytes) and "read ok" (read() of the file agrees with the mapping
 * up to its end), or "errno N" when mmap fails. With "hold" it then prints
 * "ready", waits for a line on stdin, prints "sum HEX" of the mapping
 * again and exits. Exit 0 unless something other than mmap failed. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define DIE(...)                                                             \
    do {                                                                     \
        fprintf(stderr, "mapfile: " __VA_ARGS__);                            \
        fprintf(stderr, ": %s\n", strerror(errno));                          \
        exit(1);                                                             \
    } while (0)

static uint64_t fnv(const unsigned char *p, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: mapfile PATH LEN r|rw|rx private|shared [PGOFF] [hold]\n");
        return 2;
    }
    const char *path = argv[1];
    size_t len = (size_t)strtoul(argv[2], NULL, 0);
    int prot = PROT_READ;
    if (strcmp(argv[3], "rw") == 0)
        prot |= PROT_WRITE;
    else if (strcmp(argv[3], "rx") == 0)
        prot |= PROT_EXEC;
    int shared = strcmp(argv[4], "shared") == 0;
    off_t pgoff = argc > 5 && strcmp(argv[5], "hold") != 0 ? atol(argv[5]) : 0;
    int hold = strcmp(argv[argc - 1], "hold") == 0;

    int fd = open(path, shared && (prot & PROT_WRITE) ? O_RDWR : O_RDONLY);
    if (fd < 0)
        DIE("open %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0)
        DIE("fstat");
    printf("size %lld\n", (long long)st.st_size);
    unsigned char *p = mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd,
                            pgoff * 4096);
    if (p == MAP_FAILED) {
        printf("errno %d\n", errno);
        fflush(stdout);
        close(fd);
        return 0;
    }
    printf("addr %p\n", (void *)p);
    printf("sum %016llx\n", (unsigned long long)fnv(p, len));
    /* read() agrees with the mapping where the file has bytes. */
    off_t start = pgoff * 4096;
    size_t want = st.st_size > start ? (size_t)(st.st_size - start) : 0;
    if (want > len)
        want = len;
    unsigned char *buf = malloc(want + 1);
    if (buf == NULL)
        DIE("malloc");
    if (lseek(fd, start, SEEK_SET) != start)
        DIE("lseek");
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0)
            DIE("read");
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != want || memcmp(buf, p, want) != 0) {
        fprintf(stderr, "mapfile: read() gives other bytes than the mapping\n");
        return 1;
    }
    printf("read ok\n");
    free(buf);
    if (close(fd) != 0)
        DIE("close");
    if (hold) {
        printf("ready\n");
        fflush(stdout);
        char line[64];
        if (fgets(line, sizeof line, stdin) == NULL)
            return 0;
        printf("sum %016llx\n", (unsigned long long)fnv(p, len));
    }
    fflush(stdout);
    if (munmap(p, len) != 0)
        DIE("munmap");
    return 0;
}
