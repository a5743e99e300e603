/* copyonly: a file on a copy-only filesystem (memsrvd --mount
 * /data=hostdir:DIR): MAP_SHARED fails ENODEV, MAP_PRIVATE gives a copy,
 * and later writes to the file do not reach the copy. Also creates NEW
 * and writes it.
 * Usage: copyonly PATH NEW. Prints "copyonly: ok". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "copyonly"
#include "check.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: copyonly PATH NEW\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR);
    CHECK(fd >= 0, "open %s", argv[1]);
    struct stat st;
    CHECK(fstat(fd, &st) == 0, "fstat");
    CHECK(S_ISREG(st.st_mode) && st.st_size > 0, "a non-empty regular file");
    size_t len = (size_t)st.st_size;

    errno = 0;
    CHECK(mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == ENODEV,
          "MAP_SHARED of a copy-only file should fail ENODEV");

    char *before = malloc(len);
    CHECK(before != NULL, "malloc");
    CHECK(pread(fd, before, len, 0) == (ssize_t)len, "pread");
    char *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED, "mmap private");
    CHECK(memcmp(p, before, len) == 0, "the copy differs from the file");

    /* Write the file: the copy keeps the old bytes. */
    char *after = malloc(len);
    CHECK(after != NULL, "malloc");
    memset(after, 'Z', len);
    CHECK(pwrite(fd, after, len, 0) == (ssize_t)len, "pwrite");
    char *check = malloc(len);
    CHECK(check != NULL, "malloc");
    CHECK(pread(fd, check, len, 0) == (ssize_t)len, "pread after");
    CHECK(memcmp(check, after, len) == 0, "the file did not change");
    CHECK(memcmp(p, before, len) == 0, "the copy changed with the file");
    printf("addr %p\n", (void *)p);
    CHECK(munmap(p, len) == 0, "munmap");
    CHECK(close(fd) == 0, "close");

    /* A new file on the copy-only filesystem. */
    int nf = open(argv[2], O_RDWR | O_CREAT | O_EXCL, 0644);
    CHECK(nf >= 0, "create %s", argv[2]);
    CHECK(write(nf, "new file\n", 9) == 9, "write");
    CHECK(lseek(nf, 0, SEEK_END) == 9, "lseek");
    CHECK(ftruncate(nf, 4) != 0 && errno == EINVAL, "ftruncate on copyfs is EINVAL");
    CHECK(close(nf) == 0, "close new");
    printf("copyonly: ok\n");
    return 0;
}
