/* hostfds: host descriptors under libnommu. Files outside every server
 * mount are the host's: open/read/write/lseek/fstat/close work on them as
 * usual, and mmap hands them to the daemon's host-file driver: MAP_PRIVATE
 * gives a copy of the bytes that later writes do not change, MAP_SHARED
 * fails ENODEV, a pipe ENODEV, a socket EINVAL, a write-only descriptor
 * EACCES, a descriptor that is not open EBADF, an unaligned offset EINVAL.
 * Usage: hostfds SCRATCH_FILE. Prints "hostfds: ok". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "hostfds"
#include "check.h"

static void fails(void *p, int want, const char *what) {
    int got = errno;
    CHECK(p == MAP_FAILED, "%s: mapped", what);
    CHECK(got == want, "%s: errno %d, want %d", what, got, want);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: hostfds SCRATCH_FILE\n");
        return 2;
    }
    const char *path = argv[1];
    enum { LEN = 6000 };
    static char data[LEN], back[LEN];
    for (int i = 0; i < LEN; i++)
        data[i] = (char)('a' + i % 26);

    /* Plain host file calls. */
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0, "open %s", path);
    CHECK(write(fd, data, LEN) == LEN, "write");
    CHECK(lseek(fd, 0, SEEK_CUR) == LEN, "lseek");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == LEN && S_ISREG(st.st_mode), "fstat");
    CHECK(pread(fd, back, LEN, 0) == LEN && memcmp(back, data, LEN) == 0, "pread");
    CHECK(ftruncate(fd, LEN) == 0, "ftruncate");

    /* MAP_PRIVATE: a copy of the file, zero past its end. */
    char *p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED, "mmap private of a host file");
    CHECK(memcmp(p, data, LEN) == 0, "the copy differs from the file");
    for (int i = LEN; i < 8192; i++)
        CHECK(p[i] == 0, "byte %d past the end is %d", i, p[i]);
    /* A second mapping of the same range shares the copy (spec §3). */
    char *q = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(q == p, "a second private read-only mapping is elsewhere (%p, %p)", (void *)q,
          (void *)p);
    CHECK(munmap(q, 8192) == 0, "munmap second");
    /* Later writes to the file do not reach the copy. */
    CHECK(pwrite(fd, "XXXX", 4, 0) == 4, "pwrite");
    CHECK(memcmp(p, data, 4) == 0, "the copy changed with the file");
    CHECK(munmap(p, 8192) == 0, "munmap");
    /* A writable private mapping is a copy of its own. */
    char *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(w != MAP_FAILED && memcmp(w, "XXXX", 4) == 0, "mmap private rw");
    w[0] = 'Y';
    CHECK(pread(fd, back, 1, 0) == 1 && back[0] == 'X', "a store reached the file");
    CHECK(munmap(w, 4096) == 0, "munmap rw");

    errno = 0;
    fails(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0), ENODEV, "MAP_SHARED host file");
    errno = 0;
    fails(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100), EINVAL, "unaligned offset");
    CHECK(close(fd) == 0, "close");

    int wo = open(path, O_WRONLY);
    CHECK(wo >= 0, "open O_WRONLY");
    errno = 0;
    fails(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, wo, 0), EACCES, "write-only descriptor");
    CHECK(close(wo) == 0, "close wo");

    int pipefd[2];
    CHECK(pipe(pipefd) == 0, "pipe");
    errno = 0;
    fails(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, pipefd[0], 0), ENODEV, "pipe");
    close(pipefd[0]);
    close(pipefd[1]);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    errno = 0;
    fails(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, sv[0], 0), EINVAL, "socket");
    close(sv[0]);
    close(sv[1]);

    errno = 0;
    fails(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 1234, 0), EBADF, "fd 1234");

    /* Nothing is left mapped. */
    static char maps[8192];
    CHECK(nommu_read_proc("self/maps", maps, sizeof maps) >= 0, "self/maps");
    CHECK(maps[0] == 0, "mappings left:\n%s", maps);
    printf("hostfds: ok\n");
    return 0;
}
