/* chmod_paths: chmod, fchmodat, chown, fchownat and lchown of a path under
 * a server mount are the server's, not the host's.
 * Usage: chmod_paths   (a ramfs at /srv)
 * On a server file made 0640: a mode or owner it already has succeeds
 * (uid/gid -1 mean "unchanged"), any change fails EPERM (the server keeps
 * mode and owner), a missing path fails ENOENT, a bad pointer EFAULT;
 * AT_EMPTY_PATH acts on the descriptor. A host path still reaches the host.
 * Prints "chmod_paths: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nommu.h"

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "chmod_paths: %s:%d: ", __FILE__, __LINE__);     \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, " (%s)\n", strerror(errno));                     \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define FAILS(call, e)                                                       \
    do {                                                                     \
        errno = 0;                                                           \
        int ret_ = (call);                                                   \
        CHECK(ret_ == -1 && errno == (e), "%s gave %d", #call, ret_);        \
    } while (0)

static void *volatile bad_pointer = (void *)8;

int main(void) {
    const char *f = "/srv/attrs";
    int fd = open(f, O_RDWR | O_CREAT | O_EXCL, 0640);
    CHECK(fd >= 0, "open");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0640, "mode %o", st.st_mode);
    uid_t uid = st.st_uid;
    gid_t gid = st.st_gid;

    CHECK(chmod(f, 0640) == 0, "chmod to the same mode");
    CHECK(chmod("/srv//./attrs", 0640) == 0, "chmod of a lexically odd path");
    CHECK(fchmodat(AT_FDCWD, f, 0640, 0) == 0, "fchmodat");
    CHECK(fchmodat(AT_FDCWD, f, 0640, AT_SYMLINK_NOFOLLOW) == 0, "fchmodat NOFOLLOW");
    CHECK(chown(f, uid, gid) == 0, "chown to the same owner");
    CHECK(chown(f, (uid_t)-1, (gid_t)-1) == 0, "chown unchanged");
    CHECK(lchown(f, uid, (gid_t)-1) == 0, "lchown");
    CHECK(fchownat(AT_FDCWD, f, (uid_t)-1, gid, 0) == 0, "fchownat");
    CHECK(fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == 0, "fchownat AT_EMPTY_PATH");

    FAILS(chmod(f, 0666), EPERM);
    FAILS(fchmodat(AT_FDCWD, f, 0600, 0), EPERM);
    FAILS(chown(f, uid + 1, gid), EPERM);
    FAILS(lchown(f, (uid_t)-1, gid + 1), EPERM);
    FAILS(fchownat(AT_FDCWD, f, uid + 1, (gid_t)-1, AT_SYMLINK_NOFOLLOW), EPERM);
    FAILS(chmod("/srv/missing", 0640), ENOENT);
    FAILS(chown("/srv/missing", uid, gid), ENOENT);
    FAILS(chmod(bad_pointer, 0640), EFAULT);
    FAILS(fchownat(AT_FDCWD, bad_pointer, uid, gid, 0), EFAULT);
    CHECK(stat(f, &st) == 0 && (st.st_mode & 07777) == 0640, "mode unchanged");
    CHECK(close(fd) == 0 && unlink(f) == 0, "close, unlink");

    /* A host path is the host's. */
    char host[] = "/tmp/chmod_paths.XXXXXX";
    int hfd = mkstemp(host);
    CHECK(hfd >= 0, "mkstemp");
    CHECK(chmod(host, 0604) == 0, "chmod of a host file");
    CHECK(stat(host, &st) == 0 && (st.st_mode & 07777) == 0604, "host mode %o", st.st_mode);
    CHECK(fchmodat(AT_FDCWD, host, 0600, 0) == 0, "fchmodat of a host file");
    CHECK(chown(host, getuid(), getgid()) == 0, "chown of a host file");
    CHECK(lchown(host, (uid_t)-1, (gid_t)-1) == 0, "lchown of a host file");
    CHECK(fchownat(AT_FDCWD, host, (uid_t)-1, (gid_t)-1, 0) == 0, "fchownat of a host file");
    CHECK(stat(host, &st) == 0 && (st.st_mode & 07777) == 0600, "host mode %o", st.st_mode);
    CHECK(close(hfd) == 0 && unlink(host) == 0, "host cleanup");
    printf("chmod_paths: ok\n");
    return 0;
}
