/* shm: POSIX shared memory on the server's memory filesystem: open
 * O_CREAT, ftruncate to 8192, map MAP_SHARED, and see another process's
 * stores.
 * Usage: shm create PATH   create and size the file, map it, store "from
 *                          create" at offset 0, print "addr 0x...",
 *                          "ready", wait for a line on stdin, then check
 *                          that "from join" is at offset 4096 and print
 *                          "shm: ok".
 *        shm join PATH     open the file, map it, check "from create" at
 *                          offset 0, store "from join" at 4096, print
 *                          "addr 0x..." and "shm: ok". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "shm"
#include "check.h"
#include "create_join.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: shm create|join PATH\n");
        return 2;
    }
    int create = strcmp(argv[1], "create") == 0;
    const char *path = argv[2];
    int fd = open(path, create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
    CHECK(fd >= 0, "open %s", path);
    if (create)
        CHECK(ftruncate(fd, 8192) == 0, "ftruncate");
    struct stat st;
    CHECK(fstat(fd, &st) == 0, "fstat");
    CHECK(st.st_size == 8192, "size %lld", (long long)st.st_size);
    CHECK(S_ISREG(st.st_mode), "mode %o", st.st_mode);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED, "mmap");
    printf("addr %p\n", (void *)p);
    if (create) {
        create_then_wait_for_join(p);
        /* The file has the bytes too: a shared mapping aliases it. */
        char buf[16] = {0};
        CHECK(pread(fd, buf, 9, 4096) == 9, "pread");
        CHECK(strcmp(buf, "from join") == 0, "pread gives %s", buf);
    } else {
        join_created(p);
    }
    CHECK(munmap(p, 8192) == 0, "munmap");
    CHECK(close(fd) == 0, "close");
    printf("shm: ok\n");
    return 0;
}
