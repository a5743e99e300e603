/* fsync DATADIR TMPDIR ZERODEV: fsync and fdatasync of server files
 * through the shim. DATADIR is a server mount over a host directory
 * (its driver flushes the host file), TMPDIR a ramfs mount (synced at
 * once), ZERODEV a character device without an fsync method (EINVAL).
 * Writes "durable\n" to DATADIR/f; the Rust test reads the host file.
 * Prints "all ok" at the end; a failed check exits 1 (check.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK_PROGRAM "fsync"
#include "check.h"

/* -1 with errno `e`. */
static int fails(int ret, int e) { return ret == -1 && errno == e; }

static void join(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: fsync DATADIR TMPDIR ZERODEV\n");
        return 2;
    }
    const char *data = argv[1], *tmp = argv[2], *zero = argv[3];
    char path[512];

    /* A host directory's file: written, then flushed by its driver. */
    join(path, sizeof path, data, "f");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    CHECK(fd >= 0, "open of a host-directory file");
    CHECK(pwrite(fd, "durable\n", 8, 0) == 8, "pwrite");
    CHECK(fsync(fd) == 0, "fsync of a host-directory file");
    CHECK(fdatasync(fd) == 0, "fdatasync of a host-directory file");
    int ro = open(path, O_RDONLY);
    CHECK(ro >= 0 && fsync(ro) == 0, "fsync through a read-only descriptor");
    close(ro);
    int dir = open(data, O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0 && fsync(dir) == 0, "fsync of the host directory");
    close(dir);

    /* ramfs: nothing to flush, 0 at once. */
    join(path, sizeof path, tmp, "m");
    int mem = open(path, O_CREAT | O_RDWR, 0600);
    CHECK(mem >= 0 && write(mem, "x", 1) == 1, "a ramfs file written");
    CHECK(fsync(mem) == 0, "fsync of a ramfs file");
    CHECK(fdatasync(mem) == 0, "fdatasync of a ramfs file");
    close(mem);
    CHECK(unlink(path) == 0, "unlink of the ramfs file");
    int root = open(tmp, O_RDONLY | O_DIRECTORY);
    CHECK(root >= 0 && fsync(root) == 0, "fsync of the ramfs root");
    close(root);

    /* A device without an fsync method, as Linux's /dev/zero. */
    int z = open(zero, O_RDWR);
    CHECK(z >= 0, "open of the device");
    errno = 0;
    CHECK(fails(fsync(z), EINVAL), "fsync of a device without the method: EINVAL");
    errno = 0;
    CHECK(fails(fdatasync(z), EINVAL), "fdatasync of it: EINVAL");
    close(z);

    /* A descriptor no longer open. */
    close(fd);
    errno = 0;
    CHECK(fails(fsync(fd), EBADF), "fsync of a closed server descriptor: EBADF");
    errno = 0;
    CHECK(fails(fdatasync(fd), EBADF), "fdatasync of it: EBADF");

    printf("all ok\n");
    return 0;
}
