/* posix_shm: shm_open/ftruncate/mmap MAP_SHARED between two processes;
 * the data survives close() and shm_unlink() while mapped.
 * Usage: posix_shm create NAME  create NAME (O_EXCL), ftruncate 8192, map
 *                               MAP_SHARED, close the descriptor, store
 *                               "from create" at 0, print "addr <p>" and
 *                               "ready", wait for a line on stdin; then
 *                               check "from join" at 4096, shm_unlink
 *                               NAME, check the bytes are still there and
 *                               writable, that shm_open(NAME) now fails
 *                               ENOENT, munmap, print "posix_shm: ok".
 *        posix_shm join NAME    open NAME, map it, close, check "from
 *                               create", store "from join" at 4096, print
 *                               "addr <p>" and "posix_shm: ok".
 *        posix_shm names        bad names fail EINVAL / ENAMETOOLONG. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "posix_shm"
#include "check.h"
#include "create_join.h"

static void names(void) {
    static const char *bad[] = {"", "/", "//", "/a/b", "a/b", ".", "/..", NULL};
    for (int i = 0; bad[i]; i++) {
        errno = 0;
        CHECK(shm_open(bad[i], O_RDWR | O_CREAT, 0600) == -1 && errno == EINVAL,
              "shm_open(\"%s\") should fail EINVAL", bad[i]);
        errno = 0;
        CHECK(shm_unlink(bad[i]) == -1 && errno == EINVAL,
              "shm_unlink(\"%s\") should fail EINVAL", bad[i]);
    }
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    errno = 0;
    CHECK(shm_open(longname, O_RDWR | O_CREAT, 0600) == -1 && errno == ENAMETOOLONG,
          "long name");
    errno = 0;
    CHECK(shm_open("/never-made", O_RDWR, 0) == -1 && errno == ENOENT, "missing");
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "names") == 0) {
        names();
        printf("posix_shm: ok\n");
        return 0;
    }
    CHECK(argc == 3, "usage: posix_shm create|join NAME");
    int create = strcmp(argv[1], "create") == 0;
    const char *name = argv[2];
    int fd = shm_open(name, create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
    CHECK(fd >= 0, "shm_open %s", name);
    if (create)
        CHECK(ftruncate(fd, 8192) == 0, "ftruncate");
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED, "mmap");
    CHECK(close(fd) == 0, "close");
    printf("addr %p\n", (void *)p);
    if (create) {
        create_then_wait_for_join(p);
        CHECK(shm_unlink(name) == 0, "shm_unlink");
        CHECK(strcmp(p, "from create") == 0, "bytes gone after unlink");
        strcpy(p + 100, "still mapped");
        CHECK(strcmp(p + 100, "still mapped") == 0, "store after unlink");
        errno = 0;
        CHECK(shm_open(name, O_RDWR, 0) == -1 && errno == ENOENT,
              "shm_open after unlink");
    } else {
        join_created(p);
    }
    CHECK(munmap(p, 8192) == 0, "munmap");
    printf("posix_shm: ok\n");
    return 0;
}
